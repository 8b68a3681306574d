"""Canvas fidelity: are real pen strokes replayed on a canvas classified like the official images?

    python -m models.fidelity [--data DIR] [--episodes N] [--model PATH] [--json]

20-way 1-shot on the official "small1" subset (alphabets held out of training): the support
is one drawer's official image per character; the queries are another drawer's drawing of
the same character, (a) as the official image and (b) as its pen trajectory replayed onto a
420-pixel canvas with a 3-pixel pen (a mouse) and (c) a 14-pixel pen (a brush). Everything
goes through the app's preprocessing, encoder session and classifier.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

from models.evaluate import mean_and_ci, print_results
from models.omniglot import data_dir, list_drawings, read_images, read_strokes, render_strokes, zip_path
from protoglyph.core.classifier import episode_accuracy
from protoglyph.core.encoder import EncoderSession

VARIANTS = {"official": None, "canvas_pen3": 3, "canvas_pen14": 14}
LABELS = {"official": "queries as official images", "canvas_pen3": "queries replayed, 3-pixel pen",
          "canvas_pen14": "queries replayed, 14-pixel pen"}


def measure(folder: Path, session: EncoderSession, episodes: int, seed: int = 0,
            subset: str = "small1") -> dict[str, dict[str, float]]:
    images_zip = zip_path(folder, f"images_background_{subset}")
    strokes_zip = zip_path(folder, f"strokes_background_{subset}")
    drawings = list_drawings(images_zip)
    characters = sorted({d.character for d in drawings})
    by_key = {(d.character, d.drawer): d for d in drawings}
    rng = np.random.default_rng(seed)
    accs: dict[str, list[float]] = {k: [] for k in VARIANTS}
    with zipfile.ZipFile(strokes_zip) as strokes:
        for _ in range(episodes):
            chosen = rng.choice(len(characters), 20, replace=False)
            pairs = [rng.choice(np.arange(1, 21), 2, replace=False) for _ in chosen]
            support = [by_key[(characters[c], int(p[0]))] for c, p in zip(chosen, pairs, strict=True)]
            query = [by_key[(characters[c], int(p[1]))] for c, p in zip(chosen, pairs, strict=True)]
            per_class = list(session.embed_images(read_images(images_zip, support))[:, None])
            trajectories = [
                read_strokes(strokes.read(q.member.replace("images_", "strokes_")[:-4] + ".txt").decode())
                for q in query
            ]
            for name, pen in VARIANTS.items():
                if pen is None:
                    q_images = read_images(images_zip, query)
                else:
                    q_images = [render_strokes(t, 420, pen) for t in trajectories]
                accs[name].append(episode_accuracy(per_class, session.embed_images(q_images), np.arange(20)))
    return {k: mean_and_ci(v) for k, v in accs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--model", type=Path)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = measure(data_dir(args.data), EncoderSession(args.model), args.episodes)
    print(f"20-way 1-shot, official support images, {args.episodes} episodes (small1 alphabets, held out):")
    print_results(result, LABELS, args.json)


if __name__ == "__main__":
    main()
