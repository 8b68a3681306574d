"""Turn any character image into the encoder's input: the one preprocessing used by
training, evaluation, the app and the command line.

Why it works this way. A glyph reaches us at any size and position (a 105x105 Omniglot
scan, a 420-pixel canvas, a 4000-pixel photo crop), with any stroke width (a 3-pixel
mouse pen, a 14-pixel brush, a felt-tip scan) and either polarity. What identifies a
character is the *shape of its strokes*, so we remove everything else on purpose:

1. **Ink map.** Grey level, alpha or colour becomes one ink map in [0, 1] (1 = ink).
   Polarity is read from the border: the median border value is the background, so dark
   ink on light and light ink on dark give the same map. An image whose alpha varies
   (a glyph on a transparent background) uses alpha as the ink.
2. **Crop and scale.** The bounding box of the ink (ink > 0.5) is centred and scaled,
   keeping its aspect ratio, so that its longer side spans ``GLYPH_BOX`` of the
   ``WORK_SIZE`` working square. Where on the canvas and how large someone drew stops
   mattering. Only marks less than ``MIN_PEN_WIDTHS`` pen widths across are scaled as if
   they were that big, so a dot stays a dot instead of becoming a ring. When shrinking by
   a factor f we keep a working pixel if at least 0.35/f of it is ink, so a thin line on a
   big image survives while isolated specks do not.
3. **Skeleton.** The working mask is thinned to one-pixel centre lines (Zhang-Suen, as
   a 256-entry lookup table applied to the ink pixels of a whole batch at once). This is
   the step that makes stroke width irrelevant: a 3-pixel and a 14-pixel pen give the
   same skeleton.
4. **Redraw.** The skeleton is redrawn with a fixed, antialiased pen
   (``PEN_RADIUS`` working pixels, from the distance transform) and area-averaged down
   to the encoder's input size. Training jitters only this radius and the geometry, so
   the encoder sees exactly the strokes the app will give it.

**Speed.** Training stores each glyph's distance maps (:func:`glyph_maps`) to redraw them
with jitter; the app and the command need only the drawing without jitter, and
:func:`encoder_inputs` makes exactly those numbers a batch at a time without any distance
transform (a grey-level lookup for the ink, dilations for the pen, one stacked resize):
about a third of the time (``tests/test_preprocess_exact.py`` holds the definition it
must equal bit for bit).

Images stay ``float32`` with ink = 1 on background = 0; the encoder session applies the
model's own mean/std normalisation.

**Versions.** A model names the preprocessing it was trained with in its metadata
(``preprocess``), and :func:`encoder_inputs` makes exactly that, as ``(N, C, S, S)``:

- ``skeleton-v2`` (encoder 1.0.0): one channel, the redrawn skeleton (steps 1-4).
- ``skeleton-ink-v1``: the redrawn skeleton and, beside it, the glyph's own ink in the same
  working frame (the working mask, antialiased at its edge and area-averaged). The skeleton
  keeps a mouse line and a brush alike; the ink keeps what thinning throws away: separate
  dots that a skeleton shrinks to specks, serifs thinner than the stems, filled against
  outline shapes, bold against light. Training widens and narrows the ink by up to a pen
  width so that the encoder learns which differences of width matter.
- ``skeleton-ink-v2``: as v1, but the ink is never thinner than the skeleton's pen (the
  ink channel is the larger of the two at every working pixel): a mouse line and a brush up
  to the pen's width give the same ink, so only strokes bolder than the pen, filled shapes
  and separate marks tell in it. v1 let the width of thin pens through, and lost 1.4 points
  of canvas fidelity to it (model card).
- ``ink-v1``: the ink channel alone (measured as an option; see the model card).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import cv2
import numpy as np

#: Version of this preprocessing; recorded in the model's metadata and training caches.
PREPROCESS_VERSION = "skeleton-v2"
#: Every version this code can make, with its input channels in order.
PREPROCESS_CHANNELS: dict[str, tuple[str, ...]] = {
    "skeleton-v2": ("skeleton",),
    "skeleton-ink-v1": ("skeleton", "ink"),
    "skeleton-ink-v2": ("skeleton", "pen-ink"),
    "ink-v1": ("ink",),
}
#: Per version, how many pen widths across a mark is scaled as if it were (see frame).
#: With the ink kept, a solid shape (a filled disc, a bold digit) must keep its full size; the
#: skeleton alone shrinks such marks so that a dot stays a dot.
PREPROCESS_MIN_PEN_WIDTHS: dict[str, float] = {"skeleton-v2": 6.0, "skeleton-ink-v1": 1.5, "skeleton-ink-v2": 1.5,
                                               "ink-v1": 1.5}
#: Side of the square working raster on which glyphs are skeletonised (pixels).
WORK_SIZE = 64
#: Longer side of a glyph's bounding box inside the working raster (pixels).
GLYPH_BOX = 52
#: Radius of the pen that redraws the skeleton, in working pixels.
PEN_RADIUS = 1.5
#: A glyph is scaled as if it were at least this many pen widths across (see frame).
MIN_PEN_WIDTHS = 6.0
#: Default side of the encoder input (pixels); the model's metadata is authoritative.
INPUT_SIZE = 32
#: Signed distances to the ink's edge are kept within this many working pixels.
MAX_INK_DISTANCE = 8.0
#: Below this contrast (max - min of the grey image) an image counts as blank.
MIN_CONTRAST = 0.08


def ink_map(image: np.ndarray) -> np.ndarray:
    """Ink intensity of any image.

    Args:
        image: ``(H, W)`` grey, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, dtype ``uint8``,
            ``uint16``, ``bool`` or float in [0, 1].
    Returns:
        ``(H, W)`` ``float32`` in [0, 1], 1 where there is ink, 0 on the background.
    """
    img = _as_float(image)
    if img.ndim == 3:
        if img.shape[2] == 4:
            alpha = img[:, :, 3]
            if float(alpha.min()) < 0.9 * float(alpha.max()):
                return np.ascontiguousarray(alpha, dtype=np.float32)
            img = img[:, :, :3]
        if img.shape[2] == 3:
            img = img @ np.array([0.114, 0.587, 0.299], dtype=np.float32)  # BGR luma
        elif img.shape[2] == 1:
            img = img[:, :, 0]
        else:
            raise ValueError(f"unsupported channel count {img.shape[2]}")
    if img.ndim != 2 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W[, C]) image, got shape {image.shape}")
    lo, hi = float(img.min()), float(img.max())
    if hi - lo < MIN_CONTRAST:
        return np.zeros(img.shape, dtype=np.float32)
    border = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    background = float(np.median(border))
    if background >= (lo + hi) / 2:
        ink = (background - img) / max(background - lo, 1e-6)
    else:
        ink = (img - background) / max(hi - background, 1e-6)
    return np.clip(ink, 0.0, 1.0).astype(np.float32)


def _as_float(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr.astype(np.float32), 0.0, 1.0)
    raise ValueError(f"unsupported image dtype {arr.dtype}")


#: What ``_as_float`` makes of each 8-bit grey value: ink rules computed on it, value by value,
#: give exactly what they give on the whole image (the same float32 operations on the same numbers).
_GREY_LEVELS = np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0


def ink_mask(image: np.ndarray) -> np.ndarray:
    """Where an image has ink: exactly ``ink_map(image) > 0.5``, as ``bool``.

    An 8-bit grey image (what every file becomes when read) is not converted to float at all:
    the ink rule is applied to its 256 grey levels and looked up, several times faster and
    with a fraction of the memory on a large scan, and the same pixels come out.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.size == 0:
        return ink_map(arr) > 0.5
    arr = np.ascontiguousarray(arr)
    darkest, brightest = cv2.minMaxLoc(arr)[:2]
    border = np.sort(np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]]))
    k = len(border)
    middle = tuple(int(v) for v in border[(k - 1) // 2 : k // 2 + 1])  # what np.median averages
    table = _ink_table(int(darkest), int(brightest), middle)
    if table is None:
        return np.zeros(arr.shape, dtype=bool)
    return cv2.LUT(arr, table).view(bool)


@functools.lru_cache(maxsize=4096)
def _ink_table(darkest: int, brightest: int, middle: tuple[int, ...]) -> np.ndarray | None:
    """:func:`ink_map`'s rule on every grey level, ``> 0.5``, as a ``uint8`` table (``None``: too
    flat to hold ink). The same few tables serve a whole folder of similar images."""
    lo, hi = float(_GREY_LEVELS[darkest]), float(_GREY_LEVELS[brightest])
    if hi - lo < MIN_CONTRAST:
        return None
    background = float(_GREY_LEVELS[list(middle)].mean())  # np.median's own arithmetic
    levels = _GREY_LEVELS
    if background >= (lo + hi) / 2:
        ink = (background - levels) / max(background - lo, 1e-6)
    else:
        ink = (levels - background) / max(hi - background, 1e-6)
    table: np.ndarray = (np.clip(ink, 0.0, 1.0).astype(np.float32) > 0.5).astype(np.uint8)
    table.setflags(write=False)
    return table


def frame(mask: np.ndarray, min_pen_widths: float = MIN_PEN_WIDTHS) -> np.ndarray:
    """Crop, centre and scale a glyph's ink into the working square (step 2).

    Args:
        mask: ``(H, W)`` ``bool`` ink mask from :func:`ink_mask`.
        min_pen_widths: a mark is scaled as if it were at least this many pen widths across
            (the version's value from ``PREPROCESS_MIN_PEN_WIDTHS``).
    Returns:
        ``(WORK_SIZE, WORK_SIZE)`` ``bool`` mask, all False for a blank image.
    """
    out = np.zeros((WORK_SIZE, WORK_SIZE), dtype=bool)
    ink = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    c0, r0, w, h = cv2.boundingRect(ink)
    if w == 0 or h == 0:
        return out
    crop = ink[r0 : r0 + h, c0 : c0 + w]
    # A mark only a few pen widths across (a dot, a short dash) is not blown up to full
    # size, or a dot would look like a filled circle: its size is measured in pen widths.
    # Pen width from the mean distance-to-background over the ink: about w/4 + 1/2 for a
    # stroke of width w, and hardly moved by blobs where strokes cross.
    inside = cv2.distanceTransform(cv2.copyMakeBorder(crop, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
                                   cv2.DIST_L2, 3)
    # The mean is at most the largest distance: where even that cannot make the mark count as
    # bigger than it is, the mean is not needed (most glyphs; the scale is the same either way).
    if min_pen_widths * max(1.0, 4.0 * cv2.minMaxLoc(inside)[1] - 2.0) * (1 + 1e-5) < max(h, w):  # float32 slack
        scale = GLYPH_BOX / max(h, w)
    else:
        pen_width = max(1.0, 4.0 * float(inside[inside > 0].mean()) - 2.0)
        scale = GLYPH_BOX / max(h, w, min_pen_widths * pen_width)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    area = crop.astype(np.float32)
    if scale < 1.0:
        small = cv2.resize(area, (nw, nh), interpolation=cv2.INTER_AREA)
        keep = small >= 0.35 * scale
    else:
        small = cv2.resize(area, (nw, nh), interpolation=cv2.INTER_LINEAR)
        keep = small >= 0.5
    top, left = (WORK_SIZE - nh) // 2, (WORK_SIZE - nw) // 2
    out[top : top + nh, left : left + nw] = keep
    return out


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen deletion rules for both sub-iterations as 256-entry tables.

    Neighbour bit i (0..7) is P2..P9: N, NE, E, SE, S, SW, W, NW.
    """
    first = np.zeros(256, dtype=bool)
    second = np.zeros(256, dtype=bool)
    for code in range(256):
        p = [(code >> i) & 1 for i in range(8)]
        count = sum(p)
        transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
        if not (2 <= count <= 6 and transitions == 1):
            continue
        n, e, s, w = p[0], p[2], p[4], p[6]
        first[code] = n * e * s == 0 and e * s * w == 0
        second[code] = n * e * w == 0 and n * s * w == 0
    return first, second


_DELETE_FIRST, _DELETE_SECOND = _thinning_tables()
# (row, col) offsets of P2..P9 in the order of the bits above.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


#: Masks thinned together: one pass costs a few numpy calls over the group's ink, and the
#: group goes on until its boldest glyph is thin; 64 was fastest (16: +14 %, 256: +39 %).
THIN_GROUP = 64


def thin(masks: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a batch of masks to one-pixel-wide skeletons.

    Works on the flat indices of ink pixels only, so its cost follows the amount of ink,
    not the image area, and a group of masks is thinned with a few numpy calls per pass.

    Args:
        masks: ``(N, H, W)`` ``bool``.
    Returns:
        ``(N, H, W)`` ``bool`` skeletons (a new array).
    """
    if masks.ndim != 3:
        raise ValueError(f"expected (N, H, W) masks, got shape {masks.shape}")
    out = np.empty(masks.shape, dtype=bool)
    for start in range(0, len(masks), THIN_GROUP):
        out[start : start + THIN_GROUP] = _thin_group(masks[start : start + THIN_GROUP])
    return out


def _thin_group(masks: np.ndarray) -> np.ndarray:
    n, h, w = masks.shape
    padded = np.zeros((n, h + 2, w + 2), dtype=np.uint8)
    padded[:, 1:-1, 1:-1] = masks
    flat = padded.reshape(-1)
    offsets = [dr * (w + 2) + dc for dr, dc in _NEIGHBOURS]
    ink = np.flatnonzero(flat)
    changed = True
    while changed and ink.size:
        changed = False
        for table in (_DELETE_FIRST, _DELETE_SECOND):
            code = np.zeros(ink.size, dtype=np.uint8)
            for bit, offset in enumerate(offsets):
                code |= flat[ink + offset] << bit
            delete = table[code]
            if delete.any():
                flat[ink[delete]] = 0
                ink = ink[~delete]
                changed = True
    return padded[:, 1:-1, 1:-1].astype(bool)


def _pen_levels(radius: float) -> tuple[list[np.ndarray], np.ndarray]:
    """The round pen as nested kernels and the ink of each level.

    On the pixel grid the distance from a pixel to the nearest skeleton pixel is the square
    root of an integer, so the pen ``clip(radius + 0.5 - d, 0, 1)`` of :func:`stroke_distance`
    (how training draws it, ``models/augment.py``) takes a few values only. Kernel ``k`` holds the offsets whose ink
    is at least the ``k``-th largest value; a pixel reached by ``m`` of the dilations takes
    ``values[m]``. Values are float32 arithmetic on float32 distances, as training's.

    Returns:
        the kernels, most ink first, and ``values``: ``(256,)`` ``float32`` (0 beyond the pen).
    """
    reach = math.ceil(radius + 0.5)
    offsets = [(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)]
    ink = {o: float(np.clip(np.float32(radius + 0.5) - np.float32(math.sqrt(o[0] ** 2 + o[1] ** 2)), 0.0, 1.0))
           for o in offsets}
    levels = sorted({v for v in ink.values() if v > 0}, reverse=True)
    kernels = []
    for level in levels:
        kernel = np.zeros((2 * reach + 1, 2 * reach + 1), np.uint8)
        for (dr, dc), v in ink.items():
            kernel[dr + reach, dc + reach] = v >= level
        kernels.append(kernel)
    values = np.zeros(256, np.float32)
    values[1 : len(levels) + 1] = levels[::-1]  # reached by m kernels: the m-th smallest level
    return kernels, values


_PEN_KERNELS, _PEN_VALUES = _pen_levels(PEN_RADIUS)


def draw(skeletons: np.ndarray, masks: np.ndarray, version: str, size: int = INPUT_SIZE) -> np.ndarray:
    """A version's encoder inputs from skeletons and working masks, a whole batch at once.

    Gives exactly what drawing each image's :func:`glyph_maps` with no jitter gives (the
    skeleton's pen from :func:`stroke_distance`, the ink ``clip(signed + 0.5, 0, 1)``, which is
    the mask itself), without computing a distance transform: the pen is a few dilations and
    a lookup, the shrink to ``size`` one area resize per channel of the stacked batch. A glyph
    lies at least ``(WORK_SIZE - GLYPH_BOX) / 2`` pixels from the edge of its square, farther
    than the pen reaches, so stacked squares never ink each other.

    Args:
        skeletons, masks: ``(N, WORK_SIZE, WORK_SIZE)`` ``bool`` (:func:`thin` of :func:`frame`).
    Returns:
        ``(N, C, size, size)`` ``float32`` in [0, 1].
    """
    names = channels(version)
    if WORK_SIZE % size:
        raise ValueError(f"input size {size} must divide the working size {WORK_SIZE}")
    n = len(masks)
    if n == 0:
        return np.zeros((0, len(names), size, size), dtype=np.float32)
    tall = (WORK_SIZE * n, WORK_SIZE)
    drawn: dict[str, np.ndarray] = {}
    if {"skeleton", "pen-ink"} & set(names):
        stacked = np.ascontiguousarray(skeletons, dtype=bool).view(np.uint8).reshape(tall)
        reached = cv2.dilate(stacked, _PEN_KERNELS[0])
        for kernel in _PEN_KERNELS[1:]:
            reached = cv2.add(reached, cv2.dilate(stacked, kernel))
        drawn["skeleton"] = np.asarray(cv2.LUT(reached, _PEN_VALUES))
    if {"ink", "pen-ink"} & set(names):
        drawn["ink"] = np.ascontiguousarray(masks, dtype=bool).view(np.uint8).reshape(tall).astype(np.float32)
    if "pen-ink" in names:  # never thinner than the pen
        drawn["pen-ink"] = np.asarray(cv2.max(drawn["skeleton"], drawn["ink"]))
    layers = []
    for name in names:
        layer = drawn[name]
        if size != WORK_SIZE:
            # WORK_SIZE / size pixels square to one: INTER_AREA of the stacked squares averages
            # each block within its own square, exactly as resizing each square alone does.
            layer = np.asarray(cv2.resize(layer, (size, n * size), interpolation=cv2.INTER_AREA))
        layers.append(layer.reshape(n, size, size))
    return np.stack(layers, axis=1)


def stroke_distance(skeleton: np.ndarray) -> np.ndarray:
    """Distance of every working pixel to the nearest skeleton pixel.

    Args:
        skeleton: ``(WORK_SIZE, WORK_SIZE)`` ``bool``.
    Returns:
        ``(WORK_SIZE, WORK_SIZE)`` ``float32``; a large constant everywhere if blank.
    """
    if not skeleton.any():
        return np.full(skeleton.shape, float(WORK_SIZE), dtype=np.float32)
    background = np.where(skeleton, 0, 255).astype(np.uint8)
    return cv2.distanceTransform(background, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def ink_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance of every working pixel to the edge of the ink (positive inside).

    Ink pixels next to the background hold +0.5, background pixels next to the ink -0.5, so
    drawing ``clip(d + 0.5 + g, 0, 1)`` gives back the mask for ``g = 0`` and adds ``g`` working
    pixels of width on every side otherwise (negative: thinner; training's width jitter).

    Args:
        mask: ``(WORK_SIZE, WORK_SIZE)`` ``bool`` from :func:`frame`.
    Returns:
        ``(WORK_SIZE, WORK_SIZE)`` ``float32`` in ``[-MAX_INK_DISTANCE, MAX_INK_DISTANCE]``;
        ``-MAX_INK_DISTANCE`` everywhere if blank.
    """
    if not mask.any():
        return np.full(mask.shape, -MAX_INK_DISTANCE, dtype=np.float32)
    ink = mask.astype(np.uint8)
    inside = cv2.distanceTransform(ink, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - ink, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    signed = np.where(mask, inside - 0.5, 0.5 - outside)
    return np.clip(signed, -MAX_INK_DISTANCE, MAX_INK_DISTANCE).astype(np.float32)


def _masks(images: Sequence[np.ndarray], version: str) -> np.ndarray:
    channels(version)  # refuses an unknown version
    rule = PREPROCESS_MIN_PEN_WIDTHS[version]
    masks = np.zeros((len(images), WORK_SIZE, WORK_SIZE), dtype=bool)
    for i, image in enumerate(images):
        masks[i] = frame(ink_mask(image), rule)
    return masks


def glyph_maps(images: Sequence[np.ndarray], version: str = PREPROCESS_VERSION) -> tuple[np.ndarray, np.ndarray]:
    """What a version's channels are drawn from: skeleton distances and signed ink distances.

    Training stores these and redraws them with jitter (``models/augment.py``).

    Returns:
        ``(N, WORK_SIZE, WORK_SIZE)`` ``float32`` twice: :func:`stroke_distance` of the
        skeleton and :func:`ink_distance` of the working mask (framed by the version's rule).
    """
    masks = _masks(images, version)
    skel = thin(masks)
    distance = np.stack([stroke_distance(s) for s in skel]) if len(images) else np.zeros(masks.shape, np.float32)
    signed = np.stack([ink_distance(m) for m in masks]) if len(images) else np.zeros(masks.shape, np.float32)
    return distance, signed


def channels(version: str) -> tuple[str, ...]:
    """The input channels of a preprocessing version.

    Raises:
        ValueError: this code does not make ``version``.
    """
    try:
        return PREPROCESS_CHANNELS[version]
    except KeyError:
        raise ValueError(f"unknown preprocessing {version!r}; this code makes "
                         f"{', '.join(sorted(PREPROCESS_CHANNELS))}") from None


def encoder_inputs(images: Sequence[np.ndarray], size: int = INPUT_SIZE,
                   version: str = PREPROCESS_VERSION) -> np.ndarray:
    """Encoder inputs of a preprocessing version (read it from the model's metadata).

    Exactly what drawing each image's :func:`glyph_maps` with no jitter gives, which is what
    training draws from its stored maps (``models/augment.py``); computed a batch at a time
    by :func:`draw`, without the distance transforms that training needs for its jitter.

    Returns:
        ``(N, C, size, size)`` ``float32`` in [0, 1], ``C`` = ``len(channels(version))``;
        a blank image gives all zeros.
    """
    masks = _masks(images, version)
    return draw(thin(masks), masks, version, size)


def skeletons(images: Sequence[np.ndarray]) -> np.ndarray:
    """Normalised glyph skeletons of many images (steps 1-3 of the module docstring).

    Args:
        images: any number of images as accepted by :func:`ink_map`.
    Returns:
        ``(N, WORK_SIZE, WORK_SIZE)`` ``bool``.
    """
    return thin(_masks(images, "skeleton-v2"))


def preprocess_batch(images: Sequence[np.ndarray], size: int = INPUT_SIZE) -> np.ndarray:
    """``skeleton-v2`` inputs for many images of any size, colour and polarity (one channel).

    Args:
        images: any number of images as accepted by :func:`ink_map`.
        size: side of the encoder's input (read it from the model's metadata).
    Returns:
        ``(N, size, size)`` ``float32`` in [0, 1]; a blank image gives all zeros.
    """
    return encoder_inputs(images, size, "skeleton-v2")[:, 0]


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Encoder input for one image; see :func:`preprocess_batch`.

    Returns:
        ``(size, size)`` ``float32`` in [0, 1].
    """
    single: np.ndarray = preprocess_batch([image], size)[0]
    return single


def is_blank(image: np.ndarray) -> bool:
    """True when an image holds no ink worth classifying (empty canvas, flat image)."""
    return not bool(ink_mask(image).any())
