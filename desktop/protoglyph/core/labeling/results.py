"""Labeling a folder, part 3: predictions for every item, kept current as the person reviews.

:class:`BatchResults` holds a folder's :class:`BatchTable` and the distance of every item to
every class prototype. When the support set changes (a corrected item is added as an
example, a class is renamed into another, an example removed), only the columns of the
prototypes that moved are computed again: one float16-to-float32 matrix-vector product per
changed class, about 0.1 s for 100,000 items. Labels, confidences, statuses and the review
order then follow from that matrix with a few vector operations. Nothing here knows Qt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protoglyph.core import unknown_share
from protoglyph.core.classifier import Calibration, nearest_probability, squared_distances
from protoglyph.core.export.tables import ResultRow
from protoglyph.core.labeling.states import ItemState, Review, Status
from protoglyph.core.labeling.store import BatchTable
from protoglyph.core.threshold import OpenSetReference, beyond

#: Sort orders of the review list.
SORTS = ("least certain first", "most certain first", "file name", "class")
_ROWS = 8192  # items per block when computing distances (bounds the float32 scratch memory)
# float16 in, float32 out; OpenCV's stubs type this overload differently from one release to the next
_cv_multiply: Any = cv2.multiply
#: While a folder is labeled: estimate its share of unknowns again once the items grew by this
#: share, and show every item at a new estimate once it moved by this much in log-odds.
SHARE_GROWTH = 0.05
SHARE_STEP = 0.02


def distances_to(embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Squared distances of float16 ``(N, D)`` embeddings to float32 ``(C, D)`` prototypes, blockwise.

    ``classifier.squared_distances`` block by block, with the prototypes' squared norms computed
    once, so that each block's scratch is freed at once (the whole matrix at a time raised the
    window's peak memory by 25 MB when labeling 100,000 images).
    """
    out = np.empty((len(embeddings), len(prototypes)), np.float32)
    p = np.ascontiguousarray(prototypes, np.float64)
    p_sq = (p * p).sum(1)
    for start in range(0, len(embeddings), _ROWS):
        block = embeddings[start : start + _ROWS]
        # OpenCV converts float16 several times faster than numpy does.
        q = np.asarray(_cv_multiply(block, 1.0, dtype=cv2.CV_32F)).reshape(block.shape)
        # exact: the same numbers for an item whether it came from the project or from a chunk
        out[start : start + len(block)] = squared_distances(q, p, p_sq, exact=True)
    return out


