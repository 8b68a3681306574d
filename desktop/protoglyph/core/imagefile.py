"""Reading image files for use as examples or queries, with a clear reason when one can't be used.

Images are recognised by their content, not their extension. The size is read from the
header before anything is decoded, so a decompression bomb is refused without using memory.
Every result is a grayscale ``uint8`` array; transparency is flattened onto white paper.
Only regular files are opened, and never in a way that can block (a FIFO would wait forever).
Images larger than :data:`DECODE_MAX_PIXELS` are decoded smaller, so that one 100-megapixel
scan does not take gigabytes in the process that reads it.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np

#: Most pixels an image may have (a 10,000 x 10,000 scan); larger ones are refused.
MAX_PIXELS = 100_000_000
#: Largest file read (bytes).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Images with more pixels than this (4000 x 4000) are decoded reduced to about this many. A glyph
#: needs far fewer (preprocessing works on 64 x 64), and at 100 megapixels reading an RGBA PNG took
#: 2 GB, then preprocessing any such image 1.7 GB; reduced, 0.8 GB in all (benchmarks/reader_memory.py).
DECODE_MAX_PIXELS = 16_000_000
#: Why a FIFO, socket or device among the files is refused (opening a FIFO to read it can block forever).
NOT_REGULAR = "not a regular file (a FIFO, socket or device); skipped"
#: Not an image by its content.
NOT_AN_IMAGE = "not an image Protoglyph can read (PNG, JPEG, BMP, TIFF, WebP or GIF)"
#: A decode that needed more memory than this process may use.
OUT_OF_MEMORY = "too large to decode in the memory allowed"

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer (POSIX); O_BINARY: Windows.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
#: Rows of a large image ``to_gray`` converts at a time hold about this many pixels, so its float
#: temporaries stay a few MB instead of four times the image.
_STRIPE_PIXELS = 1 << 20

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


def read_file(path: Path | str, max_bytes: int = MAX_FILE_BYTES, *, head: int | None = None) -> bytes:
    """The bytes of a regular file (only the first ``head`` if given), opened so it can never block.

    The path is checked, then the file is opened non-blocking and the *open descriptor* is
    checked again: the path alone would race with the file being replaced, and opening a FIFO
    without ``O_NONBLOCK`` waits for a writer forever.

    Raises:
        ImageReadError: not a regular file, missing, no permission, larger than ``max_bytes``.
    """
    try:
        # Looked at before opening too: opening a FIFO, even without blocking, would release a
        # writer waiting on it, which then dies of SIGPIPE when we close it unread.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageReadError(path, "not a file" if os.path.isdir(path) else NOT_REGULAR)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _open_error(Path(path), exc) from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageReadError(path, "not a file")
        if not stat.S_ISREG(st.st_mode):
            raise ImageReadError(path, NOT_REGULAR)
        if head is not None:
            return _read(fd, head)
        if st.st_size > max_bytes:
            raise ImageReadError(path, f"the file is too large ({st.st_size / 2**20:.0f} MB)")
        data = _read(fd, st.st_size + 1)  # one more byte: did it grow since fstat?
        if len(data) > st.st_size:
            data += _read(fd, max_bytes + 1 - len(data))
        if len(data) > max_bytes:
            raise ImageReadError(path, f"the file is too large (over {max_bytes / 2**20:.0f} MB)")
        return data
    except OSError as exc:
        raise _open_error(Path(path), exc) from exc
    finally:
        os.close(fd)


def _read(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes from ``fd``: fewer only at the end of the file. Plain ``os.read``
    calls, without a buffered file object (a tenth of the time for a small glyph)."""
    parts, got = [], 0
    while got < count:
        more = os.read(fd, count - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _open_error(path: Path, exc: OSError) -> ImageReadError:
    """The reason for an ``OSError`` opening or reading ``path``, in words."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):  # Windows cannot open a folder at all
        return ImageReadError(path, "not a file")
    if st is not None and not stat.S_ISREG(st.st_mode):  # a Unix socket cannot be opened (ENXIO)
        return ImageReadError(path, NOT_REGULAR)
    if isinstance(exc, PermissionError):
        return ImageReadError(path, "no permission to read it")
    return ImageReadError(path, f"cannot be read ({os.strerror(exc.errno) if exc.errno else exc})")


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


def _png_chunks_overrun(data: bytes) -> bool:
    """True if a PNG chunk before IEND claims more bytes than the file has after it (damaged or cut)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > len(data):
            return True
        if kind == b"IEND":
            return False
        pos += 12 + length
    return False


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
    """Any decoded image (8/16-bit, float, gray, BGR, BGRA) as ``uint8`` gray with alpha on white.

    Converted a stripe of rows at a time into one ``uint8`` result, so a large image never has
    a full-size ``float32`` copy (four bytes a pixel and channel); each pixel's arithmetic is the
    same as converting the whole image at once, so the result is too.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"unexpected image shape {image.shape}")
    if image.ndim == 2 and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    peak = 1.0
    if image.dtype not in (np.uint8, np.uint16) and image.size:
        with warnings.catch_warnings():  # an all-NaN image (a damaged float TIFF) says so; it is black anyway
            warnings.simplefilter("ignore", RuntimeWarning)
            peak = float(np.float32(np.nanmax(image)))  # float32: the stripes are scaled in float32
    rows = max(1, _STRIPE_PIXELS // max(1, image.shape[1]))
    if image.shape[0] <= rows:  # one stripe: no copy into a result
        return np.ascontiguousarray(_gray_rows(image, peak))
    out = np.empty(image.shape[:2], np.uint8)
    for top in range(0, image.shape[0], rows):
        out[top : top + rows] = _gray_rows(image[top : top + rows], peak)
    return out


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables for the two conversions that depend on 16 bits of input each.

    ``[v]``: a 16-bit value as 8 bits, ``v / 257`` rounded. ``[g << 8 | a]``: gray ``g`` under
    alpha ``a`` flattened onto white, ``g * a/255 + 255 * (1 - a/255)`` rounded. Both are the
    float32 arithmetic of converting pixel by pixel, done once for every possible input, so a
    lookup gives exactly the same result, many times faster and without float copies.
    """
    deep = (np.arange(65536, dtype=np.uint16).astype(np.float32) / 257.0).round().astype(np.uint8)
    a = np.arange(256, dtype=np.uint8).astype(np.float32)[None, :] / 255.0
    g = np.arange(256, dtype=np.uint8).astype(np.float32)[:, None]
    flat = (g * a + 255.0 * (1.0 - a)).round().astype(np.uint8).reshape(-1)
    return deep, flat


_DEEP_TO_8, _ON_WHITE = _tables()


def _gray_rows(img: np.ndarray, peak: float) -> np.ndarray:
    """:func:`to_gray` of some rows; ``peak`` is the whole image's largest value (non-integer types)."""
    if img.dtype == np.uint16:
        img = _DEEP_TO_8[img]
    elif img.dtype != np.uint8:
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = img.astype(np.float32) / (peak if peak > 1.0 else 1.0) * 255.0
            # NaN (damaged float data; casting it to uint8 is undefined) as 0; finite values unchanged
            scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
        img = np.clip(scaled, 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        return img
    channels = img.shape[2]
    if channels == 1:
        return img[:, :, 0]
    if channels == 2:  # gray + alpha
        gray, alpha = img[:, :, 0], img[:, :, 1]
    elif channels == 4:
        # BGRA2GRAY weighs B, G, R as BGR2GRAY does, without copying the three channels out first
        gray, alpha = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY), img[:, :, 3]
    else:
        rows: np.ndarray = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2GRAY)
        return rows
    out: np.ndarray = _ON_WHITE[(gray.astype(np.uint16) << 8) | alpha]
    return out


