"""Peak memory of reading one very large image, and what a reduced decode does to the glyph.

    python -m benchmarks.reader_memory [--side 10000] [--runs 3] [--json] [--rlimit]

Makes its own test images in a temporary folder: ``--side`` x ``--side`` PNGs (8-bit gray,
8-bit RGBA, 16-bit gray) and a colour JPEG, each a glyph on plain paper. Every case is
decoded with ``decode_image`` in a fresh process, once as shipped ("reduced": images over
``DECODE_MAX_PIXELS`` are decoded smaller) and once with the reduction switched off
("full", what every image got before), and the process's peak RSS (which sees OpenCV's
allocations, unlike tracemalloc) is printed with its growth over the process just
before decoding, and the peak once ``preprocess`` has run on the result too (what a labeling
worker does next): the median of ``--runs`` runs. (Peak RSS is VmHWM on Linux: see :func:`max_rss_mb`.)

It then compares ``preprocess`` of the reduced and the full decode of an 8000x8000 glyph with
40-pixel strokes (mean absolute difference of the 32x32 encoder inputs, in [0, 1]).

``--rlimit`` also measures what an address-space limit (``RLIMIT_AS``) means for a labeling
worker: a process that has imported numpy, cv2 and onnxruntime and holds an
``EncoderSession`` like a worker's, its VmSize/VmPeak/VmRSS, and whether decoding each large
image (then embedding it) under a limit of VmSize + 1.5 GB (or a tight VmSize + 0.3 GB)
succeeds or fails cleanly, with the reduced decode or the full one (as before it), with one
OpenCV thread or sixteen (what a 16-core machine gets by default), and whether the session
still embeds afterwards.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
MB = 2**20


def draw_glyph(side: int, stroke: int) -> np.ndarray:
    """A white ``side`` x ``side`` page with a black glyph (a ring, a bar and a hook) of ``stroke``-pixel lines."""
    page = np.full((side, side), 255, np.uint8)
    c = side // 2
    cv2.ellipse(page, (c, c), (side // 4, side // 3), 0, 30, 330, 0, stroke, cv2.LINE_AA)
    cv2.line(page, (side // 5, side // 2), (4 * side // 5, side // 2), 0, stroke, cv2.LINE_AA)
    cv2.line(page, (3 * side // 5, side // 6), (2 * side // 5, 5 * side // 6), 0, stroke, cv2.LINE_AA)
    return page


def make_cases(folder: Path, side: int) -> dict[str, Path]:
    """Write the test images; ``{case name: path}``."""
    gray = draw_glyph(side, max(2, side // 200))
    bgra = np.zeros((side, side, 4), np.uint8)  # transparent paper, the glyph opaque dark blue
    bgra[..., 0] = 120
    bgra[..., 3] = 255 - gray
    colour = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    colour[..., 2] = np.maximum(colour[..., 2], 60)  # dark red ink: really a colour image
    deep = gray.astype(np.uint16) * 257
    cases = {
        "PNG gray 8-bit": (".png", gray, []),
        "PNG RGBA 8-bit": (".png", bgra, []),
        "JPEG colour": (".jpg", colour, [cv2.IMWRITE_JPEG_QUALITY, 90]),
        "PNG gray 16-bit": (".png", deep, []),
    }
    paths = {}
    for i, (name, (ext, image, params)) in enumerate(cases.items()):
        ok, buf = cv2.imencode(ext, image, params + ([cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else []))
        assert ok, name
        path = folder / f"case{i}{ext}"
        path.write_bytes(buf.tobytes())
        paths[name] = path
    return paths


def max_rss_mb() -> float:
    """This process's peak RSS (MB): VmHWM where /proc has it, else ``ru_maxrss``.

    ``ru_maxrss`` alone is wrong here: Linux carries it over ``fork`` and ``exec``, so a child
    of this (large) parent would report the parent's peak; VmHWM belongs to the new process.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else MB)


