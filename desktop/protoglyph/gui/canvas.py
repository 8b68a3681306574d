"""The drawing canvas: a square sheet of paper that records pen strokes.

It keeps the stroke list (in unit coordinates of the sheet, so resizing the window never
moves a drawing), not pixels. Pen and touch input reach it as mouse events, which Qt
synthesises when a widget does not take tablet or touch events itself.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from protoglyph.core.drawing import PEN_FRACTION, Stroke, extent, is_glyph

#: While a stroke is being drawn, the drawing is classified at most this often (ms).
LIVE_INTERVAL_MS = 60
MARGIN = 10.0


class DrawingCanvas(QWidget):
    """Emits ``drawingChanged(finished)``: ``True`` after a pen-up, undo or clear, ``False``
    (throttled) while a stroke is under way."""

    drawingChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip("Draw a glyph with the mouse, a pen or a finger.\n"
                        "Esc clears; Ctrl+Z undoes the last stroke; Enter or 1–9 adds the drawing to a class.")
        self._strokes: list[Stroke] = []
        self._redo: list[Stroke] = []
        self._cleared: list[Stroke] = []  # what Esc wiped, for Undo to bring back
        self._current: list[tuple[float, float]] | None = None
        self._live = QTimer(self)
        self._live.setSingleShot(True)
        self._live.setInterval(LIVE_INTERVAL_MS)
        self._live.timeout.connect(lambda: self.drawingChanged.emit(False))

    # -- the drawing -------------------------------------------------------------------
    def strokes(self) -> list[Stroke]:
        """Finished strokes, and the one being drawn, as ``(n, 2)`` arrays in [0, 1]."""
        out = list(self._strokes)
        if self._current:
            out.append(np.array(self._current, dtype=np.float64))
        return out

    def is_empty(self) -> bool:
        return not self._strokes and not self._current

    def has_glyph(self) -> bool:
        """Whether there is something to classify (see :func:`is_glyph`: a click alone is not)."""
        return is_glyph(self.strokes())

    def can_redo_stroke(self) -> bool:
        return bool(self._redo)

    def can_undo_stroke(self) -> bool:
        """A stroke to take back, or a drawing that Esc wiped to bring back."""
        return bool(self._strokes) or bool(self._cleared)

    def set_strokes(self, strokes: list[Stroke]) -> None:
        self._strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
        self._redo.clear()
        self._cleared = []
        self._current = None
        self.update()
        self.drawingChanged.emit(True)

    def clear(self, undoable: bool = True) -> None:
        """Wipe the drawing; ``undoable`` (Esc) lets Undo bring it back, until the next stroke.
        A drawing that was just added to a class is cleared for good (its undo is the example's)."""
        if self.is_empty():
            return
        self._cleared = list(self._strokes) if undoable else []
        self._strokes.clear()
        self._redo.clear()
        self._current = None
        self.update()
        self.drawingChanged.emit(True)

    def undo_stroke(self) -> bool:
        if not self._strokes:
            if not self._cleared:
                return False
            self._strokes, self._cleared = self._cleared, []  # Esc taken back
        else:
            self._redo.append(self._strokes.pop())
        self.update()
        self.drawingChanged.emit(True)
        return True

    def redo_stroke(self) -> bool:
        if not self._redo:
            return False
        self._strokes.append(self._redo.pop())
        self.update()
        self.drawingChanged.emit(True)
        return True

    # -- geometry ----------------------------------------------------------------------
    def paper_rect(self) -> QRectF:
        """The square sheet, centred in the widget."""
        side = max(1.0, min(self.width(), self.height()) - 2 * MARGIN)
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_unit(self, pos: QPointF) -> tuple[float, float]:
        r = self.paper_rect()
        x = min(max((pos.x() - r.x()) / r.width(), 0.0), 1.0)
        y = min(max((pos.y() - r.y()) / r.height(), 0.0), 1.0)
        return x, y

    def to_widget(self, x: float, y: float) -> QPointF:
        r = self.paper_rect()
        return QPointF(r.x() + x * r.width(), r.y() + y * r.height())

    # -- input -------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._current = [self.to_unit(event.position())]
        self._redo.clear()
        self._cleared = []  # a new drawing begins: the wiped one is gone
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._current is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        point = self.to_unit(event.position())
        if point != self._current[-1]:
            self._current.append(point)
            self.update()
            if not self._live.isActive():
                self._live.start()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._current is None or event.button() != Qt.MouseButton.LeftButton:
            return
        self._current.append(self.to_unit(event.position()))
        self._strokes.append(np.array(self._current, dtype=np.float64))
        self._current = None
        self._live.stop()
        self.update()
        self.drawingChanged.emit(True)

    # -- painting ----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        pal = self.palette()
        p = QPainter(self)
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window))
        r = self.paper_rect()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
        p.setBrush(pal.color(QPalette.ColorRole.Base))
        p.drawRoundedRect(r, 6, 6)
        if self.hasFocus():
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(r.adjusted(1, 1, -1, -1), 6, 6)
        if self.is_empty():
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, "Draw here")
            return
        pen = QPen(pal.color(QPalette.ColorRole.Text), max(1.5, PEN_FRACTION * r.width()))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for stroke in self.strokes():
            if extent(stroke) == 0.0:  # a click: Qt draws nothing for a path of no length
                p.drawPoint(self.to_widget(*stroke[0]))
                continue
            path = QPainterPath(self.to_widget(*stroke[0]))
            for x, y in stroke[1:]:
                path.lineTo(self.to_widget(x, y))
            p.drawPath(path)
