"""Every menu and toolbar action, and every shortcut, triggered as a person would.

The actions are found in the window itself (menus, toolbars, the window's own actions and
shortcuts), not from a list kept here, so a new action is covered the day it is added. File
dialogs are answered by the test; any exception in a slot, or any warning or error dialog,
fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QColor, QShortcut
from PySide6.QtWidgets import QApplication, QColorDialog, QDialog, QFileDialog, QInputDialog, QMessageBox

from protoglyph.core.shapes import draw_shape

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Answers:
    """Stands in for the person in front of every dialog, and notes each warning shown."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, folder: Path) -> None:
        self.problems: list[str] = []
        self.folder, self.tmp = folder, tmp_path
        self.saved = 0
        mp = monkeypatch
        mp.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: self._directory(a))
        mp.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(self.tmp / "other.protoglyph"), ""))
        mp.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in sorted(folder.glob("*.png"))[:2]],
                                                                     ""))
        mp.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (self._save_name(a), ""))
        mp.setattr(QInputDialog, "getText", lambda *a, **k: ("Renamed", True))
        mp.setattr(QInputDialog, "getItem", lambda *a, **k: (a[3][0] if len(a) > 3 and a[3] else "", True))
        mp.setattr(QColorDialog, "getColor", lambda *a, **k: QColor("#123456"))
        for name in ("warning", "critical"):
            mp.setattr(QMessageBox, name, lambda *a, _n=name, **k: self._note(_n, a))
        mp.setattr(QMessageBox, "information", lambda *a, **k: QMessageBox.StandardButton.Ok)
        mp.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        mp.setattr(QMessageBox, "about", lambda *a, **k: None)
        self.timer = QTimer()
        self.timer.timeout.connect(self._close_dialogs)
        self.timer.start(30)

    def _directory(self, args: tuple[Any, ...]) -> str:
        title = str(args[1]) if len(args) > 1 else ""
        if "Export" in title or "Undo" in title:
            out = self.tmp / "export"
            out.mkdir(exist_ok=True)
            return str(out)
        return str(self.folder)

    def _save_name(self, args: tuple[Any, ...]) -> str:
        self.saved += 1
        title = str(args[1]) if len(args) > 1 else ""
        suffix = ".csv" if "Export" in title else ".protoglyph"
        return str(self.tmp / f"saved{self.saved}{suffix}")

    def _note(self, kind: str, args: tuple[Any, ...]) -> QMessageBox.StandardButton:
        self.problems.append(f"{kind}: {' / '.join(str(a) for a in args[1:3])}")
        return QMessageBox.StandardButton.Ok

    def _close_dialogs(self) -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMessageBox) and widget.isVisible():
                if widget.icon() in (QMessageBox.Icon.Warning, QMessageBox.Icon.Critical):
                    self.problems.append(f"{widget.windowTitle()}: {widget.text()}")
                widget.done(0)
            elif isinstance(widget, QDialog) and widget.isVisible() and widget.isModal():
                widget.accept()


def glyphs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for shape in ("ring", "cross", "triangle"):
        for k in range(3):
            cv2.imwrite(str(folder / f"{shape}{k}.png"), draw_shape(shape, rng, size=105, pen=4))
    return folder


def window_actions(window: Any) -> Iterator[QAction]:
    """Every action a person can reach in the window: menus (and their submenus), toolbars, the
    window's own; each once."""
    seen: set[int] = set()
    for action in window.findChildren(QAction):
        if id(action) not in seen and not action.isSeparator() and action.menu() is None:
            seen.add(id(action))
            yield action


def test_every_action_and_shortcut_works_from_the_menus(window: Any, qtbot: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = glyphs(tmp_path / "glyphs")
    other = tmp_path / "other.protoglyph"
    from protoglyph.core.project import Project

    Project.create(other).close()
    answers = Answers(monkeypatch, tmp_path, folder)
    try:
        run_every_action(window, qtbot, answers)
    finally:
        answers.timer.stop()


def run_every_action(window: Any, qtbot: Any, answers: Answers) -> None:
    # First the way a new user labels a folder: the menu action (it once received a bool).
    window.menu_actions.label_folder.trigger()
    qtbot.waitUntil(lambda: window.batch.session is not None and not window.batch.busy(), timeout=30000)
    assert window.results.model.rowCount() == 9
    assert answers.problems == []
    a = window.menu_actions
    last = [a.forget_results, a.open_project, a.new_project]  # these clear the undo history: at the end
    skipped = {a.quit, *last}
    tried: list[str] = []
    for _ in range(2):  # the second round reaches what the first enabled (Undo, Redo…)
        for action in window_actions(window):
            if action in skipped or not action.isEnabled():
                continue
            action.trigger()
            qtbot.waitUntil(lambda: not window.batch.busy() and not window.exports.busy, timeout=30000)
            qtbot.wait(20)
            tried.append(action.text().replace("&", ""))
            assert answers.problems == [], f"after {tried[-1]!r}: {answers.problems}"
    assert any(t.startswith("Undo ") for t in tried) and any(t.startswith("Redo") for t in tried), "\n".join(tried)
    for shortcut in window.findChildren(QShortcut):
        if shortcut.isEnabled():
            shortcut.activated.emit()
            qtbot.wait(10)
    assert answers.problems == [], answers.problems
    # The actions that leave the project last: open another, a new one, then quit.
    for action in last:
        window.statusBar().showMessage("Added to “Ring”, which now has 5 examples.")
        action.trigger()
        qtbot.wait(50)
        assert answers.problems == [], f"after {action.text()!r}: {answers.problems}"
        if action is not a.forget_results:
            assert window.statusBar().currentMessage() == ""  # nothing about the old project left
    assert window.controller.workspace.project.path.name.startswith("saved")
    assert len(tried) >= 30, tried
    a.quit.trigger()
    assert not window.isVisible()
