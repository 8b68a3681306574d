"""One labeled folder as the window sees it: its results, the person's reviews, and teaching.

A review (confirm, assign a class, "none of these") is one undoable edit. With teaching on,
a reviewed item that has a class is added to that class as an example, using the embedding
already computed for it: the prototype moves at once, and because the controller announces
every change of the support set, :meth:`BatchSession.support_changed` re-ranks every item
against the new prototypes (only the moved prototype's column is computed again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from protoglyph.core.labeling import reviewing
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.run import choose_threshold
from protoglyph.core.labeling.states import ItemState, Review
from protoglyph.core.labeling.store import BatchStore, BatchTable
from protoglyph.core.workspace import Workspace
from protoglyph.gui.commands import Edit

if TYPE_CHECKING:
    from protoglyph.gui.controller import ProjectController

class BatchSession(QObject):
    """``updated`` is emitted whenever what the results view shows may have changed."""

    updated = Signal()
    #: What a change of the support set did to the other items, in words (for the status bar).
    announced = Signal(str)

    def __init__(self, controller: ProjectController, results: BatchResults) -> None:
        super().__init__()  # no parent: the window's runner holds the folder shown, and only it
        self.controller = controller
        table = results.table
        self.folder = table.folder
        self.results = results
        self.store = BatchStore(controller.workspace.project, table.folder)
        self.user_threshold: float | None = table.threshold
        self.default_threshold: float | None = None
        self.teach = True
        self.running = False
        controller.changed.connect(self.support_changed)
        self.support_changed()

    @property
    def table(self) -> BatchTable:
        return self.results.table

    def path(self, index: int) -> Path:
        return self.folder / self.table.paths[index]

    def class_names(self) -> dict[int, tuple[str, str]]:
        """``{class id: (name, colour)}`` of the project's classes, as the grid labels items."""
        return {c.id: (c.name, c.color) for c in self.controller.workspace.classes()}

    def close(self, successor: BatchSession | None = None) -> None:
        """Another folder (or project) is shown: let go of the embeddings (512 bytes an item with encoder 2).

        ``successor`` is the new session when the same folder is labeled again: it takes over
        the reviews made here since its results were read. Undo only touches reviews and
        examples, never the embeddings, and finds the folder by its path (``ReviewItems``).
        """
        self.controller.changed.disconnect(self.support_changed)
        if successor is not None and successor.store.folder == self.store.folder:
            successor.take_reviews(self)
        self.results.release()

    def take_reviews(self, old: BatchSession) -> None:
        """Reviews of unchanged files as the old session has them (they may be newer than what
        was read from the file when this run started)."""
        index = self.table.index()
        todo = set(self.table.todo)
        t, o = self.table, old.table
        for i, path in enumerate(o.paths):
            j = index.get(path)
            if j is not None and t.state[j] != ItemState.PENDING and j not in todo:
                t.review[j], t.person_class[j], t.example_id[j] = o.review[i], o.person_class[i], o.example_id[i]

    # -- predictions -------------------------------------------------------------------
    def support_changed(self) -> None:
        """Classes or examples changed (any edit, undo or redo): re-rank everything."""
        ws = self.controller.workspace
        before_labels, before_threshold = self.results.labels(), self.results.threshold
        keys, prototypes = ws.classifier.prototypes()
        self.results.set_prototypes([int(k) for k in keys], prototypes)  # type: ignore[call-overload]
        self.results.set_reference(ws.classifier.open_set_reference())
        self.results.classes = {c.id for c in ws.classes()}
        self.default_threshold = ws.classifier.default_threshold()
        self.results.threshold = choose_threshold(None, self.user_threshold, self.default_threshold)
        self._announce(before_labels, before_threshold)
        self.updated.emit()

    def _announce(self, before: np.ndarray, threshold: float | None) -> None:
        """Say how many items not reviewed changed label with the new prototypes and threshold."""
        after = self.results.labels()
        if len(after) != len(before):
            return
        changed = int(((after != before) & (self.results.reviews() == Review.NONE)).sum())
        if not changed:
            return
        now = self.results.threshold
        moved = (f"; the “none of these” distance moved from {threshold:.1f} to {now:.1f}"
                 if threshold is not None and now is not None and abs(now - threshold) >= 0.05 else "")
        self.announced.emit(f"{changed:,} item{'s' if changed != 1 else ''} not yet reviewed changed label{moved}.")

    def set_threshold(self, threshold: float | None, save: bool = True) -> None:
        """The person's "none of these" distance (``None``: back to the default)."""
        self.user_threshold = threshold
        self.results.threshold = choose_threshold(None, threshold, self.default_threshold)
        if save:
            self.store.set_threshold(threshold)
        self.updated.emit()

    def chunk_arrived(self, indices: np.ndarray) -> None:
        self.results.update_rows(indices)

    # -- reviewing ---------------------------------------------------------------------
    def review(self, indices: Sequence[int], kind: str, class_id: int = -1) -> int:
        """Confirm (``"confirm"``), assign to ``class_id`` (``"assign"``) or mark "none of these"
        (``"unknown"``) the items at ``indices``, as one undoable edit (the rules are the core's,
        ``labeling.reviewing.review``). Returns how many items changed."""
        change = reviewing.review(self.controller.workspace, self.store, self.results, indices, kind, class_id,
                                  self.teach)
        if change is None:
            return 0
        self.controller._done(ReviewItems(self.controller.workspace, self.folder, change, self.controller.results_of))
        return len(change.paths)


class ReviewItems(Edit):
    """Undo/redo of one review, and of the examples it taught or took away: plain values (the
    folder's path and a core ``ReviewChange``), applied to the project, and to the results the
    window shows if they are this folder's (another folder, or none, may be shown by then:
    ``results_of`` says, by the folder's path)."""

    def __init__(self, workspace: Workspace, folder: Path, change: reviewing.ReviewChange,
                 results_of: Callable[[Path], tuple[BatchStore, BatchResults] | None]) -> None:
        super().__init__(workspace, change.text)
        self.folder, self.change, self._results_of = folder, change, results_of

    def _target(self) -> tuple[BatchStore, BatchResults | None]:
        shown = self._results_of(self.folder)
        return shown if shown is not None else (BatchStore(self.workspace.project, self.folder), None)

    def apply(self) -> None:
        store, results = self._target()
        reviewing.apply_change(self.workspace, store, results, self.change)

    def revert(self) -> None:
        store, results = self._target()
        reviewing.apply_change(self.workspace, store, results, self.change, undo=True)
