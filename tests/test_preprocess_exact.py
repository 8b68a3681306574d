"""The batched preprocessing gives, bit for bit, what its definition gives.

``encoder_inputs`` draws a batch with a grey-level lookup, a bounding box, dilations and one
stacked resize; the definition (the code every model so far was trained and measured with)
converts each image to a float ink map, crops it with ``any``, computes two or three distance
transforms and redraws each channel one image at a time. Kept here as the reference: any
difference, even in the last bit, would change what the encoder sees.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from protoglyph.core import preprocess as pp
from protoglyph.core.drawing import render_strokes
from protoglyph.core.shapes import SHAPES, draw_shape


def _reference_mask(image: np.ndarray, min_pen_widths: float) -> np.ndarray:
    """``frame`` as first written (then ``working_mask``): float ink map, ``any`` rows and columns, ``np.pad``."""
    mask = pp.ink_map(image) > 0.5
    out = np.zeros((pp.WORK_SIZE, pp.WORK_SIZE), dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = mask[r0:r1, c0:c1].astype(np.float32)
    h, w = crop.shape
    inside = cv2.distanceTransform(np.pad(crop.astype(np.uint8), 1), cv2.DIST_L2, 3)
    pen_width = max(1.0, 4.0 * float(inside[inside > 0].mean()) - 2.0)
    scale = pp.GLYPH_BOX / max(h, w, min_pen_widths * pen_width)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if scale < 1.0:
        keep = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA) >= 0.35 * scale
    else:
        keep = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR) >= 0.5
    top, left = (pp.WORK_SIZE - nh) // 2, (pp.WORK_SIZE - nw) // 2
    out[top : top + nh, left : left + nw] = keep
    return out


def _reference_inputs(images: Sequence[np.ndarray], size: int, version: str) -> np.ndarray:
    """Each image's skeleton and ink distances, drawn one image at a time as training draws them."""
    names = pp.channels(version)
    rule = pp.PREPROCESS_MIN_PEN_WIDTHS[version]
    out = np.zeros((len(images), len(names), size, size), dtype=np.float32)
    for i, image in enumerate(images):
        mask = _reference_mask(image, rule)
        distance = pp.stroke_distance(pp.thin(mask[None])[0])
        signed = pp.ink_distance(mask)
        if signed.max() <= 0:
            continue
        pen = np.clip(pp.PEN_RADIUS + 0.5 - distance, 0.0, 1.0)
        ink = np.clip(signed + 0.5, 0.0, 1.0)
        layers = {"skeleton": pen, "ink": ink, "pen-ink": np.maximum(pen, ink)}
        for c, name in enumerate(names):
            layer = layers[name].astype(np.float32)
            out[i, c] = layer if size == pp.WORK_SIZE else cv2.resize(layer, (size, size),
                                                                      interpolation=cv2.INTER_AREA)
    return out


def _zoo() -> list[np.ndarray]:
    """Images of every kind the app meets: shapes at many sizes and pens, both polarities, canvas
    drawings, colour and alpha, 16-bit and float, solid marks, specks, lines one pixel thin,
    a huge scan, tiny and flat images, noise."""
    rng = np.random.default_rng(11)
    images = []
    for k, name in enumerate(sorted(SHAPES)):
        for size, pen in ((105, None), (48, 1), (420, 3), (420, 14), (900, 40), (30, 6)):
            images.append(draw_shape(name, np.random.default_rng(k * 31 + size), size=size, pen=pen))
    images.append(255 - images[0])
    images.append(render_strokes([[(40.0, 40.0), (300.0, 80.0), (200.0, 380.0)]], 420, 420, 4.0))
    images.append(render_strokes([[(210.0, 210.0)]], 420, 420, 9.0))  # a dot
    grey = images[3]
    images.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    rgba = np.zeros((*grey.shape, 4), np.uint8)
    rgba[..., 3] = 255 - grey
    images.append(rgba)
    images += [grey.astype(np.uint16) * 257, grey.astype(np.float32) / 255, grey < 128]
    disc = np.full((120, 160), 230, np.uint8)
    cv2.circle(disc, (80, 60), 40, 20, -1)
    images.append(disc)  # filled, on grey paper
    specks = np.full((200, 200), 255, np.uint8)
    specks[rng.integers(0, 200, 40), rng.integers(0, 200, 40)] = 0
    images.append(specks)
    line = np.full((64, 300), 255, np.uint8)
    line[30, 5:295] = 0
    images += [line, line.T.copy()]
    scan = np.full((3000, 2200), 250, np.uint8)
    cv2.putText(scan, "Q", (300, 2400), cv2.FONT_HERSHEY_SIMPLEX, 60, 10, 25)
    images.append(scan)
    images += [np.zeros((1, 1), np.uint8), np.full((3, 3), 255, np.uint8), np.eye(7, dtype=np.uint8) * 255,
               np.full((1, 50), 255, np.uint8), np.zeros((50, 1), np.uint8), np.full((40, 40), 128, np.uint8)]
    images[-3][0, 20:30] = 0
    for _ in range(12):
        h, w = rng.integers(5, 140, 2)
        images.append(rng.integers(0, 256, (h, w)).astype(np.uint8))  # noise of every contrast
        images.append(((rng.random((h, w)) < 0.2) * rng.integers(1, 256)).astype(np.uint8))
    jpeg = cv2.imdecode(cv2.imencode(".jpg", images[5], [cv2.IMWRITE_JPEG_QUALITY, 20])[1], cv2.IMREAD_GRAYSCALE)
    images.append(jpeg)
    return images


@pytest.mark.parametrize("version", sorted(pp.PREPROCESS_CHANNELS))
def test_batched_inputs_equal_the_definition_bit_for_bit(version: str) -> None:
    images = _zoo()
    for size in (16, 32, 64):
        got = pp.encoder_inputs(images, size, version)
        expected = _reference_inputs(images, size, version)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        differ = [i for i in range(len(images)) if not np.array_equal(got[i], expected[i])]
        assert not differ, f"{version} at {size}: images {differ} differ"


def test_the_grey_level_lookup_is_the_float_ink_map() -> None:
    for image in _zoo():
        expected = pp.ink_map(image) > 0.5
        np.testing.assert_array_equal(pp.ink_mask(image), expected)


def test_the_batch_draws_each_image_as_if_alone() -> None:
    images = _zoo()
    together = pp.encoder_inputs(images, 32, "skeleton-ink-v2")
    alone = np.concatenate([pp.encoder_inputs([image], 32, "skeleton-ink-v2") for image in images])
    np.testing.assert_array_equal(together, alone)
    assert pp.encoder_inputs([], 32, "skeleton-ink-v2").shape == (0, 2, 32, 32)


@pytest.mark.omniglot
def test_omniglot_drawings_equal_the_definition(omniglot_dir) -> None:
    with zipfile.ZipFile(omniglot_dir / "images_background_small1.zip") as archive:
        names = [n for n in archive.namelist() if n.endswith(".png")][::23][:400]
        images = [cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_GRAYSCALE) for n in names]
    for version in ("skeleton-ink-v2", "skeleton-v2"):
        np.testing.assert_array_equal(pp.encoder_inputs(images, 32, version), _reference_inputs(images, 32, version))
