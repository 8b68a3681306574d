"""Reading image files: every format the app promises, as gray ``uint8``, and a clear reason for each refusal."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.core import imagefile
from protoglyph.core.imagefile import (
    MAX_PIXELS,
    ImageReadError,
    decode_image,
    encode_png,
    header_size,
    image_format,
    read_image,
    shrink_to,
    to_gray,
)

GRAY = np.random.default_rng(0).integers(0, 256, (24, 40), dtype=np.uint8)


def encoded(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    assert ok
    return buf.tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def gif_frame(pixels: list[int]) -> bytes:
    """One 2x2 image block, LZW-coded with 3-bit codes (a clear code before every pair keeps the width)."""
    codes = [c for i in range(0, 4, 2) for c in (4, *pixels[i : i + 2])] + [5]
    bits = sum(code << (3 * i) for i, code in enumerate(codes))
    data = bits.to_bytes((3 * len(codes) + 7) // 8, "little")
    return b"\x2c" + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x02" + bytes([len(data)]) + data + b"\x00"


def two_frame_gif() -> bytes:
    """A 2x2 GIF89a, palette black/white: frame 1 is a black diagonal, frame 2 its inverse."""
    header = b"GIF89a" + struct.pack("<HHBBB", 2, 2, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    return header + gif_frame([0, 1, 1, 0]) + gif_frame([1, 0, 0, 1]) + b"\x3b"


@pytest.mark.parametrize(("ext", "params", "fmt"), [
    (".png", [], "PNG"), (".bmp", [], "BMP"), (".tiff", [], "TIFF"),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], "WebP"),  # quality above 100: lossless
])
def test_lossless_gray_formats_read_exactly(tmp_path: Path, ext: str, params: list[int], fmt: str) -> None:
    data = encoded(ext, GRAY, params)
    assert image_format(data[:16]) == fmt
    image = read_image(write(tmp_path / f"g{ext}", data))
    assert image.dtype == np.uint8 and image.shape == GRAY.shape
    np.testing.assert_array_equal(image, GRAY)


def test_header_sizes_match_the_images() -> None:
    colour = np.dstack([GRAY] * 3)
    for ext, fmt in ((".png", "PNG"), (".bmp", "BMP"), (".jpg", "JPEG"), (".webp", "WebP")):
        assert header_size(encoded(ext, colour), fmt) == (40, 24), ext
    assert header_size(two_frame_gif(), "GIF") == (2, 2)
    assert header_size(encoded(".tiff", GRAY), "TIFF") is None
    assert image_format(b"hello world") is None


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    deep = np.array([[0, 1000, 257 * 100, 65535]], dtype=np.uint16)
    image = read_image(write(tmp_path / "deep.png", encoded(".png", deep)))
    np.testing.assert_array_equal(image, [[0, 4, 100, 255]])


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    bgra = np.zeros((2, 3, 4), np.uint8)  # black everywhere
    bgra[0, :, 3] = 255  # top row opaque
    bgra[1, 1, 3] = 128  # bottom row: transparent, half, transparent
    image = read_image(write(tmp_path / "alpha.png", encoded(".png", bgra)))
    np.testing.assert_array_equal(image, [[0, 0, 0], [255, 127, 255]])


def test_colour_jpeg_becomes_luma(tmp_path: Path) -> None:
    red = np.zeros((30, 50, 3), np.uint8)
    red[..., 2] = 255
    image = read_image(write(tmp_path / "red.jpg", encoded(".jpg", red, [cv2.IMWRITE_JPEG_QUALITY, 95])))
    assert image.shape == (30, 50) and image.dtype == np.uint8
    assert abs(int(image.mean()) - 76) <= 2  # 0.299 * 255


def test_gif_decodes_to_its_first_frame(tmp_path: Path) -> None:
    image = read_image(write(tmp_path / "anim.gif", two_frame_gif()))
    np.testing.assert_array_equal(image, [[0, 255], [255, 0]])


def test_unicode_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "глиф 字.png", encoded(".png", GRAY))
    np.testing.assert_array_equal(read_image(path), GRAY)


def test_too_large_is_refused_from_the_header_without_decoding(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    ihdr = struct.pack(">II", 50_000, 50_000) + bytes([8, 0, 0, 0, 0])
    bomb = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded an image refused by its header")

    monkeypatch.setattr(imagefile.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageReadError, match="too large: 50000x50000") as caught:
        read_image(write(tmp_path / "bomb.png", bomb))
    assert caught.value.path == tmp_path / "bomb.png" and f"{MAX_PIXELS:,}" in caught.value.reason


def test_size_limit_also_applies_after_decoding_when_the_header_says_nothing() -> None:
    with pytest.raises(ImageReadError, match="too large: 40x24"):
        decode_image(encoded(".tiff", GRAY), max_pixels=100)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty.png", b"", "the file is empty"),
    ("notes.png", b"these are my notes\n", "not an image Protoglyph can read"),
    ("cut.png", encoded(".png", GRAY)[:120], "the PNG data is damaged or truncated"),
    ("cut.jpg", encoded(".jpg", GRAY)[:20], "the JPEG data is damaged"),
])
def test_unusable_files_give_a_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert caught.value.path == path and caught.value.reason.startswith(reason)


def test_folders_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not a file"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="cannot be read \\(No such file or directory\\)") as caught:
        read_image(tmp_path / "gone.png")
    assert caught.value.path == tmp_path / "gone.png"


def test_to_gray_handles_every_layout() -> None:
    assert to_gray(GRAY[:, :, None]).shape == GRAY.shape
    np.testing.assert_array_equal(to_gray(np.dstack([GRAY, np.full_like(GRAY, 255)])), GRAY)  # gray + alpha
    np.testing.assert_array_equal(to_gray(np.array([[0.0, 0.5, 1.0]], np.float32)), [[0, 128, 255]])
    with pytest.raises(ValueError, match="unexpected image shape"):
        to_gray(np.zeros((2, 2, 2, 2), np.uint8))


def test_encode_png_round_trips_and_shrink_keeps_the_aspect() -> None:
    np.testing.assert_array_equal(decode_image(encode_png(GRAY)), GRAY)
    assert shrink_to(GRAY, 100) is GRAY
    assert shrink_to(np.zeros((500, 2000), np.uint8), 1024).shape == (256, 1024)
    assert shrink_to(np.zeros((3000, 1), np.uint8), 300).shape == (300, 1)
