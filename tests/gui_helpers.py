"""Driving the real window as a person would: strokes as mouse events, keys, drops."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractItemView, QApplication, QWidget

from protoglyph.gui.canvas import DrawingCanvas

LEFT = Qt.MouseButton.LeftButton


def draw_stroke(canvas: DrawingCanvas, points: Sequence[tuple[float, float]], release: bool = True) -> None:
    """Press, move through ``points`` (unit coordinates of the sheet) and release, with QTest."""
    pos = [canvas.to_widget(x, y).toPoint() for x, y in points]
    QTest.mousePress(canvas, LEFT, Qt.KeyboardModifier.NoModifier, pos[0])
    for p in pos[1:]:
        QTest.mouseMove(canvas, p)
    if release:
        QTest.mouseRelease(canvas, LEFT, Qt.KeyboardModifier.NoModifier, pos[-1])


def draw_strokes(canvas: DrawingCanvas, strokes: Sequence[Sequence[tuple[float, float]]]) -> None:
    for stroke in strokes:
        draw_stroke(canvas, stroke)


def ring(n: int = 40, r: float = 0.32) -> list[tuple[float, float]]:
    return [(0.5 + r * math.cos(t), 0.5 + r * math.sin(t)) for t in np.linspace(0, 2 * math.pi, n)]


def cross() -> list[list[tuple[float, float]]]:
    steps = np.linspace(0, 1, 12)
    return [[(0.5, 0.15 + 0.7 * t) for t in steps], [(0.15 + 0.7 * t, 0.5) for t in steps]]


def drop_files(target: QWidget, paths: Sequence[Path], pos: QPoint | None = None) -> None:
    """A drag of local files entering ``target`` (at ``pos``, default its centre), then the drop.

    Qt delivers a drag-enter sent by hand, but a drop only during a real drag session, so the
    drop event goes straight to the widget's handler.
    """
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    where = pos if pos is not None else target.rect().center()
    enter = QDragEnterEvent(where, Qt.DropAction.CopyAction, data, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), f"{type(target).__name__} refused the drag"
    drop = QDropEvent(QPointF(where), Qt.DropAction.CopyAction, data, LEFT, Qt.KeyboardModifier.NoModifier)
    handler = target.parentWidget() if isinstance(target.parentWidget(), QAbstractItemView) else target
    handler.dropEvent(drop)  # type: ignore[attr-defined]
