"""Fuzzing the image reader: damaged files of every supported format must come back as an image or a reason.

A small valid image of every format Protoglyph reads is made here (PNG gray, RGB, RGBA and
16-bit, JPEG baseline and progressive, BMP, TIFF, WebP lossy and lossless, GIF), then many
seeded variants of each: truncated at every length up to 64 bytes and at a spread beyond,
single and multiple bit flips, the header's width and height set to 0, 1, huge or negative
(including sizes just inside the pixel limit, which pass the header check and leave the
decoder to cope with a 100-megapixel image in a few hundred bytes), and zeroed runs of bytes.
Each goes through ``decode_image``, which must return a 2-D ``uint8`` array of at most
``DECODE_MAX_PIXELS`` pixels or raise ``ImageReadError``: nothing else, quickly, and without
the process's peak memory growing by more than a real image would need.

Decoding runs in this process (no variant crashed a decoder when this was written). To look for
one that does, run the module as a script, which prints every variant before the next:
``python tests/test_imagefile_fuzz.py "PNG RGBA"`` (a sample's name; none: all of them).
"""

from __future__ import annotations

import io
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from protoglyph.core.imagefile import DECODE_MAX_PIXELS, ImageReadError, decode_image

SEED = 2024
#: Longest one variant may take (seconds): a guard against a decoder stuck on a damaged file, far
#: above the milliseconds each takes (speed is measured in benchmarks/reader_memory.py).
SLOWEST = 20.0


