"""Nothing a closed window or a closed project showed stays in memory.

A labeled folder's results are the largest thing the app holds (100,000 items: tens of MB);
they must go when their window closes or another project is opened, or every labeling leaves
its results behind (found in ``benchmarks.gui_batch --runs 3``: each run's window, with its
results, stayed alive because lambdas connected to the controller's signals held it).
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.starter import create_starter_project
from protoglyph.gui.app import application
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.main_window import MainWindow
from protoglyph.gui.settings import AppSettings
from tests.test_gui_batch import glyph_folder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def label_by_menu(win: MainWindow, qtbot: QtBot, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    win.menu_actions.label_folder.trigger()  # File ▸ Label a Folder…
    qtbot.waitUntil(lambda: not win.batch.busy() and win.batch.session is not None, timeout=30000)


def collected(*refs: weakref.ref) -> bool:  # type: ignore[type-arg]
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    return all(r() is None for r in refs)


def open_window(tmp_path: Path, encoder: EncoderSession) -> MainWindow:
    """A window of its own (the ``window`` fixture's generator would hold the first project)."""
    application()
    win = MainWindow(ProjectController(create_starter_project(tmp_path / "p.protoglyph", encoder)), AppSettings())
    win.show()
    return win


def test_a_closed_window_frees_what_it_showed(qtbot: QtBot, encoder: EncoderSession, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    win = open_window(tmp_path, encoder)
    project = win.controller.workspace.project
    label_by_menu(win, qtbot, glyph_folder(tmp_path), monkeypatch)
    assert win.batch.session is not None
    refs = [weakref.ref(win), weakref.ref(win.batch.session), weakref.ref(win.batch.session.table),
            weakref.ref(win.controller)]
    win.close()
    win.deleteLater()
    del win
    assert collected(*refs), [type(r()).__name__ for r in refs if r() is not None]
    project.close()


def test_opening_another_project_frees_the_old_ones_results(qtbot: QtBot, encoder: EncoderSession, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    win = open_window(tmp_path, encoder)
    label_by_menu(win, qtbot, glyph_folder(tmp_path), monkeypatch)
    session = win.batch.session
    assert session is not None
    refs = [weakref.ref(session), weakref.ref(session.table), weakref.ref(session.results),
            weakref.ref(win.controller.workspace)]
    del session
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "other.protoglyph"), ""))
    win.menu_actions.new_project.trigger()  # File ▸ New Project…
    assert win.controller.workspace.project.path.name == "other.protoglyph"
    assert collected(*refs), [type(r()).__name__ for r in refs if r() is not None]
    win.close()
    win.controller.workspace.project.close()


def test_labeling_another_folder_frees_the_one_shown_before(qtbot: QtBot, encoder: EncoderSession, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    win = open_window(tmp_path, encoder)
    label_by_menu(win, qtbot, glyph_folder(tmp_path / "a"), monkeypatch)
    first = win.batch.session
    assert first is not None
    refs = [weakref.ref(first), weakref.ref(first.table), weakref.ref(first.results)]
    del first
    label_by_menu(win, qtbot, glyph_folder(tmp_path / "b"), monkeypatch)
    assert win.batch.session is not None and win.batch.session.folder.parent.name == "b"
    assert collected(*refs), [type(r()).__name__ for r in refs if r() is not None]
    win.close()
    win.controller.workspace.project.close()
