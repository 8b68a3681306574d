"""One labeled folder as the window sees it: its results, the person's reviews, and teaching.

A review (confirm, assign a class, "none of these") is one undoable edit. With teaching on,
a reviewed item that has a class is added to that class as an example, using the embedding
already computed for it: the prototype moves at once, and because the controller announces
every change of the support set, :meth:`BatchSession.support_changed` re-ranks every item
against the new prototypes (only the moved prototype's column is computed again).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from protoglyph.core.batch_store import DONE, BatchStore, BatchTable
from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.labeling.run import choose_threshold
from protoglyph.core.project import ExampleRecord
from protoglyph.core.review import CONFIRMED, CORRECTED, PREDICTED, UNKNOWN, BatchResults
from protoglyph.core.workspace import NewExample
from protoglyph.gui.commands import Edit

if TYPE_CHECKING:
    from protoglyph.gui.controller import ProjectController

#: What a review sets: ``(review code, person's class id, example id)`` per item.
States = tuple[np.ndarray, np.ndarray, np.ndarray]


class BatchSession(QObject):
    """``updated`` is emitted whenever what the results view shows may have changed."""

    updated = Signal()
    #: What a change of the support set did to the other items, in words (for the status bar).
    announced = Signal(str)

    def __init__(self, controller: ProjectController, results: BatchResults) -> None:
        super().__init__(controller)
        self.controller = controller
        table = results.table
        self.folder = table.folder
        self.results = results
        self.store = BatchStore(controller.workspace.project, table.folder)
        self.user_threshold: float | None = table.threshold
        self.default_threshold: float | None = None
        self.teach = True
        self.running = False
        self.successor: BatchSession | None = None
        self._index: dict[str, int] | None = None
        controller.changed.connect(self.support_changed)
        self.support_changed()

    @property
    def table(self) -> BatchTable:
        return self.results.table

    def path(self, index: int) -> Path:
        return self.folder / self.table.paths[index]

    def close(self, successor: BatchSession | None = None) -> None:
        """Another folder (or project) is shown: let go of the embeddings (about 1 KB an item).

        ``successor`` is the new session when the same folder is labeled again: it takes over
        the reviews made here since its results were read, and undo of this session's reviews
        goes to it. Undo only touches reviews and examples, never the embeddings.
        """
        self.controller.changed.disconnect(self.support_changed)
        if successor is not None and successor.store.folder == self.store.folder:
            successor.take_reviews(self)
            self.successor = successor
        self.results.release()

    def current(self) -> BatchSession:
        """The session that now shows this folder (itself, or the one that labeled it again)."""
        session = self
        while session.successor is not None:
            session = session.successor
        return session

    def take_reviews(self, old: BatchSession) -> None:
        """Reviews of unchanged files as the old session has them (they may be newer than what
        was read from the file when this run started)."""
        index = self.index()
        todo = set(self.table.todo)
        t, o = self.table, old.table
        for i, path in enumerate(o.paths):
            j = index.get(path)
            if j is not None and t.state[j] != 0 and j not in todo:
                t.review[j], t.person_class[j], t.example_id[j] = o.review[i], o.person_class[i], o.example_id[i]

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.table.paths)}
        return self._index

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
        changed = int(((after != before) & (self.results.reviews() == 0)).sum())
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
        """Review items: ``kind`` is "confirm", "assign" (to ``class_id``) or "unknown".

        Returns how many items changed. Confirming keeps the predicted class (or "unknown" for
        an item the threshold rejected); items that are errors or still waiting are skipped.
        An item that taught an example and now gets another class (or none) takes its example
        away from the old class; with teaching on, it teaches the new one.
        """
        t, r = self.table, self.results
        status = r.status()
        idx = np.array([i for i in indices if t.state[i] == DONE], np.int64)
        if kind == "confirm":
            idx = idx[np.isin(status[idx], [PREDICTED, UNKNOWN]) & (r.reviews()[idx] == 0)]
        if not len(idx):
            return 0
        before: States = (t.review[idx].copy(), t.person_class[idx].copy(), t.example_id[idx].copy())
        if kind == "unknown":
            classes = np.full(len(idx), -1, np.int64)
        elif kind == "assign":
            classes = np.full(len(idx), class_id, np.int64)
        else:
            classes = np.where(status[idx] == PREDICTED, r.best[idx], -1)
        codes = np.where(classes < 0, 3, np.where(classes == r.best[idx], 1, 2)).astype(np.int8)
        ws = self.controller.workspace
        examples = before[2].copy()
        stale = []  # examples taught earlier that now belong elsewhere
        for n, i in enumerate(idx):
            record = self._taught(int(i))
            if record is None:
                examples[n] = -1
            elif record.class_id != classes[n]:
                stale.append(record.id)
                examples[n] = -1
        new = self._examples_to_teach(idx, classes, examples) if self.teach else {}
        with ws.project.transaction():  # the files are read above, outside the write lock
            removed = ws.remove_examples(stale) if stale else []
            added: list[ExampleRecord] = []
            for c, items in new.items():
                records = ws.add_examples(c, [e for _, e in items])
                for (n, _), record in zip(items, records, strict=True):
                    examples[n] = record.id
                added += records
            after: States = (codes, classes, examples)
            self.write([t.paths[i] for i in idx], after)
        names = {CONFIRMED: "Confirm", CORRECTED: "Correct"}
        word = "Mark Unknown" if kind == "unknown" else names.get(int(codes[0]) if len(set(codes)) == 1 else -1,
                                                                  "Review")
        text = f"{word} {len(idx)} Item{'s' if len(idx) > 1 else ''}" + (" (Taught)" if added else "")
        paths = [t.paths[i] for i in idx]
        self.controller._done(ReviewItems(self.controller, self, paths, before, after, removed, added, text))
        return len(idx)

    def _taught(self, i: int) -> ExampleRecord | None:
        """The example item ``i`` taught, if it is still there and still this file's."""
        example_id = int(self.table.example_id[i])
        if example_id < 0:
            return None
        try:
            record = self.controller.workspace.project.example(example_id)
        except KeyError:
            return None
        return record if record.source == str(self.path(i)) else None

    def _examples_to_teach(self, idx: np.ndarray, classes: np.ndarray,
                           examples: np.ndarray) -> dict[int, list[tuple[int, NewExample]]]:
        """New examples for reviewed items with a class and no example yet, by class."""
        by_class: dict[int, list[tuple[int, NewExample]]] = {}
        for n, (i, c) in enumerate(zip(idx, classes, strict=True)):
            if c < 0 or examples[n] >= 0:
                continue
            try:
                image = read_image(self.path(int(i)))
            except ImageReadError:
                continue  # the file changed or went away since; the review still counts
            vector = self.table.embeddings[i][None]  # no need to embed it again
            example = self.controller.workspace.prepare([image], [str(self.path(int(i)))], embeddings=vector)[0]
            by_class.setdefault(int(c), []).append((n, example))
        return by_class

    def write(self, paths: Sequence[str], states: States) -> None:
        """Set the review states of ``paths`` in memory (where shown) and in the project."""
        index = self.index()
        rows = [index.get(p, -1) for p in paths]
        shown = np.array([n for n, i in enumerate(rows) if i >= 0], np.int64)
        if len(shown):
            at = np.array([rows[n] for n in shown], np.int64)
            t = self.table
            t.review[at], t.person_class[at], t.example_id[at] = (s[shown] for s in states)
            self.results.refresh_share()  # what the person said counts in the folder's share of unknowns
        self.store.set_reviews(paths, *states)


class ReviewItems(Edit):
    """Undo/redo of one review, and of the examples it taught or took away."""

    def __init__(self, controller: ProjectController, session: BatchSession, paths: list[str], before: States,
                 after: States, removed: list[ExampleRecord], added: list[ExampleRecord], text: str) -> None:
        super().__init__(controller, text)
        self.session, self.paths, self.before, self.after = session, paths, before, after
        self.removed, self.added = removed, added

    def apply(self) -> None:
        ws = self.c.workspace
        with ws.project.transaction():
            if self.removed:
                ws.remove_examples([e.id for e in self.removed])
            if self.added:
                ws.restore_examples(self.added)
            self.session.current().write(self.paths, self.after)

    def revert(self) -> None:
        ws = self.c.workspace
        with ws.project.transaction():
            if self.added:
                ws.remove_examples([e.id for e in self.added])
            if self.removed:
                ws.restore_examples(self.removed)
            self.session.current().write(self.paths, self.before)
