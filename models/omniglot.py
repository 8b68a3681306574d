"""Read Omniglot from the official zip layout (``images_background.zip`` and friends).

The zips are read as they are, never unpacked: ``<set>/<Alphabet>/characterNN/<id>_<kk>.png``.
The folder holding them is an argument; ``PROTOGLYPH_OMNIGLOT`` is its default, and
``../shared/omniglot`` beside the checkout is the fallback.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from protoglyph.core.drawing import render_strokes as render_canvas

ENV_VAR = "PROTOGLYPH_OMNIGLOT"
REPO_ROOT = Path(__file__).resolve().parent.parent
FALLBACK_DIR = REPO_ROOT.parent / "shared" / "omniglot"


class DataNotFound(FileNotFoundError):
    """The Omniglot zips are not where we were told to look."""


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The Omniglot folder: ``path``, else ``$PROTOGLYPH_OMNIGLOT``, else ``../shared/omniglot``."""
    chosen = Path(path) if path else Path(os.environ.get(ENV_VAR) or FALLBACK_DIR)
    if not chosen.is_dir():
        raise DataNotFound(
            f"Omniglot folder not found: {chosen} (pass --data DIR or set {ENV_VAR})"
        )
    return chosen


def zip_path(folder: Path, set_name: str) -> Path:
    """Path of ``<set_name>.zip`` inside the Omniglot folder, with a clear error if absent."""
    path = folder / f"{set_name}.zip"
    if not path.is_file():
        raise DataNotFound(f"{path} is missing (download the official {set_name}.zip into {folder})")
    return path


@dataclass(frozen=True)
class Drawing:
    """One Omniglot drawing: which character it is and who drew it."""

    alphabet: str
    character: str  # "<Alphabet>/characterNN", unique across the data set
    drawer: int  # 1..20
    member: str  # path inside the zip


def list_drawings(path: Path) -> list[Drawing]:
    """Every PNG drawing in one Omniglot zip, sorted by path (so orders are reproducible)."""
    drawings = []
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            parts = member.split("/")
            if len(parts) != 4 or not parts[3].endswith(".png") or parts[0].startswith("__MACOSX"):
                continue
            _, alphabet, character, filename = parts
            drawer = int(filename[:-4].split("_")[-1])
            drawings.append(Drawing(alphabet, f"{alphabet}/{character}", drawer, member))
    if not drawings:
        raise DataNotFound(f"{path} holds no Omniglot drawings (<set>/<Alphabet>/<character>/*.png)")
    return drawings


def character_labels(drawings: list[Drawing]) -> tuple[list[str], np.ndarray]:
    """Sorted character names and, for every drawing, its ``int64`` index into them."""
    characters = sorted({d.character for d in drawings})
    index = {c: i for i, c in enumerate(characters)}
    return characters, np.array([index[d.character] for d in drawings], dtype=np.int64)


def read_images(path: Path, drawings: list[Drawing]) -> list[np.ndarray]:
    """Decode the drawings' PNGs as ``(105, 105)`` ``uint8`` arrays (ink 0, paper 255)."""
    images = []
    with zipfile.ZipFile(path) as archive:
        for drawing in drawings:
            data = np.frombuffer(archive.read(drawing.member), dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"{path}:{drawing.member} is not a readable PNG")
            images.append(image)
    return images


def read_strokes(text: str) -> list[list[tuple[float, float, float]]]:
    """Parse one Omniglot pen-trajectory file into strokes of ``(x, y, t_ms)``.

    Coordinates are in the 105x105 image frame; the file's y is negative downwards, so it
    is flipped here to image rows (y down).
    """
    strokes: list[list[tuple[float, float, float]]] = []
    current: list[tuple[float, float, float]] = []
    for line in text.splitlines():
        line = line.strip()
        if line in ("START", "BREAK"):
            if current:
                strokes.append(current)
            current = []
        elif line:
            x, y, t = line.split(",")
            current.append((float(x), -float(y), float(t)))
    if current:
        strokes.append(current)
    return strokes


def render_strokes(strokes: list[list[tuple[float, float, float]]], size: int = 420, pen: int = 3) -> np.ndarray:
    """Replay pen trajectories (105x105 frame) onto a white canvas, as a person's drawing.

    The app's own stroke rendering (:func:`protoglyph.core.drawing.render_strokes`), so the
    fidelity figures measure exactly what the canvas feeds the encoder.

    Returns:
        ``(size, size)`` ``uint8``, black antialiased ink of ``pen`` pixels on white.
    """
    return render_canvas([np.array([(x, y) for x, y, _ in s]) for s in strokes], 105, 105, pen * 105 / size, size)
