"""Labeling a folder with ``protoglyph label``: the batch-labeling figures of the README.

    python -m benchmarks.cli_batch [--count 20000] [--big 100000] [--runs 3] [--work DIR] [--json]

CLI throughput on ``--count`` 105x105 Omniglot PNGs with ``--examples`` (20 classes x 5) and
``--project`` (a new file per run): files / wall time of the whole process, median of ``--runs``
after a warm-up, plus the embedding-phase rate it prints (so no ``--quiet``). Beside it the
naive loop (per file: PIL, ``preprocess``, one ``session.run``, nearest prototype) and the
encoder alone on the same 2,000 files already preprocessed, batched (the floor); peak RSS
labeling ``--big`` files (/proc polled every 50 ms); re-ranking those items after one class
gains an example. Folders go below ``--work`` and are reused."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from itertools import groupby
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image

from benchmarks.folders import make_folder
from models.omniglot import data_dir, list_drawings, zip_path
from protoglyph.core.classifier import squared_distances
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.imagefile import read_image
from protoglyph.core.labeling.listing import list_folder
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.store import read_batch
from protoglyph.core.project import Project
from protoglyph.core.threshold import default_threshold
from protoglyph.core.workspace import Workspace

CLASSES, SHOTS, NAIVE_FILES, RERANK_REPEATS = 20, 5, 2000, 7
RATE_LINE = re.compile(r"embedded in [\d.]+ s \(([\d,]+) images/s")


def make_examples(out: Path, data: str | None) -> Path:
    """A folder per class: 20 evaluation characters (seed 0), the drawings of drawers 1 to 5."""
    source = zip_path(data_dir(data), "images_evaluation")
    by_character = {c: list(g) for c, g in groupby(list_drawings(source), key=lambda d: d.character)}
    chosen = sorted(map(str, np.random.default_rng(0).choice(list(by_character), CLASSES, replace=False)))
    with zipfile.ZipFile(source) as archive:
        for character in chosen:
            folder = out / character.replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            for d in sorted(by_character[character], key=lambda d: d.drawer)[:SHOTS]:
                (folder / Path(d.member).name).write_bytes(archive.read(d.member))
    return out


def example_files(examples: Path) -> dict[str, list[Path]]:
    """``{class name: its example files}`` of an examples folder."""
    return {d.name: sorted(d.glob("*.png")) for d in sorted(examples.iterdir()) if d.is_dir()}


def make_project(path: Path, examples: Path, session: EncoderSession) -> Path:
    """A new project file holding the examples folder's classes (any old file there is replaced)."""
    path.unlink(missing_ok=True)
    workspace = Workspace(Project.create(path), session)
    for name, files in example_files(examples).items():
        new = workspace.prepare([read_image(f) for f in files], [f.name for f in files])
        workspace.add_examples(workspace.add_class(name).id, new)
    workspace.project.close()
    return path


def _proc(pid: int, name: str) -> str:
    """The text of ``/proc/<pid>/<name>``, empty once the process is gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc/<pid>/task/*/children."""
    tree = [pid]
    for p in tree:  # grows as children are found
        for task in Path(f"/proc/{p}/task").glob("*"):
            tree.extend(int(c) for c in _proc(p, f"task/{task.name}/children").split())
    return tree


class TreeMemory(threading.Thread):
    """Peak memory (kB) of a process tree, polled every 50 ms: ``peak[pid]`` (largest VmHWM or
    VmRSS seen), ``peak_sum`` (largest sum of VmRSS at one poll), ``role[pid]`` (main, worker, tracker)."""

    def __init__(self, pid: int, start: bool = True) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.role, self.peak_sum = pid, {}, {}, 0
        self._done = threading.Event()
        if start:
            self.start()

    def run(self) -> None:
        while not self._done.is_set():
            total = 0
            for pid in process_tree(self.pid):
                fields = dict(line.split(":", 1) for line in _proc(pid, "status").splitlines() if ":" in line)
                rss, hwm = (int(fields.get(k, "0 kB").split()[0]) for k in ("VmRSS", "VmHWM"))
                total += rss
                self.peak[pid] = max(self.peak.get(pid, 0), rss, hwm)
                cmd = _proc(pid, "cmdline")  # read every time: a child's changes when it execs
                self.role[pid] = "main" if pid == self.pid else "tracker" if "resource_tracker" in cmd else "worker"
            self.peak_sum = max(self.peak_sum, total)
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


