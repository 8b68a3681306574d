"""The Qt list model over a labeled folder's results: one row per item, in review order.

Sorting and filtering are done by the core on whole arrays (:meth:`BatchResults.order`), not
by a ``QSortFilterProxyModel`` calling ``data()`` 100,000 times; this model only maps rows to
items and answers for the rows on screen. It also says at which size the grid wants thumbnails.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPixmap

from protoglyph.core.labeling.results import SORTS
from protoglyph.core.labeling.states import Status
from protoglyph.core.text import readable
from protoglyph.gui.batch_session import BatchSession
from protoglyph.gui.file_thumbnails import FileThumbnails

Index = QModelIndex | QPersistentModelIndex


class ResultRole(IntEnum):
    ITEM = Qt.ItemDataRole.UserRole + 1  # index into the folder's table
    STATUS = Qt.ItemDataRole.UserRole + 2  # a review.STATUS code
    COLOR = Qt.ItemDataRole.UserRole + 3  # the label's class colour, "" if none
    CONFIDENCE = Qt.ItemDataRole.UserRole + 4  # float in [0, 1], -1 if none
    LABEL = Qt.ItemDataRole.UserRole + 5  # the label's name ("unknown", "error")
    CELL = Qt.ItemDataRole.UserRole + 6  # a Cell: what the grid paints, in one call


class Cell(NamedTuple):
    """What one grid cell shows. One ``data()`` call instead of five per painted item: painting is
    what scrolling costs (see ``results_view``)."""

    label: str
    status: int
    confidence: float  # -1 if none
    color: QColor | None
    thumbnail: QPixmap | None


def _keep_spaces(text: str) -> str:
    """``text`` escaped for a rich-text tooltip, its runs of spaces kept (HTML would fold them)."""
    return f"<span style='white-space:pre-wrap'>{html.escape(text)}</span>"


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbnails: FileThumbnails) -> None:
        super().__init__()
        self.thumbnails = thumbnails
        thumbnails.changed.connect(self._thumbnail_ready)
        self.session: BatchSession | None = None
        self.sort_by = SORTS[0]
        self.label_filter: int | None = None  # class id, -1 for unknown
        self.status_filter: AbstractSet[int] | None = None
        self._order = np.zeros(0, np.int64)
        self._row_of = np.zeros(0, np.int64)
        self._status = np.zeros(0, np.int8)
        self._labels = np.zeros(0, np.int64)
        self._names: dict[int, tuple[str, str]] = {}
        #: Thumbnails at the size before a zoom, for the items that were on screen: shown scaled
        #: until each one's new thumbnail is made, so a zoom does not blank the grid. Only these
        #: few are kept, and only until the next zoom.
        self._stale: dict[int, QPixmap] = {}

    def set_session(self, session: BatchSession | None) -> None:
        self.session = session
        self.thumbnails.clear()
        self._stale.clear()
        self.refresh()

    @property
    def thumbnail_size(self) -> int:
        return int(self.thumbnails.size)

    def set_thumbnail_size(self, size: int, shown_rows: Iterable[int] = ()) -> None:
        """Make thumbnails at ``size`` px from now on. Those made at the old size are dropped
        (the cache holds one size only), except the ones of ``shown_rows``, kept until replaced."""
        if size == self.thumbnails.size:
            return
        s = self.session
        stale: dict[int, QPixmap] = {}
        if s is not None:
            for row in shown_rows:
                if 0 <= row < len(self._order):
                    i = int(self._order[row])
                    pixmap = self._thumbnail(s, i)
                    if pixmap is not None:
                        stale[i] = pixmap
        self.thumbnails.set_size(size)  # also drops queued and in-flight requests made at the old size
        self._stale = stale

    def refresh(self) -> None:
        """Recompute the order and statuses after any change (a chunk, a review, a re-rank)."""
        s = self.session
        self.beginResetModel()
        if s is None:
            self._order = np.zeros(0, np.int64)
        else:
            r = s.results
            self._status, self._labels = r.status(), r.labels()
            self._order = r.order(self.sort_by, self.label_filter, self.status_filter)
            self._row_of = np.full(len(r), -1, np.int64)
            self._row_of[self._order] = np.arange(len(self._order))
            self._names = s.class_names()
        self.endResetModel()

    def item(self, row: int) -> int:
        return int(self._order[row])

    def row_of(self, item: int) -> int:
        """The row showing ``item``, -1 if it is filtered out."""
        return int(self._row_of[item]) if 0 <= item < len(self._row_of) else -1

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._order)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        s = self.session
        if s is None or not index.isValid() or index.row() >= len(self._order):
            return None
        i = int(self._order[index.row()])
        status = int(self._status[i])
        label = int(self._labels[i])
        name, color = self._names.get(label, ("", ""))
        if status == Status.ERROR:
            name = readable(s.table.paths[i].rsplit("/", 1)[-1])  # which file: the reason is in the tooltip
        elif label < 0:
            name = "unknown"
        if role == ResultRole.CELL:
            return Cell(name, status, self._confidence(s, i, status), QColor(color) if color else None,
                        self._thumbnail(s, i))
        if role == Qt.ItemDataRole.DisplayRole or role == ResultRole.LABEL:
            return name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(s, i)
        if role == ResultRole.ITEM:
            return i
        if role == ResultRole.STATUS:
            return status
        if role == ResultRole.COLOR:
            return QColor(color) if color else None
        if role == ResultRole.CONFIDENCE:
            return self._confidence(s, i, status)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(s, i, status, name)
        return None

    def _thumbnail(self, s: BatchSession, i: int) -> QPixmap | None:
        pixmap = self.thumbnails.get(i, s.path(i))
        return pixmap if pixmap is not None else self._stale.get(i)

    @staticmethod
    def _confidence(s: BatchSession, i: int, status: int) -> float:
        r = s.results
        return float(r.confidence[i]) if r.best[i] >= 0 and status != Status.ERROR else -1.0

    def _tooltip(self, s: BatchSession, i: int, status: int, name: str) -> str:
        """The item's whole label (the grid may cut it) and its file, in the words of the grid."""
        r, t = s.results, s.table
        folder, _, file_name = readable(t.paths[i]).rpartition("/")
        where = f"<br>in {_keep_spaces(folder)}" if folder else ""
        if status == Status.ERROR:
            lines = [f"<b>{_keep_spaces(file_name)}</b>{where}", f"{Status(status).word}: "
                     f"{html.escape(readable(t.errors.get(i, '')))}"]
        else:
            lines = [f"<b>{_keep_spaces(name)}</b> — {Status(status).word}", f"{_keep_spaces(file_name)}{where}"]
        if status != Status.ERROR and r.best[i] >= 0:
            best = self._names.get(int(r.best[i]), ("?", ""))[0]
            lines.append(f"nearest class: {_keep_spaces(best)}, {100 * r.confidence[i]:.1f}% "
                         f"(distance {r.min_distance[i]:.1f})")
            if status == Status.UNKNOWN and not t.review[i] and r.threshold is not None:
                lines.append(f"farther than the “none of these” distance {r.threshold:.1f}")
        return "<br>".join(lines)

    def _thumbnail_ready(self, item: int) -> None:
        self._stale.pop(item, None)
        row = self.row_of(item)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
