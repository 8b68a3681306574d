"""Folder labeling through the real window: throughput, event-loop stalls, memory, re-ranking.

    python -m benchmarks.gui_batch FOLDER [--project P] [--runs 3]

Opens the main window (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) on a fresh copy
of the project ``benchmarks.cli_batch`` labels with (20 Omniglot evaluation characters x 5
drawings), labels FOLDER with
File ▸ Label a Folder, and reports:

- images/s from the start of labeling to the end (listing, workers, storing, the grid);
- the longest gap between two turns of the event loop while it ran (a 1-ms timer notes every
  turn; a gap is time the window could not answer the person);
- peak RSS of the app's process and of its worker processes (``VmHWM``; the app's peak is
  started again before each run, so a run does not report what an earlier one left);
- after labeling: one correction by key (1 on the least certain item, teaching on), from the
  key press until the re-ranked grid is ready: median of 7.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def run_once(folder: Path, template: Path, session) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from benchmarks.cli_batch import TreeMemory
    from protoglyph.core.project import Project
    from protoglyph.core.workspace import Workspace
    from protoglyph.gui.app import application
    from protoglyph.gui.controller import ProjectController
    from protoglyph.gui.main_window import MainWindow
    from protoglyph.gui.settings import AppSettings

    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.protoglyph"
        shutil.copy(template, path)
        ws = Workspace(Project.open(path), session)
        window = MainWindow(ProjectController(ws), AppSettings())
        window.resize(1280, 800)
        window.show()
        app.processEvents()
        gaps: list[float] = []
        clock = QElapsedTimer()
        ticker = QTimer()
        ticker.setInterval(1)

        def tick() -> None:
            gaps.append(clock.restart())

        ticker.timeout.connect(tick)
        _reset_peak_memory()  # this run's own peak, not the process's since the first run
        watch = TreeMemory(os.getpid())
        clock.start()
        ticker.start()
        loop = QEventLoop()
        window.batch.finished.connect(loop.quit)
        start = time.perf_counter()
        window.label_folder(folder)
        if window.batch.busy():
            loop.exec()
        elapsed = time.perf_counter() - start
        ticker.stop()
        watch.stop()
        me = os.getpid()
        workers = [kb for pid, kb in watch.peak.items() if watch.role.get(pid) == "worker"]
        session_ = window.batch.session
        assert session_ is not None
        n = len(session_.table)
        panel = window.results
        rerank = []
        for _ in range(7):
            panel.go_to(0)
            t0 = time.perf_counter()
            QTest.keyClick(panel.view, Qt.Key.Key_1)
            rerank.append(time.perf_counter() - t0)
        window.close()
        window.deleteLater()
        app.processEvents()
        ws.project.close()
    return {"images": n, "seconds": elapsed, "rate": n / elapsed, "stall_ms": max(gaps[1:] or [0.0]),
            "main_mb": watch.peak.get(me, 0) / 1024, "worker_mb": max(workers or [0]) / 1024,
            "rerank_ms": 1000 * statistics.median(rerank)}


def _reset_peak_memory() -> None:
    """Start this process's ``VmHWM`` again from its present size (Linux: ``clear_refs`` 5), so
    that each run reports its own peak and not one left by an earlier run in the same process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", help="Omniglot folder (default $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import protoglyph  # noqa: F401 - before numpy: it sets the thread settings the app runs with
    from benchmarks.cli_batch import make_examples, make_project
    from protoglyph.core.encoder import EncoderSession

    session = EncoderSession()
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.protoglyph"
        make_project(template, make_examples(Path(tmp) / "examples", args.data), session)
        runs = [run_once(args.folder, template, session) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"GUI labeling of {int(med['images']):,} images, {args.runs} runs (median; a fresh project each run)")
    print(f"  throughput          {med['rate']:8,.0f} images/s ({med['seconds']:.1f} s)")
    print(f"  longest stall       {max(r['stall_ms'] for r in runs):8.1f} ms (worst run; median {med['stall_ms']:.1f})")
    print(f"  peak RSS, app       {max(r['main_mb'] for r in runs):8.0f} MB; largest worker "
          f"{max(r['worker_mb'] for r in runs):.0f} MB")
    print(f"  one correction (key 1, teach) → re-ranked grid: {med['rerank_ms']:.1f} ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
