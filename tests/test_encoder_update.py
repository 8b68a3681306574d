"""Old projects keep working when the encoder changes (issue 12): a project whose examples and
folder results were embedded by one model opens with another (here of another embedding size
too), re-embeds what it must, keeps every review and label, and an interrupted re-embedding
picks up where it stopped."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from protoglyph.cli import main
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling import embedding
from protoglyph.core.labeling.listing import list_folder
from protoglyph.core.labeling.states import ItemState
from protoglyph.core.labeling.store import BatchStore, read_batch
from protoglyph.core.project import Project
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project
from protoglyph.core.workspace import Workspace
from tests.model_factory import make_encoder


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def models(tmp_path: Path) -> tuple[Path, Path]:
    """Encoder 1 and encoder 2: other weights, another embedding size and the two-channel preprocessing."""
    return (make_encoder(tmp_path / "one.onnx", weights_seed=1, embedding_size=8),
            make_encoder(tmp_path / "two.onnx", weights_seed=2, embedding_size=16, preprocess="skeleton-ink-v1"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "scans"
    rng = np.random.default_rng(3)
    for k in range(12):
        write_png(out / f"ring{k:02d}.png", draw_shape("ring", rng, size=64))
        write_png(out / f"cross{k:02d}.png", draw_shape("cross", rng, size=64))
    return out


def label(*args: Any) -> int:
    return main(["label", *map(str, args), "--jobs", "1", "--quiet"])


def read_csv(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["path"]: r["label"] for r in csv.DictReader(f)}


def review_some(project_path: Path, folder: Path, model: Path) -> dict[str, tuple[int, int]]:
    """Confirm one item as "Cross" (a correction, whatever was predicted) and call another unknown;
    what was stored: path -> (review code, class id)."""
    project = Project.open(project_path)
    try:
        cross = next(c.id for c in project.classes() if c.name == "Cross")
        session = EncoderSession(model)
        table = read_batch(project_path, folder, list_folder(folder), session.model_key, session.embedding_size)
        store = BatchStore(project, folder)
        i, j = table.paths.index("ring00.png"), table.paths.index("cross03.png")
        table.review[i], table.person_class[i] = 2, cross
        table.review[j] = 3
        store.save(table, [i, j], session.model_key)
        return {"ring00.png": (2, cross), "cross03.png": (3, -1)}
    finally:
        project.close()


def stored_models(project_path: Path) -> tuple[set[str], set[str]]:
    project = Project.open(project_path)
    try:
        examples = {m for (m,) in project.query("SELECT embedding_model FROM examples").fetchall()}
        items = {m for (m,) in project.query("SELECT embedding_model FROM batch_items").fetchall()}
        return examples, items
    finally:
        project.close()


def test_a_project_of_encoder_one_opens_with_encoder_two_and_keeps_its_reviews(
        tmp_path: Path, models: tuple[Path, Path], folder: Path) -> None:
    one, two = models
    project_path = tmp_path / "old.protoglyph"
    create_starter_project(project_path, EncoderSession(one)).project.close()
    assert label(folder, "--project", project_path, "--out", tmp_path / "one.csv", "--model", one) == 0
    reviews = review_some(project_path, folder, one)
    key_one, key_two = EncoderSession(one).model_key, EncoderSession(two).model_key
    assert stored_models(project_path) == ({key_one}, {key_one})

    # Opened with encoder 2: every example is embedded again, once, and kept in the file.
    project = Project.open(project_path)
    ws = Workspace(project, EncoderSession(two))
    counts = {c.name: ws.classifier.example_count(c.id) for c in project.classes()}
    project.close()
    assert all(n > 0 for n in counts.values()) and not ws.problems
    examples, _ = stored_models(project_path)
    assert examples == {key_two}

    # The folder, labeled again with encoder 2: every item re-embedded, every review kept.
    assert label(folder, "--project", project_path, "--out", tmp_path / "two.csv", "--model", two) == 0
    assert stored_models(project_path) == ({key_two}, {key_two})
    session = EncoderSession(two)
    table = read_batch(project_path, folder, list_folder(folder), session.model_key, session.embedding_size)
    assert (table.state == ItemState.DONE).all() and table.todo == []
    for path, (code, cls) in reviews.items():
        i = table.paths.index(path)
        assert (int(table.review[i]), int(table.person_class[i])) == (code, cls)
    labels = read_csv(tmp_path / "two.csv")
    assert labels["ring00.png"] == "Cross" and labels["cross03.png"] == ""  # the person's labels, not encoder 2's


def test_an_interrupted_re_embedding_picks_up_where_it_stopped(
        tmp_path: Path, models: tuple[Path, Path], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = models
    project_path = tmp_path / "old.protoglyph"
    create_starter_project(project_path, EncoderSession(one)).project.close()
    assert label(folder, "--project", project_path, "--out", tmp_path / "one.csv", "--model", one) == 0
    reviews = review_some(project_path, folder, one)

    # Re-embedding with encoder 2 dies after its first chunk of 5 files (as a crash would).
    monkeypatch.setattr(embedding, "CHUNK", 5)
    real = embedding.embed_chunk
    seen: list[str] = []

    def dies_after_one_chunk(session: Any, root: str, chunk: Any, max_pixels: int = embedding.MAX_PIXELS) -> Any:
        if seen:
            raise KeyboardInterrupt
        seen.extend(p for _, p in chunk)
        return real(session, root, chunk, max_pixels)

    monkeypatch.setattr(embedding, "embed_chunk", dies_after_one_chunk)
    assert label(folder, "--project", project_path, "--out", tmp_path / "two.csv", "--model", two) != 0
    session = EncoderSession(two)
    table = read_batch(project_path, folder, list_folder(folder), session.model_key, session.embedding_size)
    assert int((table.state == ItemState.DONE).sum()) == 5 and len(table.todo) == len(table) - 5

    # The next run embeds only the rest, and the reviews are all there.
    rest: list[str] = []

    def counting(session: Any, root: str, chunk: Any, max_pixels: int = embedding.MAX_PIXELS) -> Any:
        rest.extend(p for _, p in chunk)
        return real(session, root, chunk, max_pixels)

    monkeypatch.setattr(embedding, "embed_chunk", counting)
    assert label(folder, "--project", project_path, "--out", tmp_path / "two.csv", "--model", two) == 0
    assert sorted(rest) == sorted(set(table.paths) - set(seen))
    table = read_batch(project_path, folder, list_folder(folder), session.model_key, session.embedding_size)
    assert (table.state == ItemState.DONE).all()
    for path, (code, cls) in reviews.items():
        i = table.paths.index(path)
        assert (int(table.review[i]), int(table.person_class[i])) == (code, cls)


def test_the_window_re_embeds_an_old_projects_folder_on_open_with_progress(
        qtbot: Any, tmp_path: Path, models: tuple[Path, Path], folder: Path) -> None:
    from protoglyph.gui.app import application
    from protoglyph.gui.controller import ProjectController
    from protoglyph.gui.main_window import MainWindow
    from protoglyph.gui.settings import AppSettings

    one, two = models
    project_path = tmp_path / "old.protoglyph"
    create_starter_project(project_path, EncoderSession(one)).project.close()
    assert label(folder, "--project", project_path, "--out", tmp_path / "one.csv", "--model", one) == 0
    reviews = review_some(project_path, folder, one)

    application()
    win = MainWindow(ProjectController(Workspace(Project.open(project_path), EncoderSession(two))), AppSettings())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.batch.session is not None and not win.batch.busy(), timeout=30000)
    session = win.batch.session
    assert session is not None and session.folder in (folder, folder.resolve())
    assert (session.table.state == ItemState.DONE).all()  # every item embedded again by encoder 2
    for path, (code, cls) in reviews.items():
        i = session.table.paths.index(path)
        assert (int(session.table.review[i]), int(session.table.person_class[i])) == (code, cls)
    # every item was counted as work in the progress bar (the run starts as the window opens)
    assert win.batch.status.bar.maximum() == len(session.table)
    win.close()
    win.controller.workspace.project.close()
    assert stored_models(project_path)[1] == {EncoderSession(two).model_key}
