"""Simple symbols drawn in code with random jitter: built-in examples that need no data set.

Used by the self-test, the tests and (later) the starter project. Each shape is a list of
polylines in a unit square, jittered and drawn with an antialiased pen.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

Polyline = list[tuple[float, float]]


def _circle(n: int = 32) -> list[Polyline]:
    return [[(0.5 + 0.38 * math.cos(2 * math.pi * i / n), 0.5 + 0.38 * math.sin(2 * math.pi * i / n))
             for i in range(n + 1)]]


SHAPES: dict[str, list[Polyline]] = {
    "ring": _circle(),
    "cross": [[(0.5, 0.12), (0.5, 0.88)], [(0.12, 0.5), (0.88, 0.5)]],
    "triangle": [[(0.5, 0.12), (0.88, 0.85), (0.12, 0.85), (0.5, 0.12)]],
    "square": [[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)]],
    "check": [[(0.12, 0.55), (0.4, 0.85), (0.88, 0.15)]],
    "arrow": [[(0.12, 0.5), (0.88, 0.5)], [(0.62, 0.25), (0.88, 0.5), (0.62, 0.75)]],
    "zigzag": [[(0.1, 0.3), (0.3, 0.7), (0.5, 0.3), (0.7, 0.7), (0.9, 0.3)]],
    "star": [[(0.5 + 0.4 * math.sin(4 * math.pi * i / 5), 0.52 - 0.4 * math.cos(4 * math.pi * i / 5))
              for i in range(6)]],
}


def draw_shape(name: str, rng: np.random.Generator, size: int = 105, pen: int | None = None,
               jitter: float = 0.04) -> np.ndarray:
    """One hand-drawn-looking copy of a built-in shape.

    Args:
        name: a key of :data:`SHAPES`.
        size: side of the square image.
        pen: pen width in pixels (default about 3% of ``size``).
    Returns:
        ``(size, size)`` ``uint8``, dark ink (0) on white (255).
    """
    image = np.full((size, size), 255, dtype=np.uint8)
    pen = pen or max(1, round(size * 0.03))
    # A random affine makes every copy a little different, as a hand would.
    a = np.eye(2) + rng.normal(0, jitter * 2, (2, 2))
    t = rng.normal(0, jitter, 2)
    for line in SHAPES[name]:
        pts = np.array(line) - 0.5
        pts = pts @ a.T + 0.5 + t + rng.normal(0, jitter / 4, pts.shape)
        pix = np.round(pts * size * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pix], False, 0, pen, cv2.LINE_AA, shift=4)
    return image
