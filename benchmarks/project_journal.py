"""How the project file's journal mode costs: SQLite's rollback journal (what Protoglyph uses)
against write-ahead logging (WAL), measured side by side on this disk.

    python -m benchmarks.project_journal [--folder DIR] [--runs 7]

For each mode: one small edit (a setting, as a rename or a review is), one chunk of labeling
results (256 rows with a 1 KB embedding each, as ``BatchStore.save_chunk`` writes), and opening
the project (the checks ``Project.open`` makes). Each figure is the median of ``--runs``
repetitions of 20 operations; ``synchronous = FULL`` in both modes, as the app sets it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from protoglyph.core.labeling.listing import FileEntry
from protoglyph.core.labeling.store import BatchStore, BatchTable
from protoglyph.core.project import Project


def _median_ms(action: Callable[[], None], runs: int, repeat: int = 20) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(repeat):
            action()
        times.append((time.perf_counter() - start) / repeat)
    return 1000 * statistics.median(times)


def measure(folder: Path, mode: str, runs: int) -> dict[str, float]:
    path = folder / f"{mode}.protoglyph"
    Project.create(path).close()
    project = Project.open(path)
    project.query(f"PRAGMA journal_mode = {mode}").fetchone()
    entries = [FileEntry(f"{i:06d}.png", 1000, i) for i in range(256)]
    table = BatchTable.fresh(folder, entries, 512)
    table.embeddings[:] = np.random.default_rng(0).normal(size=table.embeddings.shape)
    table.state[:] = 1
    store = BatchStore(project, folder)
    counter = iter(range(10**9))
    figures = {
        "small edit": _median_ms(lambda: project.set_setting("k", str(next(counter))), runs),
        "chunk of 256 results": _median_ms(lambda: store.save(table, range(256), "m"), runs),
    }
    project.close()
    figures["open"] = _median_ms(lambda: Project.open(path).close(), runs, repeat=5)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, help="where to write the test projects (default: a temporary folder "
                        "beside the current one, on the same disk)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.folder or Path.cwd(), prefix=".journal-bench-") as tmp:
        rows = {mode: measure(Path(tmp), mode, args.runs) for mode in ("delete", "wal")}
    print(f"project file journal modes, median of {args.runs} runs (ms per operation), {os.cpu_count()} cores")
    print(f"{'operation':24} {'rollback (delete)':>18} {'WAL':>10} {'WAL / rollback':>15}")
    for name in rows["delete"]:
        d, w = rows["delete"][name], rows["wal"][name]
        print(f"{name:24} {d:18.2f} {w:10.2f} {w / d:15.2f}")


if __name__ == "__main__":
    main()