def run_cli(folder: Path, flag: str, source: Path, out_csv: Path, memory: bool = False,
            model: Path | None = None) -> dict[str, float]:
    """Run ``protoglyph label`` in a new process (``model``: its ``--model``): wall time, printed
    embedding rate, peak memory (MB)."""
    cmd = [sys.executable, "-m", "protoglyph", "label", str(folder), flag, str(source), "--out", str(out_csv)]
    if model is not None:
        cmd += ["--model", str(model)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    monitor = TreeMemory(proc.pid, memory)
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    monitor.stop()
    found = RATE_LINE.search(err)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"protoglyph label failed ({proc.returncode}): {err[-800:]}")
    out = {"wall_s": wall, "embed_rate": float(found.group(1).replace(",", ""))}
    if memory:
        peaks = {role: [kb / 1024 for pid, kb in monitor.peak.items() if monitor.role[pid] == role]
                 for role in ("main", "worker")}
        out.update(main_mb=max(peaks["main"]), worker_mb=max(peaks["worker"], default=0.0),
                   workers=len(peaks["worker"]), sum_mb=monitor.peak_sum / 1024)
    return out


def naive_rate(files: list[Path], examples: Path, runs: int) -> float:
    """Images/s of the one-image-at-a-time loop in one process (median of ``runs``)."""
    session = EncoderSession()  # 2 threads

    def embed(path: Path) -> np.ndarray:
        image = np.asarray(Image.open(path).convert("L"))
        return session.embed_inputs(session.preprocess([image]))[0]

    prototypes = np.stack([np.mean([embed(f) for f in fs], 0) for fs in example_files(examples).values()])
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        labels = [int(squared_distances(embed(f)[None], prototypes).argmin()) for f in files]
        rates.append(len(labels) / (time.perf_counter() - start))
    return median(rates)


def encoder_alone_rate(files: list[Path], runs: int) -> float:
    """Images/s of the encoder alone on ready (already preprocessed) inputs, batched, as the
    app's session runs them (2 threads): the floor a whole command can approach (median of ``runs``)."""
    session = EncoderSession()
    inputs = session.preprocess([read_image(f) for f in files])
    session.embed_inputs(inputs[:256])  # warm-up
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        session.embed_inputs(inputs)
        rates.append(len(inputs) / (time.perf_counter() - start))
    return median(rates)


