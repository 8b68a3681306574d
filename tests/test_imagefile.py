"""Reading image files: every format the app promises, as gray ``uint8``, and a clear reason for each refusal."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
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
from tests.hang_guard import finishes

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


NOT_REGULAR = "not a regular file (a FIFO, socket or device); skipped"


def refusal_within(seconds: float, path: Path) -> str:
    """The reason ``read_image(path)`` gives, which must come within ``seconds`` (a hang fails, it doesn't stall)."""
    with pytest.raises(ImageReadError) as refused:
        finishes(seconds, lambda: read_image(path), [path])
    assert refused.value.path == path
    return refused.value.reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_socket_and_device_are_refused_without_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert refusal_within(5, fifo) == NOT_REGULAR
    monkeypatch.chdir(tmp_path)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock.png")  # relative: a socket path may only be about 100 bytes long
        assert refusal_within(5, tmp_path / "sock.png") == NOT_REGULAR
    if Path("/dev/null").exists():
        assert refusal_within(5, Path("/dev/null")) == NOT_REGULAR


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_file_that_becomes_a_fifo_after_any_check_is_still_refused(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of checking a path and then opening it: what counts is the descriptor actually opened."""
    fifo = tmp_path / "swapped.png"
    os.mkfifo(fifo)
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # it was a regular file when checked
    monkeypatch.setattr(os.path, "isfile", lambda path: True)
    assert refusal_within(5, fifo) == NOT_REGULAR


def test_short_reads_still_give_the_whole_file_and_growth_is_seen(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain ``os.read`` may return fewer bytes than asked (a network share, a signal): it is read on."""
    data = bytes(range(256)) * 40
    path = tmp_path / "glyph.bin"
    path.write_bytes(data)
    real = os.read
    monkeypatch.setattr(imagefile.os, "read", lambda fd, n: real(fd, min(n, 7)))
    assert imagefile.read_file(path) == data
    assert imagefile.read_file(path, head=100) == data[:100]
    # a file that grew after it was measured is read to its new end, and judged by that size
    real_fstat = os.fstat
    monkeypatch.setattr(imagefile.os, "fstat",
                        lambda fd: os.stat_result((*real_fstat(fd)[:6], 10, *real_fstat(fd)[7:])))  # st_size 10
    assert imagefile.read_file(path) == data
    with pytest.raises(ImageReadError, match="too large"):
        imagefile.read_file(path, max_bytes=1000)


def to_gray_before(image: np.ndarray) -> np.ndarray:
    """``to_gray`` as it was before it worked in stripes and lookups: the reference it must equal exactly."""
    img = image
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        f = img.astype(np.float32)
        peak = float(f.max()) if f.size else 1.0
        img = np.clip(f / (peak if peak > 1.0 else 1.0) * 255.0, 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    channels = img.shape[2]
    if channels == 1:
        return np.ascontiguousarray(img[:, :, 0])
    if channels == 2:
        gray, alpha = img[:, :, 0], img[:, :, 1]
    elif channels == 4:
        gray, alpha = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY), img[:, :, 3]
    else:
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    a = alpha.astype(np.float32) / 255.0
    out: np.ndarray = (gray.astype(np.float32) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)
    return out


def test_to_gray_is_exactly_what_it_was_for_every_input_value() -> None:
    rng = np.random.default_rng(5)
    every16 = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    pairs = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), -1).astype(np.uint8)  # (g, a)
    bgra = np.dstack([rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), pairs[..., 1]])
    bgra[..., :3] = pairs[..., :1]  # gray g under every alpha a
    cases = [
        every16, np.dstack([every16] * 3), np.dstack([every16] * 4), pairs, bgra,
        rng.integers(0, 256, (1500, 1100, 4), dtype=np.uint8),  # several stripes of rows
        rng.integers(0, 256, (1500, 1100, 3), dtype=np.uint8),
        rng.integers(0, 65536, (1200, 1000, 4), dtype=np.uint16),
        rng.random((1300, 900), dtype=np.float32) * 3, rng.random((40, 30, 4)),  # float64 BGRA
        rng.integers(0, 256, (30, 20, 5), dtype=np.uint8), GRAY[:, :, None], GRAY[::2, ::3],
    ]
    for image in cases:
        np.testing.assert_array_equal(to_gray(image), to_gray_before(image), err_msg=f"{image.dtype} {image.shape}")


