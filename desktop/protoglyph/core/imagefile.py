"""Reading image files for use as examples or queries, with a clear reason when one can't be used.

Images are recognised by their content, not their extension. The size is read from the
header before anything is decoded, so a decompression bomb is refused without using memory.
Every result is a grayscale ``uint8`` array; transparency is flattened onto white paper.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

#: Most pixels an image may have (a 10,000 x 10,000 scan); larger ones are refused.
MAX_PIXELS = 100_000_000
#: Largest file read (bytes).
MAX_FILE_BYTES = 256 * 1024 * 1024

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class ImageReadError(ValueError):
    """An image file that cannot be used, and why (in words for the person who chose it)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def image_format(head: bytes) -> str | None:
    """The format named by a file's first bytes (``"PNG"``, ``"JPEG"``…), or ``None``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    return None


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` from the header, where it is cheap to find; ``None`` if unknown."""
    try:
        if fmt == "PNG" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if fmt == "GIF":
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if fmt == "BMP":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "WebP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
        if fmt == "JPEG":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any decoded image (8/16-bit, float, gray, BGR, BGRA) as ``uint8`` gray with alpha on white."""
    img = image
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        peak = float(f.max()) if f.size else 1.0
        img = np.clip(f / (peak if peak > 1.0 else 1.0) * 255.0, 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    if img.ndim != 3:
        raise ValueError(f"unexpected image shape {image.shape}")
    channels = img.shape[2]
    if channels == 1:
        return np.ascontiguousarray(img[:, :, 0])
    if channels == 2:  # gray + alpha
        gray, alpha = img[:, :, 0], img[:, :, 1]
    elif channels == 4:
        gray, alpha = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY), img[:, :, 3]
    else:
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    a = alpha.astype(np.float32) / 255.0
    flat = gray.astype(np.float32) * a + 255.0 * (1.0 - a)
    out: np.ndarray = flat.round().astype(np.uint8)
    return out


def decode_image(data: bytes, source: Path | str = "<memory>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes (first frame of an animation) to gray ``uint8``.

    Raises:
        ImageReadError: not an image, an unsupported format, too many pixels, damaged.
    """
    if not data:
        raise ImageReadError(source, "the file is empty")
    fmt = image_format(data[:16])
    if fmt is None:
        raise ImageReadError(source, "not an image Protoglyph can read (PNG, JPEG, BMP, TIFF, WebP or GIF)")
    size = header_size(data, fmt)
    if size is not None:
        w, h = size
        if w <= 0 or h <= 0:
            raise ImageReadError(source, f"the {fmt} header gives an empty size ({w}x{h})")
        if w * h > max_pixels:
            raise ImageReadError(source, f"too large: {w}x{h} pixels (the limit is {max_pixels:,} pixels)")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageReadError(source, f"the {fmt} data is damaged or unsupported ({str(exc).strip()[:120]})") from exc
    if image is None or image.size == 0:
        raise ImageReadError(source, f"the {fmt} data is damaged or truncated")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ImageReadError(source, f"too large: {image.shape[1]}x{image.shape[0]} pixels")
    return to_gray(image)


def read_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as gray ``uint8`` (ink and paper as in the file).

    Raises:
        ImageReadError: with the reason, for anything that is not a usable image.
    """
    p = Path(path)
    try:
        st = p.stat()
        if not p.is_file():
            raise ImageReadError(p, "not a file")
        if st.st_size > MAX_FILE_BYTES:
            raise ImageReadError(p, f"the file is too large ({st.st_size / 2**20:.0f} MB)")
        with open(p, "rb") as f:
            data = f.read()
    except ImageReadError:
        raise
    except PermissionError as exc:
        raise ImageReadError(p, "no permission to read it") from exc
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({os.strerror(exc.errno) if exc.errno else exc})") from exc
    return decode_image(data, p, max_pixels)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a gray ``uint8`` image (how projects store examples)."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return buf.tobytes()


def shrink_to(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image scaled down (area filter) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