def child_decode(path: str, mode: str) -> None:
    """In a fresh process: read the file, decode it, print the memory figures as JSON."""
    import time

    from protoglyph.core import imagefile

    data = Path(path).read_bytes()
    before = max_rss_mb()
    kwargs: dict[str, int] = {}
    if mode == "full":
        if "decode_max_pixels" not in inspect.signature(imagefile.decode_image).parameters:
            kwargs = {}  # code from before the reduced decode: every decode is full
        else:
            kwargs = {"decode_max_pixels": 10**12}
    start = time.perf_counter()
    image = imagefile.decode_image(data, path, **kwargs)
    seconds = time.perf_counter() - start
    peak = max_rss_mb()
    from protoglyph.core.preprocess import preprocess

    preprocess(image)  # what a labeling worker does next with it
    print(json.dumps({"before_mb": before, "peak_mb": peak, "shape": list(image.shape), "seconds": seconds,
                      "with_preprocess_mb": max_rss_mb()}))


def measure(path: Path, mode: str, runs: int) -> dict[str, float | str]:
    """Median figures of ``runs`` fresh processes decoding ``path``."""
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-m", "benchmarks.reader_memory", "--child", mode, str(path)],
                             cwd=REPO, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"shape": "x".join(str(v) for v in results[0]["shape"][::-1]),
            "peak_mb": median(r["peak_mb"] for r in results),
            "growth_mb": median(r["peak_mb"] - r["before_mb"] for r in results),
            "seconds": median(r["seconds"] for r in results),
            "with_preprocess_mb": median(r["with_preprocess_mb"] for r in results)}


def glyph_difference(folder: Path) -> dict[str, float]:
    """Mean |preprocess(reduced) - preprocess(full)| of an 8000x8000 glyph with 40-px strokes."""
    from protoglyph.core import imagefile
    from protoglyph.core.preprocess import preprocess

    page = draw_glyph(8000, 40)
    out = {}
    for ext in (".png", ".jpg"):
        data = cv2.imencode(ext, page)[1].tobytes()
        reduced = imagefile.decode_image(data)
        full = imagefile.decode_image(data, decode_max_pixels=10**12)
        a, b = preprocess(reduced), preprocess(full)
        out[f"{ext[1:].upper()} {reduced.shape[1]}x{reduced.shape[0]} vs {full.shape[1]}x{full.shape[0]}"] = float(
            np.abs(a - b).mean())
    return out


def child_rlimit(paths: list[str], headroom_mb: int, mode: str, cv2_threads: int) -> None:
    """In a fresh process set up like a labeling worker: VmSize, then decodes under RLIMIT_AS.

    ``cv2_threads`` (0: OpenCV's default, one per core) matters: every OpenCV pool thread adds
    an 8 MB stack and a 64 MB malloc arena of address space once it first runs.
    """
    if cv2_threads:
        cv2.setNumThreads(cv2_threads)
    from protoglyph.core import imagefile
    from protoglyph.core.encoder import EncoderSession

    def status() -> dict[str, int]:
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmSize", "VmPeak", "VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
        return fields

    session = EncoderSession(REPO / "desktop" / "protoglyph" / "assets" / "encoder.onnx", threads=1, batch_size=16)
    session.embed_images([draw_glyph(105, 6)])  # the first run allocates the session's arenas
    start = status()
    limit = start["VmSize"] * 1024 + headroom_mb * MB
    applied = imagefile.limit_memory(limit)
    print(json.dumps({"event": "start", **start, "limit_mb": limit / MB, "applied": applied,
                      "cv2_threads": cv2.getNumThreads()}), flush=True)
    kwargs = {"decode_max_pixels": 10**12} if mode == "full" else {}
    for path in paths:
        try:
            image = imagefile.decode_image(Path(path).read_bytes(), path, **kwargs)
            outcome = f"ok {image.shape[1]}x{image.shape[0]}"
            session.embed_images([image])
        except imagefile.ImageReadError as exc:
            outcome = f"ImageReadError: {exc.reason}"
        except Exception as exc:  # what the worker would see: anything but ImageReadError is a finding
            outcome = f"{type(exc).__name__}: {str(exc)[:160]}"
        print(json.dumps({"event": "decode", "path": path, "outcome": outcome, **status()}), flush=True)
    embedded = session.embed_images([draw_glyph(105, 6)]).shape
    print(json.dumps({"event": "end", "embedding": list(embedded), **status()}), flush=True)


