"""Redraw stored glyph maps as encoder inputs, with optional jitter (PyTorch).

A glyph is stored as two maps (:func:`protoglyph.core.preprocess.glyph_maps`): the distance to
its skeleton and the signed distance to its ink's edge. With no jitter this computes exactly
what :func:`protoglyph.core.preprocess.encoder_inputs` does for a version (the skeleton redrawn
with a round pen of ``PEN_RADIUS``, the ink with an antialiased edge, both area-averaged down
to the input size), so training sees the app's preprocessing. With jitter it varies the pen
radius, the ink's width and the glyph's geometry (rotation, per-axis scale, shear, shift)
the way different people's hands and pens do; both channels move together.
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
    ink_grow: tuple[float, float] = (-0.5, 1.5)  # working pixels added to each side of the ink


NO_JITTER = Jitter(pen_scale=(1.0, 1.0), rotation_deg=0.0, scale=(1.0, 1.0), shear=0.0, shift_px=0.0,
                   ink_grow=(0.0, 0.0))


def render(maps: torch.Tensor, size: int, jitter: Jitter = NO_JITTER,
           generator: torch.Generator | None = None, preprocess: str = pp.PREPROCESS_VERSION) -> torch.Tensor:
    """Encoder inputs of a preprocessing version from stored glyph maps.

    Args:
        maps: ``(N, 2, WORK_SIZE, WORK_SIZE)`` float: distances to the skeleton and signed
            distances to the ink's edge; or ``(N, WORK_SIZE, WORK_SIZE)`` skeleton distances
            alone (for ``skeleton-v2``).
        size: input side; must divide ``WORK_SIZE``.
        preprocess: the version, which picks and orders the channels.
    Returns:
        ``(N, C, size, size)`` ``float32`` in [0, 1], ink = 1.
    """
    if maps.dim() == 3:
        maps = maps.unsqueeze(1)
    n = maps.shape[0]
    dev = maps.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=dev) * (hi - lo) + lo

    radius = pp.PEN_RADIUS * uniform(*jitter.pen_scale, n).view(n, 1, 1, 1)
    names = pp.channels(preprocess)
    # drawn only when used, so that skeleton-v2 training draws the same numbers as before
    grow = uniform(*jitter.ink_grow, n).view(n, 1, 1, 1) if set(names) - {"skeleton"} else None
    pen = (radius + 0.5 - maps[:, :1].float()).clamp(0.0, 1.0)
    drawn = {"skeleton": pen}
    if grow is not None:
        if maps.shape[1] < 2:
            raise ValueError(f"preprocessing {preprocess!r} needs the ink maps, got shape {tuple(maps.shape)}")
        drawn["ink"] = (maps[:, 1:2].float() + 0.5 + grow).clamp(0.0, 1.0)
        drawn["pen-ink"] = torch.maximum(pen, drawn["ink"])  # never thinner than the pen
    layers = [drawn[name] for name in names]
    image = torch.cat(layers, 1) if len(layers) > 1 else layers[0]
    if jitter != NO_JITTER:
        angle = uniform(-jitter.rotation_deg, jitter.rotation_deg, n) * (math.pi / 180)
        sx, sy = uniform(*jitter.scale, n), uniform(*jitter.scale, n)
        shear = uniform(-jitter.shear, jitter.shear, n)
        shift = uniform(-jitter.shift_px, jitter.shift_px, n, 2) * (2.0 / pp.WORK_SIZE)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Inverse map (output -> input coordinates) of rotate * shear * scale.
        a = torch.stack([cos / sx, (-sin + shear * cos) / sx, sin / sy, (cos + shear * sin) / sy], 1)
        theta = torch.cat([a.view(n, 2, 2), shift.view(n, 2, 1)], 2)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        image = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    factor = pp.WORK_SIZE // size
    return F.avg_pool2d(image, factor) if factor > 1 else image
