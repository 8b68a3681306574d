"""A small architecture search under a CPU latency budget (issue 12): Optuna, two objectives.

    python -m models.search --out runs/search [--trials N] [--episodes N] [--fonts CORPUS.npz]
                            [--budget-ms 1.5] [--baseline OLD.onnx [--budget-ratio 1.5]] [--suite]
                            [--device cpu|cuda] [--fix NAME=VALUE ...] [--sampler nsga2|exhaustive]

Each trial trains an encoder (``models.train``, shortened to ``--episodes``) with sampled
width, depth, input side, preprocessing version (``protoglyph.core.preprocess``) and share of
font episodes, exports it to ONNX and scores it on

1. **quality**: the validation score the training keeps (Omniglot's validation alphabets:
   mean of 20-way 1-shot and 20-way 1-shot within one alphabet), and with ``--suite`` also the
   font suite's printed, scanned and handwriting-like 20-way 1-shot (``models.font_suite``;
   mean of the four);
2. **latency**: the median time of one image through the app's preprocessing and
   ``EncoderSession`` on this machine (2 threads), measured right after the export.

Both go to Optuna's multi-objective sampler (NSGA-II); the study is kept in
``--out/study.db`` so an interrupted search continues. At the end every trial's model (and
``--baseline``, the encoder to compare with) is timed again in one run, in alternating rounds,
since a latency taken right after a training on shared cores is noisy; the Pareto front and
the best trial within ``--budget-ms`` (and within ``--budget-ratio`` of the baseline) use
those. Validation data only: the evaluation alphabets and the reserved fonts are never read.
A GPU (``--device cuda``) runs the same trials faster; on the CPU, use few episodes and trials,
and ``--fix`` to pin some of :data:`SPACE` (e.g. ``--fix size=32 --fix preprocess=skeleton-ink-v2``)
so that the search spends them on the rest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: What each trial may choose. Sides must divide the 64-pixel working image, and the side must
#: leave at least 2x2 after the blocks' poolings.
SPACE: dict[str, list[Any]] = {
    "width": [32, 48, 64, 96],
    "blocks": [3, 4],
    "size": [32, 64],
    "font_share": [0.0, 0.25, 0.5, 0.75],
    "preprocess": ["skeleton-v2", "skeleton-ink-v1", "skeleton-ink-v2", "ink-v1"],
}


def latency_ms(model: Path, runs: int = 60) -> float:
    """Median milliseconds of one glyph through preprocessing and the encoder (2 threads)."""
    from protoglyph.core.encoder import EncoderSession

    session = EncoderSession(model, threads=2)
    image = np.full((105, 105), 255, np.uint8)
    image[20:85, 48:56] = 0
    image[20:28, 30:75] = 0
    session.embed_images([image])  # warm up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.embed_images([image])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run_trial(params: dict[str, Any], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train, export and measure one configuration; its figures."""
    import torch

    from models import export, train

    out.mkdir(parents=True, exist_ok=True)
    argv = ["--out", str(out), "--episodes", str(args.episodes), "--width", str(params["width"]),
            "--blocks", str(params["blocks"]), "--size", str(params["size"]), "--threads", str(args.threads),
            "--device", args.device, "--val-every", str(max(1, args.episodes // 4)),
            "--lr-step", str(max(1, args.episodes // 5)), "--ways", str(args.ways), "--queries", str(args.queries),
            "--seed", str(args.seed), "--preprocess", str(params.get("preprocess", "skeleton-v2"))]
    if args.data:
        argv += ["--data", str(args.data)]
    if args.fonts and params["font_share"] > 0:
        argv += ["--fonts", str(args.fonts), "--font-share", str(params["font_share"])]
    t0 = time.perf_counter()
    train.main(argv)
    train_s = time.perf_counter() - t0
    state = torch.load(out / "best.pt", map_location="cpu", weights_only=False)
    model = out / "encoder.onnx"
    export.export([out / "best.pt"], model, version="0.0.0-search")
    val = state["val"]
    parts = {"omniglot": (val["20w1s"] + val["20w1s_within"]) / 2}
    if args.suite:
        from models import font_suite

        corpus, path = font_suite.fonts.build_with_path(args.suite_fonts)
        from protoglyph.core.encoder import EncoderSession

        pool = font_suite.build_pool(corpus, EncoderSession(model), font_suite.corpus_key(path), progress=False)
        results = font_suite.evaluate(pool, episodes=args.suite_episodes)
        for key in ("printed/20w1s", "scanned/20w1s", "handwriting-like/20w1s"):
            if key in results:
                parts[key] = results[key]["accuracy"][0]
    quality = float(np.mean(list(parts.values())))
    return {"quality": quality, "parts": parts, "latency_ms": latency_ms(model),
            "size_mb": model.stat().st_size / 1e6, "train_s": round(train_s, 1),
            "embedding_size": int(state["config"]["width"] * (params["size"] // 2 ** params["blocks"]) ** 2)}


def fixed_space(pins: list[str]) -> dict[str, list[Any]]:
    """:data:`SPACE` with each ``NAME=VALUE`` of ``pins`` narrowed to that one value.

    Raises:
        SystemExit: a name not in the space, or a value it does not offer.
    """
    space = dict(SPACE)
    for pin in pins:
        name, _, text = pin.partition("=")
        if name not in SPACE:
            raise SystemExit(f"--fix {pin}: no choice named {name!r} (choices: {', '.join(SPACE)})")
        values = [v for v in SPACE[name] if str(v) == text]
        if not values:
            raise SystemExit(f"--fix {pin}: {name} is one of {', '.join(map(str, SPACE[name]))}")
        space[name] = values
    return space


def remeasure(models: dict[str, Path], rounds: int = 5, runs: int = 60) -> dict[str, float]:
    """Median single-image latency of each model, timed in ``rounds`` alternating rounds (ms)."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, path in models.items():
            times[name].append(latency_ms(path, runs))
    return {name: statistics.median(t) for name, t in times.items()}


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows no other row beats on both quality (higher) and latency (lower), fastest first."""
    front = [r for r in rows if not any(o["quality"] >= r["quality"] and o["latency_ms"] <= r["latency_ms"]
                                        and (o["quality"] > r["quality"] or o["latency_ms"] < r["latency_ms"])
                                        for o in rows)]
    return sorted(front, key=lambda r: r["latency_ms"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="search folder (trials and study.db)")
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--fonts", type=Path, help="font corpus .npz for font episodes (python -m models.fonts)")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--episodes", type=int, default=2000, help="training episodes per trial")
    p.add_argument("--ways", type=int, default=60)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--budget-ms", type=float, default=1.5, help="single-image latency budget")
    p.add_argument("--baseline", type=Path, help="encoder to time beside the trials (e.g. 1.0.0's file)")
    p.add_argument("--budget-ratio", type=float, default=1.5, help="latency budget as a multiple of --baseline's")
    p.add_argument("--suite", action="store_true", help="also score the font suite (slower)")
    p.add_argument("--suite-fonts", type=Path, help="font cache for the suite (default: models.fonts')")
    p.add_argument("--suite-episodes", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", choices=("nsga2", "exhaustive"), default="nsga2",
                   help="NSGA-II (default), or each combination once in random order (for a small, pinned space)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help=f"pin one of the search's choices ({', '.join(SPACE)}) to one of its values")
    args = p.parse_args(argv)
    space = fixed_space(args.fix)
    try:
        import optuna
    except ImportError:
        raise SystemExit("the search needs Optuna: pip install -e '.[train]'") from None
    if args.suite and args.suite_fonts is None:
        from models import fonts

        args.suite_fonts = fonts.default_cache()
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(seed=args.seed, population_size=6)
    if args.sampler == "exhaustive":  # a small (pinned) space: every choice once, in random order
        with warnings.catch_warnings():  # "experimental" since Optuna 3.1, and unchanged since
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.BruteForceSampler(seed=args.seed)
    study = optuna.create_study(study_name="encoder", storage=f"sqlite:///{args.out / 'study.db'}",
                                load_if_exists=True, directions=["maximize", "minimize"],
                                sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        if params["size"] // 2 ** params["blocks"] < 2:
            raise optuna.TrialPruned("the side is pooled away")
        if not args.fonts:
            params["font_share"] = 0.0
        for earlier in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if earlier.params == params:  # the sampler drew it again: same seed, same figures
                for k, v in earlier.user_attrs.items():
                    trial.set_user_attr(k, v)
                trial.set_user_attr("duplicate_of", earlier.number)
                print(f"trial {trial.number}: {params} again (trial {earlier.number}); not trained twice", flush=True)
                return earlier.values[0], earlier.values[1]
        figures = run_trial(params, args.out / f"trial-{trial.number:03d}", args)
        for k, v in figures.items():
            trial.set_user_attr(k, v)
        print(f"trial {trial.number}: {params} quality {figures['quality']:.4f} "
              f"latency {figures['latency_ms']:.3f} ms", flush=True)
        return figures["quality"], figures["latency_ms"]

    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    if args.trials > done:
        study.optimize(objective, n_trials=args.trials - done)
    rows = [{"trial": t.number, **t.params, **t.user_attrs} for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE and "duplicate_of" not in t.user_attrs]
    models = {str(r["trial"]): args.out / f"trial-{r['trial']:03d}" / "encoder.onnx" for r in rows}
    if args.baseline:
        models["baseline"] = args.baseline
    timed = remeasure({k: v for k, v in models.items() if v.is_file()})
    for r in rows:
        r["latency_ms_during"] = r["latency_ms"]
        r["latency_ms"] = timed.get(str(r["trial"]), r["latency_ms"])
    budget = args.budget_ms
    if "baseline" in timed:
        print(f"baseline {args.baseline.name}: {timed['baseline']:.3f} ms (timed beside the trials)")
        budget = min(budget, args.budget_ratio * timed["baseline"])
        for r in rows:
            r["latency_ratio"] = r["latency_ms"] / timed["baseline"]
    front = pareto_front(rows)
    print(f"\nPareto front ({len(front)} of {len(rows)} trials): quality (higher) vs single-image latency (lower)")
    for r in front:
        print(f"  trial {r['trial']:3d}  width {r['width']:3d} blocks {r['blocks']} size {r['size']} "
              f"fonts {r['font_share']:.2f} {r.get('preprocess', 'skeleton-v2')}  quality {r['quality']:.4f}  "
              f"latency {r['latency_ms']:.3f} ms  {r['size_mb']:.1f} MB")
    within = [r for r in front if r["latency_ms"] <= budget]
    if within:
        best = max(within, key=lambda r: r["quality"])
        print(f"best within {budget:.3f} ms: trial {best['trial']} (quality {best['quality']:.4f}, "
              f"{best['latency_ms']:.3f} ms)")
    else:
        print(f"no trial within {budget:.3f} ms")
    report = {"front": front, "trials": rows, "budget_ms": budget, "baseline_ms": timed.get("baseline")}
    (args.out / "front.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
