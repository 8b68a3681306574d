"""What users bring, simulated on a clean glyph image: scans, pens and weights, handwriting.

Image-level augmentations (numpy and OpenCV, no torch) of ``(H, W)`` ``uint8`` greyscale
glyphs, ink dark on white, each driven by a ``numpy`` generator so that a validation suite
built with a fixed seed is the same every time. Training uses them too, before the app's
preprocessing, so that the encoder sees what preprocessing makes of a scan.

- :func:`scan`: paper tone, blur, lost resolution, noise, JPEG, a small rotation, sometimes
  binarised (a photocopy), ink that bleeds or fades.
- :func:`weight`: thinner or bolder strokes (hairline to bold).
- :func:`handwriting`: elastic and affine distortion of the shape, with a change of weight.
"""

from __future__ import annotations

import cv2
import numpy as np


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    h, w = image.shape
    out: np.ndarray = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return out


def rotate(image: np.ndarray, degrees: float, scale: float = 1.0, shear: float = 0.0) -> np.ndarray:
    """Rotate (and scale, shear) about the centre, white outside."""
    h, w = image.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    if shear:
        s = np.array([[1.0, shear, -shear * h / 2], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = m @ s
    return _warp(image, m)


def weight(image: np.ndarray, rng: np.random.Generator, lo: int = -2, hi: int = 3) -> np.ndarray:
    """Strokes thinned (negative steps) or thickened (positive) by up to a few pixels."""
    step = int(rng.integers(lo, hi + 1))
    if step == 0:
        return image
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(step) + 1, 2 * abs(step) + 1))
    # ink is dark: thicker ink = erode the white
    out: np.ndarray = cv2.erode(image, kernel) if step > 0 else cv2.dilate(image, kernel)
    if step < 0 and (out < 128).sum() < 0.4 * (image < 128).sum():  # thinned away: keep the original
        return image
    return out


def scan(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A printed glyph as a scanner, a phone camera or a photocopier gives it back."""
    img = image.astype(np.float32)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, 1.2)))
    img = rotate(img.clip(0, 255).astype(np.uint8), float(rng.uniform(-4, 4))).astype(np.float32)
    h, w = img.shape
    if rng.random() < 0.6:  # lost resolution: the glyph was small on the page
        f = float(rng.uniform(0.25, 0.6))
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.8)))
    paper, ink = float(rng.uniform(170, 250)), float(rng.uniform(0, 90))
    img = ink + (img / 255.0) * (paper - ink)
    img += rng.normal(0, float(rng.uniform(2, 18)), img.shape).astype(np.float32)
    out = img.clip(0, 255).astype(np.uint8)
    if rng.random() < 0.25:  # photocopy: black and white
        _, out = cv2.threshold(out, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if rng.random() < 0.7:
        quality = int(rng.integers(15, 75))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def elastic(image: np.ndarray, rng: np.random.Generator, alpha: float = 9.0, sigma: float = 7.0) -> np.ndarray:
    """Smooth random displacement of every pixel (Simard et al. 2003): a hand's wobble."""
    h, w = image.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha * sigma
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha * sigma
    # normalise so that alpha is roughly the largest displacement in pixels
    peak = max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    dx, dy = dx * (alpha / peak), dy * (alpha / peak)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out: np.ndarray = cv2.remap(image, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=255)
    return out


def handwriting(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A printed glyph as a person might draw it: skewed, scaled, wobbly, another pen."""
    img = rotate(image, float(rng.uniform(-10, 10)), float(rng.uniform(0.85, 1.1)), float(rng.uniform(-0.3, 0.3)))
    img = elastic(img, rng, alpha=float(rng.uniform(3, 8)), sigma=float(rng.uniform(5, 9)))
    return weight(img, rng, -1, 2)
