"""Redraw skeleton distance maps as encoder inputs, with optional jitter (PyTorch).

With no jitter this computes exactly what :func:`protoglyph.core.preprocess.render` does
(round pen of ``PEN_RADIUS``, area-averaged down to the input size), so training sees the
app's preprocessing. With jitter it varies the pen radius and the glyph's geometry
(rotation, per-axis scale, shear, shift) the way different people's hands do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from protoglyph.core import preprocess as pp


@dataclass(frozen=True)
class Jitter:
    """Ranges of the random changes; all zero means none."""

    pen_scale: tuple[float, float] = (0.6, 1.6)
    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.85, 1.1)
    shear: float = 0.15
    shift_px: float = 3.0  # working pixels


NO_JITTER = Jitter(pen_scale=(1.0, 1.0), rotation_deg=0.0, scale=(1.0, 1.0), shear=0.0, shift_px=0.0)


def render(distance: torch.Tensor, size: int, jitter: Jitter = NO_JITTER,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Encoder inputs from skeleton distance maps.

    Args:
        distance: ``(N, WORK_SIZE, WORK_SIZE)`` float distances to the skeleton.
        size: input side; must divide ``WORK_SIZE``.
    Returns:
        ``(N, 1, size, size)`` ``float32`` in [0, 1], ink = 1.
    """
    n = distance.shape[0]
    dev = distance.device
    d = distance.float().unsqueeze(1)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=dev) * (hi - lo) + lo

    radius = pp.PEN_RADIUS * uniform(*jitter.pen_scale, n).view(n, 1, 1, 1)
    ink = (radius + 0.5 - d).clamp(0.0, 1.0)
    if jitter != NO_JITTER:
        angle = uniform(-jitter.rotation_deg, jitter.rotation_deg, n) * (math.pi / 180)
        sx, sy = uniform(*jitter.scale, n), uniform(*jitter.scale, n)
        shear = uniform(-jitter.shear, jitter.shear, n)
        shift = uniform(-jitter.shift_px, jitter.shift_px, n, 2) * (2.0 / pp.WORK_SIZE)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Inverse map (output -> input coordinates) of rotate * shear * scale.
        a = torch.stack([cos / sx, (-sin + shear * cos) / sx, sin / sy, (cos + shear * sin) / sy], 1)
        theta = torch.cat([a.view(n, 2, 2), shift.view(n, 2, 1)], 2)
        grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
        ink = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    factor = pp.WORK_SIZE // size
    return F.avg_pool2d(ink, factor) if factor > 1 else ink