class BatchResults:
    """A labeled folder's items with their current predictions.

    Args:
        table: the folder's items (it is updated in place as chunks arrive).
        temperature: the model's softmax temperature, for confidences.
        calibration: if given (``Calibration.from_model(session.info)``), confidences are
            calibrated probabilities of the nearest class: its temperature replaces
            ``temperature``, and once :meth:`set_reference` has given the support set's
            :class:`OpenSetReference`, its open-set term lowers them for items far from
            every prototype.
        folder_share: with an open-set term, estimate the share of items of no class from
            the folder itself (``unknown_share``; the term alone assumes one half) and show
            confidences at that share; ``False``: at one half, as on the canvas.
    """

    def __init__(self, table: BatchTable, temperature: float, calibration: Calibration | None = None,
                 folder_share: bool = True) -> None:
        self.table = table
        self.temperature = temperature
        self.calibration = calibration
        self.folder_share = folder_share
        #: The estimated share of the folder's items that are of none of the classes (``None``
        #: without an open-set term, before any item or with ``folder_share`` off).
        self.unknown_share: float | None = None
        #: The support set's default threshold and mean inverse shots, for the open-set term.
        self.reference: OpenSetReference | None = None
        self.keys: list[int] = []
        self._protos = np.zeros((0, table.embeddings.shape[1]), np.float32)
        self.distances = np.zeros((len(table), 0), np.float32)
        self.threshold: float | None = table.threshold
        self.best = np.full(len(table), -1, np.int64)  # class id of the nearest prototype, -1 if none
        self.confidence = np.zeros(len(table), np.float32)
        self.min_distance = np.full(len(table), np.inf, np.float32)
        # Per item: the softmax probability of the nearest class and the open-set term's
        # log-odds of "unknown" at one half (NaN where there is none), from which the
        # confidences follow at any share without the distances.
        self._nearest = np.zeros(len(table), np.float32)
        self._log_odds = np.full(len(table), np.nan, np.float32)
        self._counted = 0  # items the shown share was estimated from
        #: Ids of the classes that exist (``None``: any). A review naming a class that was
        #: deleted counts as not reviewed (undoing the deletion brings it back).
        self.classes: set[int] | None = None

    def __len__(self) -> int:
        return len(self.table)

    def release(self) -> None:
        """Free the embeddings and distances (the folder is no longer shown); reviews stay usable."""
        self.table.embeddings = np.zeros((0, self.table.embeddings.shape[1]), np.float16)
        self.distances = np.zeros((0, 0), np.float32)
        self.keys = []

    # -- predictions -------------------------------------------------------------------
    def set_prototypes(self, keys: Sequence[int], prototypes: np.ndarray) -> None:
        """Take the classifier's current prototypes; recompute only the columns that changed."""
        keys = [int(k) for k in keys]
        if keys == self.keys and np.array_equal(self._protos, prototypes):
            return  # nothing moved (an edit of names or colours, or the window taking the results in)
        old = {k: i for i, k in enumerate(self.keys)}
        columns = np.empty((len(self), len(keys)), np.float32)
        changed = []
        for j, k in enumerate(keys):
            i = old.get(k)
            if i is not None and np.array_equal(self._protos[i], prototypes[j]):
                columns[:, j] = self.distances[:, i]
            else:
                changed.append(j)
        if changed:
            columns[:, changed] = distances_to(self.table.embeddings, prototypes[changed])
        self.keys, self._protos, self.distances = keys, np.array(prototypes, np.float32), columns
        self._predict(np.arange(len(self)), exact=True)

    def update_rows(self, indices: np.ndarray, embeddings: np.ndarray | None = None) -> None:
        """Items that just arrived (a finished chunk): their distances and predictions.

        ``embeddings`` are theirs when the table does not keep them (see ``BatchTable.apply``).
        """
        if len(self.keys) and len(indices):
            vectors = self.table.embeddings[indices] if embeddings is None else embeddings
            self.distances[indices] = distances_to(vectors, self._protos)
        self._predict(indices)

    def set_reference(self, reference: OpenSetReference | None) -> None:
        """The support set's :class:`OpenSetReference` (``threshold.open_set_reference`` of the
        examples, or ``FewShotClassifier.open_set_reference()``); confidences follow at once.

        It is the *default* threshold's, whatever threshold the person set: the calibration was
        fitted against it, and a probability should not change with a display setting.
        """
        if reference != self.reference:
            self.reference = reference
            self._predict(np.arange(len(self)), exact=True)

    def _predict(self, rows: np.ndarray, exact: bool = False) -> None:
        rows = rows[self.table.state[rows] == ItemState.DONE]  # waiting and failed items have nothing to compare
        if not self.keys or not len(rows):
            self.best[rows], self.confidence[rows], self.min_distance[rows] = -1, 0.0, np.inf
            self._nearest[rows], self._log_odds[rows] = 0.0, np.nan
            self._show_confidence(rows, exact)
            return
        d = self.distances[rows]
        nearest = d.argmin(1)
        d_min = d[np.arange(len(rows)), nearest]
        calibration = self.calibration
        temperature = self.temperature if calibration is None else calibration.temperature
        self.best[rows] = np.asarray(self.keys, np.int64)[nearest]
        self._nearest[rows] = nearest_probability(d, temperature)
        if calibration is None or calibration.open_set is None or self.reference is None:
            self._log_odds[rows] = np.nan
        else:
            self._log_odds[rows] = calibration.open_set.log_odds(d, self.reference)
        self.min_distance[rows] = d_min
        self._show_confidence(rows, exact)

    def refresh_share(self) -> None:
        """Estimate the folder's share of unknowns exactly, from every item (after reviews, and
        when labeling ends), and show every confidence at it."""
        self._show_confidence(np.zeros(0, np.int64), exact=True)

    def _show_confidence(self, rows: np.ndarray, exact: bool = False) -> None:
        """Confidences of ``rows``: the nearest class's softmax probability times the probability
        that the item is of a class, at the folder's estimated share of unknowns.

        While chunks arrive the share is estimated again only when the items grew by
        :data:`SHARE_GROWTH`, and every item is recomputed only when it moved by more than
        :data:`SHARE_STEP` in log-odds (the rest of the time only the new rows are, at the share
        shown): labeling 100,000 items then costs the window a few milliseconds per chunk, not
        an estimate and a pass over everything. ``exact`` (:meth:`refresh_share`) always
        estimates from every item and recomputes everything at that very share, so the same
        items give the same confidences whatever order they arrived in.
        """
        z = self._log_odds
        has_term = np.isfinite(z) & (self.table.state == ItemState.DONE)
        counted = int(has_term.sum())
        if not self.folder_share or not counted:
            new_share: float | None = None
        elif exact or self.unknown_share is None or counted >= self._counted * (1.0 + SHARE_GROWTH):
            review = self.reviews()
            open_ = has_term & (review == Review.NONE)
            said_known = int(((review == Review.CONFIRMED) | (review == Review.CORRECTED)).sum())
            new_share = unknown_share.estimate(z[open_], said_known, int((review == Review.UNKNOWN).sum()))
            self._counted = counted
        else:
            new_share = self.unknown_share
        if new_share != self.unknown_share and (
                exact or new_share is None or self.unknown_share is None
                or abs(unknown_share.shift(new_share) - unknown_share.shift(self.unknown_share)) > SHARE_STEP):
            self.unknown_share = new_share
            rows = np.flatnonzero(self.table.state == ItemState.DONE)
        share = 0.5 if self.unknown_share is None else self.unknown_share
        known = np.ones(len(rows))
        term = has_term[rows]
        known[term] = 1.0 - unknown_share.unknown_probability(z[rows[term]], share)
        self.confidence[rows] = self._nearest[rows] * known

    # -- what the person sees ----------------------------------------------------------
    def reviews(self) -> np.ndarray:
        """``(N,)`` :class:`Review` codes that stand: those naming a deleted class read as ``Review.NONE``."""
        t = self.table
        if self.classes is None:
            return t.review
        # usually few: look only at those
        named = np.flatnonzero((t.review == Review.CONFIRMED) | (t.review == Review.CORRECTED))
        gone = named[~np.isin(t.person_class[named], list(self.classes))]
        if not len(gone):
            return t.review
        out = t.review.copy()
        out[gone] = Review.NONE
        return out

    def status(self) -> np.ndarray:
        """``(N,)`` int8 status of every item (PREDICTED, CONFIRMED, ...)."""
        t = self.table
        review = self.reviews()
        out = np.full(len(self), Status.PREDICTED, np.int8)
        if self.threshold is not None:
            out[beyond(self.min_distance, self.threshold)] = Status.UNKNOWN
        out[self.best < 0] = Status.UNKNOWN
        out[review == Review.CONFIRMED] = Status.CONFIRMED
        out[review == Review.CORRECTED] = Status.CORRECTED
        out[review == Review.UNKNOWN] = Status.UNKNOWN
        out[t.state == ItemState.ERROR] = Status.ERROR
        out[t.state == ItemState.PENDING] = Status.WAITING
        return out

    def labels(self) -> np.ndarray:
        """``(N,)`` class id of every item's label, -1 for unknown, errors and waiting items."""
        status = self.status()
        out = np.where(status == Status.PREDICTED, self.best, -1)
        reviewed = (status == Status.CONFIRMED) | (status == Status.CORRECTED)
        out[reviewed] = self.table.person_class[reviewed]
        return out

    def rejected(self, threshold: float) -> int:
        """How many predicted (not reviewed) items a threshold would call unknown."""
        open_items = (self.table.state == ItemState.DONE) & (self.reviews() == Review.NONE) & (self.best >= 0)
        return int(beyond(self.min_distance[open_items], threshold).sum())

    def order(self, sort: str = SORTS[0], label: int | None = None,
              statuses: AbstractSet[int] | None = None) -> np.ndarray:
        """Item indices to show, in review order.

        ``least certain first`` is the review queue: items still to review (predicted or
        unknown by the threshold), least confident first; then reviewed ones; errors last.
        ``label`` keeps items labeled with that class id (-1: the unknown ones, not errors);
        ``statuses`` keeps those.
        """
        status = self.status()
        keep = status != Status.WAITING
        if statuses is not None:
            keep &= np.isin(status, list(statuses))
        if label is not None:
            keep &= self.labels() == label
            if label < 0:  # "unknown": not the files that could not be read, which have no label either
                keep &= status == Status.UNKNOWN
        idx = np.flatnonzero(keep)
        conf = self.confidence[idx]
        open_ = (self.reviews()[idx] == Review.NONE).astype(np.int8)
        failed = (status[idx] == Status.ERROR).astype(np.int8)
        if sort == "least certain first":
            ranks = np.lexsort((idx, conf, 1 - open_, failed))
        elif sort == "most certain first":
            ranks = np.lexsort((idx, -conf, failed))
        elif sort == "class":
            ranks = np.lexsort((idx, -conf, self.labels()[idx]))
        else:  # file name: the table is in path order already
            ranks = np.arange(len(idx))
        return idx[ranks]


