"""How well the default "none of these" threshold separates known from unknown characters.

    python -m models.open_set [--split background|evaluation] [--episodes N] [--sweep F,F,...] [--json]

Each episode draws 2N characters of the split (:class:`EpisodeSampler`, as ``models.evaluate``
does): the first N are the support set (K examples each) and give 15 known queries each; the
other N are characters the support set does not hold and give 15 unknown queries each (as many
unknown as known queries). The threshold is the support set's default threshold alone, under
the model's own rule (``threshold.ThresholdRule`` from its metadata; encoder 1's without one),
and the distances are the app's :class:`FewShotClassifier`'s. Per episode: *known kept*, the
fraction of known queries within the threshold of some prototype; *kept and correct*, those
also nearest their own class's prototype; *unknown rejected*, the fraction of unknown queries
beyond it from every prototype; *accuracy* without the rule, for comparison. Figures are means
over episodes with 95% confidence intervals; the seed is fixed.

``--split background`` uses the 5 background alphabets held out of the encoder's training (its
training alphabets would give it tighter clusters than new characters get): choose constants
there, with ``--sweep`` listing the figures for the rule with other keep factors (one for all
shots). ``--split evaluation`` is for reporting, once. Embeddings are cached under
``runs/open_set/`` per split and model file.

    python -m models.open_set --domains [--fit] [--fonts CACHE] [--model PATH] [--out RULE.json]

``--domains`` judges the model's own threshold rule (``threshold.ThresholdRule``, from its
metadata) on every domain at once, validation data only: Omniglot's validation alphabets and
the font suite's printed, scanned, handwriting-like and handwriting-typeface glyphs
(``models.font_suite``), 5/20-way, 1/5-shot, both sides per domain. ``--fit`` chooses the rule
that keeps at least ``--keep`` (95%) of the person's own items in *every* domain and task while
rejecting as many others as it can, over a grid of keep factors (one for one-example classes,
one for many), spread floors and effective shots; it is chosen on one set of episodes (seed
``--seed``) and reported on another (seed ``--seed + 1``), and ``--out`` writes its metadata
keys for ``models.calibration --rule``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from models import font_suite
from models.calibration import split_embeddings
from models.evaluate import mean_and_ci
from models.omniglot import REPO_ROOT, data_dir
from models.sampler import EpisodeSampler
from protoglyph.core.classifier import Calibration, FewShotClassifier
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.threshold import ThresholdRule, blend_keep

QUERIES = 15
CACHE_DIR = REPO_ROOT / "runs" / "open_set"
METRICS = ("kept", "kept_correct", "rejected", "accuracy")
HEADERS = ("known kept", "kept & correct", "unknown rejected", "accuracy, no rule")


def embeddings(split: str, session: EncoderSession, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` and character labels ``(N,)`` of a split, cached per model weights
    (the same cache code as the calibration's)."""
    return split_embeddings(split, session, folder, CACHE_DIR)


def episode(emb: np.ndarray, support: np.ndarray, query: np.ndarray, ways: int, shots: int,
            rules: tuple[ThresholdRule, ...]) -> np.ndarray:
    """``(len(rules), 4)`` figures of one episode (see :data:`METRICS`), one row per threshold rule."""
    dim = emb.shape[1]
    per_class = emb[support].reshape(2 * ways, shots, dim)[:ways]
    clf = FewShotClassifier(dim)
    for j, examples in enumerate(per_class):
        clf.add_examples(j, examples)
    scatter = sum(float(((e - e.mean(0)) ** 2).sum()) for e in per_class.astype(np.float64))
    _, d_known = clf.distances(emb[query[: ways * QUERIES]])
    _, d_unknown = clf.distances(emb[query[ways * QUERIES :]])
    known, unknown = d_known.min(1), d_unknown.min(1)
    correct = d_known.argmin(1) == np.repeat(np.arange(ways), QUERIES)
    rows = []
    for rule in rules:
        threshold = rule.threshold(scatter, [shots] * ways)
        kept = known <= threshold
        rows.append((kept.mean(), (kept & correct).mean(), (unknown > threshold).mean(), correct.mean()))
    return np.array(rows)


def measure(emb: np.ndarray, labels: np.ndarray, ways: int, shots: int, episodes: int, seed: int,
            rules: tuple[ThresholdRule, ...]) -> np.ndarray:
    """``(episodes, len(rules), 4)`` per-episode figures of one N-way K-shot task."""
    rng = np.random.default_rng(seed)
    sampler = EpisodeSampler(labels, 2 * ways, shots, QUERIES)
    return np.stack([episode(emb, *sampler.sample(rng), ways, shots, rules) for _ in range(episodes)])


