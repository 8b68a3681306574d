"""The thumbnail grid of a labeled folder's results, how one item is painted, and its zoom.

A ``QListView`` in a wrapping left-to-right flow with uniform item sizes lays out and paints
only what is on screen, so 100,000 items scroll as smoothly as 100. Ctrl+wheel and
Ctrl+plus/minus/0 change the thumbnail size; double-click or Space opens the item's preview.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPalette,
    QTextLayout,
    QTextOption,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from protoglyph.core.labeling.states import Status
from protoglyph.gui.item_preview import ItemPreview
from protoglyph.gui.results_model import Cell, ResultRole, ResultsModel
from protoglyph.gui.wording import percent

Index = QModelIndex | QPersistentModelIndex
#: Thumbnail sizes (px) the zoom steps through, and where Ctrl+0 goes back to.
THUMB_SIZES = (48, 64, 80, 96, 128, 160, 192, 256)
DEFAULT_THUMB = 64
SIZE_SETTING = "results/thumbnail_size"
MARGIN = 3  # around a cell's frame
PAD = 4  # inside the frame, around the thumbnail and the text
STRIP = 4  # the class colour under the thumbnail
MIN_WIDTH = 104  # names need room even beside small thumbnails
TEXT_LINES = 2
#: A badge in the corner says who labeled an item and how.
BADGES = {Status.CONFIRMED: ("✓", "#2e7d32"), Status.CORRECTED: ("✎", "#1565c0"), Status.UNKNOWN: ("?", "#757575"),
          Status.ERROR: ("!", "#c62828")}
#: Angle delta of one wheel notch; touchpads send smaller ones, summed until they make a step.
NOTCH = 120
#: Longest time the grid keeps its old picture while the items are laid out again after a
#: zoom or a refresh (the layout of 100,000 items takes about 0.2 s, see ``setBatchSize``).
FREEZE_MS = 1000


def cell_size(thumb: int, metrics: QFontMetrics) -> QSize:
    """The grid cell for ``thumb``-px thumbnails with two lines of text in ``metrics``' font."""
    width = max(MIN_WIDTH, thumb + 40)
    height = 2 * MARGIN + PAD + thumb + PAD + STRIP + 2 + TEXT_LINES * metrics.lineSpacing() + PAD
    return QSize(width, height)


def zoomed(size: int, steps: int) -> int:
    """The thumbnail size ``steps`` of :data:`THUMB_SIZES` away from ``size`` (clamped)."""
    at = min(range(len(THUMB_SIZES)), key=lambda k: abs(THUMB_SIZES[k] - size))
    return THUMB_SIZES[max(0, min(len(THUMB_SIZES) - 1, at + steps))]


def _utf16_prefix(text: str, units: int) -> str:
    """The start of ``text`` that is ``units`` UTF-16 code units long (Qt counts those)."""
    return text.encode("utf-16-le", "surrogatepass")[: 2 * units].decode("utf-16-le", "surrogatepass")


