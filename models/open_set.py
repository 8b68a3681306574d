"""How well the default "none of these" threshold separates known from unknown characters.

    python -m models.open_set [--split background|evaluation] [--episodes N] [--sweep F,F,...] [--json]

Each episode draws 2N characters of the split (:class:`EpisodeSampler`, as ``models.evaluate``
does): the first N are the support set (K examples each) and give 15 known queries each; the
other N are characters the support set does not hold and give 15 unknown queries each (as many
unknown as known queries). The threshold is :func:`default_threshold` of the support set alone
and the distances are the app's :class:`FewShotClassifier`'s. Per episode: *known kept*, the
fraction of known queries within the threshold of some prototype; *kept and correct*, those
also nearest their own class's prototype; *unknown rejected*, the fraction of unknown queries
beyond it from every prototype; *accuracy* without the rule, for comparison. Figures are means
over episodes with 95% confidence intervals; the seed is fixed.

``--split background`` uses the 5 background alphabets held out of the encoder's training (its
training alphabets would give it tighter clusters than new characters get): choose constants
there, with ``--sweep`` listing the figures for other values of ``KEEP_FACTOR``. ``--split
evaluation`` is for reporting, once. Embeddings are cached under ``runs/open_set/`` per split
and model file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from models.calibration import split_embeddings
from models.evaluate import mean_and_ci
from models.omniglot import REPO_ROOT, data_dir
from models.sampler import EpisodeSampler
from protoglyph.core.classifier import FewShotClassifier
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.threshold import KEEP_FACTOR, default_threshold

QUERIES = 15
CACHE_DIR = REPO_ROOT / "runs" / "open_set"
METRICS = ("kept", "kept_correct", "rejected", "accuracy")
HEADERS = ("known kept", "kept & correct", "unknown rejected", "accuracy, no rule")


def embeddings(split: str, session: EncoderSession, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` and character labels ``(N,)`` of a split, cached per model weights
    (the same cache code as the calibration's)."""
    return split_embeddings(split, session, folder, CACHE_DIR)


def episode(emb: np.ndarray, support: np.ndarray, query: np.ndarray, ways: int, shots: int,
            factors: tuple[float, ...]) -> np.ndarray:
    """``(len(factors), 4)`` figures of one episode (see :data:`METRICS`), one row per keep factor."""
    dim = emb.shape[1]
    per_class = emb[support].reshape(2 * ways, shots, dim)[:ways]
    clf = FewShotClassifier(dim)
    for j, examples in enumerate(per_class):
        clf.add_examples(j, examples)
    base = default_threshold(dict(enumerate(per_class)))
    assert base is not None
    _, d_known = clf.distances(emb[query[: ways * QUERIES]])
    _, d_unknown = clf.distances(emb[query[ways * QUERIES :]])
    known, unknown = d_known.min(1), d_unknown.min(1)
    correct = d_known.argmin(1) == np.repeat(np.arange(ways), QUERIES)
    rows = []
    for factor in factors:
        threshold = base * factor / KEEP_FACTOR
        kept = known <= threshold
        rows.append((kept.mean(), (kept & correct).mean(), (unknown > threshold).mean(), correct.mean()))
    return np.array(rows)


def measure(emb: np.ndarray, labels: np.ndarray, ways: int, shots: int, episodes: int, seed: int,
            factors: tuple[float, ...]) -> np.ndarray:
    """``(episodes, len(factors), 4)`` per-episode figures of one N-way K-shot task."""
    rng = np.random.default_rng(seed)
    sampler = EpisodeSampler(labels, 2 * ways, shots, QUERIES)
    return np.stack([episode(emb, *sampler.sample(rng), ways, shots, factors) for _ in range(episodes)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("background", "evaluation"), default="background")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ways", default="5,20", help="comma-separated N (default 5,20)")
    p.add_argument("--shots", default="1,5", help="comma-separated K (default 1,5)")
    p.add_argument("--sweep", default="", help="comma-separated KEEP_FACTOR values to list besides the default")
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = p.parse_args(argv)
    session = EncoderSession(args.model)
    t0 = time.perf_counter()
    emb, labels = embeddings(args.split, session, data_dir(args.data))
    print(f"{session.info.model_name} {session.info.model_version} on {args.split} alphabets: {len(labels)} drawings, "
          f"{labels.max() + 1} characters (embedded or cached in {time.perf_counter() - t0:.1f} s); "
          f"{args.episodes} episodes per task, {QUERIES} known + {QUERIES} unknown queries per class, "
          f"seed {args.seed}; mean ± 95% CI in percent")
    factors = (KEEP_FACTOR, *(float(f) for f in args.sweep.split(",") if f and float(f) != KEEP_FACTOR))
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"  {'task':<14}" + "".join(f"{h:>20}" for h in HEADERS))
    for ways in (int(w) for w in args.ways.split(",")):
        for shots in (int(k) for k in args.shots.split(",")):
            figures = measure(emb, labels, ways, shots, args.episodes, args.seed, factors)
            key = f"{ways}w{shots}s"
            results[key] = {m: mean_and_ci(figures[:, 0, i]) for i, m in enumerate(METRICS)}
            print(f"  {key:<14}" + "".join(f"{100 * r['mean']:13.2f} ± {100 * r['ci95']:4.2f}"
                                           for r in results[key].values()))
            for j, factor in enumerate(factors[1:], 1):
                means = figures[:, j].mean(0)
                print(f"    factor {factor:<5g}" + "".join(f"{100 * m:13.2f}       " for m in means[:3]))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