TASKS = (("5w1s", 5, 1), ("5w5s", 5, 5), ("20w1s", 20, 1), ("20w5s", 20, 5))
#: The grid ``--fit`` searches.
KEEP_FACTORS = tuple(round(1.5 + 0.1 * i, 1) for i in range(36))
SPREAD_FLOORS = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5)


def omniglot_trials(emb: np.ndarray, labels: np.ndarray, ways: int, shots: int, episodes: int,
                    seed: int) -> list[font_suite.Trial]:
    """Episodes of N known and N unknown characters (as :func:`measure`) as threshold-free trials."""
    rng = np.random.default_rng(seed)
    sampler = EpisodeSampler(labels, 2 * ways, shots, QUERIES)
    out = []
    for _ in range(episodes):
        support, query = sampler.sample(rng)
        per_class = emb[support].reshape(2 * ways, shots, -1)[:ways]
        clf = FewShotClassifier(emb.shape[1])
        for j, examples in enumerate(per_class):
            clf.add_examples(j, examples)
        truth = np.concatenate([np.repeat(np.arange(ways), QUERIES), np.full(ways * QUERIES, -1)])
        out.append(font_suite.trial_of(clf, list(per_class), emb[query], truth))
    return out


def domain_trials(session: EncoderSession, folder: Path, fonts_cache: Path, episodes: int,
                  seed: int) -> dict[str, tuple[list[font_suite.Trial], list[str]]]:
    """Trials of every domain and task on validation data: Omniglot's validation alphabets and the font suite."""
    emb, labels = embeddings("background", session, folder)
    trials = {f"omniglot/{key}": (omniglot_trials(emb, labels, ways, shots, episodes, seed), ["Omniglot validation"])
              for key, ways, shots in TASKS}
    corpus, path = font_suite.fonts.build_with_path(fonts_cache)
    pool = font_suite.build_pool(corpus, session, font_suite.corpus_key(path), font_suite.CACHE_DIR)
    trials.update(font_suite.collect(pool, episodes, seed))
    return trials


def fit_rule(trials: dict[str, tuple[list[font_suite.Trial], list[str]]], typical_spread: float,
             keep: float = 0.95) -> tuple[ThresholdRule, float, float]:
    """The grid's rule that rejects the most others on average while keeping ``keep`` of the
    known items in every domain and task; with its worst kept and mean rejected share. If no
    rule keeps enough everywhere, the one whose worst kept share is highest.

    The grid: effective shots or not, each spread floor, and a keep factor for one-example
    classes beside the one for many (:data:`KEEP_FACTORS` each; equal ones are one factor).
    The threshold is the keep factor times a base that does not depend on it
    (``ThresholdRule.base``), so every pair of factors is judged at once per trial."""
    factors = np.array(KEEP_FACTORS)
    best: tuple[tuple[float, float], ThresholdRule, float, float] | None = None
    for effective in (False, True):
        for floor in SPREAD_FLOORS:
            rule = ThresholdRule(typical_spread, 1.0, floor, effective)
            kept, rejected = [], []
            for rows, _ in trials.values():
                cell_kept, cell_rejected = [], []
                for t in rows:
                    base = rule.base(t.scatter, t.counts)
                    m = float(np.mean([1.0 / k for k in t.counts]))
                    bound = blend_keep(m, factors[:, None], factors[None, :])  # (one shot, many)
                    known = np.sort(t.known) / base
                    cell_kept.append(np.searchsorted(known, bound, side="right") / max(len(known), 1))
                    if len(t.unknown):
                        unknown = np.sort(t.unknown) / base
                        cell_rejected.append(1.0 - np.searchsorted(unknown, bound, side="right") / len(unknown))
                kept.append(np.mean(cell_kept, 0))
                rejected.append(np.mean(cell_rejected, 0) if cell_rejected else np.full(bound.shape, np.nan))
            worst = np.min(kept, 0)
            mean_rejected = np.nanmean(rejected, 0)
            ok = worst >= keep
            value = np.where(ok, mean_rejected, -np.inf) if ok.any() else worst
            i, j = _best_cell(value)
            score = (1.0 if ok.any() else 0.0, float(value[i, j]))
            if best is None or score > best[0]:
                one_shot = None if i == j else float(factors[i])
                chosen = ThresholdRule(typical_spread, float(factors[j]), floor, effective, one_shot)
                best = (score, chosen, float(worst[i, j]), float(mean_rejected[i, j]))
    assert best is not None
    return best[1], best[2], best[3]


