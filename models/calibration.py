"""Fit and measure the calibration of the shown confidence (issue 11), and store it in the model.

    python -m models.calibration [--data DIR] [--model PATH] [--episodes N] [--fit-episodes N]
                                 [--typical-spread] [--rule RULE.json] [--fonts] [--fit-fonts]
                                 [--font-cache DIR] [--font-episodes N]
                                 [--out FILE.json] [--write-model PATH] [--no-evaluation] [--json]

**Fit** (validation alphabets only: the 5 background alphabets held out of training, as for
every other choice, see the model card). Episodes follow ``models/open_set.py``: each draws 2N
characters; the first N are the support set (K examples each) and give 15 *known* queries
each, the other N give 15 *unknown* queries each (characters of no class). Tasks: 5-way and
20-way, 1-shot and 5-shot, and *mixed* (N from 5 to 20, each class 1 to 5 examples), the same
number of episodes each and every task weighted alike. Two parts, fitted separately because
the multiclass log-likelihood ``log p(true outcome)`` with ``p(c) = (1 - p_u) softmax_c`` and
``p(none) = p_u`` splits into a softmax term over known queries and a logistic term over all:

- the softmax temperature ``T``: minimum NLL of the true class over the known queries
  (Newton's method on ``1/T``, where the NLL is convex);
- the open-set term ``p_u = sigmoid(a r + b + c ln N + e mean_c 1/k_c)``, ``r`` the nearest
  squared distance over the support set's default threshold: a logistic regression of
  "unknown" on those features (iteratively reweighted least squares).

**Measure**: expected calibration error (15 equal-width bins) of the shown confidence, the
probability of the nearest class, against whether the nearest class is the item's class
(never, for an unknown query), with known and unknown queries, before (the model's softmax)
and after; 95% intervals from a bootstrap over episodes; on fresh validation episodes and,
for reporting only, on the evaluation alphabets. And the ordering figure: folders of 20
classes x 5 examples holding the other 15 drawings of each and 15 drawings of each of 3
characters of no class, labeled with :class:`BatchResults`: the share of the wrong
predictions (the nearest class is not the item's) that "least certain first" puts in the
first 20% of the folder. ``--fonts`` adds the ECE on every domain x task of the font suite
(``models/font_suite.py``: printed, scanned, handwriting-like glyphs of the validation
families, cross-typeface within a script, known and unknown queries), fresh episodes.
``--fit-fonts`` fits on those families too (episodes of other seeds than the measurement's):
each of the four font domains is one more task beside Omniglot's five.

``--out`` writes the fitted values as JSON for ``models.export --calibration``;
``--write-model`` rewrites that model file's calibration metadata (weights untouched).
Embeddings are cached per model weights under ``$TMPDIR/protoglyph-calibration``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.data import VALIDATION_ALPHABETS
from models.evaluate import embed_set
from models.omniglot import data_dir
from models.sampler import EpisodeSampler
from protoglyph.core import unknown_share
from protoglyph.core.classifier import (
    EFFECTIVE_SHOTS_KEY,
    KEEP_FACTOR_KEY,
    ONE_SHOT_KEEP_FACTOR_KEY,
    OPEN_SET_KEYS,
    SPREAD_FLOOR_KEY,
    TEMPERATURE_KEY,
    TEMPERATURE_RANGE,
    TYPICAL_SPREAD_KEY,
    Calibration,
    FewShotClassifier,
    OpenSetTerm,
    open_set_features,
    softmax_probabilities,
)
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.states import ItemState
from protoglyph.core.labeling.store import BatchTable
from protoglyph.core.threshold import OpenSetReference, ThresholdRule

QUERIES = 15
BINS = 15
#: (key, ways, shots); ways or shots 0: mixed (N uniform in 5..20, each class 1..5 examples).
TASKS = (("5w1s", 5, 1), ("5w5s", 5, 5), ("20w1s", 20, 1), ("20w5s", 20, 5), ("mixed", 0, 0))
MIXED_WAYS = (5, 20)
MIXED_SHOTS = (1, 5)
#: The ordering figure's folders: classes, examples per class, characters of no class.
FOLDER_CLASSES, FOLDER_SHOTS, FOLDER_UNKNOWN = 20, 5, 3
FRONT = 0.2
BOOTSTRAP = 1000
CACHE_DIR = Path(tempfile.gettempdir()) / "protoglyph-calibration"
#: Metadata key with a line on how the values were fitted (documentation only).
FIT_KEY = "calibration_fit"


@dataclass
class Episode:
    """One few-shot episode's distances, as the app computes them.

    Attributes:
        distances: ``(n_query, N)`` ``float32`` squared distances to the N prototypes.
        truth: ``(n_query,)`` ``int64`` class index, -1 for a query of no class.
        reference: the support set's default threshold and mean inverse shots.
    """

    distances: np.ndarray
    truth: np.ndarray
    reference: OpenSetReference


# -- data -----------------------------------------------------------------------------------
def weights_digest(path: Path) -> str:
    """16 hex digits naming the model's graph and weights, not its metadata (rewriting the
    calibration keys keeps the cached embeddings valid); the file's hash without ``onnx``."""
    try:
        import onnx
    except ImportError:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return hashlib.sha256(onnx.load(str(path)).graph.SerializeToString()).hexdigest()[:16]


