"""``protoglyph label`` on each engine, side by side: worker processes, this process alone, Ray.

    python -m benchmarks.engines [--count 20000] [--runs 3] [--jobs N] [--engines processes,ray]
                                 [--work DIR] [--data DIR] [--json]

One folder of ``--count`` 105x105 Omniglot PNGs and ``--examples`` of 20 classes x 5
(``benchmarks.cli_batch``'s), labeled by a new ``protoglyph label`` process per run: files /
wall time of the whole command (Ray's start-up included, as a person meets it) and the
embedding phase's own rate, median of ``--runs`` with the engines taking turns, after one
warm-up run each. Every engine's CSV must be byte for byte the first engine's. Printed: each
engine's figures and its ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks.cli_batch import RATE_LINE, make_examples
from benchmarks.folders import make_folder
from protoglyph.core.labeling.embedding import default_jobs
from protoglyph.core.labeling.engines import ENGINE_NAMES


def run_once(folder: Path, examples: Path, out: Path, engine: str, jobs: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples), "--out", str(out),
           "--engine", engine, "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    found = RATE_LINE.search(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"protoglyph label --engine {engine} failed ({done.returncode}): {done.stderr[-800:]}")
    return {"wall_s": wall, "embed_rate": float(found.group(1).replace(",", ""))}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=default_jobs(), help="workers for every engine (default: one per core)")
    p.add_argument("--engines", default="processes,ray", help=f"comma-separated, of {', '.join(ENGINE_NAMES)}")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "protoglyph-batch-bench")
    p.add_argument("--data", help="Omniglot folder (default: $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    if not names or any(n not in ENGINE_NAMES for n in names):
        raise SystemExit(f"--engines: choose from {', '.join(ENGINE_NAMES)}")
    folder = make_folder(args.work / f"folder-{args.count}", args.count, args.data)
    examples = args.work / "examples"
    if not examples.is_dir():
        make_examples(examples, args.data)
    outs = {n: args.work / f"engine-{n}.csv" for n in names}
    for n in names:  # warm-up: the page cache, Python's bytecode, Ray's own files
        run_once(folder, examples, outs[n], n, args.jobs)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for _ in range(args.runs):
        for n in names:
            runs[n].append(run_once(folder, examples, outs[n], n, args.jobs))
    first = outs[names[0]].read_bytes()
    same = {n: outs[n].read_bytes() == first for n in names}
    figures = {n: {"files_per_s": round(args.count / median(r["wall_s"] for r in rows), 1),
                   "wall_s": round(median(r["wall_s"] for r in rows), 3),
                   "embed_rate": round(median(r["embed_rate"] for r in rows), 1), "same_csv": same[n]}
               for n, rows in runs.items()}
    base = figures[names[0]]
    print(f"protoglyph label, {args.count:,} PNGs, {args.jobs} workers, median of {args.runs} runs taking turns")
    print(f"  {'engine':<12}{'files/s':>10}{'wall s':>9}{'embedding img/s':>17}{'ratio':>8}  same CSV")
    for n, f in figures.items():
        print(f"  {n:<12}{f['files_per_s']:>10,.0f}{f['wall_s']:>9.2f}{f['embed_rate']:>17,.0f}"
              f"{f['files_per_s'] / base['files_per_s']:>8.2f}  {'yes' if f['same_csv'] else 'NO'}")
    result: dict[str, object] = {"count": args.count, "jobs": args.jobs, "runs": args.runs, "engines": figures}
    if args.json:
        print(json.dumps(result))
    if not all(same.values()):
        raise SystemExit("the engines' CSVs differ")
    return result


if __name__ == "__main__":
    main()
