"""The live prediction panel: the most probable classes with probability bars and a thumbnail
of one of their examples, the best one large; or a sentence saying what to do."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from protoglyph.gui.wording import percent

BIG = 64
#: What the panel says of a drawing farther than the "none of these" distance from every class.
NO_CLASS = "Doesn't look like any class"
SMALL = 30
ROW_GAP = 8


@dataclass(frozen=True)
class ShownPrediction:
    class_id: int
    name: str
    color: str
    probability: float
    thumbnail: QPixmap | None


class PredictionPanel(QWidget):
    """Paints itself from plain data; ``last_painted`` (``perf_counter``) is for the latency benchmark."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(220)
        self._predictions: list[ShownPrediction] = []
        self._unknown = False
        self._message = ""
        self.last_painted = 0.0

    def sizeHint(self) -> QSize:
        return QSize(270, 380)

    # -- content -----------------------------------------------------------------------
    def predictions(self) -> list[ShownPrediction]:
        return list(self._predictions)

    def message(self) -> str:
        return self._message

    def unknown(self) -> bool:
        """Whether the drawing was found to look like none of the classes."""
        return self._unknown and bool(self._predictions)

    def show_predictions(self, predictions: list[ShownPrediction], unknown: bool = False) -> None:
        """The top classes; with ``unknown`` the drawing looks like none of them, and the nearest
        is shown only as a hint."""
        self._predictions = predictions
        self._unknown = unknown
        self._message = ""
        best = predictions[0] if predictions else None
        if best is None:
            self.setAccessibleDescription("")
        elif unknown:
            self.setAccessibleDescription(f"{NO_CLASS}; nearest: {best.name}")
        else:
            self.setAccessibleDescription(f"Best: {best.name}, {percent(best.probability)}")
        self.update()

    def show_message(self, text: str) -> None:
        self._predictions = []
        self._message = text
        self.setAccessibleDescription(text)
        self.update()

    # -- painting ----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        pal = self.palette()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window))
        area = QRectF(self.rect()).adjusted(10, 8, -10, -8)
        title = QFont(self.font())
        title.setBold(True)
        p.setFont(title)
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        p.drawText(area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, "Prediction")
        top = area.top() + p.fontMetrics().height() + 10
        if not self._predictions:
            p.setFont(self.font())
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(QRectF(area.left(), top, area.width(), area.bottom() - top),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, self._message)
        elif self._unknown:
            p.setFont(self.font())
            p.setPen(pal.color(QPalette.ColorRole.WindowText))
            line = p.fontMetrics().height()
            p.drawText(QRectF(area.left(), top, area.width(), line * 2), Qt.AlignmentFlag.AlignLeft
                       | Qt.TextFlag.TextWordWrap, f"{NO_CLASS}.")
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(QRectF(area.left(), top + 2 * line + 4, area.width(), line * 3), Qt.AlignmentFlag.AlignLeft
                       | Qt.TextFlag.TextWordWrap, f"Nearest: “{self._predictions[0].name}”. Draw it again, or add it "
                       "to a class (Enter or 1–9) to teach it.")
        else:
            self._paint_best(p, self._predictions[0], QRectF(area.left(), top, area.width(), BIG))
            y = top + BIG + 18
            for pred in self._predictions[1:]:
                self._paint_row(p, pred, QRectF(area.left(), y, area.width(), SMALL))
                y += SMALL + ROW_GAP
        p.end()
        self.last_painted = time.perf_counter()

    def _paint_best(self, p: QPainter, pred: ShownPrediction, r: QRectF) -> None:
        pal = self.palette()
        self._paint_thumb(p, pred, QRectF(r.left(), r.top(), BIG, BIG))
        text_left = r.left() + BIG + 10
        big = QFont(self.font())
        big.setPointSizeF(self.font().pointSizeF() * 1.6)
        big.setBold(True)
        p.setFont(big)
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        name_rect = QRectF(text_left, r.top(), r.right() - text_left, BIG * 0.55)
        p.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(pred.name, Qt.TextElideMode.ElideRight, int(name_rect.width())))
        bar = QRectF(text_left, r.top() + BIG * 0.62, r.right() - text_left, BIG * 0.3)
        self._paint_bar(p, pred, bar)

    def _paint_row(self, p: QPainter, pred: ShownPrediction, r: QRectF) -> None:
        pal = self.palette()
        self._paint_thumb(p, pred, QRectF(r.left(), r.top(), SMALL, SMALL))
        text_left = r.left() + SMALL + 8
        p.setFont(self.font())
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        name_rect = QRectF(text_left, r.top(), (r.right() - text_left) * 0.45, SMALL)
        p.drawText(name_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(pred.name, Qt.TextElideMode.ElideRight, int(name_rect.width())))
        bar_left = name_rect.right() + 6
        self._paint_bar(p, pred, QRectF(bar_left, r.top() + SMALL * 0.25, r.right() - bar_left, SMALL * 0.5))

    def _paint_bar(self, p: QPainter, pred: ShownPrediction, r: QRectF) -> None:
        """A bar on a visible track, the percentage beside it (never on the class colour)."""
        pal = self.palette()
        text_width = 44.0
        bar = QRectF(r.left(), r.top(), max(10.0, r.width() - text_width - 4), r.height())
        track = QColor(pal.color(QPalette.ColorRole.WindowText))
        track.setAlphaF(0.12)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(track)
        p.drawRoundedRect(bar, 3, 3)
        p.setBrush(QColor(pred.color))
        p.drawRoundedRect(QRectF(bar.left(), bar.top(), max(2.0, bar.width() * pred.probability), bar.height()), 3, 3)
        text = percent(pred.probability)
        p.setFont(self.font())
        p.setPen(pal.color(QPalette.ColorRole.WindowText))
        p.drawText(QRectF(bar.right() + 4, r.top(), text_width, r.height()),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)

    def _paint_thumb(self, p: QPainter, pred: ShownPrediction, r: QRectF) -> None:
        if pred.thumbnail is not None:
            p.drawPixmap(r.toRect(), pred.thumbnail)
        else:
            p.fillRect(r, QColor("#ffffff"))
        p.setPen(QColor(pred.color))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r.adjusted(0.5, 0.5, -0.5, -0.5))