def rerank_ms(project_path: Path, folder: Path) -> dict[str, float]:
    """Milliseconds to re-rank the stored results after one class gains an example (median of 7)."""
    session = EncoderSession()
    info, project = session.info, Project.open(project_path)
    workspace = Workspace(project, session)  # its classifier stays usable once the file is closed
    project.close()
    classifier, support = workspace.classifier, workspace.support_embeddings()
    key = session.model_key
    table = read_batch(project_path, folder, list_folder(folder), key, session.embedding_size)
    assert not table.todo, "the big run left files unlabeled"
    results = BatchResults(table, info.temperature)
    results.threshold = default_threshold(support)
    results.set_prototypes(*classifier.prototypes())  # type: ignore[arg-type]
    results.order()
    rng, times = np.random.default_rng(0), []
    for i in range(RERANK_REPEATS):  # a corrected item becomes an example of some class
        item = int(rng.integers(len(table)))
        classifier.add_examples(sorted(support)[i % len(support)], table.embeddings[item : item + 1].astype(np.float32))
        keys, prototypes = classifier.prototypes()
        t0 = time.perf_counter()
        results.set_prototypes(keys, prototypes)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        results.order()
        times.append(((time.perf_counter() - t0) * 1000, (t1 - t0) * 1000))
    total, proto = (median(column) for column in zip(*times, strict=True))
    return {"total_ms": total, "set_prototypes_ms": proto, "order_ms": total - proto, "items": len(table)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--big", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "protoglyph-batch-bench")
    p.add_argument("--data", help="Omniglot folder (default: $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    work, n = args.work, args.count
    examples = make_examples(work / "examples", args.data)
    small = make_folder(work / f"glyphs{n}", n, args.data)
    big = make_folder(work / f"glyphs{args.big}", args.big, args.data)
    session, csv, load = EncoderSession(), work / "out.csv", os.getloadavg()
    print(f"load average before the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores")
    run_cli(small, "--examples", examples, csv)  # warm-up: file cache, bytecode cache
    by_examples, by_project = [], []
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        for r in range(args.runs):
            by_examples.append(run_cli(small, "--examples", examples, csv))
            project = make_project(Path(scratch) / f"run{r}.protoglyph", examples, session)
            by_project.append(run_cli(small, "--project", project, csv))
    files = sorted(small.rglob("*.png"))[:NAIVE_FILES]
    naive = naive_rate(files, examples, args.runs)
    encoder = encoder_alone_rate(files, args.runs)
    big_project = make_project(work / "big.protoglyph", examples, session)
    big_run = run_cli(big, "--project", big_project, csv, memory=True)
    rerank = rerank_ms(big_project, big)
    result = {"load_average": load, "count": n, "runs": args.runs, "naive_files": len(files), "naive_rate": naive,
              "examples_rate": median(n / r["wall_s"] for r in by_examples),
              "project_rate": median(n / r["wall_s"] for r in by_project),
              "examples_embed_phase_rate": median(r["embed_rate"] for r in by_examples),
              "project_embed_phase_rate": median(r["embed_rate"] for r in by_project),
              "big": {"count": args.big, "rate": args.big / big_run["wall_s"], **big_run}, "rerank": rerank}
    result["cli_over_naive"] = ratio = result["examples_rate"] / naive
    result["encoder_alone_rate"] = encoder
    result["cli_over_encoder"] = share = result["examples_rate"] / encoder
    rows = [
        (f"CLI --examples, {n:,} PNGs (median of {args.runs})", f"{result['examples_rate']:,.0f} images/s", "≥ 2,000"),
        (f"CLI --project, {n:,} PNGs", f"{result['project_rate']:,.0f} images/s", "≥ 2,000"),
        ("  embedding phase as printed (--examples / --project)",
         f"{result['examples_embed_phase_rate']:,.0f} / {result['project_embed_phase_rate']:,.0f} images/s", ""),
        (f"naive loop, 1 process, 2 threads ({len(files):,} files)", f"{naive:,.0f} images/s", ""),
        ("CLI (--examples) / naive", f"{ratio:.1f}x", "≥ 3x (report)"),
        (f"the encoder alone on ready inputs, batched ({len(files):,})", f"{encoder:,.0f} images/s", ""),
        ("CLI (--examples) / the encoder alone", f"{100 * share:.0f}%", "≥ 75%"),
        (f"CLI --project, {args.big:,} PNGs", f"{result['big']['rate']:,.0f} images/s ({big_run['wall_s']:.0f} s)", ""),
        ("  peak RSS, main process", f"{big_run['main_mb']:.0f} MB", "≤ 400 MB"),
        (f"  peak RSS, largest of {big_run['workers']:.0f} workers", f"{big_run['worker_mb']:.0f} MB", "≤ 400 MB"),
        ("  peak of the sum of RSS over the process tree", f"{big_run['sum_mb']:.0f} MB", ""),
        (f"re-rank {rerank['items']:,.0f} items after one correction (median of {RERANK_REPEATS})",
         f"{rerank['total_ms']:.0f} ms ({rerank['set_prototypes_ms']:.0f} + {rerank['order_ms']:.0f})", "≤ 200 ms"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}} | {'measured':<28} | goal\n{'-' * width}-|-{'-' * 28}-|-{'-' * 10}")
    for figure, measured, goal in rows:
        print(f"{figure:<{width}} | {measured:<28} | {goal}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