def label_lines(label: str, suffix: str, font: QFont, width: int, metrics: QFontMetrics | None = None
                ) -> tuple[str, ...]:
    """``label`` and its ``suffix`` (" 83%") on at most two lines of ``width`` px.

    Word-wrapped (inside a word only if it is longer than a line). What does not fit on the
    second line is elided in the middle, as names often differ only at the end ("Angelic
    character07"); the suffix ends the last line. ``metrics`` are ``font``'s (made if not given).
    """
    metrics = metrics or QFontMetrics(font)
    if metrics.horizontalAdvance(label + suffix) <= width:
        return (label + suffix,)
    layout = QTextLayout(label, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(option)
    layout.beginLayout()
    line = layout.createLine()
    line.setLineWidth(width)
    first = _utf16_prefix(label, line.textStart() + line.textLength())
    layout.endLayout()
    rest = label[len(first):].strip()
    room = width - metrics.horizontalAdvance(suffix)
    second = metrics.elidedText(rest, Qt.TextElideMode.ElideMiddle, room) if rest else ""
    return first.rstrip(), (second + suffix).strip()


class ResultDelegate(QStyledItemDelegate):
    """Paints one item: thumbnail, class colour, two lines of label, and the review badge."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb = DEFAULT_THUMB
        self.cell = QSize(MIN_WIDTH, 108)
        # Wrapping costs a QTextLayout; the grid shows few distinct labels (class names times
        # percentages), so the lines are kept (bounded).
        self._lines: dict[tuple[str, str, int], tuple[str, ...]] = {}

    def set_geometry(self, thumb: int, cell: QSize) -> None:
        self.thumb, self.cell = thumb, cell
        self._lines.clear()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return self.cell

    def lines(self, label: str, suffix: str, painter: QPainter, width: int) -> tuple[str, ...]:
        key = (label, suffix, width)
        shown = self._lines.get(key)
        if shown is None:
            if len(self._lines) > 4096:
                self._lines.clear()
            shown = label_lines(label, suffix, painter.font(), width, painter.fontMetrics())
            self._lines[key] = shown
        return shown

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        cell = index.data(ResultRole.CELL)
        if not isinstance(cell, Cell):
            return
        r: QRect = option.rect.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        pal: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        size = self.thumb
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pal.color(QPalette.ColorRole.Highlight) if selected else pal.color(QPalette.ColorRole.Mid))
        painter.setBrush(pal.color(QPalette.ColorRole.Highlight).lighter(170) if selected
                         else pal.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(r, 4, 4)
        thumb = QRect(r.center().x() - size // 2, r.top() + PAD, size, size)
        pixmap = cell.thumbnail
        if pixmap is not None:
            if pixmap.width() != size:  # made at the size before a zoom, until the new one is made
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(thumb, pixmap)
        else:
            painter.fillRect(thumb, pal.color(QPalette.ColorRole.AlternateBase))
        if cell.status == Status.ERROR:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(thumb, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "cannot\nbe used")
        strip = QRect(r.left() + PAD, thumb.bottom() + PAD, r.width() - 2 * PAD, STRIP)
        painter.fillRect(strip, cell.color if cell.color is not None else pal.color(QPalette.ColorRole.Mid))
        known = cell.status not in (Status.UNKNOWN, Status.ERROR)
        pct = f" {percent(cell.confidence)}" if known and cell.confidence >= 0 else ""
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        line_height = painter.fontMetrics().lineSpacing()
        width = r.width() - 2 * PAD
        top = strip.bottom() + 2
        for text in self.lines(cell.label, pct, painter, width):
            painter.drawText(QRect(r.left() + PAD, top, width, line_height), Qt.AlignmentFlag.AlignHCenter, text)
            top += line_height
        badge = BADGES.get(Status(cell.status))
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
    """``thumbnailSizeChanged(px)`` after a zoom.

    The items are laid out in batches after every refresh and zoom; until the layout reaches
    them, ``QListView`` knows no place for the later items (``visualRect`` is empty, and the
    scroll range is that of the first batch). So this view keeps its place itself: what it
    should show when the layout is done (the same rows after a refresh, the item under the
    cursor after a zoom, an item asked for with ``scrollTo``) is applied then.
    """

    thumbnailSizeChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # First: Qt calls the overrides below while the view is being set up.
        self.preview: ItemPreview | None = None
        self._wheel = 0
        self._layouts = 0  # layouts started, to tell the one after a request from the one before
        #: (row, where in its cell (0–1), viewport y of that point, after layout n): what to show
        #: when the items are laid out again.
        self._place: tuple[int, float, int, int] | None = None
        self._scroll: tuple[int, QAbstractItemView.ScrollHint] | None = None
        self._restoring = False
        self._session: object = None  # the folder whose rows are shown
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        # Lay out in batches between event-loop turns: placing 100,000 items at once freezes the
        # window for 0.2 s after every refresh (measured: 2 µs an item, Qt asking the model's
        # rowCount for each).
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.delegate = ResultDelegate(self)
        self.setItemDelegate(self.delegate)
        self.setMouseTracking(True)
        self._thaw = QTimer(self)
        self._thaw.setSingleShot(True)
        self._thaw.setInterval(FREEZE_MS)
        self._thaw.timeout.connect(lambda: self.viewport().setUpdatesEnabled(True))
        self.zoom_in_action = self._action("Zoom &In", [QKeySequence.StandardKey.ZoomIn, "Ctrl+="],
                                           lambda: self.zoom(1))
        self.zoom_out_action = self._action("Zoom &Out", [QKeySequence.StandardKey.ZoomOut], lambda: self.zoom(-1))
        self.zoom_reset_action = self._action("&Actual Size", ["Ctrl+0"], self.reset_zoom)
        self.preview_action = self._action("&Preview", ["Space"], self.toggle_preview)
        self.doubleClicked.connect(self.open_preview)
        self.thumbnail_size = DEFAULT_THUMB
        self._apply_size(self._saved_size())

    def _action(self, text: str, keys: list[QKeySequence.StandardKey | str], slot: Callable[[], object]
                ) -> QAction:
        act = QAction(text, self)
        act.setShortcuts([QKeySequence(k) for k in keys])
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def zoom_actions(self) -> list[QAction]:
        return [self.zoom_in_action, self.zoom_out_action, self.zoom_reset_action]

    def setModel(self, model: QAbstractItemModel | None) -> None:
        old = self.model()
        if isinstance(old, ResultsModel):
            old.modelAboutToBeReset.disconnect(self._keep_rows)
        super().setModel(model)
        if isinstance(model, ResultsModel):
            model.modelAboutToBeReset.connect(self._keep_rows)
            model.set_thumbnail_size(self.thumbnail_size)

    def selected_items(self) -> list[int]:
        """Table indices of the selected items, in view order."""
        rows = sorted(i.row() for i in self.selectionModel().selectedIndexes())
        model = self.model()
        return [int(model.index(r, 0).data(ResultRole.ITEM)) for r in rows]

    # -- zoom --------------------------------------------------------------------------
    def zoom(self, steps: int, at: QPoint | None = None) -> None:
        """Thumbnails ``steps`` sizes larger (smaller if negative), keeping the item at ``at``
        (viewport coordinates; by default the current item) where it is on screen."""
        self.set_thumbnail_size(zoomed(self.thumbnail_size, steps), at)

    def reset_zoom(self) -> None:
        self.set_thumbnail_size(DEFAULT_THUMB)

    def set_thumbnail_size(self, size: int, at: QPoint | None = None) -> None:
        size = zoomed(size, 0)
        if size == self.thumbnail_size:
            return
        # While an earlier zoom waits for its layout, the rows on screen are not the ones meant:
        # that zoom's anchor stays.
        anchor = self._anchor(at) if self._place is None else self._place[:3]
        shown = self.shown_rows()
        self._apply_size(size, shown)
        if anchor is not None:
            self._keep(*anchor)
        QSettings().setValue(SIZE_SETTING, size)
        self.thumbnailSizeChanged.emit(size)

    def _apply_size(self, size: int, shown: range = range(0)) -> None:
        self.thumbnail_size = size
        cell = cell_size(size, self.fontMetrics())
        self.delegate.set_geometry(size, cell)
        model = self.model()
        if isinstance(model, ResultsModel):
            model.set_thumbnail_size(size, shown)
        self.setGridSize(cell)  # the items are laid out again (batched)

    @staticmethod
    def _saved_size() -> int:
        try:
            return zoomed(int(QSettings().value(SIZE_SETTING, DEFAULT_THUMB)), 0)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return DEFAULT_THUMB

    def _anchor(self, at: QPoint | None) -> tuple[int, float, int] | None:
        """What a zoom keeps in place: ``(row, where in its cell (0–1), viewport y)``. The item
        under ``at``, else the current item if on screen, else the top row."""
        index = self.indexAt(at) if at is not None else QModelIndex()
        y = at.y() if at is not None else 0
        if not index.isValid():
            current = self.currentIndex()
            rect = self.visualRect(current) if current.isValid() else QRect()
            if rect.isValid() and rect.intersects(self.viewport().rect()):
                index, y = current, rect.center().y()
            else:
                index, y = self.indexAt(QPoint(MARGIN + 1, 1)), 0
        if not index.isValid():
            return None
        rect = self.visualRect(index)
        return index.row(), (y - rect.top()) / max(1, rect.height()), y

    def shown_rows(self) -> range:
        """The rows on screen."""
        first = self.indexAt(QPoint(MARGIN + 1, 1))
        model = self.model()
        if not first.isValid() or model is None:
            return range(0)
        bottom, row, n = self.viewport().height(), first.row(), model.rowCount()
        while row < n and self.visualRect(model.index(row, 0)).top() < bottom:
            row += 1
        return range(first.row(), row)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)
            return
        self._wheel += event.angleDelta().y()
        steps = int(self._wheel / NOTCH)  # toward zero: a half notch back and forth is no step
        if steps:
            self._wheel -= steps * NOTCH
            self.zoom(steps, event.position().toPoint())
        event.accept()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # The two lines of text need another height (not while being made: no delegate yet).
        if event.type() == QEvent.Type.FontChange and hasattr(self, "delegate"):
            self._apply_size(self.thumbnail_size)

    # -- keeping the place across a layout -----------------------------------------------
    def _keep_rows(self) -> None:
        """A refresh: show the same rows once they are laid out again (as a one-pass layout
        would), not the end of the first batch. An earlier request still waiting stands.
        Another folder starts at its top."""
        model = self.model()
        session = model.session if isinstance(model, ResultsModel) else None
        if session is not self._session:
            self._session = session
            self._place = self._scroll = None
            self.verticalScrollBar().setValue(0)
        elif self._place is None and self._scroll is None:
            first = self.indexAt(QPoint(MARGIN + 1, 1))
            if first.isValid():
                self._keep(first.row(), 0.0, self.visualRect(first).top())

    def _keep(self, row: int, fraction: float, y: int) -> None:
        self._place = (row, fraction, y, self._layouts)
        self._freeze()

    def _freeze(self) -> None:
        """Keep the old picture while the layout runs, instead of the rows of the first batch."""
        self.viewport().setUpdatesEnabled(False)
        self._thaw.start()

    def laid_out(self) -> bool:
        """Whether every item has its place (the batched layout is done)."""
        model = self.model()
        n = model.rowCount() if model is not None else 0
        return n == 0 or self.visualRect(model.index(n - 1, 0)).isValid()

    def settled(self) -> bool:
        """Laid out, and nothing waits for the layout: what the grid shows is final."""
        return self._place is None and self._scroll is None and self.laid_out()

    def scrollTo(self, index: Index, hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible
                 ) -> None:
        if self._restoring or (self._place is None and self.laid_out()):
            super().scrollTo(index, hint)
            return
        if index.isValid():
            self._scroll = (index.row(), hint)
            self._freeze()
            self._restore()

    def currentChanged(self, current: Index, previous: Index) -> None:
        # A refresh puts the current item back without scrolling (the rows stay where they
        # were); Qt's autoscroll would otherwise go to it.
        keep = self._place is not None and self._scroll is None
        auto = self.hasAutoScroll()
        if keep:
            self.setAutoScroll(False)
        super().currentChanged(current, previous)
        if keep:
            self.setAutoScroll(auto)
        if self.preview is not None and self.preview.isVisible() and current.isValid():
            self.preview.show_row(current.row())

    def doItemsLayout(self) -> None:
        self._layouts += 1
        super().doItemsLayout()

    def updateGeometries(self) -> None:
        super().updateGeometries()
        self._restore()

    def _restore(self) -> None:
        """Apply what waits for the layout, as far as the laid-out part allows."""
        if self._restoring or (self._place is None and self._scroll is None):
            return
        model = self.model()
        if model is None:
            return
        self._restoring = True
        try:
            done = self.laid_out()
            n = model.rowCount()
            bar = self.verticalScrollBar()
            if self._place is not None and self._layouts > self._place[3]:
                row, fraction, y, _ = self._place
                rect = self.visualRect(model.index(row, 0)) if row < n else QRect()
                value = bar.value() + rect.top() + round(fraction * rect.height()) - y
                if rect.isValid() and (done or value <= bar.maximum()):
                    bar.setValue(value)
                    self._place = None
                elif done:
                    self._place = None
            if self._place is None and self._scroll is not None:
                row, hint = self._scroll
                rect = self.visualRect(model.index(row, 0)) if row < n else QRect()
                if rect.isValid() and (done or bar.value() + rect.bottom() <= bar.maximum()):
                    super().scrollTo(model.index(row, 0), hint)
                    self._scroll = None
                elif done:
                    self._scroll = None
        finally:
            self._restoring = False
        if self._place is None and self._scroll is None:
            self._thaw.stop()
            self.viewport().setUpdatesEnabled(True)

    # -- preview -----------------------------------------------------------------------
    def open_preview(self, index: Index | None = None) -> None:
        """Show the preview of ``index`` (default the current item); the grid keeps the keys."""
        index = self.currentIndex() if index is None or isinstance(index, bool) else index
        model = self.model()
        if not index.isValid() or not isinstance(model, ResultsModel):
            return
        if self.preview is None:
            self.preview = ItemPreview(model, self)
        self.preview.show_row(index.row())
        if not self.preview.isVisible():
            self.preview.show()
        self.setFocus()

    def close_preview(self) -> None:
        if self.preview is not None:
            self.preview.hide()

    def toggle_preview(self) -> None:
        if self.preview is not None and self.preview.isVisible():
            self.close_preview()
        else:
            self.open_preview()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.preview is not None and self.preview.isVisible():
            self.close_preview()
            event.accept()
            return
        super().keyPressEvent(event)