def split_embeddings(split: str, session: EncoderSession, folder: Path,
                     cache_dir: Path = CACHE_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` ``float32`` and character labels ``(N,)`` of ``validation`` or
    ``evaluation``, cached in ``cache_dir`` per model weights."""
    emb, labels, _ = split_embeddings_and_alphabets(split, session, folder, cache_dir)
    return emb, labels


def split_embeddings_and_alphabets(split: str, session: EncoderSession, folder: Path,
                                   cache_dir: Path = CACHE_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_embeddings` and each character's alphabet index ``(n_characters,)``."""
    cache = cache_dir / f"{split}-{weights_digest(session.path)}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            if "alphabets" in stored:
                return stored["embeddings"], stored["labels"], stored["alphabets"]
    set_name, alphabets = (("images_evaluation", None) if split == "evaluation"
                           else ("images_background", VALIDATION_ALPHABETS))
    emb, labels, groups = embed_set(folder, set_name, session, alphabets)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=cache_dir)
    os.close(fd)
    np.savez(tmp, embeddings=emb, labels=labels, alphabets=groups)
    Path(tmp).replace(cache)
    return emb, labels, groups


def unknown_characters(ways: int, share: float) -> int:
    """How many characters of no class give ``share`` of an episode's queries with ``ways`` classes."""
    return round(ways * share / (1.0 - share))


def sample_episodes(emb: np.ndarray, labels: np.ndarray, ways: int, shots: int, count: int,
                    seed: int, rule: Calibration | None = None, share: float = 0.5) -> list[Episode]:
    """``count`` open-set episodes of one task (``ways`` or ``shots`` 0: mixed), through the
    app's :class:`FewShotClassifier` (distances and default threshold; ``rule``: a calibration
    whose threshold rule to use, the model's own, as ``--typical-spread`` and ``--rule`` store it).
    ``share``: of the queries, about this share is of characters of no class (1/2: N of them)."""
    rng = np.random.default_rng(seed)
    samplers: dict[int, EpisodeSampler] = {}
    episodes = []
    for _ in range(count):
        n = ways or int(rng.integers(MIXED_WAYS[0], MIXED_WAYS[1] + 1))
        k_max = shots or MIXED_SHOTS[1]
        u = unknown_characters(n, share)
        if n not in samplers:
            samplers[n] = EpisodeSampler(labels, n + u, k_max, QUERIES)
        support, query = samplers[n].sample(rng)
        per_class = support.reshape(n + u, k_max)[:n]
        clf = FewShotClassifier(emb.shape[1], calibration=_rule_only(rule))
        for j, items in enumerate(per_class):
            k = shots or int(rng.integers(MIXED_SHOTS[0], MIXED_SHOTS[1] + 1))
            clf.add_examples(j, emb[items[:k]])
        reference = clf.open_set_reference()
        assert reference is not None
        _, d = clf.distances(emb[query])
        truth = np.concatenate([np.repeat(np.arange(n), QUERIES), np.full(u * QUERIES, -1)])
        episodes.append(Episode(d, truth, reference))
    return episodes


# -- fitting --------------------------------------------------------------------------------
def fit_temperature(tasks: Sequence[Sequence[Episode]], start: float = 1.0) -> float:
    """The softmax temperature of least NLL of the true class over the known queries.

    Each task (a list of episodes) weighs alike. With ``β = 1/T`` the mean NLL
    ``f(β) = mean[β d_y + log Σ_c exp(-β d_c)]`` is convex (``f'' = mean Var_p(d) ≥ 0``), so
    Newton's method with step halving finds the minimum in a few steps.
    """
    blocks = []  # per task: (n, N) distances of known queries (padded with inf), truth, weight
    for episodes in tasks:
        width = max(e.distances.shape[1] for e in episodes)
        ds, ys = [], []
        for e in episodes:
            known = e.truth >= 0
            d = np.full((int(known.sum()), width), np.inf)
            d[:, : e.distances.shape[1]] = e.distances[known]
            ds.append(d)
            ys.append(e.truth[known])
        d_all, y_all = np.concatenate(ds), np.concatenate(ys)
        blocks.append((d_all, d_all[np.arange(len(y_all)), y_all], 1.0 / len(y_all)))

    def moments(beta: float) -> tuple[float, float, float]:
        f = g = h = 0.0
        for d, d_true, w in blocks:
            d_min = d.min(1)
            e = np.exp(-beta * (d - d_min[:, None]))
            z = e.sum(1)
            p = e / z[:, None]
            finite = np.where(np.isfinite(d), d, 0.0)
            mean_d = (p * finite).sum(1)
            f += w * float((beta * (d_true - d_min) + np.log(z)).sum())
            g += w * float((d_true - mean_d).sum())
            h += w * float(((p * finite * finite).sum(1) - mean_d**2).sum())
        return f, g, h

    beta_max = 1.0 / TEMPERATURE_RANGE[0]  # separable data would drive T to 0: stop at the smallest the app takes
    beta = 1.0 / start
    f, g, h = moments(beta)
    for _ in range(100):
        step = g / h if h > 0 else -math.copysign(beta / 2, g)
        step = max(step, beta - beta_max)
        candidate = beta - step
        while True:
            if candidate > 0:
                f_new, g_new, h_new = moments(candidate)
                if f_new <= f + 1e-12:
                    break
            step /= 2
            candidate = beta - step
            if abs(step) < 1e-12 * beta:
                return 1.0 / beta
        converged = abs(candidate - beta) < 1e-9 * beta
        beta, f, g, h = candidate, f_new, g_new, h_new
        if converged:
            break
    return 1.0 / beta


