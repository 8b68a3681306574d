"""The validation suite of printed, scanned and handwriting-like glyphs (issue 12).

    python -m models.font_suite [--model PATH] [--episodes N] [--json] [--cache DIR]

Built from the font corpus's **validation families only** (``models/fonts.py``: typefaces that
training never sees), through the app's own preprocessing and encoder session. Every choice
about encoder 2 is made on this suite and on Omniglot's validation alphabets; the reserved
packages are never read.

Each episode is **within one script**: N characters of it, the support from one typeface
family, the queries from *other* families (cross-typeface). Domains:

- ``printed``: clean renderings. 1-shot; 5-shot takes its support from five different
  families (characters that have six or more).
- ``scanned``: support and queries through :func:`models.glyph_augment.scan` (5-shot: five
  scans of the support family's glyph).
- ``handwriting-like``: support and queries through :func:`models.glyph_augment.handwriting`
  (5-shot: five distortions of the support family's glyph, like five drawings).
- ``handwriting typefaces``: support printed (5-shot: five families), queries from the
  handwriting-style families.

Per domain and task it reports the accuracy (mean over episodes, 95% interval) and the
default "none of these" threshold's two sides: the share of known queries it keeps and the
share of queries of other characters of the script (unknowns) it rejects.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import fonts, glyph_augment
from models.calibration import weights_digest
from protoglyph.core.classifier import Calibration, FewShotClassifier
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.threshold import OpenSetReference, ThresholdRule, prototype_density, reference_from_moments

#: Variants of every (character, validation family) glyph: index 0 clean, then scans, then
#: handwriting-like distortions.
SCANS = HANDS = 5
CLEAN, SCAN0, HAND0 = 0, 1, 1 + SCANS
VARIANTS = 1 + SCANS + HANDS
#: Per script at most this many characters (those with the most validation families) and per
#: character this many families: keeps the suite to tens of thousands of images.
MAX_CHARACTERS, MAX_FAMILIES = 60, 6
QUERIES = 5
TASKS = (("5w1s", 5, 1), ("5w5s", 5, 5), ("20w1s", 20, 1), ("20w5s", 20, 5))
DOMAINS = ("printed", "scanned", "handwriting-like", "handwriting typefaces")
CACHE_DIR = Path(tempfile.gettempdir()) / "protoglyph-font-suite"
SEED = 12


@dataclass
class Pool:
    """The suite's images, embedded.

    Attributes:
        embeddings: ``(P, VARIANTS, D)`` per (character, family) pair, every variant.
        char: ``(P,)`` class index into the corpus's characters.
        family: ``(P,)`` family index into the corpus's families.
        script: ``(P,)`` script name of each pair.
        handwriting: ``(P,)`` whether the family is handwriting-style.
    """

    embeddings: np.ndarray
    char: np.ndarray
    family: np.ndarray
    script: np.ndarray
    handwriting: np.ndarray


def select_pairs(corpus: fonts.FontCorpus) -> np.ndarray:
    """Row indices of the validation images the suite uses (see the caps above)."""
    rows = corpus.rows("validation")
    by_char: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_char[int(corpus.label[r])].append(int(r))
    by_script: dict[str, list[int]] = defaultdict(list)
    for c, rs in by_char.items():
        fams = {int(corpus.family[r]) for r in rs}
        if len(fams) >= 2:
            by_script[corpus.script_of(c)].append(c)
    chosen: list[int] = []
    rng = np.random.default_rng(SEED)
    for script in sorted(by_script):
        chars = sorted(by_script[script], key=lambda c: (-len({int(corpus.family[r]) for r in by_char[c]}), c))
        for c in chars[:MAX_CHARACTERS]:
            one_per_family: dict[int, int] = {}
            for r in by_char[c]:
                one_per_family.setdefault(int(corpus.family[r]), r)  # the first face (regular) of each family
            fams = sorted(one_per_family)
            if len(fams) > MAX_FAMILIES:
                fams = sorted(rng.choice(fams, MAX_FAMILIES, replace=False).tolist())
            chosen.extend(one_per_family[f] for f in fams)
    return np.array(chosen, np.int64)


def variants(image: np.ndarray, seed: int) -> list[np.ndarray]:
    """The :data:`VARIANTS` images of one glyph (fixed per seed)."""
    rng = np.random.default_rng(seed)
    out = [image]
    out += [glyph_augment.scan(image, rng) for _ in range(SCANS)]
    out += [glyph_augment.handwriting(image, rng) for _ in range(HANDS)]
    return out


def build_pool(corpus: fonts.FontCorpus, session: EncoderSession, corpus_key: str,
               cache_dir: Path = CACHE_DIR, progress: bool = True) -> Pool:
    """Embed every variant of the selected pairs (cached per corpus and model weights)."""
    cache = cache_dir / f"pool-{corpus_key}-{weights_digest(session.path)}.npz"
    pairs = select_pairs(corpus)
    if cache.is_file():
        with np.load(cache) as d:
            embeddings = d["embeddings"]
    else:
        chunks = []
        batch: list[np.ndarray] = []
        t0 = time.perf_counter()
        for n, r in enumerate(pairs):
            batch.extend(variants(corpus.images[r], SEED * 1_000_003 + int(r)))
            if len(batch) >= 1024 or n + 1 == len(pairs):
                chunks.append(session.embed_images(batch))
                batch = []
                if progress:
                    print(f"  embedded {n + 1:,}/{len(pairs):,} glyphs x {VARIANTS} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
        embeddings = np.concatenate(chunks).reshape(len(pairs), VARIANTS, -1).astype(np.float32)
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=cache_dir)
        os.close(fd)
        np.savez(tmp, embeddings=embeddings)
        Path(tmp).replace(cache)
    char = corpus.label[pairs]
    family = corpus.family[pairs]
    script = np.array([corpus.script_of(int(c)) for c in char])
    hand = np.array([corpus.family_style[int(f)] == fonts.HANDWRITING for f in family])
    return Pool(embeddings, char, family, script, hand)


def domain_views(domain: str) -> tuple[int | list[int], int, bool]:
    """``(support variant(s), query variant, queries from handwriting families only)``."""
    if domain == "printed":
        return CLEAN, CLEAN, False
    if domain == "scanned":
        return list(range(SCAN0, SCAN0 + SCANS)), SCAN0, False
    if domain == "handwriting-like":
        return list(range(HAND0, HAND0 + HANDS)), HAND0 + 1, False
    return CLEAN, CLEAN, True


@dataclass(frozen=True)
class Trial:
    """One episode's outcome before any threshold: what every threshold rule is judged on.

    Attributes:
        accuracy: share of known queries nearest their own class.
        known, unknown: nearest squared distance of each known query and of each query of a
            character of none of the classes.
        scatter, counts: the support set's scatter around its prototypes and examples per class.
        distances, truth, density: every query's squared distances ``(n, N)`` to the prototypes,
            its class (-1: none of them) and the prototypes' density (``threshold.prototype_density``),
            for the shown confidence (``models.calibration --fonts``).
    """

    accuracy: float
    known: np.ndarray
    unknown: np.ndarray
    scatter: float
    counts: tuple[int, ...]
    distances: np.ndarray | None = None
    truth: np.ndarray | None = None
    density: float | None = None

    def reference(self, rule: ThresholdRule) -> OpenSetReference:
        """The support set's :class:`OpenSetReference` under ``rule``, as the app's classifier makes it."""
        reference = reference_from_moments(self.scatter, self.counts, rule=rule)
        assert reference is not None  # every trial's classes have examples
        return dataclasses.replace(reference, density=self.density)

    def figures(self, rule: ThresholdRule) -> tuple[float, float, float]:
        """Accuracy, kept share of known queries, rejected share of unknowns under ``rule``."""
        threshold = rule.threshold(self.scatter, self.counts)
        rejected = float((self.unknown > threshold).mean()) if len(self.unknown) else math.nan
        return self.accuracy, float((self.known <= threshold).mean()), rejected


def trial_of(clf: FewShotClassifier, examples: list[np.ndarray], queries: np.ndarray, truth: np.ndarray) -> Trial:
    """The :class:`Trial` of a support set (``examples[j]``: class j's, ``(k, D)``) and its queries
    (``truth`` -1 for a character of none of the classes)."""
    _, d = clf.distances(queries)
    k = truth >= 0
    scatter = sum(float(((e - e.mean(0)) ** 2).sum()) for e in (np.asarray(x, np.float64) for x in examples))
    _, prototypes = clf.prototypes()
    return Trial(float((d[k].argmin(1) == truth[k]).mean()), d[k].min(1), d[~k].min(1), scatter,
                 tuple(len(e) for e in examples), d.astype(np.float32), truth.astype(np.int64),
                 prototype_density(prototypes))


def trial(pool: Pool, domain: str, ways: int, shots: int, rng: np.random.Generator,
          index: dict[str, Any]) -> Trial | None:
    """One episode as a :class:`Trial` (``None`` when the drawn script cannot make it)."""
    support_view, query_view, hand_queries = domain_views(domain)
    # clean support of K shots: K typefaces (K copies of one rendering would be one example)
    many_families = support_view == CLEAN and shots > 1
    script = index["scripts"][int(rng.integers(len(index["scripts"])))]
    chars = index["chars"][script]
    # characters that have a support family (print) and a query family other than it
    candidates = []
    for c in chars:
        pairs = index["pairs"][(script, c)]
        support_ok = [p for p in pairs if not pool.handwriting[p]]
        query_ok = [p for p in pairs if pool.handwriting[p] == hand_queries] if hand_queries else pairs
        need = shots if many_families else 1
        if len(support_ok) >= need and len(set(query_ok) - set(support_ok[:need])) >= 1:
            candidates.append((c, support_ok, query_ok))
    if len(candidates) < ways + 1:  # at least one character of none of the classes
        return None
    picked = rng.permutation(len(candidates))
    known = [candidates[i] for i in picked[:ways]]
    unknown = [candidates[i] for i in picked[ways : 2 * ways]]
    if len(known) < ways:
        return None
    clf = FewShotClassifier(pool.embeddings.shape[2])
    queries, truth, examples = [], [], []
    for j, (_, support_ok, query_ok) in enumerate(known):
        if many_families:
            chosen = [support_ok[int(i)] for i in rng.choice(len(support_ok), shots, replace=False)]
            examples.append(pool.embeddings[chosen, CLEAN])
            used = set(chosen)
        else:
            s = support_ok[int(rng.integers(len(support_ok)))]
            views = support_view if isinstance(support_view, list) else [support_view]  # 1-shot clean: one view
            examples.append(pool.embeddings[s, views[:shots]])
            used = {s}
        clf.add_examples(j, examples[-1])
        others = [p for p in query_ok if p not in used]
        if not others:
            return None
        for p in rng.choice(others, QUERIES, replace=len(others) < QUERIES):
            queries.append(pool.embeddings[int(p), query_view])
            truth.append(j)
    for _, _, query_ok in unknown:
        for p in rng.choice(query_ok, min(QUERIES, len(query_ok)), replace=False):
            queries.append(pool.embeddings[int(p), query_view])
            truth.append(-1)
    return trial_of(clf, examples, np.stack(queries), np.array(truth))


def make_index(pool: Pool) -> dict[str, Any]:
    pairs: dict[tuple[str, int], list[int]] = defaultdict(list)
    for p, (s, c) in enumerate(zip(pool.script, pool.char, strict=True)):
        pairs[(str(s), int(c))].append(p)
    chars: dict[str, list[int]] = defaultdict(list)
    for s, c in pairs:
        chars[s].append(c)
    return {"pairs": pairs, "chars": chars, "scripts": sorted(chars)}


def mean_ci(values: list[float]) -> tuple[float, float]:
    a = np.array([v for v in values if not math.isnan(v)])
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(1.96 * a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0


def collect(pool: Pool, episodes: int, seed: int = 0) -> dict[str, tuple[list[Trial], list[str]]]:
    """Every domain x task: its trials and the scripts that could make the task."""
    index = make_index(pool)
    out: dict[str, tuple[list[Trial], list[str]]] = {}
    for domain in DOMAINS:
        for key, ways, shots in TASKS:
            rng = np.random.default_rng([seed, DOMAINS.index(domain), ways, shots])
            scripts_ok = []
            for s in index["scripts"]:  # which scripts can make it: try each a few times
                sub = dict(index, scripts=[s])
                if any(trial(pool, domain, ways, shots, np.random.default_rng([seed, i]), sub) for i in range(3)):
                    scripts_ok.append(s)
            if not scripts_ok:
                continue
            sub = dict(index, scripts=scripts_ok)
            rows: list[Trial] = []
            tries = 0
            while len(rows) < episodes and tries < episodes * 5:
                tries += 1
                t = trial(pool, domain, ways, shots, rng, sub)
                if t is not None:
                    rows.append(t)
            out[f"{domain}/{key}"] = (rows, scripts_ok)
    return out


def summarise(trials: dict[str, tuple[list[Trial], list[str]]], rule: ThresholdRule) -> dict[str, Any]:
    """Accuracy, kept, rejected (mean and 95% half-width) of every domain x task under ``rule``."""
    out: dict[str, Any] = {}
    for key, (rows, scripts_ok) in trials.items():
        figures = [t.figures(rule) for t in rows]
        acc, kept, rej = (mean_ci([r[i] for r in figures]) for i in range(3))
        out[key] = {"accuracy": acc, "kept": kept, "rejected": rej, "episodes": len(rows), "scripts": scripts_ok}
    return out


def evaluate(pool: Pool, episodes: int, seed: int = 0, rule: ThresholdRule | None = None) -> dict[str, Any]:
    """Every domain x task: accuracy, kept, rejected (mean and 95% half-width), episodes run,
    and the scripts that could make the task, under ``rule`` (the model's, as in the app)."""
    return summarise(collect(pool, episodes, seed), rule or ThresholdRule())


def print_results(results: dict[str, Any]) -> None:
    print(f"{'domain / task':<32}{'accuracy':>18}{'own kept':>16}{'others rejected':>18}  scripts")
    for key, r in results.items():
        def cell(v: tuple[float, float]) -> str:
            return f"{100 * v[0]:6.2f} ±{100 * v[1]:5.2f}" if not math.isnan(v[0]) else "      -"
        print(f"{key:<32}{cell(r['accuracy']):>18}{cell(r['kept']):>16}{cell(r['rejected']):>18}  "
              f"{len(r['scripts'])} ({r['episodes']} episodes)")


def corpus_key(path: Path) -> str:
    return hashlib.sha1(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--fonts", type=Path, default=fonts.default_cache(), help="font cache (models.fonts --cache)")
    p.add_argument("--episodes", type=int, default=300, help="episodes per domain and task")
    p.add_argument("--cache", type=Path, default=CACHE_DIR, help="folder for cached embeddings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    corpus, path = fonts.build_with_path(args.fonts)
    session = EncoderSession(args.model)
    pool = build_pool(corpus, session, corpus_key(path), args.cache)
    print(f"{session.info.model_name} {session.info.model_version}: {len(pool.char):,} validation glyphs "
          f"({len(set(pool.char.tolist())):,} characters, {len(set(pool.family.tolist()))} families, "
          f"{len(set(pool.script.tolist()))} scripts) x {VARIANTS} variants")
    results = evaluate(pool, args.episodes, args.seed, Calibration.from_model(session.info).threshold_rule)
    print_results(results)
    print(f"all in {time.perf_counter() - t0:.0f} s")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
