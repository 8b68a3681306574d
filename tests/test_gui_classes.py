"""Managing classes in the real window: add, rename, delete, reorder, recolour, with undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QColorDialog, QLineEdit, QMessageBox
from pytestqt.qtbot import QtBot

from protoglyph.gui.fonts import missing_glyphs_note
from protoglyph.gui.item_models import Role
from protoglyph.gui.main_window import MainWindow


def names(win: MainWindow) -> list[str]:
    return [c.name for c in win.controller.workspace.classes()]


def test_new_class_is_named_in_place(window: MainWindow, qtbot: QtBot) -> None:
    QTest.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert names(window)[-1] == "Class 9"
    editor = window.classes.view.findChild(QLineEdit)
    assert editor is not None and editor.hasFocus()
    editor.setText("Omega Ω")
    QTest.keyClick(editor, Qt.Key.Key_Return)  # Enter commits the name (queued); it does not add a drawing
    qtbot.waitUntil(lambda: names(window)[-1] == "Omega Ω", timeout=2000)
    assert window.controller.workspace.example_count(window.controller.current_class) == 0


def test_rename_refuses_duplicates_and_empty_names(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *a: shown.append(text))
    model = window.controller.classes_model
    assert not model.setData(model.index(0), "cross")
    assert not model.setData(model.index(0), "   ")
    assert names(window)[0] == "Ring" and len(shown) == 2 and "already a class" in shown[0]
    assert model.setData(model.index(0), "  ../x  ")
    assert names(window)[0] == "../x"
    window.controller.undo_stack.undo()
    assert names(window)[0] == "Ring"


def test_delete_reorder_recolour_undo_redo(window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    c = window.controller
    original = names(window)
    c.select_class(c.class_at(2).id)
    window.menu_actions.delete_class.trigger()
    assert "Cross" not in names(window)
    c.select_class(c.class_at(1).id)
    QTest.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert names(window)[:2] == ["Triangle", "Ring"]
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor("#123456"))
    window.menu_actions.recolor.trigger()
    assert c.workspace.class_record(c.current_class).color == "#123456"
    stack = c.undo_stack
    for _ in range(3):
        stack.undo()
    assert names(window) == original
    assert c.workspace.example_count(c.class_at(2).id) == 4  # the deleted class came back with its examples
    for _ in range(3):
        stack.redo()
    assert names(window)[:2] == ["Triangle", "Ring"] and "Cross" not in names(window)
    assert window.controller.classes_model.index(1).data(Role.COLOR) == QColor("#123456")


def test_names_in_any_script_are_kept_and_unshowable_ones_explained(window: MainWindow) -> None:
    c = window.controller
    for name in ("देवनागरी", "漢字", "ქართული", "😀 emoji"):
        c.new_class(name)
    assert names(window)[-4:] == ["देवनागरी", "漢字", "ქართული", "😀 emoji"]
    assert missing_glyphs_note("Latin") == ""
    note = missing_glyphs_note("\U000e01ef\U0010fffd")  # no font has these
    assert "can't be shown" in note and "font" in note
    tip = c.classes_model.index(len(names(window)) - 1).data(Qt.ItemDataRole.ToolTipRole)
    assert "😀 emoji" in tip


def test_the_window_follows_the_undo_stack_and_commands_hold_only_the_workspace(window: MainWindow) -> None:
    c = window.controller
    cross = c.class_at(2)
    c.select_class(cross.id)
    window.menu_actions.delete_class.trigger()
    c.select_class(c.class_at(1).id)
    window.menu_actions.undo.trigger()  # Edit ▸ Undo Delete Class
    assert names(window)[1] == "Cross" and c.current_class == cross.id  # the restored class is selected
    assert "Cross" in c.classes_model.index(1).data(Qt.ItemDataRole.DisplayRole)
    # the stack moved by itself (not through the window): the models follow all the same
    c.undo_stack.redo()
    assert "Cross" not in names(window) and c.classes_model.rowCount() == len(names(window))
    command = c.undo_stack.command(c.undo_stack.index() - 1)
    assert command.workspace is c.workspace and not hasattr(command, "c")