#: The open-set term's optional features (columns of ``classifier.open_set_features``): each
#: can be left out, for the cross-alphabet comparison.
OPTIONAL_TERMS = {"margin": 3, "density": 4, "slope by shots": 5}


def fit_open_set(tasks: Sequence[Sequence[Episode]], ridge: float = 1e-6,
                 terms: Sequence[str] = tuple(OPTIONAL_TERMS)) -> OpenSetTerm:
    """The logistic regression of "unknown" on the term's features (``classifier.open_set_features``,
    the app's own code; IRLS, each task alike).

    A feature that does not vary (``ln N`` when every task has the same N) gets its weight
    from the ridge only, i.e. 0 beside the offset; so does an optional one not in ``terms``.
    """
    dropped = [column for name, column in OPTIONAL_TERMS.items() if name not in terms]
    xs, ys, ws = [], [], []
    for episodes in tasks:
        x = np.concatenate([open_set_features(e.distances, e.reference) for e in episodes])
        x[:, dropped] = 0.0
        xs.append(x)
        ys.append(np.concatenate([(e.truth < 0).astype(np.float64) for e in episodes]))
        ws.append(np.full(len(x), 1.0 / len(x)))
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    theta = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the offset is not shrunk
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x @ theta)))
        gradient = x.T @ (w * (p - y)) + penalty @ theta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    a, c, e, m, rho, am, b = (float(v) for v in theta)
    return OpenSetTerm(scale=a, offset=b, log_classes=c, inverse_shots=e, margin=m, log_density=rho,
                       scale_inverse_shots=am)


def fit(tasks: Sequence[Sequence[Episode]], model_temperature: float = 1.0,
        terms: Sequence[str] = tuple(OPTIONAL_TERMS)) -> Calibration:
    """Both parts of the calibration from the validation episodes of every task."""
    return Calibration(fit_temperature(tasks, model_temperature), fit_open_set(tasks, terms=terms))