def reduced_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` scaled down, keeping the aspect, to at most ``max_pixels`` pixels.

    A side never goes below 1; a line one pixel high is only made shorter.
    """
    if width * height <= max_pixels:
        return width, height
    s = math.sqrt(max_pixels / (width * height))
    w, h = max(1, int(width * s)), max(1, int(height * s))
    return (min(w, max_pixels // h), h) if h == 1 else (w, min(h, max_pixels // w))


def _jpeg_reduction(width: int, height: int, max_pixels: int) -> int:
    """``cv2.imread`` flags decoding a JPEG at 1/2, 1/4 or 1/8 scale (gray): the least reduction under the cap.

    libjpeg decodes at the smaller scale directly (no full-size image in memory); JPEG has no
    alpha, so gray loses nothing we use. EXIF orientation is ignored, as with IMREAD_UNCHANGED.
    """
    flag = cv2.IMREAD_REDUCED_GRAYSCALE_8  # at most 1/8: anything larger is area-scaled after decoding
    for factor, reduced in ((2, cv2.IMREAD_REDUCED_GRAYSCALE_2), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4)):
        if -(-width // factor) * -(-height // factor) <= max_pixels:  # libjpeg rounds the sides up
            flag = reduced
            break
    return int(flag) | cv2.IMREAD_IGNORE_ORIENTATION


def _out_of_memory(exc: cv2.error) -> bool:
    """Whether an OpenCV error is an allocation that failed (``cv::Error::StsNoMem``)."""
    text = str(exc)
    return getattr(exc, "code", None) == cv2.Error.StsNoMem or "Failed to allocate" in text \
        or "Insufficient memory" in text


def decode_image(data: bytes, source: Path | str = "<memory>", max_pixels: int = MAX_PIXELS, *,
                 decode_max_pixels: int = DECODE_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes (first frame of an animation) to gray ``uint8``.

    An image with more than ``decode_max_pixels`` pixels comes back area-scaled to about that
    many (a JPEG is decoded at 1/2, 1/4 or 1/8 scale directly; a GIF that large is refused);
    smaller ones exactly as decoded.

    Raises:
        ImageReadError: not an image, an unsupported format, too many pixels, damaged, or more
            memory needed than this process may use (see :func:`limit_memory`).
    """
    if not data:
        raise ImageReadError(source, "the file is empty")
    fmt = image_format(data[:16])
    if fmt is None:
        raise ImageReadError(source, NOT_AN_IMAGE)
    size = header_size(data, fmt)
    flags = cv2.IMREAD_UNCHANGED
    if size is not None:
        w, h = size
        if w <= 0 or h <= 0:
            raise ImageReadError(source, f"the {fmt} header gives an empty size ({w}x{h})")
        if w * h > max_pixels:
            raise ImageReadError(source, f"too large: {w}x{h} pixels (the limit is {max_pixels:,} pixels)")
        if fmt == "JPEG" and w * h > decode_max_pixels:
            flags = _jpeg_reduction(w, h, decode_max_pixels)
        if fmt == "GIF" and w * h > decode_max_pixels:
            # OpenCV's GIF decoder allocates and fills about 8 bytes a pixel of the GIF's screen
            # before reading any image data (a 600-byte file claiming 10000x10000 took 860 MB),
            # and cannot decode reduced: above the decode cap a GIF is refused.
            raise ImageReadError(source, f"too large for a GIF: {w}x{h} pixels (GIFs are read up to "
                                         f"{decode_max_pixels:,} pixels)")
    if fmt == "PNG" and _png_chunks_overrun(data):
        # OpenCV's PNG reader allocates (and fills) what a chunk's length field claims: one
        # flipped bit there made a 300-byte file take 2 GB and 4 s before it was refused.
        raise ImageReadError(source, "the PNG data is damaged or truncated")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if image is None or image.size == 0:
            raise ImageReadError(source, f"the {fmt} data is damaged or truncated")
        h, w = image.shape[:2]
        if w * h > max_pixels:
            raise ImageReadError(source, f"too large: {w}x{h} pixels")
        if w * h <= decode_max_pixels:
            return to_gray(image)
        # Rebinding ``image`` lets each full-size array go as soon as the next one exists. Without
        # alpha, 8- and 16-bit images are scaled before conversion (only the small copy is added).
        # With alpha the image is flattened onto white first (in stripes, see to_gray), so that
        # scaling averages what is seen, not colour hidden under transparent pixels; floats and
        # rarer types too, as scaling would change their peak (and cv2.resize lacks some types).
        reduced = reduced_size(w, h, decode_max_pixels)
        if image.dtype in (np.uint8, np.uint16) and (image.ndim == 2 or image.shape[2] in (1, 3)):
            image = cv2.resize(image, reduced, interpolation=cv2.INTER_AREA)
            return to_gray(image)
        image = to_gray(image)
        small: np.ndarray = cv2.resize(image, reduced, interpolation=cv2.INTER_AREA)
        return small
    except MemoryError as exc:
        raise ImageReadError(source, OUT_OF_MEMORY) from exc
    except cv2.error as exc:
        if _out_of_memory(exc):
            raise ImageReadError(source, OUT_OF_MEMORY) from exc
        raise ImageReadError(source, f"the {fmt} data is damaged or unsupported ({str(exc).strip()[:120]})") from exc


def read_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as gray ``uint8`` (ink and paper as in the file).

    Raises:
        ImageReadError: with the reason, for anything that is not a usable image.
    """
    return decode_image(read_file(path), path, max_pixels)


def limit_memory(max_bytes: int) -> bool:
    """Cap this process's address space (``RLIMIT_AS``) at ``max_bytes``; False where that is unsupported.

    Why: without a cap, an image that needs more memory than the machine has is ended by the
    kernel's OOM killer, which takes the whole process (a labeling worker, and so the batch);
    under a cap the allocation fails instead, and :func:`decode_image` reports that file as
    :data:`OUT_OF_MEMORY`. The cap counts *virtual* memory (thread stacks, malloc arenas, mapped
    libraries), which is far above what the process really uses: measure the process's own
    VmSize (:func:`address_space`) and give the cap room above it. POSIX only; the cap can never
    be raised again by this process, only lowered, and a hard limit already lower is kept.
    """
    try:
        import resource
    except ImportError:  # Windows
        return False
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            max_bytes = min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, hard))
    except (AttributeError, ValueError, OSError):  # no RLIMIT_AS here, or refused
        return False
    return True


def address_space() -> int | None:
    """This process's virtual size in bytes (VmSize, Linux), or ``None`` where it cannot be read."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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
