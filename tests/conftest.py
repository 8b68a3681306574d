"""Shared fixtures: the Omniglot folder (skipped when absent), a synthetic Omniglot-layout data
set drawn in code, and a tiny encoder trained and exported from it."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.core.shapes import SHAPES, draw_shape

# The GUI tests drive the real window without a screen, on any machine, unless told otherwise.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    folder = Path(os.environ.get("PROTOGLYPH_OMNIGLOT") or REPO.parent / "shared" / "omniglot")
    if not (folder / "images_background.zip").is_file():
        pytest.skip(f"Omniglot not found at {folder} (set PROTOGLYPH_OMNIGLOT to the folder of the official zips)")
    return folder


def synthetic_character(shape: str, variant: int, drawer: int) -> np.ndarray:
    """One drawing of a synthetic character: a shape with a per-character warp, per-drawer jitter."""
    image = draw_shape(shape, np.random.default_rng(1000 * variant + drawer), size=105)
    char_rng = np.random.default_rng(variant)
    warp = np.eye(2) + char_rng.normal(0, 0.25, (2, 2))
    matrix = np.hstack([warp, (np.array([52.5, 52.5]) - warp @ np.array([52.5, 52.5]))[:, None]])
    return cv2.warpAffine(image, matrix, (105, 105), borderValue=255)


def write_omniglot_zip(path: Path, set_name: str, alphabets: dict[str, int], drawers: int = 20) -> None:
    """A zip in the official layout: ``<set>/<Alphabet>/characterNN/<id>_<kk>.png``."""
    shapes = sorted(SHAPES)
    ident = 0
    with zipfile.ZipFile(path, "w") as archive:
        for a_index, (alphabet, count) in enumerate(alphabets.items()):
            for c in range(count):
                ident += 1
                variant = 100 * a_index + c
                for k in range(1, drawers + 1):
                    image = synthetic_character(shapes[c % len(shapes)], variant, k)
                    ok, png = cv2.imencode(".png", image)
                    assert ok
                    name = f"{set_name}/{alphabet}/character{c + 1:02d}/{ident:04d}_{k:02d}.png"
                    archive.writestr(name, png.tobytes())


@pytest.fixture(scope="session")
def synthetic_omniglot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("omniglot")
    write_omniglot_zip(folder / "images_background.zip", "images_background",
                       {"Synthetic_A": 8, "Synthetic_B": 8, "Latin": 6})
    write_omniglot_zip(folder / "images_evaluation.zip", "images_evaluation", {"Other_C": 20, "Other_D": 20})
    return folder


@pytest.fixture(scope="session")
def tiny_run(synthetic_omniglot: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A run folder holding a 30-episode training run on the synthetic set.

    The preprocessed-set cache goes to the run folder, not the checkout, for the whole session.
    """
    pytest.importorskip("torch", reason="training tests need the 'train' extra (torch)")
    from models import data, train

    run = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "CACHE_DIR", run / "cache")
        train.main(["--data", str(synthetic_omniglot), "--out", str(run), "--episodes", "30", "--ways", "8",
                    "--queries", "3", "--val-every", "15", "--width", "16", "--threads", "1"])
        yield run


@pytest.fixture(scope="session")
def tiny_model(tiny_run: Path) -> Path:
    from models import export

    out = tiny_run / "tiny.onnx"
    export.export([tiny_run / "best.pt"], out, version="0.0.1-test")
    return out


# -- the desktop app ---------------------------------------------------------------------
@pytest.fixture(autouse=True)
def isolated_app_files(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's real settings or app data folder."""
    folder = tmp_path_factory.mktemp("appdata")
    monkeypatch.setenv("PROTOGLYPH_DATA_DIR", str(folder / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "share"))
    try:
        from PySide6.QtCore import QSettings
    except ImportError:
        return folder
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder / "settings"))
    return folder


@pytest.fixture(scope="session")
def encoder():  # type: ignore[no-untyped-def]
    from protoglyph.core.encoder import EncoderSession

    return EncoderSession()


def _shown_window(qtbot, workspace):  # type: ignore[no-untyped-def]
    """The main window on ``workspace``, shown; closed (with its project) afterwards."""
    from protoglyph.gui.controller import ProjectController
    from protoglyph.gui.main_window import MainWindow
    from protoglyph.gui.settings import AppSettings

    win = MainWindow(ProjectController(workspace), AppSettings())
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.controller.workspace.project.close()


@pytest.fixture
def window(qtbot, encoder, tmp_path):  # type: ignore[no-untyped-def]
    """The main window on a fresh starter project."""
    from protoglyph.core.starter import create_starter_project
    from protoglyph.gui.app import application

    application()
    yield from _shown_window(qtbot, create_starter_project(tmp_path / "starter.protoglyph", encoder))


@pytest.fixture
def empty_window(qtbot, encoder, tmp_path):  # type: ignore[no-untyped-def]
    """The main window on a new, empty project."""
    from protoglyph.core.project import Project
    from protoglyph.core.workspace import Workspace
    from protoglyph.gui.app import application

    application()
    yield from _shown_window(qtbot, Workspace(Project.create(tmp_path / "empty.protoglyph"), encoder))
