"""Omniglot as arrays for meta-training: every drawing through the app's own preprocessing.

Each drawing is stored as its two glyph maps (:func:`protoglyph.core.preprocess.glyph_maps`:
the distance to its normalised skeleton and the signed distance to its ink's edge), so
training can redraw it for any preprocessing version with any pen radius, ink width and
geometry jitter, and get exactly what :func:`encoder_inputs` gives with no jitter. Results
are cached in ``.cache/`` (ignored by git), keyed by the zip's size and mtime and the
version of the maps.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.omniglot import REPO_ROOT, character_labels, list_drawings, read_images, zip_path
from protoglyph.core import preprocess as pp

#: Background alphabets held out for validation: the official "small1" subset, so that an
#: encoder trained without them can be checked honestly on their replayed pen strokes too.
VALIDATION_ALPHABETS = ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin")
#: Where preprocessed sets are cached; ``PROTOGLYPH_CACHE_DIR`` overrides it.
CACHE_DIR = Path(os.environ.get("PROTOGLYPH_CACHE_DIR") or REPO_ROOT / ".cache")
#: Distances beyond this never matter for a pen of the radii used (keeps float16 exact enough).
MAX_DISTANCE = 8.0


def maps_version(preprocess: str) -> str:
    """What the stored maps of a preprocessing version are; part of every cache key."""
    return f"maps-v1:{pp.WORK_SIZE}:{pp.GLYPH_BOX}:{pp.PREPROCESS_MIN_PEN_WIDTHS[preprocess]}"


@dataclass
class GlyphSet:
    """Drawings of one Omniglot zip, grouped by character.

    Attributes:
        maps: ``(N, 2, WORK_SIZE, WORK_SIZE)`` ``float16``: skeleton distances (capped at
            ``MAX_DISTANCE``) and signed ink distances.
        label: ``(N,)`` ``int64`` character index into ``characters``.
        drawer: ``(N,)`` ``int64`` drawer number 1..20.
        characters: character names ``"<Alphabet>/characterNN"``.
    """

    maps: np.ndarray
    label: np.ndarray
    drawer: np.ndarray
    characters: list[str]

    def alphabet_of(self, character_index: int) -> str:
        return self.characters[character_index].split("/")[0]

    def subset(self, alphabets: set[str], keep: bool) -> GlyphSet:
        """The drawings whose alphabet is (``keep=True``) or is not in ``alphabets``."""
        chosen = [i for i, c in enumerate(self.characters) if (c.split("/")[0] in alphabets) == keep]
        remap = np.full(len(self.characters), -1, dtype=np.int64)
        remap[chosen] = np.arange(len(chosen))
        rows = np.flatnonzero(remap[self.label] >= 0)
        return GlyphSet(
            self.maps[rows],
            remap[self.label[rows]],
            self.drawer[rows],
            [self.characters[i] for i in chosen],
        )


def load(folder: Path, set_name: str, progress: bool = True, preprocess: str = pp.PREPROCESS_VERSION) -> GlyphSet:
    """All drawings of ``<folder>/<set_name>.zip`` as a :class:`GlyphSet` (cached), framed for ``preprocess``."""
    path = zip_path(folder, set_name)
    stat = path.stat()
    key = hashlib.sha1(
        f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}:{maps_version(preprocess)}".encode()
    ).hexdigest()[:16]
    cache = CACHE_DIR / f"{set_name}-{key}.npz"
    if cache.is_file():
        return _read_cache(cache)
    drawings = list_drawings(path)
    characters, labels = character_labels(drawings)
    maps = np.empty((len(drawings), 2, pp.WORK_SIZE, pp.WORK_SIZE), dtype=np.float16)
    chunk = 512
    for start in range(0, len(drawings), chunk):
        part = drawings[start : start + chunk]
        maps[start : start + len(part)] = glyph_maps(read_images(path, part), preprocess)
        if progress:
            print(f"preprocessing {set_name}: {start + len(part)}/{len(drawings)}", flush=True)
    result = GlyphSet(
        maps,
        labels,
        np.array([d.drawer for d in drawings], dtype=np.int64),
        characters,
    )
    _write_cache(cache, result)
    return result


def glyph_maps(images: list, preprocess: str = pp.PREPROCESS_VERSION) -> np.ndarray:
    """``(N, 2, WORK_SIZE, WORK_SIZE)`` ``float16`` maps of images, as :class:`GlyphSet` stores them."""
    distance, signed = pp.glyph_maps(images, preprocess)
    return np.stack([np.minimum(distance, MAX_DISTANCE), signed], axis=1).astype(np.float16)


def _read_cache(cache: Path) -> GlyphSet:
    with np.load(cache) as data:
        return GlyphSet(data["maps"], data["label"], data["drawer"], list(data["characters"]))


def _write_cache(cache: Path, result: GlyphSet) -> None:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, maps=result.maps, label=result.label, drawer=result.drawer,
             characters=np.array(result.characters))
    tmp.replace(cache)


#: Each training glyph of the font corpus enters as its clean rendering and this many
#: simulated variants (a scan, a handwriting-like distortion, another weight, in turn), each
#: through the app's preprocessing: they play the part of Omniglot's different drawers.
FONT_VARIANTS = 3


#: At most this many glyphs (faces) of one character enter training, chosen at random: Latin
#: has hundreds of faces, and each costs a skeleton per variant.
FONT_FACES_PER_CHARACTER = 16


def load_fonts(corpus_file: Path, split: str = "train", variants: int = FONT_VARIANTS,
               min_items: int = 6, faces_per_character: int = FONT_FACES_PER_CHARACTER,
               progress: bool = True, preprocess: str = pp.PREPROCESS_VERSION) -> GlyphSet:
    """The font corpus's ``split`` families as a :class:`GlyphSet` (cached like :func:`load`).

    Args:
        corpus_file: a corpus built by ``python -m models.fonts`` (its ``.npz``).
        min_items: characters with fewer items (glyphs x variants) are left out, so that an
            episode can draw a support item and queries from each.
    Returns:
        characters named ``"font:<script>/U+XXXX"``; ``drawer`` holds the family index.
    """
    from models import fonts, glyph_augment

    stat = corpus_file.stat()
    key = hashlib.sha1(f"{corpus_file.name}:{stat.st_size}:{split}:{variants}:{min_items}:{faces_per_character}:"
                       f"{maps_version(preprocess)}".encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"fonts-{split}-{key}.npz"
    if cache.is_file():
        return _read_cache(cache)
    corpus = fonts.load(corpus_file)
    rows = corpus.rows(split)
    order = np.random.default_rng(11).permutation(len(rows))
    rank = np.empty(len(rows), np.int64)
    seen: dict[int, int] = {}
    for i in order:  # the how-manieth of its character each row is, in a random order
        c = int(corpus.label[rows[i]])
        rank[i] = seen.get(c, 0)
        seen[c] = rank[i] + 1
    rows = np.sort(rows[rank < faces_per_character])
    counts = np.bincount(corpus.label[rows], minlength=len(corpus.characters)) * (1 + variants)
    rows = rows[counts[corpus.label[rows]] >= min_items]
    kept = np.unique(corpus.label[rows])
    remap = np.full(len(corpus.characters), -1, np.int64)
    remap[kept] = np.arange(len(kept))
    makers = (glyph_augment.scan, glyph_augment.handwriting, glyph_augment.weight)
    n = len(rows) * (1 + variants)
    maps = np.empty((n, 2, pp.WORK_SIZE, pp.WORK_SIZE), dtype=np.float16)
    label = np.repeat(remap[corpus.label[rows]], 1 + variants)
    drawer = np.repeat(corpus.family[rows], 1 + variants)
    chunk = 256
    for start in range(0, len(rows), chunk):
        images = []
        for r in rows[start : start + chunk]:
            rng = np.random.default_rng([7, int(r)])
            image = corpus.images[r]
            images.append(image)
            images.extend(makers[v % len(makers)](image, rng) for v in range(variants))
        at = start * (1 + variants)
        maps[at : at + len(images)] = glyph_maps(images, preprocess)
        if progress and (start // chunk) % 40 == 0:
            print(f"preprocessing fonts ({split}): {start + len(images) // (1 + variants):,}/{len(rows):,} glyphs",
                  flush=True)
    result = GlyphSet(maps, label, drawer, [f"font:{corpus.characters[c]}" for c in kept])
    _write_cache(cache, result)
    return result
