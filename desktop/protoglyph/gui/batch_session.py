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
from protoglyph.core.imagefile import ImageReadError, read_image, shrink_to
from protoglyph.core.project import ExampleRecord
from protoglyph.core.review import CONFIRMED, CORRECTED, PREDICTED, UNKNOWN, BatchResults
from protoglyph.core.threshold import default_threshold
from protoglyph.core.workspace import MAX_STORED_SIDE, NewExample
from protoglyph.gui.commands import Edit

if TYPE_CHECKING:
    from protoglyph.gui.controller import ProjectController

#: What a review sets: ``(review code, person's class id, example id)`` per item.
States = tuple[np.ndarray, np.ndarray, np.ndarray]


class BatchSession(QObject):
    """``updated`` is emitted whenever what the results view shows may have changed."""

    updated = Signal()

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
        controller.changed.connect(self.support_changed)
        self.support_changed()

    @property
    def table(self) -> BatchTable:
        return self.results.table

    def path(self, index: int) -> Path:
        return self.folder / self.table.paths[index]

    def close(self) -> None:
        """Another folder (or project) is shown: let go of the embeddings (about 1 KB an item).

        Undo commands of this session's reviews may still run; they only touch the stored
        reviews, never the embeddings.
        """
        self.controller.changed.disconnect(self.support_changed)
        self.results.release()

    # -- predictions -------------------------------------------------------------------
    def support_changed(self) -> None:
        """Classes or examples changed (any edit, undo or redo): re-rank everything."""
        ws = self.controller.workspace
        keys, prototypes = ws.classifier.prototypes()
        self.results.set_prototypes([int(k) for k in keys], prototypes)  # type: ignore[call-overload]
        self.default_threshold = default_threshold(ws.support_embeddings())
        self.results.threshold = self.user_threshold if self.user_threshold is not None else self.default_threshold
        self.updated.emit()

    def set_threshold(self, threshold: float | None, save: bool = True) -> None:
        """The person's "none of these" distance (``None``: back to the default)."""
        self.user_threshold = threshold
        self.results.threshold = threshold if threshold is not None else self.default_threshold
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
        """
        t, r = self.table, self.results
        status = r.status()
        idx = np.array([i for i in indices if t.state[i] == DONE], np.int64)
        if kind == "confirm":
            idx = idx[np.isin(status[idx], [PREDICTED, UNKNOWN]) & (t.review[idx] == 0)]
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
        with self.controller.workspace.project.transaction():
            added = self._teach(idx, classes, before[2]) if self.teach else []
            examples = before[2].copy()
            for i, record in added:
                examples[i] = record.id
            after: States = (codes, classes, examples)
            self.write(idx, after)
        names = {CONFIRMED: "Confirm", CORRECTED: "Correct"}
        word = "Mark Unknown" if kind == "unknown" else names.get(int(codes[0]) if len(set(codes)) == 1 else -1,
                                                                  "Review")
        text = f"{word} {len(idx)} Item{'s' if len(idx) > 1 else ''}" + (" (Taught)" if added else "")
        self.controller._done(ReviewItems(self.controller, self, idx, before, after, [a for _, a in added], text))
        return len(idx)

    def _teach(self, idx: np.ndarray, classes: np.ndarray, examples: np.ndarray) -> list[tuple[int, ExampleRecord]]:
        """Add reviewed items with a class (and no example yet) as examples; ``(position, record)``."""
        ws = self.controller.workspace
        by_class: dict[int, list[tuple[int, NewExample]]] = {}
        for n, (i, c) in enumerate(zip(idx, classes, strict=True)):
            if c < 0 or examples[n] >= 0:
                continue
            try:
                image = read_image(self.path(int(i)))
            except ImageReadError:
                continue  # the file changed or went away since; the review still counts
            vector = self.table.embeddings[i].astype(np.float32)  # no need to embed it again
            example = NewExample(shrink_to(image, MAX_STORED_SIDE), str(self.path(int(i))), vector)
            by_class.setdefault(int(c), []).append((n, example))
        added: list[tuple[int, ExampleRecord]] = []
        for class_id, items in by_class.items():
            records = ws.add_examples(class_id, [e for _, e in items])
            added.extend((n, rec) for (n, _), rec in zip(items, records, strict=True))
        return added

    def write(self, idx: np.ndarray, states: States) -> None:
        """Set review states in memory and in the project."""
        t = self.table
        t.review[idx], t.person_class[idx], t.example_id[idx] = states
        self.store.set_reviews([t.paths[i] for i in idx], *states)


class ReviewItems(Edit):
    """Undo/redo of one review, and of the examples it taught."""

    def __init__(self, controller: ProjectController, session: BatchSession, idx: np.ndarray, before: States,
                 after: States, added: list[ExampleRecord], text: str) -> None:
        super().__init__(controller, text)
        self.session, self.idx, self.before, self.after, self.added = session, idx, before, after, added

    def apply(self) -> None:
        with self.c.workspace.project.transaction():
            if self.added:
                self.c.workspace.restore_examples(self.added)
            self.session.write(self.idx, self.after)

    def revert(self) -> None:
        with self.c.workspace.project.transaction():
            if self.added:
                self.c.workspace.remove_examples([e.id for e in self.added])
            self.session.write(self.idx, self.before)
