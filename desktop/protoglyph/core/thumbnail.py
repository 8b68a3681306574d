"""Small square previews of glyphs: the ink cropped, centred and drawn dark on white,
whatever the polarity of the source image."""

from __future__ import annotations

import cv2
import numpy as np

from protoglyph.core.preprocess import ink_map


def glyph_thumbnail(image: np.ndarray, size: int = 48, margin: float = 0.12) -> np.ndarray:
    """A ``(size, size)`` ``uint8`` preview: dark ink on white, the glyph filling the square."""
    ink = ink_map(image)
    rows = np.flatnonzero((ink > 0.2).any(axis=1))
    if rows.size:
        cols = np.flatnonzero((ink > 0.2).any(axis=0))
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    side = max(h, w) / max(1e-6, 1.0 - 2 * margin)
    pad_y, pad_x = round((side - h) / 2), round((side - w) / 2)
    square = np.pad(ink, ((pad_y, pad_y), (pad_x, pad_x)))
    interp = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    small = cv2.resize(square, (size, size), interpolation=interp)
    if interp == cv2.INTER_AREA:  # shrinking thins a pen stroke to grey: darken it back
        small = np.minimum(small * 2.0, 1.0)
    out: np.ndarray = np.clip(255.0 * (1.0 - small), 0, 255).astype(np.uint8)
    return out
