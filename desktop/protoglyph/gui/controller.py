"""The open project as the window sees it: the workspace, its undo stack and its Qt models.

Every user edit goes through here: the workspace makes the change (and commits it to the
project file), then an undo command recording it is pushed; the models are refreshed whenever
the undo stack's index moves (an edit pushed, an undo, a redo).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from protoglyph.core.drawing import PEN_FRACTION, Stroke
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.store import BatchStore
from protoglyph.core.project import ClassRecord
from protoglyph.core.workspace import NewExample, Workspace
from protoglyph.gui import commands as cmd
from protoglyph.gui.images import ThumbnailCache
from protoglyph.gui.item_models import ClassListModel, ClassRow, ExampleListModel
from protoglyph.gui.prediction_panel import ShownPrediction

TOP_K = 5


class ProjectController(QObject):
    """Owns the open :class:`Workspace`; emits ``changed`` after every edit, undo and redo."""

    changed = Signal()
    currentClassChanged = Signal(int)  # -1: none

    def __init__(self, workspace: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.thumbnails = ThumbnailCache()
        self.undo_stack = QUndoStack(self)
        # Every edit, undo and redo moves the stack's index: the window follows it from here, so
        # a command only changes the workspace and never reaches for the window.
        self._index = 0
        self.undo_stack.indexChanged.connect(self._stack_moved)
        self.classes_model = ClassListModel(self.thumbnails)
        self.examples_model = ExampleListModel(self.thumbnails)
        self._current = -1
        self._rows: dict[int, ClassRow] = {}
        #: The labeled folder's results the window shows now (``BatchSession``), if any: where
        #: an undo of a review puts the reviews back in memory beside the project.
        self.shown_folder: Any = None
        self.refresh()

    def results_of(self, folder: Path) -> tuple[BatchStore, BatchResults] | None:
        """The store and results of ``folder`` if the window shows that folder now."""
        shown = self.shown_folder
        if shown is not None and shown.folder == folder:
            return shown.store, shown.results
        return None

    # -- which project, which class ----------------------------------------------------
    def replace_workspace(self, workspace: Workspace) -> None:
        """Switch to another open project (the old one is closed; its edits are already saved)."""
        old = self.workspace
        self.workspace = workspace
        self._current = -1  # first: clearing the stack signals, and the old class is not in this project
        self.undo_stack.clear()
        self.thumbnails.clear()
        self.refresh()
        if old is not workspace:
            old.project.close()

    @property
    def current_class(self) -> int:
        return self._current

    def select_class(self, class_id: int) -> None:
        if class_id != self._current:
            self._current = class_id
            self.examples_model.set_examples(self.workspace.examples(class_id) if class_id >= 0 else [])
            self.currentClassChanged.emit(class_id)

    def class_at(self, number: int) -> ClassRecord | None:
        """The class shown as number ``number`` (1-based), if there is one."""
        classes = self.workspace.classes()
        return classes[number - 1] if 0 < number <= len(classes) else None

    def current_record(self) -> ClassRecord | None:
        """The selected class, or ``None`` (none selected, or it was just deleted)."""
        row = self._rows.get(self._current)
        return None if row is None else row.record

    def refresh(self) -> None:
        ws = self.workspace
        summaries = ws.project.class_summaries()
        classes = ws.classes()
        if self._current not in {c.id for c in classes}:
            self._current = -2  # gone: nothing that the model reset below sets off may look it up
        rows = []
        for c in classes:
            _, first = summaries.get(c.id, (0, -1))
            # the examples in use: one whose stored image is damaged is left out (and shown as such)
            rows.append(ClassRow(c, ws.example_count(c.id), ws.project.example(first) if first >= 0 else None))
        self._rows = {r.record.id: r for r in rows}
        self.classes_model.set_rows(rows)
        ids = [r.record.id for r in rows]
        if self._current not in ids:
            self._current = -2  # force the signal below
            self.select_class(ids[0] if ids else -1)
        else:
            self.examples_model.set_examples(ws.examples(self._current))
        self.changed.emit()

    def _done(self, command: cmd.Edit) -> None:
        """Record an edit that was made for undo (pushing it shows it: ``_stack_moved``)."""
        self.undo_stack.push(command)

    def _stack_moved(self, index: int) -> None:
        undone = self.undo_stack.command(index) if index < self._index else None
        self._index = index
        self.refresh()
        select = getattr(undone, "select_after_undo", None)
        if select is not None:
            self.select_class(select)

    # -- classes -----------------------------------------------------------------------
    def new_class(self, name: str | None = None, color: str | None = None) -> ClassRecord:
        record = self.workspace.add_class(name or self.workspace.unused_name(), color)
        self._done(cmd.AddClass(self.workspace, record))
        self.select_class(record.id)
        return record

    def rename_class(self, class_id: int, name: str) -> None:
        """Raises ``ValueError`` with the reason if the name can't be used."""
        new = self.workspace.check_name(name, ignore_id=class_id)
        old = self.workspace.rename_class(class_id, new)
        if old != new:
            self._done(cmd.RenameClass(self.workspace, class_id, old, new))

    def recolor_class(self, class_id: int, color: str) -> None:
        old = self.workspace.recolor_class(class_id, color)
        if old != color:
            name = self.workspace.class_record(class_id).name
            self._done(cmd.RecolorClass(self.workspace, class_id, name, old, color))

    def move_class(self, class_id: int, delta: int) -> None:
        count = len(self.workspace.classes())
        record = self.workspace.class_record(class_id)
        new = max(0, min(record.position + delta, count - 1))
        if new == record.position:
            return
        old = self.workspace.move_class(class_id, new)
        self._done(cmd.MoveClass(self.workspace, class_id, record.name, old, new))

    def delete_class(self, class_id: int) -> None:
        snapshot = self.workspace.delete_class(class_id)
        self._done(cmd.DeleteClass(self.workspace, snapshot))

    # -- examples ----------------------------------------------------------------------
    def add_drawing(self, class_id: int, strokes: Sequence[Stroke]) -> int:
        """Add a drawing (unit-square strokes) to a class; returns the class's example count."""
        new = self.workspace.prepare_drawing(strokes, 1.0, 1.0, PEN_FRACTION)
        return self.add_examples(class_id, [new])

    def add_examples(self, class_id: int, new: Sequence[NewExample]) -> int:
        records = self.workspace.add_examples(class_id, new)
        name = self.workspace.class_record(class_id).name
        self._done(cmd.AddExamples(self.workspace, records, name))
        return self.workspace.example_count(class_id)

    def add_groups(self, groups: Sequence[tuple[str | None, list[NewExample]]], target: int) -> int:
        """Add imported examples as one undoable step. A group named ``None`` goes to class
        ``target``; a named group to the class of that name, made if needed. Returns the count."""
        by_name = {c.name.casefold(): c.id for c in self.workspace.classes()}
        macro = cmd.Macro(self.workspace, "Import")
        added = 0
        made = 0
        for name, examples in groups:
            if not examples:
                continue
            if name is None:
                if target not in {c.id for c in self.workspace.classes()}:
                    record = self.workspace.add_class(self.workspace.unused_name())
                    macro.add(cmd.AddClass(self.workspace, record))
                    target = record.id
                    made += 1
                class_id = target
            elif name.casefold() in by_name:
                class_id = by_name[name.casefold()]
            else:
                record = self.workspace.add_class(self._usable_name(name))
                macro.add(cmd.AddClass(self.workspace, record))
                by_name[name.casefold()] = class_id = record.id
                made += 1
            records = self.workspace.add_examples(class_id, examples)
            macro.add(cmd.AddExamples(self.workspace, records, self.workspace.class_record(class_id).name))
            added += len(records)
        if macro.steps:
            macro.setText(f"Import {added} Examples" + (f" into {made} New Classes" if made else ""))
            self._done(macro)
        return added

    def _usable_name(self, name: str) -> str:
        try:
            return self.workspace.check_name(name)
        except ValueError:
            return self.workspace.unused_name(name.strip()[:60] or "Class")

    def remove_examples(self, example_ids: Sequence[int]) -> None:
        if example_ids:
            records = self.workspace.remove_examples(example_ids)
            self._done(cmd.RemoveExamples(self.workspace, records))

    def move_examples(self, example_ids: Sequence[int], class_id: int) -> None:
        if not example_ids:
            return
        before = self.workspace.move_examples(example_ids, class_id)
        after = [(e.id, e.class_id, e.position) for e in (self.workspace.project.example(i) for i in example_ids)]
        self._done(cmd.MoveExamples(self.workspace, before, after, self.workspace.class_record(class_id).name))

    # -- prediction --------------------------------------------------------------------
    def predict(self, strokes: Sequence[Stroke]) -> tuple[list[ShownPrediction], bool]:
        """The top classes for a drawing, ready to show (empty if there is nothing to compare
        with), and whether it looks like none of them (the labeled folders' rule)."""
        embedding = self.embed_drawing(strokes)
        return self.predict_embedding(embedding), self.workspace.looks_like_no_class(embedding)

    def embed_drawing(self, strokes: Sequence[Stroke]) -> np.ndarray:
        """``(D,)`` embedding of the canvas's strokes (unit square, the canvas pen), as predictions use."""
        return self.workspace.embed_drawing(strokes, 1.0, 1.0, PEN_FRACTION)

    def predict_embedding(self, embedding: np.ndarray) -> list[ShownPrediction]:
        out = []
        for pred in self.workspace.classify_embedding(embedding, TOP_K):
            row = self._rows[int(pred.class_key)]  # type: ignore[call-overload]
            thumb = self.thumbnails.get(row.first_example) if row.first_example else None
            out.append(ShownPrediction(row.record.id, row.record.name, row.record.color, pred.probability, thumb))
        return out
