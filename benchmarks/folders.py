"""A benchmark folder of small glyph PNGs, made from Omniglot's evaluation images.

The first pass writes each evaluation drawing's PNG as it is in the zip (105x105, 1-bit);
further passes (for more files than the set has) shift each drawing by a few pixels and
re-encode it, so every file is a distinct image. Folders of 1,000 files, as scans often come.
Never commit the result.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import cv2
import numpy as np

from models.omniglot import data_dir, list_drawings, zip_path


def make_folder(out: Path, count: int, data: str | None = None, seed: int = 0) -> Path:
    """Write ``count`` PNGs below ``out`` (reused if it already holds exactly that many)."""
    out.mkdir(parents=True, exist_ok=True)
    existing = sum(1 for _ in out.rglob("*.png"))
    if existing == count:
        return out
    if existing:
        raise SystemExit(f"{out} already holds {existing} PNGs, not {count}; pick another folder")
    source = zip_path(data_dir(data), "images_evaluation")
    drawings = list_drawings(source)
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(source) as archive:
        for i in range(count):
            drawing = drawings[i % len(drawings)]
            raw = archive.read(drawing.member)
            if i >= len(drawings):
                image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
                dy, dx = rng.integers(-3, 4, size=2)
                image = np.roll(image, (int(dy), int(dx)), axis=(0, 1))
                raw = cv2.imencode(".png", image)[1].tobytes()
            folder = out / f"part{i // 1000:03d}"
            folder.mkdir(exist_ok=True)
            (folder / f"glyph{i:06d}.png").write_bytes(raw)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--data", help="Omniglot folder (default $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    args = parser.parse_args(argv)
    make_folder(args.out, args.count, args.data)
    print(f"{args.count} PNGs in {args.out}")


if __name__ == "__main__":
    main()
