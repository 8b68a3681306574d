"""Adding examples the four ways (drawing, file dialog, drag & drop, clipboard), removing and
moving them, with undo and redo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from pytestqt.qtbot import QtBot

from protoglyph.core.shapes import draw_shape
from protoglyph.gui.images import gray_to_qimage
from protoglyph.gui.main_window import MainWindow
from tests.gui_helpers import draw_stroke, drop_files, ring


def counts(win: MainWindow) -> dict[str, int]:
    ws = win.controller.workspace
    return {c.name: ws.example_count(c.id) for c in ws.classes()}


def write_shapes(folder: Path, shape: str, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{shape}_{i}.png"
        cv2.imwrite(str(p), draw_shape(shape, rng, size=80))
        paths.append(p)
    return paths


def problems_box(win: MainWindow) -> QMessageBox | None:
    return win.findChild(QMessageBox, "fileProblems")


def test_enter_and_number_keys_add_the_drawing(window: MainWindow) -> None:
    before = counts(window)
    draw_stroke(window.canvas, ring())
    QTest.keyClick(window, Qt.Key.Key_Return)  # the selected class is class 1, "Ring"
    assert counts(window)["Ring"] == before["Ring"] + 1 and window.canvas.is_empty()
    draw_stroke(window.canvas, [(0.2, 0.2), (0.8, 0.8)])
    QTest.keyClick(window, Qt.Key.Key_3)
    assert counts(window)["Triangle"] == before["Triangle"] + 1
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # canvas empty: undo the edit
    assert counts(window) == {**before, "Ring": before["Ring"] + 1}
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert counts(window)["Triangle"] == before["Triangle"] + 1
    draw_stroke(window.canvas, ring())
    QTest.keyClick(window, Qt.Key.Key_9)  # there is no class 9
    assert "no class 9" in window.statusBar().currentMessage()


def test_file_dialog_adds_images_and_lists_bad_files(window: MainWindow, qtbot: QtBot, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    good = write_shapes(tmp_path / "stars", "star", 3)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good[0].read_bytes()[:60])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    chosen = [str(p) for p in [*good, corrupt, text]]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: (chosen, ""))
    window.controller.select_class(window.controller.class_at(8).id)  # "Star"
    before = counts(window)["Star"]
    with qtbot.waitSignal(window.imports.finished, timeout=10000):
        window.menu_actions.add_images.trigger()
    assert counts(window)["Star"] == before + 3
    box = problems_box(window)
    assert box is not None and "2 of 5 files" in box.text()
    assert "corrupt.png" in box.detailedText() and "notes.png" in box.detailedText()
    assert corrupt.read_bytes() == good[0].read_bytes()[:60]  # never touched
    box.close()


def test_drop_a_folder_per_class_tree(empty_window: MainWindow, qtbot: QtBot, tmp_path: Path) -> None:
    tree = tmp_path / "glyphs"
    write_shapes(tree / "zig", "zigzag", 3)
    write_shapes(tree / "check", "check", 2)
    write_shapes(tree / "क ख", "ring", 2)
    (tree / "README.txt").write_text("hello")
    with qtbot.waitSignal(empty_window.imports.finished, timeout=10000):
        drop_files(empty_window, [tree])
    assert counts(empty_window) == {"check": 2, "zig": 3, "क ख": 2}
    assert problems_box(empty_window) is not None  # README.txt is listed, nothing else lost
    empty_window.controller.undo_stack.undo()  # the whole import is one step
    assert counts(empty_window) == {}
    empty_window.controller.undo_stack.redo()
    assert counts(empty_window) == {"check": 2, "zig": 3, "क ख": 2}


def test_drop_files_onto_a_class(window: MainWindow, qtbot: QtBot, tmp_path: Path) -> None:
    files = write_shapes(tmp_path, "arrow", 2)
    view = window.classes.view
    row = window.controller.classes_model.row_of(window.controller.class_at(2).id)  # "Cross"
    pos = view.visualRect(window.controller.classes_model.index(row)).center()
    before = counts(window)
    with qtbot.waitSignal(window.imports.finished, timeout=10000):
        drop_files(view.viewport(), files, pos)
    assert counts(window)["Cross"] == before["Cross"] + 2


def test_paste_an_image(window: MainWindow) -> None:
    image = draw_shape("square", np.random.default_rng(3), size=120)
    QApplication.clipboard().setImage(gray_to_qimage(image))
    before = counts(window)
    window.controller.select_class(window.controller.class_at(4).id)
    QTest.keyClick(window, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert counts(window)["Square"] == before["Square"] + 1
    QApplication.clipboard().setImage(QImage())
    QApplication.clipboard().clear()
    window.paste()
    assert "no image" in window.statusBar().currentMessage()


def test_remove_and_move_examples_with_undo(window: MainWindow) -> None:
    c = window.controller
    ring_id, cross_id = c.class_at(1).id, c.class_at(2).id
    c.select_class(ring_id)
    grid = window.examples.grid
    grid.selectAll()
    ids = window.examples.selected_ids()
    assert len(ids) == 4
    c.move_examples(ids[:2], cross_id)
    assert counts(window)["Ring"] == 2 and counts(window)["Cross"] == 6
    grid.setFocus()
    grid.selectAll()
    QTest.keyClick(grid, Qt.Key.Key_Delete)
    assert counts(window)["Ring"] == 0
    c.undo_stack.undo()
    c.undo_stack.undo()
    assert counts(window)["Ring"] == 4 and counts(window)["Cross"] == 4
    # The classifier agrees with the file after all that.
    assert c.workspace.example_count(ring_id) == 4
