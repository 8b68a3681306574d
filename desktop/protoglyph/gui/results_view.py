"""The thumbnail grid of a labeled folder's results, and how one item is painted.

A ``QListView`` in a wrapping left-to-right flow with uniform item sizes lays out and paints
only what is on screen, so 100,000 items scroll as smoothly as 100.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from protoglyph.core.review import CONFIRMED, CORRECTED, FAILED, UNKNOWN
from protoglyph.gui.results_model import ResultRole

CELL = QSize(104, 108)
THUMB = 64
#: A badge in the corner says who labeled an item and how.
BADGES = {CONFIRMED: ("✓", "#2e7d32"), CORRECTED: ("✎", "#1565c0"), UNKNOWN: ("?", "#757575"), FAILED: ("!", "#c62828")}


class ResultDelegate(QStyledItemDelegate):
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        r: QRect = option.rect.adjusted(3, 3, -3, -3)  # type: ignore[attr-defined]
        pal: QPalette = option.palette  # type: ignore[attr-defined]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pal.color(QPalette.ColorRole.Highlight) if selected else pal.color(QPalette.ColorRole.Mid))
        painter.setBrush(pal.color(QPalette.ColorRole.Highlight).lighter(170) if selected
                         else pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(r, 4, 4)
        thumb = QRect(r.center().x() - THUMB // 2, r.top() + 4, THUMB, THUMB)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap):
            painter.drawPixmap(thumb, pixmap)
        else:
            painter.fillRect(thumb, pal.color(QPalette.ColorRole.AlternateBase))
        status = index.data(ResultRole.STATUS)
        if status == FAILED:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(thumb, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "cannot\nbe used")
        color = index.data(ResultRole.COLOR)
        strip = QRect(r.left() + 4, thumb.bottom() + 4, r.width() - 8, 4)
        painter.fillRect(strip, color if isinstance(color, QColor) else pal.color(QPalette.ColorRole.Mid))
        text_rect = QRect(r.left() + 4, strip.bottom() + 2, r.width() - 8, r.bottom() - strip.bottom() - 2)
        confidence = index.data(ResultRole.CONFIDENCE)
        label = str(index.data(ResultRole.LABEL) or "")
        known = status not in (UNKNOWN, FAILED)
        pct = f" {100 * confidence:.0f}%" if known and isinstance(confidence, float) and confidence >= 0 else ""
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        metrics = painter.fontMetrics()
        room = text_rect.width() - metrics.horizontalAdvance(pct)
        # The middle goes: names often differ only at the end ("Angelic character07").
        shown = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, room)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, shown + pct)
        badge = BADGES.get(int(status)) if status is not None else None
        if badge is not None:
            mark, tint = badge
            circle = QRect(r.right() - 20, r.top() + 3, 17, 17)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(tint))
            painter.drawEllipse(circle)
            painter.setPen(QColor("white"))
            painter.drawText(circle, Qt.AlignmentFlag.AlignCenter, mark)
        painter.restore()


class ResultsView(QListView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        # Lay out in batches between event-loop turns: placing 100,000 items at once would
        # freeze the window for tens of milliseconds after every refresh.
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(CELL)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setItemDelegate(ResultDelegate(self))
        self.setMouseTracking(True)

    def selected_items(self) -> list[int]:
        """Table indices of the selected items, in view order."""
        rows = sorted(i.row() for i in self.selectionModel().selectedIndexes())
        model = self.model()
        return [int(model.index(r, 0).data(ResultRole.ITEM)) for r in rows]