def test_images_under_the_decode_cap_decode_exactly_as_before() -> None:
    rng = np.random.default_rng(6)
    images = {".png": [GRAY, rng.integers(0, 256, (30, 20, 4), dtype=np.uint8),
                       rng.integers(0, 65536, (30, 20, 3), dtype=np.uint16)],
              ".jpg": [np.dstack([GRAY] * 3)], ".tiff": [rng.integers(0, 65536, (30, 20), dtype=np.uint16)],
              ".bmp": [np.dstack([GRAY] * 3)], ".webp": [rng.integers(0, 256, (30, 20, 4), dtype=np.uint8)]}
    for ext, group in images.items():
        for image in group:
            data = encoded(ext, image)
            before = to_gray_before(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
            np.testing.assert_array_equal(decode_image(data), before, err_msg=f"{ext} {image.dtype} {image.shape}")


def glyph_page(side: int, stroke: int) -> np.ndarray:
    """White page, black glyph: a ring open on the right and a bar through it."""
    page = np.full((side, side), 255, np.uint8)
    c = side // 2
    cv2.ellipse(page, (c, c), (side // 4, side // 3), 0, 30, 330, 0, stroke)
    cv2.line(page, (side // 5, c), (4 * side // 5, c), 0, stroke)
    return page


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_a_large_image_is_decoded_reduced_and_its_glyph_still_found(ext: str) -> None:
    from protoglyph.core.preprocess import preprocess

    page = glyph_page(6000, 30)
    image = decode_image(encoded(ext, page))
    assert image.dtype == np.uint8 and image.ndim == 2
    assert image.size <= imagefile.DECODE_MAX_PIXELS
    assert image.shape == ((3000, 3000) if ext == ".jpg" else (4000, 4000))  # JPEG: decoded at 1/2 scale
    small, full = preprocess(image), preprocess(page)
    assert small.max() > 0.9 and np.abs(small - full).mean() < 0.01


def test_reduction_of_every_layout_scales_what_is_seen() -> None:
    """With a tiny cap: gray, colour and 16-bit are scaled before conversion; alpha is flattened first."""
    rng = np.random.default_rng(7)
    cap = 60 * 40
    for image in (rng.integers(0, 256, (200, 300), dtype=np.uint8), rng.integers(0, 256, (200, 300, 3), np.uint8),
                  rng.integers(0, 65536, (200, 300), dtype=np.uint16)):
        out = decode_image(encoded(".png", image), decode_max_pixels=cap)
        np.testing.assert_array_equal(out, to_gray(cv2.resize(image, (60, 40), interpolation=cv2.INTER_AREA)))
    bgra = np.zeros((200, 300, 4), np.uint8)  # black under transparency, an opaque gray square
    bgra[50:150, 100:200] = (128, 128, 128, 255)
    out = decode_image(encoded(".png", bgra), decode_max_pixels=cap)
    np.testing.assert_array_equal(out, cv2.resize(to_gray(bgra), (60, 40), interpolation=cv2.INTER_AREA))
    assert out[0, 0] == 255 and out[20, 30] == 128  # the hidden black stays hidden


def test_reduced_size_keeps_the_aspect_and_the_cap() -> None:
    assert imagefile.reduced_size(10_000, 10_000, 16_000_000) == (4000, 4000)
    assert imagefile.reduced_size(300, 200, 10**6) == (300, 200)
    for w, h in ((100_000_000, 1), (1, 100_000_000), (50_000, 2), (12_345, 6_789)):
        rw, rh = imagefile.reduced_size(w, h, 16_000_000)
        assert 1 <= rw <= w and 1 <= rh <= h and rw * rh <= 16_000_000, (w, h)


@pytest.mark.parametrize("error", [MemoryError(), cv2.error("OpenCV(5.0.0) error: (-4:Insufficient memory) "
                                                             "Failed to allocate 400000000 bytes")])
def test_running_out_of_memory_while_decoding_is_a_reason(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def out_of_memory(*args: object) -> None:
        raise error

    monkeypatch.setattr(imagefile.cv2, "imdecode", out_of_memory)
    with pytest.raises(ImageReadError, match="too large to decode in the memory allowed"):
        decode_image(encoded(".png", GRAY))


def test_a_png_chunk_claiming_more_than_the_file_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing: OpenCV allocated and filled the claimed length (2 GB, 4 s for a 300-byte file)."""
    png = bytearray(encoded(".png", GRAY))
    png[33:37] = struct.pack(">I", 0x8000_0000 | len(png))  # the length of the chunk after IHDR
    cut = encoded(".png", GRAY)[:-30]  # a plain truncation is the same damage

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded a PNG whose chunks overrun the file")

    monkeypatch.setattr(imagefile.cv2, "imdecode", no_decoding)
    for data in (bytes(png), cut):
        with pytest.raises(ImageReadError, match="the PNG data is damaged or truncated"):
            decode_image(data)


def test_a_gif_larger_than_the_decode_cap_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by fuzzing: OpenCV's GIF decoder fills ~8 bytes a pixel of the screen first (860 MB, 600 bytes)."""
    gif = bytearray(two_frame_gif())
    gif[6:10] = struct.pack("<HH", 10_000, 10_000)

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded a GIF over the decode cap")

    monkeypatch.setattr(imagefile.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageReadError, match="too large for a GIF: 10000x10000 pixels"):
        decode_image(bytes(gif))


LIMITED_CHILD = """
import sys, cv2
cv2.setNumThreads(1)  # as a labeling worker should: no pool threads' stacks and arenas in the cap
from protoglyph.core.imagefile import ImageReadError, address_space, decode_image, limit_memory
big, small = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert limit_memory(address_space() + 100 * 2**20)
try:
    decode_image(big)
    print("decoded")
except ImageReadError as exc:
    print(exc.reason)
print(decode_image(small).shape)
"""


@pytest.mark.skipif(imagefile.address_space() is None, reason="VmSize is only known on Linux")
def test_under_a_memory_limit_a_large_image_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    big = np.zeros((6000, 6000, 4), np.uint8)  # 144 MB decoded, more than the 100 MB allowed
    big[1000:5000, 2000:4000] = 255
    write(tmp_path / "big.png", encoded(".png", big, [cv2.IMWRITE_PNG_COMPRESSION, 1]))
    write(tmp_path / "small.png", encoded(".png", GRAY))
    out = subprocess.run([sys.executable, "-c", LIMITED_CHILD, str(tmp_path / "big.png"), str(tmp_path / "small.png")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["too large to decode in the memory allowed", "(24, 40)"]
