"""The Qt list model over a labeled folder's results: one row per item, in review order.

Sorting and filtering are done by the core on whole arrays (:meth:`BatchResults.order`), not
by a ``QSortFilterProxyModel`` calling ``data()`` 100,000 times; this model only maps rows to
items and answers for the rows on screen.
"""

from __future__ import annotations

import html
from enum import IntEnum
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from protoglyph.core.review import FAILED, SORTS, STATUS_NAMES, UNKNOWN
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


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbnails: FileThumbnails) -> None:
        super().__init__()
        self.thumbnails = thumbnails
        thumbnails.changed.connect(self._thumbnail_ready)
        self.session: BatchSession | None = None
        self.sort = SORTS[0]
        self.label_filter: int | None = None  # class id, -1 for unknown
        self.status_filter: set[int] | None = None
        self._order = np.zeros(0, np.int64)
        self._row_of = np.zeros(0, np.int64)
        self._status = np.zeros(0, np.int8)
        self._labels = np.zeros(0, np.int64)
        self._names: dict[int, tuple[str, str]] = {}

    def set_session(self, session: BatchSession | None) -> None:
        self.session = session
        self.thumbnails.clear()
        self.refresh()

    def refresh(self) -> None:
        """Recompute the order and statuses after any change (a chunk, a review, a re-rank)."""
        s = self.session
        self.beginResetModel()
        if s is None:
            self._order = np.zeros(0, np.int64)
        else:
            r = s.results
            self._status, self._labels = r.status(), r.labels()
            self._order = r.order(self.sort, self.label_filter, self.status_filter)
            self._row_of = np.full(len(r), -1, np.int64)
            self._row_of[self._order] = np.arange(len(self._order))
            ws = s.controller.workspace
            self._names = {c.id: (c.name, c.color) for c in ws.classes()}
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
        if status == FAILED:
            name = readable(s.table.paths[i].rsplit("/", 1)[-1])  # which file: the reason is in the tooltip
        elif label < 0:
            name = "unknown"
        if role == Qt.ItemDataRole.DisplayRole or role == ResultRole.LABEL:
            return name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(i, s.path(i))
        if role == ResultRole.ITEM:
            return i
        if role == ResultRole.STATUS:
            return status
        if role == ResultRole.COLOR:
            return QColor(color) if color else None
        if role == ResultRole.CONFIDENCE:
            r = s.results
            return float(r.confidence[i]) if r.best[i] >= 0 and status != FAILED else -1.0
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(s, i, status, name)
        return None

    def _tooltip(self, s: BatchSession, i: int, status: int, name: str) -> str:
        r, t = s.results, s.table
        lines = [f"<b>{html.escape(readable(t.paths[i]))}</b>", f"{html.escape(name)} — {STATUS_NAMES[status]}"]
        if status == FAILED:
            lines.append(html.escape(readable(t.errors.get(i, ""))))
        elif r.best[i] >= 0:
            best = self._names.get(int(r.best[i]), ("?", ""))[0]
            lines.append(f"nearest class: {html.escape(best)}, {100 * r.confidence[i]:.1f}% "
                         f"(distance {r.min_distance[i]:.1f})")
            if status == UNKNOWN and not t.review[i] and r.threshold is not None:
                lines.append(f"farther than the “none of these” distance {r.threshold:.1f}")
        return "<br>".join(lines)

    def _thumbnail_ready(self, item: int) -> None:
        row = self.row_of(item)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
