"""Projects in the real window: save, close, reopen; damaged and foreign files; settings;
the starter project on first start; the model-error dialog and the About box."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.project import Project
from protoglyph.core.workspace import Workspace
from protoglyph.gui import app as gui_app
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.main_window import MainWindow
from protoglyph.gui.settings import AppSettings, data_dir
from tests.gui_helpers import draw_stroke, ring


def snapshot(workspace: Workspace) -> list[tuple[str, str, list[bytes]]]:
    return [(c.name, c.color, [e.image for e in workspace.examples(c.id)]) for c in workspace.classes()]


def test_save_as_close_reopen_restores_everything(window: MainWindow, tmp_path: Path, encoder: EncoderSession) -> None:
    c = window.controller
    record = c.new_class("Spiral ꩜")
    draw_stroke(window.canvas, ring(r=0.2))
    QTest.keyClick(window, Qt.Key.Key_Return)
    target = tmp_path / "mine.protoglyph"
    assert window.files.save_to(target)
    assert window.windowTitle().startswith("mine")
    c.rename_class(record.id, "Spiral")  # edits continue in the new file, saved at once
    before = snapshot(c.workspace)
    window.close()
    c.workspace.project.close()
    reopened = Workspace(Project.open(target), encoder)
    assert snapshot(reopened) == before
    assert reopened.example_count(record.id) == 1
    reopened.project.close()
    assert str(target.resolve()) in AppSettings().recent_projects()


@pytest.mark.parametrize("content", [b"just some text\n", b"SQLite format 3\x00" + b"\x13" * 4000])
def test_damaged_or_foreign_files_open_with_a_message_and_harm_nothing(window: MainWindow, tmp_path: Path,
                                                                         content: bytes) -> None:
    bad = tmp_path / "bad.protoglyph"
    bad.write_bytes(content)
    current = window.controller.workspace.project.path
    assert not window.files.open(bad)
    box = window.findChild(QMessageBox, "projectError")
    assert box is not None and str(bad) in box.text()
    assert bad.read_bytes() == content
    assert window.controller.workspace.project.path == current and window.controller.workspace.classes()
    box.close()


def test_window_geometry_and_recent_projects_persist(window: MainWindow, qtbot: QtBot) -> None:
    window.resize(760, 560)  # the offscreen screen is 800x600
    window.files.save_to(window.controller.workspace.project.path.with_name("copy.protoglyph"))
    window.close()
    again = MainWindow(ProjectController(window.controller.workspace), AppSettings())
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (760, 560)
    assert AppSettings().last_project().endswith("copy.protoglyph")  # type: ignore[union-attr]
    again.close()


def test_first_start_opens_the_starter_project_with_a_hint(qtbot: QtBot, encoder: EncoderSession) -> None:
    gui_app.application()
    workspace, problem = gui_app.first_workspace(encoder, AppSettings(), None)
    assert problem == "" and workspace.project.path.parent == data_dir()
    assert len(workspace.classes()) == 8
    win = MainWindow(ProjectController(workspace), AppSettings())
    qtbot.addWidget(win)
    win.show()
    assert win.hint.isVisible()
    win.hint._close()
    assert workspace.project.setting("starter_hint") == "0"  # stays hidden next time
    win.close()
    workspace.project.close()


def test_a_missing_project_falls_back_to_the_starter_with_a_message(qtbot: QtBot, encoder: EncoderSession,
                                                                   tmp_path: Path) -> None:
    gui_app.application()
    workspace, problem = gui_app.first_workspace(encoder, AppSettings(), tmp_path / "gone.protoglyph")
    assert "gone.protoglyph" in problem and "no such file" in problem
    assert len(workspace.classes()) == 8
    workspace.project.close()


def test_broken_model_shows_a_dialog_naming_the_file(qtbot: QtBot, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00" * 64)
    assert gui_app.run(model=bad) == 2
    assert len(shown) == 1 and str(bad) in shown[0] and "PROTOGLYPH_MODEL" in shown[0]


def test_about_box_shows_the_model_card_summary(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, _title, text: shown.append(text))
    window.menu_actions.about.trigger()
    info = window.controller.workspace.encoder.info
    assert info.model_name in shown[0] and "20-way 1-shot" in shown[0] and "Omniglot" in shown[0]


def test_the_app_starts_on_a_damaged_starter_and_says_what_was_lost(encoder: EncoderSession, tmp_path: Path) -> None:
    """The real start, in a process of its own (the app's event loop runs and quits there)."""
    import os
    import sqlite3
    import subprocess
    import sys

    from protoglyph.core.starter import create_starter_project

    env = {**os.environ, "PROTOGLYPH_DATA_DIR": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    starter = tmp_path / "data" / gui_app.STARTER_NAME
    create_starter_project(starter, encoder).project.close()
    db = sqlite3.connect(starter)
    db.execute("UPDATE examples SET image = x'00' WHERE id = (SELECT MIN(id) FROM examples)")
    db.commit()
    db.close()

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "protoglyph", "--exit-when-ready"], env=env, text=True,
                              capture_output=True, timeout=120)

    # 1. an example whose image is damaged: the app starts, and names the class that lost it
    first = start()
    assert first.returncode == 0 and "Class “Ring” lost example 1" in first.stderr, first.stderr
    # 2. a starter that cannot be opened at all: kept aside, a new one made, and the person told
    starter.write_bytes(b"not a database at all")
    second = start()
    assert second.returncode == 0 and "kept as" in second.stderr, second.stderr
    assert starter.with_name(starter.name + ".damaged").read_bytes() == b"not a database at all"


def test_a_damaged_example_is_counted_out_and_says_so(qtbot: QtBot, encoder: EncoderSession, tmp_path: Path) -> None:
    import sqlite3

    from protoglyph.core.starter import create_starter_project
    from tests.conftest import _shown_window

    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE examples SET image = x'00' WHERE id = (SELECT MIN(id) FROM examples)")
    db.commit()
    db.close()
    shown = _shown_window(qtbot, Workspace(Project.open(path), encoder))
    win = next(shown)
    classes = win.controller.classes_model
    assert "3 examples" in classes.index(0).data(Qt.ItemDataRole.DisplayRole)  # the Ring class lost one
    examples = win.controller.examples_model
    tips = [examples.index(r).data(Qt.ItemDataRole.ToolTipRole) for r in range(examples.rowCount())]
    assert sum("damaged" in t for t in tips) == 1 and len(tips) == 4
    next(shown, None)


def test_keyboard_shortcuts_lists_every_key_in_groups(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtGui import QKeySequence

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda _p, _t, text: shown.append(text))
    QTest.keyClick(window, Qt.Key.Key_F1)
    text = shown[0]
    for group in ("Drawing", "Undo", "Classes and examples", "Projects and folders", "Reviewing a folder"):
        assert f"<b>{group}</b>" in text
    for act in window.menu_actions.all():
        if not act.shortcut().isEmpty():
            assert act.shortcut().toString(QKeySequence.SequenceFormat.NativeText) in text, act.text()
    for key in ("Shift+Arrows", "Ctrl+Z", "Space", "Esc"):
        assert key in text


def test_a_small_window_keeps_its_toolbar_and_canvas(window: MainWindow, qtbot: QtBot) -> None:
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.tools.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly, timeout=2000)
    assert window.tools.sizeHint().width() <= window.width()  # no hidden overflow menu
    window.resize(1200, 700)
    qtbot.waitUntil(lambda: window.tools.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
                    timeout=2000)