# -- measuring ------------------------------------------------------------------------------
def confidences(episode: Episode, calibration: Calibration | None, temperature: float,
                open_set: bool = True, folder_share: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(n_query,)`` shown confidence (probability of the nearest class) and whether that
    class is the query's (never for a query of no class).

    ``calibration`` ``None``: the model's plain softmax at ``temperature`` (the app before).
    ``folder_share``: the episode's queries are a folder, shown at its own estimated share of
    unknowns (``core.unknown_share``, as ``BatchResults`` does); else at one half (the canvas).
    """
    d = episode.distances
    if calibration is None:
        p = softmax_probabilities(d, temperature)
    elif folder_share and open_set and calibration.open_set is not None:
        z = calibration.open_set.log_odds(d, episode.reference)
        unknown = unknown_share.unknown_probability(z, unknown_share.estimate(z))
        p = softmax_probabilities(d, calibration.temperature) * (1.0 - unknown)[:, None]
    else:
        p, _ = calibration.probabilities(d, episode.reference if open_set else None)
    nearest = d.argmin(1)
    return p[np.arange(len(d)), nearest].astype(np.float64), nearest == episode.truth


def bin_stats(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> np.ndarray:
    """``(bins, 3)`` count, sum of confidence and sum of correct per equal-width bin
    (bin ``i`` holds ``i/bins <= conf < (i+1)/bins``, the last one also 1)."""
    index = np.minimum((conf * bins).astype(np.int64), bins - 1)
    out = np.zeros((bins, 3))
    out[:, 0] = np.bincount(index, minlength=bins)
    out[:, 1] = np.bincount(index, conf, minlength=bins)
    out[:, 2] = np.bincount(index, correct.astype(np.float64), minlength=bins)
    return out


def ece_of(stats: np.ndarray) -> np.ndarray:
    """Expected calibration error of ``(..., bins, 3)`` pooled bin stats: ``Σ_b |Σconf_b − Σcorrect_b| / n``."""
    return np.abs(stats[..., 1] - stats[..., 2]).sum(-1) / stats[..., 0].sum(-1)


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """ECE of confidences ``(n,)`` against outcomes ``(n,)`` with ``bins`` equal-width bins."""
    return float(ece_of(bin_stats(np.asarray(conf, np.float64), np.asarray(correct), bins)))


def bootstrap_interval(per_episode: np.ndarray, statistic: Any, seed: int = 0,
                       rounds: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile interval of ``statistic(pooled)`` over episodes resampled with replacement.

    Args:
        per_episode: ``(E, ...)`` additive per-episode stats (bin stats, counts).
        statistic: maps ``(rounds, ...)`` pooled stats to ``(rounds,)`` values.
    """
    e = len(per_episode)
    counts = np.random.default_rng(seed).multinomial(e, np.full(e, 1.0 / e), size=rounds).astype(np.float64)
    pooled = (counts @ per_episode.reshape(e, -1)).reshape((rounds, *per_episode.shape[1:]))
    low, high = np.percentile(statistic(pooled), [2.5, 97.5])
    return float(low), float(high)


def calibration_figures(episodes: Sequence[Episode], calibration: Calibration | None, temperature: float,
                        known_only: bool = False, open_set: bool = True, folder_share: bool = False) -> dict[str, Any]:
    """ECE with its 95% bootstrap interval and the reliability table of one task."""
    stats = []
    for e in episodes:
        conf, correct = confidences(e, calibration, temperature, open_set, folder_share)
        if known_only:
            keep = e.truth >= 0
            conf, correct = conf[keep], correct[keep]
        stats.append(bin_stats(conf, correct))
    per_episode = np.stack(stats)
    pooled = per_episode.sum(0)
    low, high = bootstrap_interval(per_episode, ece_of)
    table = [{"bin": f"{b / BINS:.2f}-{(b + 1) / BINS:.2f}", "confidence": round(float(s[1] / s[0]), 4),
              "accuracy": round(float(s[2] / s[0]), 4), "count": int(s[0])}
             for b, s in enumerate(pooled) if s[0] > 0]
    return {"ece": round(float(ece_of(pooled)), 5), "ci95": [round(low, 5), round(high, 5)],
            "mean_confidence": round(float(pooled[:, 1].sum() / pooled[:, 0].sum()), 5),
            "accuracy": round(float(pooled[:, 2].sum() / pooled[:, 0].sum()), 5), "reliability": table}


def font_suite_figures(trials: dict[str, Any], calibration: Calibration, temperature: float) -> dict[str, Any]:
    """ECE of the shown confidence per domain x task of the font suite (``font_suite.collect``'s
    trials), known and unknown queries, with the calibration's own threshold rule."""
    rule = calibration.threshold_rule
    return {key: calibration_figures(suite_episodes(rows, rule), calibration, temperature)
            for key, (rows, _) in trials.items()}


def suite_episodes(rows: Sequence[Any], rule: ThresholdRule) -> list[Episode]:
    """Font-suite trials (``font_suite.Trial``) as episodes, with the app's reference under ``rule``."""
    return [Episode(t.distances, t.truth, t.reference(rule)) for t in rows]


def font_tasks(trials: dict[str, Any], rule: ThresholdRule) -> list[list[Episode]]:
    """The font suite's trials as fitting tasks: one per domain (its 5/20-way, 1/5-shot cells
    together), so that the four domains weigh as four of Omniglot's tasks do."""
    tasks: dict[str, list[Episode]] = {}
    for key, (rows, _) in trials.items():
        tasks.setdefault(key.split("/")[0], []).extend(suite_episodes(rows, rule))
    return list(tasks.values())


def _rule_only(rule: Calibration | None) -> Calibration | None:
    """A calibration that only sets the default threshold's rule, ``rule``'s (or none: encoder 1's)."""
    if rule is None:
        return None
    return Calibration(1.0).with_rule_of(rule)


def measure_typical_spread(emb: np.ndarray, labels: np.ndarray) -> float:
    """The encoder's ``s²``: per character, ``Σ‖x − mean‖² / (k − 1)`` of its drawings, averaged
    over characters (what ``threshold.TYPICAL_SPREAD`` is for the shipped encoder)."""
    values = []
    for c in np.unique(labels):
        x = emb[labels == c].astype(np.float64)
        if len(x) > 1:
            values.append(float(((x - x.mean(0)) ** 2).sum() / (len(x) - 1)))
    return float(np.mean(values))


def folder_results(emb: np.ndarray, support: np.ndarray, folder: np.ndarray,
                   calibration: Calibration | None, temperature: float,
                   rule: Calibration | None = None, folder_share: bool = True) -> BatchResults:
    """:class:`BatchResults` of a folder of ``(n,)`` items for ``(classes, shots)`` support items,
    as the app labels it (float16 embeddings, the default threshold, confidences at the folder's
    own share of unknowns unless ``folder_share`` is off)."""
    n = len(folder)
    table = BatchTable(Path("folder"), [f"{i:05d}.png" for i in range(n)], np.zeros(n, np.int64),
                       np.zeros(n, np.int64), emb[folder].astype(np.float16), np.full(n, ItemState.DONE, np.int8),
                       np.zeros(n, np.int8), np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    clf = FewShotClassifier(emb.shape[1], temperature, calibration=_rule_only(rule))
    for j, items in enumerate(support):
        clf.add_examples(j, emb[items])
    results = BatchResults(table, temperature, calibration, folder_share)
    keys, prototypes = clf.prototypes()
    results.set_prototypes([int(k) for k in keys], prototypes)  # type: ignore[call-overload]
    results.set_reference(clf.open_set_reference())
    results.threshold = clf.default_threshold()
    return results


def ordering_figures(emb: np.ndarray, labels: np.ndarray, calibration: Calibration, temperature: float,
                     folders: int, seed: int, unknown: int = FOLDER_UNKNOWN,
                     folder_share: bool = True) -> dict[str, Any]:
    """The share of wrong predictions in the first 20% of "least certain first", before and after.

    Wrong: the nearest class is not the item's (every item of a character of no class). Also
    ``label``: the app's label is wrong (the nearest class within the default threshold, else
    unknown). Items are shuffled, so that ties (saturated confidences) fall in random order.
    """
    rng = np.random.default_rng(seed)
    sampler = EpisodeSampler(labels, FOLDER_CLASSES + unknown, FOLDER_SHOTS, QUERIES)
    counts: dict[str, list[tuple[int, int, int]]] = {}
    for _ in range(folders):
        support, query = sampler.sample(rng)
        per_class = support.reshape(-1, FOLDER_SHOTS)[:FOLDER_CLASSES]
        truth = np.repeat(np.arange(FOLDER_CLASSES + unknown), QUERIES)
        truth[truth >= FOLDER_CLASSES] = -1
        shuffle = rng.permutation(len(query))
        items, truth = query[shuffle], truth[shuffle]
        front_size = math.ceil(FRONT * len(items))
        for name, cal in (("before", None), ("after", calibration)):
            results = folder_results(emb, per_class, items, cal, temperature, calibration, folder_share)
            front = np.zeros(len(items), bool)
            front[results.order("least certain first")[:front_size]] = True
            for kind, wrong in (("nearest", results.best != truth), ("label", results.labels() != truth)):
                counts.setdefault(f"{name}_{kind}", []).append(
                    (int((wrong & front).sum()), int(wrong.sum()), min(int(wrong.sum()), front_size)))
    out: dict[str, Any] = {}
    for key, rows in counts.items():
        arr = np.array(rows, np.float64)
        low, high = bootstrap_interval(arr, lambda s: s[:, 0] / np.maximum(s[:, 1], 1))
        out[key] = {"share": round(float(arr[:, 0].sum() / max(arr[:, 1].sum(), 1)), 5),
                    "ci95": [round(low, 5), round(high, 5)],
                    "wrong_per_folder": round(float(arr[:, 1].mean()), 3),
                    "best_possible": round(float(arr[:, 2].sum() / max(arr[:, 1].sum(), 1)), 5)}
    out["folders"] = folders
    out["items_per_folder"] = (FOLDER_CLASSES + unknown) * QUERIES
    return out


def measure(emb: np.ndarray, labels: np.ndarray, calibration: Calibration, temperature: float,
            episodes: int, seed: int) -> dict[str, Any]:
    """Every calibration figure of one split (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, ways, shots in TASKS:
        eps = sample_episodes(emb, labels, ways, shots, episodes, seed, calibration)
        out[key] = {
            "before": calibration_figures(eps, None, temperature),
            "after": calibration_figures(eps, calibration, temperature),
            "known_only_before": calibration_figures(eps, None, temperature, known_only=True),
            "known_only_temperature": calibration_figures(eps, calibration, temperature, known_only=True,
                                                          open_set=False),
        }
    return out


#: The forms of the open-set term the cross-alphabet check compares (name: optional terms).
FORMS = {"nearest only": (), "+ margin": ("margin",), "+ density": ("density",),
         "+ margin + density": ("margin", "density"),
         "+ margin + density + slope by shots": ("margin", "density", "slope by shots")}


def cross_alphabet_figures(emb: np.ndarray, labels: np.ndarray, alphabets: np.ndarray, temperature: float,
                           fit_episodes: int, episodes: int, seed: int, held_out: int = 2) -> dict[str, Any]:
    """How well each form of :data:`FORMS` carries over to alphabets it was not fitted on.

    For every way of holding ``held_out`` of the validation alphabets out, fit on the others and
    measure ECE on them (as :func:`measure` does, known + unknown queries). This is how the form
    was chosen, on the validation alphabets alone: a stand-in for new alphabets, and harsher
    than the real fit (fewer alphabets to fit on).

    Args:
        alphabets: ``(n_characters,)`` alphabet index of every character (``labels`` indexes it).
    Returns:
        per form, per task: the mean and the worst ECE over the splits; and the splits.
    """
    import itertools

    per_item = alphabets[labels]
    names = [VALIDATION_ALPHABETS[i] if i < len(VALIDATION_ALPHABETS) else str(i) for i in range(alphabets.max() + 1)]
    ece: dict[str, list[list[float]]] = {form: [] for form in FORMS}
    splits = []
    for split, test in enumerate(itertools.combinations(range(alphabets.max() + 1), held_out)):
        fit_rows = ~np.isin(per_item, test)
        parts = []
        for rows in (fit_rows, ~fit_rows):
            _, relabeled = np.unique(labels[rows], return_inverse=True)
            parts.append((emb[rows], relabeled))
        fit_tasks = [sample_episodes(*parts[0], w, k, fit_episodes, seed + 100 * split + i)
                     for i, (_, w, k) in enumerate(TASKS)]
        test_tasks = [sample_episodes(*parts[1], w, k, episodes, seed + 100 * split + 50 + i)
                      for i, (_, w, k) in enumerate(TASKS)]
        t = fit_temperature(fit_tasks, temperature)
        for form, terms in FORMS.items():
            calibration = Calibration(t, fit_open_set(fit_tasks, terms=terms))
            ece[form].append([calibration_figures(eps, calibration, temperature)["ece"] for eps in test_tasks])
        splits.append([names[i] for i in test])
    out: dict[str, Any] = {"splits": splits}
    for form, rows in ece.items():
        arr = np.array(rows)
        out[form] = {key: {"mean": round(float(arr[:, i].mean()), 5), "worst": round(float(arr[:, i].max()), 5)}
                     for i, (key, _, _) in enumerate(TASKS)}
    return out


def print_cross_alphabets(figures: dict[str, Any]) -> None:
    print(f"\ncross-alphabet check ({len(figures['splits'])} splits: fit on 3 validation alphabets, "
          "measure on the other 2): ECE % mean / worst")
    print(f"  {'form':<36}" + "".join(f"{key:>14}" for key, _, _ in TASKS))
    for form in FORMS:
        row = figures[form]
        print(f"  {form:<36}" + "".join(f"{100 * row[k]['mean']:6.2f} /{100 * row[k]['worst']:6.2f}"
                                        for k, _, _ in TASKS))


# -- the model file -------------------------------------------------------------------------
def calibration_json(calibration: Calibration, fit_line: str) -> dict[str, Any]:
    """What ``--out`` writes and ``models.export --calibration`` reads: the metadata values and a line."""
    meta: dict[str, Any] = {k: float(v) for k, v in calibration.to_metadata().items()}
    meta[FIT_KEY] = fit_line
    return meta


def read_rule_json(path: Path) -> dict[str, str]:
    """The threshold-rule keys of a ``models.open_set --fit --out`` file, checked as the app checks them."""
    data = json.loads(path.read_text())
    keys = (TYPICAL_SPREAD_KEY, KEEP_FACTOR_KEY, SPREAD_FLOOR_KEY, EFFECTIVE_SHOTS_KEY, ONE_SHOT_KEEP_FACTOR_KEY)
    if not isinstance(data, dict) or TYPICAL_SPREAD_KEY not in data:
        raise ValueError(f"{path}: not a threshold rule (no {TYPICAL_SPREAD_KEY})")
    meta = {k: str(data[k]) for k in keys if k in data}
    ignored = Calibration.from_metadata(1.0, meta).ignored
    if ignored:
        raise ValueError(f"{path}: unusable values for {', '.join(ignored)}")
    return meta


def read_calibration_json(path: Path) -> dict[str, str]:
    """The metadata keys of a ``--out`` file, checked as the app checks them.

    Raises:
        ValueError: a value the app would ignore, or no calibration values at all.
    """
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    keys = (TEMPERATURE_KEY, *OPEN_SET_KEYS, TYPICAL_SPREAD_KEY, KEEP_FACTOR_KEY, SPREAD_FLOOR_KEY,
            ONE_SHOT_KEEP_FACTOR_KEY)
    try:
        meta = {k: repr(float(data[k])) for k in keys if k in data}
    except (TypeError, ValueError):
        raise ValueError(f"{path}: calibration values must be numbers") from None
    if EFFECTIVE_SHOTS_KEY in data:
        meta[EFFECTIVE_SHOTS_KEY] = "1" if data[EFFECTIVE_SHOTS_KEY] in (True, 1, "1") else "0"
    if TEMPERATURE_KEY not in meta or "unknown_scale" not in meta:
        raise ValueError(f"{path}: lacks {TEMPERATURE_KEY} or unknown_scale")
    calibration = Calibration.from_metadata(1.0, meta)
    if calibration.ignored:
        raise ValueError(f"{path}: unusable values for {', '.join(calibration.ignored)}")
    if FIT_KEY in data:
        meta[FIT_KEY] = str(data[FIT_KEY])
    return meta


def write_model_metadata(path: Path, meta: dict[str, str]) -> None:
    """Replace the calibration keys of an ONNX model's ``metadata_props`` (atomically), leaving
    its graph and weights byte for byte as they were; the result must load and read back."""
    import onnx

    model = onnx.load(str(path))
    graph_before = model.graph.SerializeToString()
    managed = {TEMPERATURE_KEY, *OPEN_SET_KEYS, TYPICAL_SPREAD_KEY, FIT_KEY}
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in managed]
    del model.metadata_props[:]
    for key, value in [*kept, *meta.items()]:
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        onnx.save(model, str(tmp))
        if onnx.load(str(tmp)).graph.SerializeToString() != graph_before:
            raise SystemExit("rewriting the metadata changed the graph")
        session = EncoderSession(tmp, threads=1)
        got = Calibration.from_model(session.info)
        if got.ignored or got.to_metadata() != {k: v for k, v in meta.items() if k != FIT_KEY}:
            raise SystemExit(f"the model does not read back its calibration ({got})")
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# -- the command ----------------------------------------------------------------------------
def print_split(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: expected calibration error (%, 15 bins), known + unknown queries, 95% bootstrap CI")
    print(f"  {'task':<8}{'before':>22}{'after':>22}{'known only, before':>24}{'known only, T only':>24}")
    for key, row in figures.items():
        cells = []
        for part in ("before", "after", "known_only_before", "known_only_temperature"):
            f = row[part]
            cells.append(f"{100 * f['ece']:6.2f} [{100 * f['ci95'][0]:5.2f}, {100 * f['ci95'][1]:5.2f}]")
        print(f"  {key:<8}" + "".join(f"{c:>22}" if i < 2 else f"{c:>24}" for i, c in enumerate(cells)))
    for key, row in figures.items():
        print(f"  reliability, {key} (bin: mean confidence / accuracy / count; before | after)")
        before = {r["bin"]: r for r in row["before"]["reliability"]}
        after = {r["bin"]: r for r in row["after"]["reliability"]}
        for b in sorted(set(before) | set(after)):
            cells = []
            for table in (before, after):
                r = table.get(b)
                cells.append(f"{100 * r['confidence']:6.1f} {100 * r['accuracy']:6.1f} {r['count']:7d}" if r
                             else f"{'':>6} {'':>6} {0:7d}")
            print(f"    {b}  {cells[0]}   |  {cells[1]}")


def print_ordering(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: share of wrong predictions in the first {FRONT:.0%} of 'least certain first' "
          f"({figures['folders']} folders of {figures['items_per_folder']} items; 95% bootstrap CI)")
    for kind, what in (("nearest", "nearest class wrong"), ("label", "shown label wrong (default threshold)")):
        cells = []
        for when in ("before", "after"):
            f = figures[f"{when}_{kind}"]
            cells.append(f"{when} {100 * f['share']:5.1f}% [{100 * f['ci95'][0]:5.1f}, {100 * f['ci95'][1]:5.1f}]")
        f = figures[f"after_{kind}"]
        print(f"  {what:<40} {cells[0]}   {cells[1]}   (wrong per folder {f['wrong_per_folder']:.1f}, "
              f"best possible {100 * f['best_possible']:.1f}%)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--fit-episodes", type=int, default=500, help="validation episodes per task for the fit")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per task for each measurement")
    p.add_argument("--folders", type=int, default=500, help="folders for the ordering figure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=CACHE_DIR, help="folder for cached embeddings")
    p.add_argument("--out", type=Path, help="write the fitted values as JSON (for models.export --calibration)")
    p.add_argument("--write-model", type=Path, metavar="ONNX", help="rewrite this model's calibration metadata")
    p.add_argument("--no-evaluation", action="store_true", help="validation only (while developing)")
    p.add_argument("--typical-spread", action="store_true",
                   help="measure the model's own typical spread on the validation alphabets, fit with it "
                        "and store it (for encoders other than 1.0.0)")
    p.add_argument("--cross-alphabets", action="store_true",
                   help="also compare the open-set term's forms across validation alphabets (about 2 min)")
    p.add_argument("--rule", type=Path, metavar="RULE.json",
                   help="the threshold rule to fit with (python -m models.open_set --domains --fit --out)")
    p.add_argument("--fonts", action="store_true", help="also measure ECE on the font suite (validation families)")
    p.add_argument("--terms", default=",".join(OPTIONAL_TERMS),
                   help=f"the open-set term's optional features to fit (default all: {', '.join(OPTIONAL_TERMS)})")
    p.add_argument("--fit-fonts", action="store_true",
                   help="fit on the font suite's validation families too (one task per domain, beside "
                        "Omniglot's five)")
    p.add_argument("--font-cache", type=Path, help="font cache for --fonts (default: models.fonts')")
    p.add_argument("--font-episodes", type=int, default=300, help="episodes per domain and task with --fonts")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = p.parse_args(argv)
    terms = tuple(t.strip() for t in args.terms.split(",") if t.strip())
    unknown = sorted(set(terms) - set(OPTIONAL_TERMS))
    if unknown:
        raise SystemExit(f"--terms: no such term {', '.join(unknown)} (known: {', '.join(OPTIONAL_TERMS)})")
    t0 = time.perf_counter()
    session = EncoderSession(args.model)
    folder = data_dir(args.data)
    temperature = session.info.temperature
    emb, labels, alphabets = split_embeddings_and_alphabets("validation", session, folder, args.cache)
    spread = measure_typical_spread(emb, labels) if args.typical_spread else None
    rule = Calibration(1.0, typical_spread=spread)
    if args.rule:
        try:
            rule = Calibration.from_metadata(1.0, read_rule_json(args.rule))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"--rule: {exc}") from exc
        spread = rule.typical_spread
    fit_tasks = [sample_episodes(emb, labels, w, k, args.fit_episodes, args.seed + 100 + i, rule)
                 for i, (_, w, k) in enumerate(TASKS)]
    pool = None
    if args.fonts or args.fit_fonts:
        from models import font_suite, fonts  # the suite imports this module

        corpus, path = fonts.build_with_path(args.font_cache or fonts.default_cache())
        pool = font_suite.build_pool(corpus, session, font_suite.corpus_key(path))
    if args.fit_fonts:
        assert pool is not None
        font_trials = font_suite.collect(pool, args.fit_episodes // 2, args.seed + 100)
        fit_tasks.extend(font_tasks(font_trials, rule.threshold_rule))
    calibration = fit(fit_tasks, temperature, terms).with_rule_of(rule)
    t_fit = time.perf_counter()
    o = calibration.open_set
    assert o is not None
    print(f"{session.info.model_name} {session.info.model_version}: fitted on the validation alphabets "
          f"({len(labels)} drawings, {labels.max() + 1} characters), {args.fit_episodes} episodes per task "
          f"({', '.join(k for k, _, _ in TASKS)}), {QUERIES} known + {QUERIES} unknown queries per class"
          + (f"; and the font suite's validation families, {args.fit_episodes // 2} episodes per domain "
             f"and task, one task per domain" if args.fit_fonts else ""))
    print(f"  calibrated_temperature {calibration.temperature:.4f} (the model's: {temperature:g})")
    if spread is not None:
        print(f"  typical_spread {spread:.4f} (measured on the validation alphabets)")
    print(f"  p_unknown = sigmoid({o.scale:.4f} r {o.offset:+.4f} {o.log_classes:+.4f} ln N "
          f"{o.inverse_shots:+.4f} mean(1/k) {o.margin:+.4f} g {o.log_density:+.4f} ln(density/T) "
          f"{o.scale_inverse_shots:+.4f} r mean(1/k)),")
    print("  r = nearest squared distance / T, g = 1 - nearest / second nearest, T the default threshold")
    results: dict[str, Any] = {"calibration": calibration.to_metadata()}
    if args.cross_alphabets:
        results["cross_alphabets"] = cross_alphabet_figures(emb, labels, alphabets, temperature, 200, 300, args.seed)
        print_cross_alphabets(results["cross_alphabets"])
    splits = ["validation"] if args.no_evaluation else ["validation", "evaluation"]
    for split in splits:
        if split == "evaluation":
            emb, labels = split_embeddings("evaluation", session, folder, args.cache)
        seed = args.seed + 1 if split == "validation" else args.seed  # fresh episodes, not the fit's
        figures = measure(emb, labels, calibration, temperature, args.episodes, seed)
        print_split(f"{split} alphabets, {args.episodes} episodes per task", figures)
        ordering = ordering_figures(emb, labels, calibration, temperature, args.folders, seed + 7)
        print_ordering(f"{split} alphabets", ordering)
        results[split] = {"ece": figures, "ordering": ordering}
    if args.fonts:
        assert pool is not None
        trials = font_suite.collect(pool, args.font_episodes, args.seed + 1)
        results["fonts"] = font_suite_figures(trials, calibration, temperature)
        print(f"\nfont suite (validation families), {args.font_episodes} episodes per cell: ECE % [95% CI]")
        for key, f in results["fonts"].items():
            print(f"  {key:<30} {100 * f['ece']:5.2f} [{100 * f['ci95'][0]:5.2f}, {100 * f['ci95'][1]:5.2f}]  "
                  f"confidence {100 * f['mean_confidence']:5.1f}, accuracy {100 * f['accuracy']:5.1f}")
    seconds = time.perf_counter() - t0
    results["seconds"] = {"fit": round(t_fit - t0, 1), "total": round(seconds, 1)}
    print(f"\nfit in {t_fit - t0:.1f} s, all in {seconds:.1f} s")
    fit_line = (f"validation alphabets ({', '.join(VALIDATION_ALPHABETS)}), {args.fit_episodes} open-set "
                f"episodes per task of {', '.join(k for k, _, _ in TASKS)}, seed {args.seed}"
                + (f"; font suite validation families, {args.fit_episodes // 2} episodes per domain and task, "
                   "one task per domain" if args.fit_fonts else "") + "; models/calibration.py")
    if args.out:
        args.out.write_text(json.dumps(calibration_json(calibration, fit_line), indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.write_model:
        write_model_metadata(args.write_model, {**calibration.to_metadata(), FIT_KEY: fit_line})
        print(f"rewrote the calibration metadata of {args.write_model}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
