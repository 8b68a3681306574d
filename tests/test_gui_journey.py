"""A new user's first session, start to restart, with the mouse and the keys only.

First start on an empty data folder (the starter project) → File ▸ New Project → draw → a new
class named in place → more examples → a second class → File ▸ Label a Folder → review with
keys → export a CSV → quit → start again: the same project opens, on the labeled folder, with
the reviews kept.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLineEdit
from pytestqt.qtbot import QtBot

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.shapes import draw_shape
from protoglyph.gui import app as gui_app
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.main_window import MainWindow
from protoglyph.gui.settings import AppSettings
from tests.gui_helpers import cross, draw_stroke, draw_strokes, ring

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
KEY = Qt.Key
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def start(qtbot: QtBot, encoder: EncoderSession) -> MainWindow:
    """What ``protoglyph`` does at start, up to the shown window."""
    workspace, problem = gui_app.first_workspace(encoder, AppSettings(), None)
    assert problem == ""
    AppSettings().add_recent(workspace.project.path)
    win = MainWindow(ProjectController(workspace), AppSettings())
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    activate(win, qtbot)
    return win


def activate(win: MainWindow, qtbot: QtBot) -> None:
    """Offscreen there is no window manager: the test gives the window the activation a person's
    click would (keyboard shortcuts go to the active window only)."""
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)


def name_new_class(win: MainWindow, qtbot: QtBot, name: str) -> None:
    qtbot.waitUntil(lambda: any(e.hasFocus() for e in win.classes.view.findChildren(QLineEdit)), timeout=3000)
    editor = next(e for e in win.classes.view.findChildren(QLineEdit) if e.hasFocus())
    editor.setText(name)
    QTest.keyClick(editor, KEY.Key_Return)
    qtbot.waitUntil(lambda: win.controller.workspace.classes()[-1].name == name, timeout=3000)


def folder_of_glyphs(root: Path) -> Path:
    rng = np.random.default_rng(11)
    folder = root / "to label"
    folder.mkdir()
    for shape in ("ring", "cross"):
        for k in range(4):
            cv2.imwrite(str(folder / f"{shape}{k}.png"), draw_shape(shape, rng, size=105, pen=4))
    return folder


def test_a_first_session_from_start_to_restart(qtbot: QtBot, encoder: EncoderSession, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "My glyphs.protoglyph"
    folder = folder_of_glyphs(tmp_path)
    out = tmp_path / "labels.csv"
    answers: dict[str, Any] = {"save": str(project)}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (answers["save"], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))

    win = start(qtbot, encoder)
    assert win.controller.workspace.project.path.name.startswith("Starter project")
    win.menu_actions.new_project.trigger()  # File ▸ New Project…
    assert win.controller.workspace.project.path == project and win.controller.workspace.classes() == []
    activate(win, qtbot)

    # Draw a ring and press Enter: with no class yet it starts one, named in place.
    for k in range(3):
        draw_stroke(win.canvas, ring(r=0.30 + 0.02 * k))
        QTest.keyClick(win, KEY.Key_Return)
        if k == 0:
            name_new_class(win, qtbot, "Ring")
    QTest.keyClick(win, KEY.Key_N, CTRL | SHIFT)  # Classes ▸ New Class
    name_new_class(win, qtbot, "Cross")
    for _ in range(3):
        draw_strokes(win.canvas, cross())
        QTest.keyClick(win, KEY.Key_Return)
    ws = win.controller.workspace
    assert [(c.name, ws.example_count(c.id)) for c in ws.classes()] == [("Ring", 3), ("Cross", 3)]

    # Label a folder from the menu's shortcut, review the three least certain with the keys.
    QTest.keyClick(win, KEY.Key_L, CTRL)
    qtbot.waitUntil(lambda: win.batch.session is not None and not win.batch.busy(), timeout=30000)
    assert win.reviewing() and win.results.model.rowCount() == 8
    view = win.results.view
    first = view.model().index(0, 0)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(first).center())
    QTest.keyClick(win.results.view, KEY.Key_Return)  # confirm the selected prediction
    QTest.keyClick(win.results.view, KEY.Key_2)  # the next one is a Cross
    QTest.keyClick(win.results.view, KEY.Key_U)  # the next: none of these
    reviewed = int((win.batch.session.table.review != 0).sum())  # type: ignore[union-attr]
    assert reviewed == 3

    # Export a CSV (the dialog's default choice), then quit.
    answers["save"] = str(out)
    qtbot.waitUntil(lambda: win.menu_actions.export_results.isEnabled(), timeout=3000)

    def accept_export_dialog() -> None:
        dialog = next(w for w in win.findChildren(QDialog) if w.isVisible())
        dialog.accept()

    from PySide6.QtCore import QTimer

    QTimer.singleShot(100, accept_export_dialog)
    QTest.keyClick(win, KEY.Key_E, CTRL)
    qtbot.waitUntil(out.exists, timeout=5000)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and sum(r["reviewed"] == "yes" for r in rows) == 3
    win.menu_actions.quit.trigger()
    assert not win.isVisible()
    win.controller.workspace.project.close()

    # Start again: the same project, on the same labeled folder, the reviews still there.
    again = start(qtbot, encoder)
    assert again.controller.workspace.project.path == project
    qtbot.waitUntil(lambda: again.batch.session is not None and not again.batch.busy(), timeout=30000)
    session = again.batch.session
    assert session is not None and session.folder in (folder, folder.resolve())
    assert int((session.table.review != 0).sum()) == 3
    assert again.menu_actions.export_results.isEnabled() and again.menu_actions.forget_results.isEnabled()
    assert again.results.folders.count() == 1
    again.close()
    again.controller.workspace.project.close()