def result_rows(results: BatchResults, names: Mapping[int, str]) -> list[ResultRow]:
    """One export row per item (waiting items left out), in path order."""
    t = results.table
    status, labels, review = results.status(), results.labels(), results.reviews()
    rows = []
    for i, path in enumerate(t.paths):
        s = int(status[i])
        if s == Status.WAITING:
            continue
        label = names.get(int(labels[i])) if labels[i] >= 0 else None
        confidence = None if s == Status.ERROR or results.best[i] < 0 else float(results.confidence[i])
        if s in (Status.CONFIRMED, Status.CORRECTED) and labels[i] != results.best[i]:
            confidence = None  # the person's label, not the model's
        rows.append(ResultRow(path, label, confidence, Status(s).word, bool(review[i]), t.errors.get(i, "")))
    return rows


def folder_export_items(results: BatchResults, names: Mapping[int, str], reviewed_only: bool = False,
                        with_unknown: bool = False) -> list[tuple[Path, str | None]]:
    """``(file, class name)`` of the items a folder-per-class export takes: labeled items (only
    those a person reviewed, if asked) and, if asked, unknown ones with the class name ``None``,
    which no class can have (the export puts them in "unknown", apart from a class of that name)."""
    t = results.table
    status, labels, review = results.status(), results.labels(), results.reviews()
    wanted = ((Status.CONFIRMED, Status.CORRECTED) if reviewed_only
              else (Status.CONFIRMED, Status.CORRECTED, Status.PREDICTED))
    items: list[tuple[Path, str | None]] = []
    for i, path in enumerate(t.paths):
        s = int(status[i])
        name = names.get(int(labels[i]))
        if s in wanted and name is not None:
            items.append((t.folder / path, name))
        elif with_unknown and s == Status.UNKNOWN and (review[i] or not reviewed_only):
            items.append((t.folder / path, None))
    return items