def glyph(h: int = 19, w: int = 23) -> np.ndarray:
    """A tiny gray glyph on white, with some noise so that every format has real data to code."""
    page = np.full((h, w), 255, np.uint8)
    cv2.circle(page, (w // 2, h // 2), min(h, w) // 3, 0, 2)
    cv2.line(page, (2, h - 3), (w - 3, 2), 60, 1)
    return page


def _cv(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok, ext
    return buf.tobytes()


def _gif() -> bytes:
    """A two-frame animated GIF, made with Pillow (OpenCV cannot write GIF)."""
    frames = [Image.fromarray(glyph()), Image.fromarray(255 - glyph())]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def samples() -> dict[str, bytes]:
    """One small valid file per format and layout."""
    gray = glyph()
    rng = np.random.default_rng(SEED)
    bgr = np.dstack([gray, 255 - gray, rng.integers(0, 256, gray.shape, dtype=np.uint8)])
    bgra = np.dstack([bgr, np.where(gray < 128, 255, 40).astype(np.uint8)])
    return {
        "PNG gray": _cv(".png", gray),
        "PNG RGB": _cv(".png", bgr),
        "PNG RGBA": _cv(".png", bgra),
        "PNG 16-bit": _cv(".png", gray.astype(np.uint16) * 257),
        "PNG 16-bit RGBA": _cv(".png", bgra.astype(np.uint16) * 257),
        "JPEG": _cv(".jpg", bgr, (cv2.IMWRITE_JPEG_QUALITY, 90)),
        "JPEG progressive": _cv(".jpg", gray, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        "BMP": _cv(".bmp", bgr),
        "TIFF": _cv(".tiff", bgra),
        "WebP lossy": _cv(".webp", bgr, (cv2.IMWRITE_WEBP_QUALITY, 80)),
        "WebP lossless": _cv(".webp", bgra, (cv2.IMWRITE_WEBP_QUALITY, 101)),
        "GIF": _gif(),
    }


def size_fields(name: str, data: bytes) -> list[tuple[int, str]]:
    """``(offset, struct format)`` of the width and height fields in a sample's headers."""
    if name.startswith("PNG"):
        return [(16, ">I"), (20, ">I")]
    if name == "BMP":
        return [(18, "<i"), (22, "<i")]
    if name.startswith("JPEG"):
        i = 2
        while i + 9 < len(data):
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                return [(i + 7, ">H"), (i + 5, ">H")]
            i += 2 + length
        raise AssertionError("no SOF marker")
    if name == "TIFF":
        (ifd,) = struct.unpack("<I", data[4:8])
        (count,) = struct.unpack("<H", data[ifd : ifd + 2])
        found = {}
        for k in range(count):
            e = ifd + 2 + 12 * k
            tag, kind = struct.unpack("<HH", data[e : e + 4])
            if tag in (256, 257):
                found[tag] = (e + 8, "<H" if kind == 3 else "<I")
        return [found[256], found[257]]
    if name == "WebP lossy":
        return [(26, "<H"), (28, "<H")]
    if name == "WebP lossless":  # 14-bit fields inside a 32-bit word: set the whole word
        return [(21, "<I")]
    if name == "GIF":
        fields = [(6, "<H"), (8, "<H")]
        i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
        while data[i] == 0x21:  # extension blocks before the first image
            i += 2
            while data[i]:
                i += 1 + data[i]
            i += 1
        assert data[i] == 0x2C
        return [*fields, (i + 5, "<H"), (i + 7, "<H")]
    raise AssertionError(name)


def _set(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    kind = fmt[1]
    bits = 8 * size
    if kind.islower():  # signed: keep the value in range
        value = max(-(1 << (bits - 1)), min(value, (1 << (bits - 1)) - 1))
    else:
        value &= (1 << bits) - 1
    return data[:offset] + struct.pack(fmt, value) + data[offset + size :]


def with_png_crcs(data: bytes) -> bytes:
    """The PNG with every whole chunk's CRC made right again, so damage gets past libpng's CRC check."""
    out, pos = bytearray(data), 8
    while pos + 12 <= len(out):
        (length,) = struct.unpack(">I", out[pos : pos + 4])
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[pos + 4 : end]))
        pos = end + 4
    return bytes(out)


def variants(name: str, data: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """Malformed versions of one valid file, each with a short description.

    A PNG's damaged variants (all but the cuts) come twice: as damaged, and with the chunks'
    CRCs made right, which is what reaches the decoder beyond libpng's first check.
    """
    n = len(data)
    for cut in range(min(64, n)):
        yield f"cut {cut}", data[:cut]
    for cut in sorted(set(np.linspace(64, n - 1, 24).astype(int).tolist())):
        yield f"cut {cut}", data[:cut]
    for label, damaged in _damaged(name, data, rng):
        yield label, damaged
        if name.startswith("PNG"):
            yield f"{label}, CRCs right", with_png_crcs(damaged)


def _damaged(name: str, data: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    n = len(data)
    for _ in range(50):
        pos = int(rng.integers(n))
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        yield f"flip {pos}", bytes(flipped)
    for _ in range(30):
        flipped = bytearray(data)
        for pos in rng.integers(n, size=int(rng.integers(2, 12))):
            flipped[int(pos)] ^= 1 << int(rng.integers(8))
        yield "flips", bytes(flipped)
    head = min(n, 64)
    for _ in range(20):  # flips in the header, where they change the most
        flipped = bytearray(data)
        for pos in rng.integers(head, size=int(rng.integers(1, 4))):
            flipped[int(pos)] ^= 1 << int(rng.integers(8))
        yield "header flips", bytes(flipped)
    fields = size_fields(name, data)
    values = (0, 1, -1, 0x7FFF, 0xFFFF, 65_500, 10_000, 0x7FFFFFFF, 0xFFFFFFFF, -(2**31))
    for offset, fmt in fields:
        for value in values:
            yield f"field {offset}={value}", _set(data, offset, fmt, value)
    for w, h in ((10_000, 10_000), (0, 0), (65_535, 1), (1, 65_535), (9_999, 9_999), (100_000, 1_000)):
        both = data
        for (offset, fmt), value in zip(fields, (w, h) * (len(fields) // 2 or 1), strict=False):
            both = _set(both, offset, fmt, value)
        yield f"size {w}x{h}", both
    for length in (4, 16, 64):
        for start in sorted(set(np.linspace(0, max(0, n - length), 10).astype(int).tolist())):
            yield f"zero {start}+{length}", data[:start] + bytes(min(length, n - start)) + data[start + length :]


def check(name: str, label: str, data: bytes) -> str:
    """Decode one variant: ``"ok"`` or ``"refused"``; anything else fails with the variant named."""
    start = time.perf_counter()
    try:
        image = decode_image(data, f"{name}: {label}")
        outcome = "ok"
    except ImageReadError:
        outcome = "refused"
    except Exception as exc:  # the finding this test is for
        raise AssertionError(f"{name}, {label}: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - start
    assert seconds < SLOWEST, f"{name}, {label}: took {seconds:.1f} s"
    if outcome == "ok":
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 2, (name, label)
        assert 0 < image.size <= DECODE_MAX_PIXELS, (name, label, image.shape)
    return outcome


def peak_rss_mb(reset: bool = False) -> float | None:
    """This process's peak RSS (VmHWM, MB), first set back to the current RSS if ``reset``; None off Linux.

    The reset (``5`` into /proc/self/clear_refs) keeps earlier tests' large images out of the figure.
    """
    try:
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def test_every_damaged_variant_is_an_image_or_a_reason() -> None:
    rng = np.random.default_rng(SEED)
    counts: dict[str, dict[str, int]] = {}
    rss_before = peak_rss_mb(reset=True)
    for name, data in samples().items():
        assert check(name, "intact", data) == "ok", name
        tally = counts.setdefault(name, {"ok": 0, "refused": 0})
        for label, variant in variants(name, data, rng):
            tally[check(name, label, variant)] += 1
    total = sum(sum(t.values()) for t in counts.values())
    rss_after = peak_rss_mb()
    growth = None if rss_before is None or rss_after is None else rss_after - rss_before
    print(f"\nfuzzed {total} variants of {len(counts)} files; peak RSS grew "
          + ("(not measured here)" if growth is None else f"{growth:.0f} MB"))
    for name, tally in counts.items():
        print(f"  {name:<18} {tally['ok']:>4} decoded, {tally['refused']:>4} refused")
    assert total >= 2000
    # A progressive JPEG claiming 10000x10000 in 600 bytes takes 200 MB, as a real one does (libjpeg
    # keeps every coefficient); a PNG chunk or GIF screen claiming gigabytes took 2 GB and 860 MB.
    assert growth is None or growth < 400, f"peak RSS grew {growth:.0f} MB decoding tiny files"


if __name__ == "__main__":  # explore one sample in a process of its own: python tests/test_imagefile_fuzz.py NAME
    which = sys.argv[1:]
    gen = np.random.default_rng(SEED)
    for sample_name, sample in samples().items():
        for lbl, var in variants(sample_name, sample, gen):
            if not which or sample_name in which:
                try:
                    print(sample_name, lbl, check(sample_name, lbl, var), flush=True)
                except AssertionError as failure:
                    print("FAIL", failure, flush=True)
