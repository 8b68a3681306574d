"""Conversions between numpy gray images and Qt images, and example thumbnails."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap

from protoglyph.core.project import ExampleRecord
from protoglyph.core.thumbnail import glyph_thumbnail
from protoglyph.core.workspace import decode_example

THUMB_SIZE = 56


def gray_to_qimage(gray: np.ndarray) -> QImage:
    """A deep copy of a ``(h, w)`` ``uint8`` array as a ``Format_Grayscale8`` image."""
    arr = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = arr.shape
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def qimage_to_gray(image: QImage) -> np.ndarray:
    """A ``QImage`` (any format; transparency flattened onto white) as gray ``uint8``."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = rgba.width(), rgba.height()
    buf = np.frombuffer(rgba.constBits(), np.uint8, count=rgba.bytesPerLine() * h)
    px = buf.reshape(h, rgba.bytesPerLine())[:, : 4 * w].reshape(h, w, 4).astype(np.float32)
    gray = px[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    a = px[:, :, 3] / 255.0
    out: np.ndarray = np.clip(gray * a + 255.0 * (1.0 - a), 0, 255).round().astype(np.uint8)
    return out


class ThumbnailCache:
    """Thumbnails of examples by id, made once."""

    def __init__(self, size: int = THUMB_SIZE) -> None:
        self.size = size
        self._cache: dict[int, QPixmap] = {}

    def get(self, record: ExampleRecord) -> QPixmap:
        pix = self._cache.get(record.id)
        if pix is None:
            try:
                thumb = glyph_thumbnail(decode_example(record), self.size)
            except ValueError:
                thumb = np.full((self.size, self.size), 200, np.uint8)
            pix = QPixmap.fromImage(gray_to_qimage(thumb))
            self._cache[record.id] = pix
        return pix

    def clear(self) -> None:
        self._cache.clear()
