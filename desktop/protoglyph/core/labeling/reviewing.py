"""Reviewing a labeled folder's items, and teaching the classes from them: the rules, without Qt.

A review says of some items "the prediction is right" (confirm), "this class" (assign) or "none
of these" (unknown). Which items a review takes, what code each gets, which examples it teaches
or takes away, and how it is stored (one transaction: the examples and the reviews together)
live here; the window wraps one :class:`ReviewChange` in one undo step and re-ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.states import ItemState, Review, Status
from protoglyph.core.labeling.store import BatchStore
from protoglyph.core.project import ExampleRecord
from protoglyph.core.workspace import NewExample, Workspace

#: What a review sets: ``(review code, person's class id, example id)`` per item.
States = tuple[np.ndarray, np.ndarray, np.ndarray]
#: The kinds of review.
KINDS = ("confirm", "assign", "unknown")


@dataclass(frozen=True)
class ReviewChange:
    """One review as it was stored: plain values, enough to undo and redo it.

    Attributes:
        paths: the items' paths, relative to the folder.
        before, after: their :data:`States` before and after.
        removed: examples the review took away (taught earlier by an item that now has another class).
        added: examples it taught.
        text: the undo step's name ("Confirm 3 Items (Taught)").
    """

    paths: list[str]
    before: States
    after: States
    removed: list[ExampleRecord]
    added: list[ExampleRecord]
    text: str


def review(workspace: Workspace, store: BatchStore, results: BatchResults, indices: Sequence[int], kind: str,
           class_id: int = -1, teach: bool = True) -> ReviewChange | None:
    """Review items of ``results`` and store it; ``None`` when no item qualifies.

    Confirming keeps the predicted class (or "unknown" for an item the threshold rejected) and
    skips items already reviewed; items that are errors or still waiting are always skipped.
    An item that taught an example and now gets another class (or none) takes its example away
    from the old class; with ``teach``, an item with a class and no example teaches it one, from
    the embedding already computed for it (no image is embedded again).
    """
    if kind not in KINDS:
        raise ValueError(f"no review {kind!r}; the reviews are {', '.join(KINDS)}")
    t = results.table
    status = results.status()
    idx = np.array([i for i in indices if t.state[i] == ItemState.DONE], np.int64)
    if kind == "confirm":
        idx = idx[np.isin(status[idx], [Status.PREDICTED, Status.UNKNOWN]) & (results.reviews()[idx] == Review.NONE)]
    if not len(idx):
        return None
    before: States = (t.review[idx].copy(), t.person_class[idx].copy(), t.example_id[idx].copy())
    if kind == "unknown":
        classes = np.full(len(idx), -1, np.int64)
    elif kind == "assign":
        classes = np.full(len(idx), class_id, np.int64)
    else:
        classes = np.where(status[idx] == Status.PREDICTED, results.best[idx], -1)
    codes = np.where(classes < 0, Review.UNKNOWN,
                     np.where(classes == results.best[idx], Review.CONFIRMED, Review.CORRECTED)).astype(np.int8)
    examples = before[2].copy()
    stale = []  # examples taught earlier that now belong elsewhere
    for n, i in enumerate(idx):
        record = taught_example(workspace, results, int(i))
        if record is None:
            examples[n] = -1
        elif record.class_id != classes[n]:
            stale.append(record.id)
            examples[n] = -1
    new = _examples_to_teach(workspace, results, idx, classes, examples) if teach else {}
    paths = [t.paths[i] for i in idx]
    with workspace.project.transaction():  # the files are read above, outside the write lock
        removed = workspace.remove_examples(stale) if stale else []
        added: list[ExampleRecord] = []
        for c, items in new.items():
            records = workspace.add_examples(c, [e for _, e in items])
            for (n, _), record in zip(items, records, strict=True):
                examples[n] = record.id
            added += records
        after: States = (codes, classes, examples)
        write_reviews(results, store, paths, after)
    return ReviewChange(paths, before, after, removed, added, _step_name(kind, codes, len(idx), bool(added)))


def write_reviews(results: BatchResults | None, store: BatchStore, paths: Sequence[str], states: States) -> None:
    """Set the review states of ``paths`` in the project and, where ``results`` show them, in memory."""
    if results is not None:
        index = results.table.index()
        rows = [index.get(p, -1) for p in paths]
        shown = np.array([n for n, i in enumerate(rows) if i >= 0], np.int64)
        if len(shown):
            at = np.array([rows[n] for n in shown], np.int64)
            t = results.table
            t.review[at], t.person_class[at], t.example_id[at] = (s[shown] for s in states)
            results.refresh_share()  # what the person said counts in the folder's share of unknowns
    store.set_reviews(list(paths), *states)


def apply_change(workspace: Workspace, store: BatchStore, results: BatchResults | None, change: ReviewChange,
                 undo: bool = False) -> None:
    """Redo (or, with ``undo``, undo) a stored review: its examples and its reviews, in one transaction."""
    gone, back = (change.added, change.removed) if undo else (change.removed, change.added)
    with workspace.project.transaction():
        if gone:
            workspace.remove_examples([e.id for e in gone])
        if back:
            workspace.restore_examples(back)
        write_reviews(results, store, change.paths, change.before if undo else change.after)


def taught_example(workspace: Workspace, results: BatchResults, i: int) -> ExampleRecord | None:
    """The example item ``i`` taught, if it is still there and still this file's."""
    example_id = int(results.table.example_id[i])
    if example_id < 0:
        return None
    try:
        record = workspace.project.example(example_id)
    except KeyError:
        return None
    return record if record.source == str(_path(results, i)) else None


def _examples_to_teach(workspace: Workspace, results: BatchResults, idx: np.ndarray, classes: np.ndarray,
                       examples: np.ndarray) -> dict[int, list[tuple[int, NewExample]]]:
    """New examples for reviewed items with a class and no example yet, by class."""
    by_class: dict[int, list[tuple[int, NewExample]]] = {}
    for n, (i, c) in enumerate(zip(idx, classes, strict=True)):
        if c < 0 or examples[n] >= 0:
            continue
        path = _path(results, int(i))
        try:
            image = read_image(path)
        except ImageReadError:
            continue  # the file changed or went away since; the review still counts
        vector = results.table.embeddings[i][None]  # no need to embed it again
        by_class.setdefault(int(c), []).append((n, workspace.prepare([image], [str(path)], embeddings=vector)[0]))
    return by_class


def _path(results: BatchResults, i: int) -> Path:
    return results.table.folder / results.table.paths[i]


def _step_name(kind: str, codes: np.ndarray, count: int, taught: bool) -> str:
    names = {int(Review.CONFIRMED): "Confirm", int(Review.CORRECTED): "Correct"}
    same = int(codes[0]) if len(set(codes.tolist())) == 1 else -1
    word = "Mark Unknown" if kind == "unknown" else names.get(same, "Review")
    return f"{word} {count} Item{'s' if count > 1 else ''}" + (" (Taught)" if taught else "")
