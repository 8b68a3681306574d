"""The one labeling pipeline (``core.labeling.run.label_folder``) and its engines: in this
process, local worker processes and Ray (local mode), giving the same CSV row for row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling import engines
from protoglyph.core.labeling.run import ChunkDone, Started, Support, choose_threshold, label_folder, take_chunk
from protoglyph.core.labeling.store import labeled_folders
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project
from protoglyph.core.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


def _folder(root: Path, count: int) -> Path:
    folder = root / "scans"
    for k in range(count):
        shape = ("ring", "cross", "star")[k % 3]
        sub = folder / ("more" if k % 10 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(sub / f"{k:05d}.png"), draw_shape(shape, np.random.default_rng(k), size=48))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return folder


def _support(workspace: Workspace) -> Support:
    keys, prototypes = workspace.classifier.prototypes()
    return Support([int(k) for k in keys], prototypes, workspace.classifier.open_set_reference())  # type: ignore[call-overload]


def test_the_pipeline_stores_every_chunk_and_a_second_run_has_nothing_to_do(tmp_path: Path,
                                                                            encoder: EncoderSession) -> None:
    folder = _folder(tmp_path, 40)
    workspace = create_starter_project(tmp_path / "p.protoglyph", encoder)
    try:
        events = list(label_folder(folder, encoder, _support(workspace), project=workspace.project,
                                   engine=engines.InProcess(), mark_shown=True))
        started = events[0]
        assert isinstance(started, Started) and started.store is not None
        assert all(isinstance(e, ChunkDone) for e in events[1:]) and len(events) > 1
        results = started.results
        assert len(results) == 41 and len(results.table.todo) == 41
        for e in events[1:]:
            assert isinstance(e, ChunkDone)
            take_chunk(results, e.chunk)
        first = results.labels().copy()
        assert (first >= 0).sum() >= 35 and list(results.table.errors.values()) != []
        # again: everything comes from the project; only the broken file is tried again
        again = list(label_folder(folder, encoder, _support(workspace), project=workspace.project,
                                  engine=engines.InProcess()))
        second = again[0]
        assert isinstance(second, Started)
        assert [second.results.table.paths[i] for i in second.results.table.todo] == ["broken.png"]
        assert len(again) == 2
        np.testing.assert_array_equal(second.results.labels(), first)
    finally:
        workspace.project.close()


def test_a_stopped_pipeline_keeps_what_it_stored_and_goes_on_from_there(tmp_path: Path,
                                                                         encoder: EncoderSession) -> None:
    folder = _folder(tmp_path, 600)  # three chunks of 256
    workspace = create_starter_project(tmp_path / "p.protoglyph", encoder)
    try:
        chunks = 0

        def stop() -> bool:
            return chunks >= 1

        for event in label_folder(folder, encoder, _support(workspace), project=workspace.project,
                                  engine=engines.InProcess(), should_stop=stop):
            chunks += isinstance(event, ChunkDone)
        assert chunks == 1
        events = list(label_folder(folder, encoder, _support(workspace), project=workspace.project,
                                   engine=engines.InProcess()))
        started = events[0]
        assert isinstance(started, Started)
        assert len(started.results.table.todo) == 601 - 256  # only what was not stored
    finally:
        workspace.project.close()


def test_a_folder_with_nothing_to_label_touches_no_project(tmp_path: Path, encoder: EncoderSession) -> None:
    (tmp_path / "empty").mkdir()
    workspace = create_starter_project(tmp_path / "p.protoglyph", encoder)
    try:
        events = list(label_folder(tmp_path / "empty", encoder, _support(workspace), project=workspace.project))
        assert len(events) == 1 and isinstance(events[0], Started)
        assert events[0].store is None and len(events[0].results) == 0
        assert labeled_folders(workspace.project) == []
    finally:
        workspace.project.close()


def test_the_threshold_in_force() -> None:
    assert choose_threshold(3.0, 5.0, 7.0) == 3.0
    assert choose_threshold(None, 5.0, 7.0) == 5.0
    assert choose_threshold(None, None, 7.0) == 7.0
    assert choose_threshold(float("nan"), -1.0, 7.0) == 7.0  # unusable values fall through
    assert choose_threshold(None, None, None) is None


def test_engine_names_and_their_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(engines.make_engine("processes", 3), engines.LocalWorkers)
    assert engines.make_engine("processes", 3).description == "3 worker processes"
    assert isinstance(engines.make_engine("in-process"), engines.InProcess)
    from protoglyph.core.labeling.ray_engine import RayEngine

    assert RayEngine().description == "Ray on this machine, a worker per CPU"
    assert RayEngine("10.0.0.1:6379", 1).description == "the Ray cluster at 10.0.0.1:6379, 1 worker"
    with pytest.raises(engines.EngineError, match="no engine 'spark'"):
        engines.make_engine("spark")
    with pytest.raises(engines.EngineError, match="ray engine only"):
        engines.make_engine("processes", address="10.0.0.1:6379")
    # without Ray installed, the ray engine says what to install, before any work
    from protoglyph.core.labeling import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(engines.EngineError, match=r"pip install 'protoglyph\[ray\]'"):
        ray_engine.ray_module()
    with pytest.raises(engines.EngineError, match="needs Ray Data"):
        engines.make_engine("ray")  # before any work: the command exits 2, nothing written


def _label(folder: Path, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    examples = folder.parent / "examples"
    if not examples.exists():
        for shape in ("ring", "cross", "star"):
            (examples / shape).mkdir(parents=True)
            for k in range(3):
                assert cv2.imwrite(str(examples / shape / f"{k}.png"),
                                   draw_shape(shape, np.random.default_rng(9000 + k), size=48))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "desktop"), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples),
                           "--out", str(out), *options], capture_output=True, text=True, timeout=600, env=env,
                          cwd=REPO)


@pytest.mark.slow
def test_every_engine_gives_the_same_csv_row_for_row(tmp_path: Path) -> None:
    """1,100 files (enough that the processes engine really uses its workers): in this process,
    two worker processes and, where Ray is installed (always in CI), Ray in local mode."""
    folder = _folder(tmp_path, 1100)
    outputs = {}
    for name, options in (("in-process", ["--engine", "in-process"]), ("processes", ["--jobs", "2"]),
                          ("ray", ["--engine", "ray", "--jobs", "2"])):
        if name == "ray":
            try:
                import ray.data  # noqa: F401
            except ImportError:
                if os.environ.get("CI"):
                    raise  # CI installs the test extra, which has Ray: it must run there
                continue
        out = tmp_path / f"{name}.csv"
        done = _label(folder, out, *options)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        outputs[name] = out.read_bytes()
        if name == "processes":
            assert "2 workers" in done.stderr
        if name == "ray":  # and none of Ray's own notes on its set-up
            assert "Ray on this machine" in done.stderr
            assert not [line for line in done.stderr.splitlines() if not line.startswith(("protoglyph", "read "))]
    rows = outputs["in-process"].decode().splitlines()
    assert len(rows) == 1 + 1101 and any(",error," in r for r in rows)
    for name, data in outputs.items():
        assert data == outputs["in-process"], f"{name} differs"


def test_the_command_refuses_an_address_without_ray(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    done = _label(folder, tmp_path / "o.csv", "--address", "10.0.0.1:6379")
    assert done.returncode == 2 and "--address is for --engine ray" in done.stderr
    assert not (tmp_path / "o.csv").exists()