def _best_cell(value: np.ndarray) -> tuple[int, int]:
    """The (one-shot, many-shot) factor indices of the highest ``value``: one factor for both
    where that does as well, else the first in order."""
    top = np.nanmax(value)
    diagonal = np.flatnonzero(np.diag(value) == top)
    if len(diagonal):
        return int(diagonal[0]), int(diagonal[0])
    i, j = np.unravel_index(int(np.argmax(value == top)), value.shape)
    return int(i), int(j)


def rule_metadata(rule: ThresholdRule) -> dict[str, Any]:
    """The metadata keys of a rule, as ``models.calibration`` and ``models.export`` take them."""
    meta = Calibration(1.0).with_rule(rule).to_metadata()
    meta.pop("calibrated_temperature")
    return meta


def print_domains(title: str, results: dict[str, Any]) -> None:
    print(title)
    font_suite.print_results(results)


def domains_main(args: argparse.Namespace) -> None:
    session = EncoderSession(args.model)
    rule = Calibration.from_model(session.info).threshold_rule
    folder = data_dir(args.data)
    print(f"{session.info.model_name} {session.info.model_version}: the model's rule {rule}; "
          f"{args.episodes} episodes per domain and task, validation data only")
    report = domain_trials(session, folder, args.fonts, args.episodes, args.seed + 1)
    results = {"model_rule": font_suite.summarise(report, rule)}
    print_domains("the model's rule (episodes of seed + 1):", results["model_rule"])
    if args.fit:
        chosen = domain_trials(session, folder, args.fonts, args.episodes, args.seed)
        fitted, worst, rejected = fit_rule(chosen, rule.typical_spread, args.keep)
        print(f"fitted on the episodes of seed {args.seed}: {fitted} (worst kept {100 * worst:.1f}%, "
              f"mean rejected {100 * rejected:.1f}%)")
        results["fitted_rule"] = font_suite.summarise(report, fitted)
        results["fitted"] = rule_metadata(fitted)
        print_domains("the fitted rule (episodes of seed + 1):", results["fitted_rule"])
        if args.out:
            args.out.write_text(json.dumps(results["fitted"], indent=1) + "\n")
            print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(results))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=("background", "evaluation"), default="background")
    p.add_argument("--episodes", type=int, help="episodes per task (default 1000; with --domains 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ways", default="5,20", help="comma-separated N (default 5,20)")
    p.add_argument("--shots", default="1,5", help="comma-separated K (default 1,5)")
    p.add_argument("--sweep", default="", help="comma-separated KEEP_FACTOR values to list besides the default")
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    p.add_argument("--domains", action="store_true", help="every domain: Omniglot validation and the font suite")
    p.add_argument("--fit", action="store_true", help="with --domains: choose the threshold rule")
    p.add_argument("--keep", type=float, default=0.95, help="with --fit: known share to keep in every domain")
    p.add_argument("--fonts", type=Path, default=font_suite.fonts.default_cache(), help="font cache (models.fonts)")
    p.add_argument("--out", type=Path, metavar="RULE.json", help="with --fit: write the rule's metadata keys")
    args = p.parse_args(argv)
    if args.domains:
        args.episodes = args.episodes or 200
        domains_main(args)
        return
    args.episodes = args.episodes or 1000
    session = EncoderSession(args.model)
    t0 = time.perf_counter()
    emb, labels = embeddings(args.split, session, data_dir(args.data))
    print(f"{session.info.model_name} {session.info.model_version} on {args.split} alphabets: {len(labels)} drawings, "
          f"{labels.max() + 1} characters (embedded or cached in {time.perf_counter() - t0:.1f} s); "
          f"{args.episodes} episodes per task, {QUERIES} known + {QUERIES} unknown queries per class, "
          f"seed {args.seed}; mean ± 95% CI in percent")
    rule = Calibration.from_model(session.info).threshold_rule
    print(f"  the model's rule: {rule}")
    factors = tuple(float(f) for f in args.sweep.split(",") if f)
    rules = (rule, *(dataclasses.replace(rule, keep_factor=f, one_shot_keep_factor=None) for f in factors))
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"  {'task':<14}" + "".join(f"{h:>20}" for h in HEADERS))
    for ways in (int(w) for w in args.ways.split(",")):
        for shots in (int(k) for k in args.shots.split(",")):
            figures = measure(emb, labels, ways, shots, args.episodes, args.seed, rules)
            key = f"{ways}w{shots}s"
            results[key] = {m: mean_and_ci(figures[:, 0, i]) for i, m in enumerate(METRICS)}
            print(f"  {key:<14}" + "".join(f"{100 * r['mean']:13.2f} ± {100 * r['ci95']:4.2f}"
                                           for r in results[key].values()))
            for j, factor in enumerate(factors, 1):
                means = figures[:, j].mean(0)
                print(f"    factor {factor:<5g}" + "".join(f"{100 * m:13.2f}       " for m in means[:3]))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
