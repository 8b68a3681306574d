"""The Qt binding keeps Python's reference counts straight.

PySide6 6.12.0 on CPython 3.11 returned ``None`` from every void method without a new reference;
each call took one reference from ``None``, and a running app died with "deallocating None"
after some minutes of painting. pyproject.toml excludes it; this test catches any build like it.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainter, QPixmap


def test_void_methods_do_not_steal_references_to_none(qapp: object) -> None:
    pixmap = QPixmap(16, 16)
    painter = QPainter(pixmap)
    before = sys.getrefcount(None)
    for _ in range(1000):
        painter.setBrush(QColor("#123456"))
        painter.drawRect(QRectF(0, 0, 4, 4))
    after = sys.getrefcount(None)
    painter.end()
    assert after >= before - 10, f"None lost {before - after} references in 2,000 void calls"
