"""A drawing as the canvas keeps it: a list of pen strokes, and how to turn it into an image.

The app classifies the stroke list through :func:`render_strokes`, not the pixels on screen,
so the canvas, the tests and the canvas-fidelity benchmark all feed the encoder the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: One stroke: ``(n, 2)`` ``float`` points ``(x, y)`` in the canvas's own coordinates.
Stroke = np.ndarray

#: Side of the image a drawing is rendered at for classification. Preprocessing crops the
#: ink and shrinks it to 64 pixels, so more would only cost time.
RENDER_SIZE = 256

#: The canvas pen, as a fraction of the canvas's shorter side. The preprocessing thins and
#: redraws every stroke with its own pen, so this only needs to look like a pen (about 3
#: pixels on Omniglot's 105-pixel drawings) and keep nearby strokes apart.
PEN_FRACTION = 1 / 60


def extent(stroke: Stroke) -> float:
    """The longer side of a stroke's bounding box (0 for a click)."""
    points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    return float((points.max(0) - points.min(0)).max()) if len(points) else 0.0


def is_glyph(strokes: Sequence[Stroke], pen: float = PEN_FRACTION) -> bool:
    """Whether a drawing is something to classify or keep as an example: a stroke that goes
    farther than the pen is wide. Clicks alone (dots) are not, though with other strokes they
    count (the dot of an i, the dots that tell Arabic letters apart); rendered alone, a dot is
    blown up by preprocessing into a blob that looks like nothing anyone drew."""
    return any(extent(s) > pen for s in strokes)


def pen_width(width: float, height: float) -> float:
    """The default pen width, in canvas pixels, for a canvas of this size."""
    return max(1.5, PEN_FRACTION * min(width, height))


def render_strokes(strokes: Sequence[Stroke], width: float, height: float, pen: float,
                   size: int = RENDER_SIZE) -> np.ndarray:
    """Draw strokes made on a ``width`` x ``height`` canvas, as the person saw them.

    The canvas is scaled so that its longer side is ``size`` pixels; the pen scales with it.
    A stroke of one point is a dot.

    Returns:
        ``(h, w)`` ``uint8``, black antialiased ink on white, ``max(h, w) == size``.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"canvas size must be positive, got {width}x{height}")
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    image = np.full((h, w), 255, np.uint8)
    thickness = max(1, round(pen * scale))
    for stroke in strokes:
        pts = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
        if not len(pts):
            continue
        fixed = np.round(pts * scale * 16).astype(np.int32)
        line = np.vstack([fixed, fixed[-1:]]).reshape(-1, 1, 2)
        cv2.polylines(image, [line], False, 0, thickness, cv2.LINE_AA, shift=4)
    return image


def strokes_from_trajectory(trajectory: Sequence[Sequence[tuple[float, float, float]]],
                            frame: float, canvas_side: float) -> list[Stroke]:
    """Scale pen trajectories drawn in a ``frame`` x ``frame`` square (Omniglot's 105) to a canvas."""
    scale = canvas_side / frame
    return [np.array([(x * scale, y * scale) for x, y, *_ in stroke], dtype=np.float64) for stroke in trajectory]
