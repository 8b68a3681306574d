"""Thin Qt list models over the workspace's classes and one class's examples."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from protoglyph.core.project import ClassRecord, ExampleRecord
from protoglyph.core.text import readable
from protoglyph.gui.fonts import missing_glyphs_note
from protoglyph.gui.images import ThumbnailCache

Index = QModelIndex | QPersistentModelIndex


class Role(IntEnum):
    ID = Qt.ItemDataRole.UserRole + 1
    COLOR = Qt.ItemDataRole.UserRole + 2
    COUNT = Qt.ItemDataRole.UserRole + 3


@dataclass(frozen=True)
class ClassRow:
    record: ClassRecord
    count: int
    first_example: ExampleRecord | None


class ClassListModel(QAbstractListModel):
    """One row per class: number and name, colour swatch with a thumbnail, example count."""

    def __init__(self, thumbnails: ThumbnailCache) -> None:
        super().__init__()
        self._rows: list[ClassRow] = []
        self._thumbs = thumbnails
        #: Called with (class id, new name) when a name is edited in a view; returns success.
        self.rename_handler: Callable[[int, str], bool] | None = None

    def set_rows(self, rows: list[ClassRow]) -> None:
        """Replace the rows; a plain data refresh when the classes are the same ones in the same order."""
        if [r.record.id for r in rows] == [r.record.id for r in self._rows]:
            self._rows = rows
            if rows:
                self.dataChanged.emit(self.index(0), self.index(len(rows) - 1))
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def row_of(self, class_id: int) -> int:
        for i, r in enumerate(self._rows):
            if r.record.id == class_id:
                return i
        return -1

    def class_id(self, row: int) -> int:
        return self._rows[row].record.id


    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        n = index.row() + 1
        if role == Qt.ItemDataRole.DisplayRole:
            key = f"{n}  " if n <= 9 else "    "
            plural = "example" if row.count == 1 else "examples"
            # Isolates keep the number and count out of the name's script and direction.
            return f"{key}\u2068{row.record.name}\u2069\n{row.count} {plural}"
        if role == Qt.ItemDataRole.EditRole:
            return row.record.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"<b>{html.escape(row.record.name)}</b>: {row.count} example{'s' if row.count != 1 else ''}"
            if n <= 9:
                tip += f"<br>Press {n} to add the drawing to this class."
            note = missing_glyphs_note(row.record.name)
            return f"<p style='white-space:pre-wrap'>{tip}</p><p>{html.escape(note)}</p>" if note else tip
        if role == Role.ID:
            return row.record.id
        if role == Role.COLOR:
            return QColor(row.record.color)
        if role == Role.COUNT:
            return row.count
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or self.rename_handler is None:
            return False
        return self.rename_handler(self._rows[index.row()].record.id, str(value))

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid():
            return base | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDropEnabled
        return base | Qt.ItemFlag.ItemIsDropEnabled

    def _icon(self, row: ClassRow) -> QIcon:
        size = self._thumbs.size
        pix = QPixmap(size + 8, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.fillRect(0, 0, 5, size, QColor(row.record.color))
        if row.first_example is not None:
            p.drawPixmap(8, 0, self._thumbs.get(row.first_example))
        else:
            p.fillRect(8, 0, size, size, QColor("#ffffff"))
            p.setPen(QColor("#999999"))
            p.drawText(8, 0, size, size, Qt.AlignmentFlag.AlignCenter, "empty")
        p.end()
        return QIcon(pix)


class ExampleListModel(QAbstractListModel):
    """The examples of one class, as thumbnails."""

    def __init__(self, thumbnails: ThumbnailCache) -> None:
        super().__init__()
        self._rows: list[ExampleRecord] = []
        self._thumbs = thumbnails

    def set_examples(self, records: list[ExampleRecord]) -> None:
        self.beginResetModel()
        self._rows = records
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def example_id(self, row: int) -> int:
        return self._rows[row].id

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbs.get(record)
        if role == Qt.ItemDataRole.ToolTipRole:
            damaged = ("Its stored image is damaged: it is left out of the class (delete it, or restore the "
                       "project from a copy).\n" if record.damaged else "")
            return f"{damaged}From: {readable(record.source)}\nAdded: {record.added.replace('T', ' ')}"
        if role == Role.ID:
            return record.id
        return None
