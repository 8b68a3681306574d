"""The desktop app's figures, measured through the real window (offscreen unless a display is set).

    python -m benchmarks.app [--data DIR] [--trials N] [--starts N] [--episodes N] [--json]

- pen lifted → prediction painted: the time from the mouse release reaching the canvas to the
  prediction panel finishing its paint, with 20 classes x 5 examples (median and p95 of
  ``--trials`` strokes);
- app start → window shown and the event loop running, warm: ``python -m protoglyph
  --exit-when-ready`` in a fresh process (median of ``--starts``), after one start to warm up;
- canvas fidelity: 20-way 1-shot on the small sets, one drawer's official image per character
  as the example, another drawer's drawing as the query, (a) as its official image and (b) as
  its pen trajectory replayed onto the canvas as mouse events (``--episodes`` episodes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from models.evaluate import mean_and_ci
from models.omniglot import DataNotFound, data_dir, list_drawings, read_images, read_strokes, zip_path
from protoglyph.core.classifier import episode_accuracy
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.project import Project
from protoglyph.core.shapes import SHAPES, draw_shape
from protoglyph.core.workspace import Workspace
from protoglyph.gui.app import application
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.main_window import MainWindow
from protoglyph.gui.settings import AppSettings

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier


def replay(window: MainWindow, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw unit-square strokes on the canvas with mouse events (press, moves, release)."""
    canvas = window.canvas
    for stroke in strokes:
        pts = [canvas.to_widget(x, y).toPoint() for x, y in stroke]
        QTest.mousePress(canvas, LEFT, NONE, pts[0])
        for p in pts[1:]:
            QTest.mouseMove(canvas, p)
        QTest.mouseRelease(canvas, LEFT, NONE, pts[-1])


def make_window(folder: Path, encoder: EncoderSession, classes: int, examples: int) -> MainWindow:
    workspace = Workspace(Project.create(folder / f"bench-{classes}.protoglyph"), encoder)
    rng = np.random.default_rng(0)
    shapes = sorted(SHAPES)
    for i in range(classes):
        record = workspace.add_class(f"Class {i + 1}")
        images = [draw_shape(shapes[i % len(shapes)], rng, size=256, jitter=0.04 + 0.02 * (i // len(shapes)))
                  for _ in range(examples)]
        workspace.add_examples(record.id, workspace.prepare(images, ["benchmark"] * examples))
    window = MainWindow(ProjectController(workspace), AppSettings())
    window.resize(1180, 720)
    window.show()
    QApplication.processEvents()
    return window


def pen_up_latency(window: MainWindow, trials: int) -> list[float]:
    """Milliseconds from the release event to the end of the prediction panel's paint."""
    canvas, panel = window.canvas, window.prediction
    rng = np.random.default_rng(1)
    out = []
    for i in range(trials):
        canvas.clear()
        QApplication.processEvents()
        t = np.linspace(0, 2 * np.pi, 30)
        pts = [canvas.to_widget(0.5 + 0.3 * np.cos(a) + rng.normal(0, 0.01), 0.5 + 0.3 * np.sin(a * (1 + i % 3)))
               .toPoint() for a in t]
        QTest.mousePress(canvas, LEFT, NONE, pts[0])
        for p in pts[1:]:
            QTest.mouseMove(canvas, p)
        QApplication.processEvents()
        start = time.perf_counter()
        QTest.mouseRelease(canvas, LEFT, NONE, pts[-1])
        while panel.last_painted < start:
            QApplication.processEvents()
        out.append((panel.last_painted - start) * 1000)
    return out


def start_times(starts: int) -> list[float]:
    """Seconds from spawning ``python -m protoglyph`` to its window being shown and interactive."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PROTOGLYPH_DATA_DIR": home, "XDG_CONFIG_HOME": home}
        times = []
        for i in range(starts + 1):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "protoglyph", "--exit-when-ready"], env=env,
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0 or "ready" not in out.stdout:
                raise RuntimeError(f"the app did not start: {out.stderr[-500:]}")
            if i:  # the first start makes the starter project and warms the file cache
                times.append(time.perf_counter() - t)
        return times


def fidelity(window: MainWindow, folder: Path, subset: str, episodes: int) -> dict[str, dict[str, float]]:
    images_zip = zip_path(folder, f"images_background_{subset}")
    strokes_zip = zip_path(folder, f"strokes_background_{subset}")
    drawings = list_drawings(images_zip)
    index = {(d.character, d.drawer): i for i, d in enumerate(drawings)}
    characters = sorted({d.character for d in drawings})
    encoder = window.controller.workspace.encoder
    official = encoder.embed_images(read_images(images_zip, drawings))
    canvas = np.empty_like(official)
    with zipfile.ZipFile(strokes_zip) as archive:
        for i, d in enumerate(drawings):
            text = archive.read(d.member.replace("images_", "strokes_")[:-4] + ".txt").decode()
            window.canvas.clear()
            replay(window, [[(x / 105, y / 105) for x, y, _ in s] for s in read_strokes(text)])
            canvas[i] = window.controller.embed_drawing(window.canvas.strokes())
    rng = np.random.default_rng(0)
    accs: dict[str, list[float]] = {"official": [], "canvas": []}
    for _ in range(episodes):
        chosen = rng.choice(len(characters), 20, replace=False)
        pairs = [rng.choice(np.arange(1, 21), 2, replace=False) for _ in chosen]
        support = [official[index[(characters[c], int(p[0]))]][None] for c, p in zip(chosen, pairs, strict=True)]
        query = [index[(characters[c], int(p[1]))] for c, p in zip(chosen, pairs, strict=True)]
        accs["official"].append(episode_accuracy(support, official[query], np.arange(20)))
        accs["canvas"].append(episode_accuracy(support, canvas[query], np.arange(20)))
    return {k: mean_and_ci(v) for k, v in accs.items()}


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="Omniglot folder (default: $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--starts", type=int, default=7)
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    application()
    encoder = EncoderSession()
    result: dict[str, object] = {"platform": QApplication.platformName()}
    with tempfile.TemporaryDirectory() as folder:
        window = make_window(Path(folder), encoder, 20, 5)
        lat = pen_up_latency(window, args.trials)
        result["pen_up_to_paint_ms_median"] = round(statistics.median(lat), 3)
        result["pen_up_to_paint_ms_p95"] = round(float(np.percentile(lat, 95)), 3)
        print(f"pen lifted → prediction painted (20 classes x 5 examples, {args.trials} strokes, "
              f"{result['platform']}): median {result['pen_up_to_paint_ms_median']:.2f} ms, "
              f"p95 {result['pen_up_to_paint_ms_p95']:.2f} ms")
        starts = start_times(args.starts)
        result["start_s_median"] = round(statistics.median(starts), 3)
        print(f"app start → window shown, warm (median of {args.starts}): {result['start_s_median']:.3f} s")
        try:
            folder_data = data_dir(args.data)
            for subset in ("small1", "small2"):
                fid = fidelity(window, folder_data, subset, args.episodes)
                result[f"fidelity_{subset}"] = fid
                print(f"canvas fidelity, {subset}, 20-way 1-shot, {args.episodes} episodes: official images "
                      f"{100 * fid['official']['mean']:.2f}% ± {100 * fid['official']['ci95']:.2f}, replayed on the "
                      f"canvas {100 * fid['canvas']['mean']:.2f}% ± {100 * fid['canvas']['ci95']:.2f}")
        except DataNotFound as exc:
            print(f"canvas fidelity skipped: {exc}")
        window.close()
        window.controller.workspace.project.close()
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
