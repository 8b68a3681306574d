"""Two encoders' speed side by side in one run, as ratios (issue 12's speed goals).

    python -m benchmarks.compare_speed --model NEW.onnx [--baseline OLD.onnx] [--rounds 5]
                                   [--count 20000] [--cli-runs 3] [--no-cli] [--json]

Machines differ from session to session, so the goals are ratios of a candidate to the
baseline (default: the shipped encoder) measured in the same process, in alternating rounds
(the order flips each round, so neither model always runs on a warmer machine):

- one 105x105 image with preprocessing, median ms (goal: ≤ 1.5× the baseline's time and ≤ 1.5 ms);
- one preprocessed image, embedding only, median ms;
- batch embedding throughput of preprocessed inputs (goal: ≥ 0.5× the baseline's);
- ``protoglyph label`` on ``--count`` Omniglot PNGs with 20 classes × 5 examples, files per
  second of the whole process (goal: ≥ 0.8× the baseline's), ``--cli-runs`` runs alternating
  after one warm-up each.

Every figure is the median over rounds; both models use onnxruntime with 2 threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks import cli_batch
from benchmarks.encoder_speed import measure, shapes
from benchmarks.folders import make_folder
from protoglyph.core.encoder import EncoderSession, default_model_path

FIGURES = ("single_with_preprocess_ms_median", "single_ms_median", "batch_images_per_s", "end_to_end_images_per_s")


def alternate(rounds: int, count: int = 2) -> list[list[int]]:
    """The order of the models in each round: 0, 1, … then reversed, and so on."""
    order = list(range(count))
    return [order if r % 2 == 0 else order[::-1] for r in range(rounds)]


def compare_encoders(sessions: list[EncoderSession], rounds: int) -> list[dict[str, float]]:
    """Per session, the median over ``rounds`` of each :func:`benchmarks.encoder_speed.measure` figure."""
    images = shapes()
    per_model: list[list[dict[str, float]]] = [[] for _ in sessions]
    for order in alternate(rounds, len(sessions)):
        for i in order:
            per_model[i].append(measure(sessions[i], images, runs=3, single=300))
    return [{k: statistics.median(r[k] for r in runs) for k in FIGURES} for runs in per_model]


def compare_cli(models: list[Path], count: int, runs: int, work: Path, data: str | None) -> list[float]:
    """Per model, the median files/s of ``protoglyph label --examples`` on ``count`` PNGs."""
    examples = cli_batch.make_examples(work / "examples", data)
    folder = make_folder(work / f"glyphs{count}", count, data)
    csv = work / "out.csv"
    for m in models:  # warm-up: file cache, bytecode cache, each model's file
        cli_batch.run_cli(folder, "--examples", examples, csv, model=m)
    rates: list[list[float]] = [[] for _ in models]
    for order in alternate(runs, len(models)):
        for i in order:
            run = cli_batch.run_cli(folder, "--examples", examples, csv, model=models[i])
            rates[i].append(count / run["wall_s"])
    return [statistics.median(r) for r in rates]


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="the candidate encoder .onnx")
    p.add_argument("--baseline", type=Path, help="encoder to compare with (default: the shipped one)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--count", type=int, default=20_000, help="PNGs for the CLI figure")
    p.add_argument("--cli-runs", type=int, default=3)
    p.add_argument("--no-cli", action="store_true")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "protoglyph-batch-bench")
    p.add_argument("--data", help="Omniglot folder for the CLI figure (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    models = [args.baseline or default_model_path(), args.model]
    sessions = [EncoderSession(m, threads=2, batch_size=512) for m in models]
    names = [f"{s.info.model_version} ({m.name}, {m.stat().st_size / 1e6:.2f} MB)"
             for s, m in zip(sessions, models, strict=True)]
    load = os.getloadavg()
    print(f"load average before the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores")
    speed = compare_encoders(sessions, args.rounds)
    result: dict[str, object] = {"models": names, "rounds": args.rounds, "load_average": load,
                                 "baseline": speed[0], "candidate": speed[1]}
    ratio = {k: speed[1][k] / speed[0][k] for k in FIGURES}
    rows = [
        ("one image with preprocessing, median ms", "single_with_preprocess_ms_median", "≤ 1.5×, ≤ 1.5 ms"),
        ("one image, embedding only, median ms", "single_ms_median", ""),
        ("batch embedding, images/s", "batch_images_per_s", "≥ 0.5×"),
        ("preprocessing + embedding, images/s", "end_to_end_images_per_s", ""),
    ]
    table = [(label, f"{speed[0][k]:,.3f}" if "ms" in k else f"{speed[0][k]:,.0f}",
              f"{speed[1][k]:,.3f}" if "ms" in k else f"{speed[1][k]:,.0f}", f"{ratio[k]:.2f}×", goal)
             for label, k, goal in rows]
    if not args.no_cli:
        cli = compare_cli(models, args.count, args.cli_runs, args.work, args.data)
        ratio["cli_files_per_s"] = cli[1] / cli[0]
        result["cli_files_per_s"] = cli
        table.append((f"protoglyph label, {args.count:,} PNGs, files/s", f"{cli[0]:,.0f}", f"{cli[1]:,.0f}",
                      f"{ratio['cli_files_per_s']:.2f}×", "≥ 0.8×"))
    result["ratio"] = ratio
    print(f"baseline {names[0]}; candidate {names[1]}; median of {args.rounds} alternating rounds")
    head = ("figure", "baseline", "candidate", "ratio", "goal")
    widths = [max(len(r[c]) for r in [head, *table]) for c in range(5)]
    for r in [head, tuple("-" * w for w in widths), *table]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