def rlimit_report(paths: dict[str, Path], headroom_mb: int, mode: str, cv2_threads: int) -> list[dict[str, object]]:
    """Run :func:`child_rlimit` in a fresh process; its JSON lines, and how it ended."""
    names = {str(p): n for n, p in paths.items()}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reader_memory", "--child-rlimit",
                           str(headroom_mb), mode, str(cv2_threads), *names], cwd=REPO, capture_output=True, text=True)
    lines: list[dict[str, object]] = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if "path" in row:
                row = {"event": row.pop("event"), "case": names.get(str(row.pop("path")), "?"), **row}
            lines.append(row)
    lines.append({"event": "exit", "returncode": proc.returncode, "stderr": proc.stderr.strip()[-300:]})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rlimit", action="store_true", help="also measure an RLIMIT_AS in a worker-like process")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--child-rlimit", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_decode(args.child[1], args.child[0])
        return
    if args.child_rlimit:
        headroom, mode, threads, *paths = args.child_rlimit
        child_rlimit(paths, int(headroom), mode, int(threads))
        return
    from protoglyph.core import imagefile

    reduced_exists = "decode_max_pixels" in inspect.signature(imagefile.decode_image).parameters
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_cases(Path(tmp), args.side)
        rows = []
        for name, path in paths.items():
            for mode in (("full", "reduced") if reduced_exists else ("full",)):
                rows.append({"case": name, "file_mb": path.stat().st_size / MB, "mode": mode,
                             **measure(path, mode, args.runs)})
        report: dict[str, object] = {"side": args.side, "runs": args.runs, "decode": rows}
        if reduced_exists:
            report["glyph_mean_abs_difference"] = glyph_difference(Path(tmp))
        if args.rlimit:
            # (headroom MB, decode, OpenCV threads: 0 = default, 16 = what a 16-core machine gets)
            configs = ((1536, "reduced", 1), (1536, "reduced", 16), (1536, "full", 1), (300, "reduced", 1))
            report["rlimit"] = {f"VmSize + {h} MB, {mode} decode, cv2 threads {t or 'default'}":
                                rlimit_report(paths, h, mode, t) for h, mode, t in configs}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.side}x{args.side} images, median of {args.runs} fresh processes per row")
    print(f"{'case':<18}{'file MB':>9}  {'mode':<8}{'decoded to':>12}{'peak RSS MB':>13}"
          f"{'growth MB':>11}{'seconds':>9}{'+preprocess MB':>16}")
    for r in rows:
        print(f"{r['case']:<18}{r['file_mb']:>9.1f}  {r['mode']:<8}{r['shape']:>12}{r['peak_mb']:>13.0f}"
              f"{r['growth_mb']:>11.0f}{r['seconds']:>9.2f}{r['with_preprocess_mb']:>16.0f}")
    for case, diff in dict(report.get("glyph_mean_abs_difference", {})).items():  # type: ignore[call-overload]
        print(f"preprocess, reduced vs full decode, 8000x8000 glyph, 40-px strokes, {case}: "
              f"mean |difference| {diff:.4f}")
    for label, lines in dict(report.get("rlimit", {})).items():  # type: ignore[call-overload]
        print(f"\nRLIMIT_AS = {label} in a worker-like process (numpy, cv2, onnxruntime, one EncoderSession):")
        for line in lines:
            print("  " + json.dumps(line))


if __name__ == "__main__":
    main()
