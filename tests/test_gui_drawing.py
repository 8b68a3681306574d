"""Drawing on the real canvas and seeing the live prediction."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from protoglyph.gui import main_window as mw
from protoglyph.gui.main_window import MainWindow
from tests.gui_helpers import cross, draw_stroke, draw_strokes, ring


def test_a_drawn_ring_is_predicted_as_ring(window: MainWindow) -> None:
    assert window.prediction.message() == mw.DRAW_SOMETHING
    draw_stroke(window.canvas, ring())
    best = window.prediction.predictions()[0]
    assert best.name == "Ring" and best.probability > 0.5
    assert len(window.prediction.predictions()) == 5
    assert window.canvas.strokes()[0].shape[1] == 2  # the stroke list is kept, not just pixels


def test_cross_of_two_strokes_and_undo_stroke(window: MainWindow) -> None:
    draw_strokes(window.canvas, cross())
    assert window.prediction.predictions()[0].name == "Cross"
    window.canvas.setFocus()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.canvas.strokes()) == 1  # Ctrl+Z while drawing removes the last stroke
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(window.canvas.strokes()) == 2
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert window.canvas.is_empty() and window.prediction.message() == mw.DRAW_SOMETHING


def test_prediction_updates_while_a_stroke_is_drawn(window: MainWindow, qtbot: QtBot) -> None:
    draw_stroke(window.canvas, ring(), release=False)
    assert window.prediction.message() == mw.DRAW_SOMETHING or not window.prediction.predictions()
    qtbot.waitUntil(lambda: bool(window.prediction.predictions()), timeout=2000)  # throttled live update
    assert window.prediction.predictions()[0].name == "Ring"


def test_empty_project_says_what_to_do(empty_window: MainWindow) -> None:
    assert empty_window.prediction.message() == mw.NO_CLASSES
    empty_window.controller.new_class("Alpha")
    assert empty_window.prediction.message() == mw.NO_EXAMPLES
    draw_stroke(empty_window.canvas, ring())
    assert empty_window.prediction.message() == mw.NO_EXAMPLES
    QTest.keyClick(empty_window, Qt.Key.Key_Return)
    draw_stroke(empty_window.canvas, ring())
    assert empty_window.prediction.predictions()[0].name == "Alpha"


def test_a_click_alone_is_shown_but_is_not_a_glyph(window: MainWindow) -> None:
    ws = window.controller.workspace
    before = ws.example_count(window.controller.current_class)
    draw_stroke(window.canvas, [(0.5, 0.5), (0.5, 0.5)])  # press and release on one spot
    assert window.prediction.message() == mw.DRAW_SOMETHING  # no prediction for it
    QTest.keyClick(window, Qt.Key.Key_Return)
    assert ws.example_count(window.controller.current_class) == before  # no black blob stored
    assert "a click alone is not a glyph" in window.statusBar().currentMessage()
    shot = window.canvas.grab().toImage()
    centre = window.canvas.to_widget(0.5, 0.5).toPoint()
    assert shot.pixelColor(centre).lightness() < 128  # and yet the click left visible ink
    draw_stroke(window.canvas, ring())  # with a stroke around it, the dot counts (the dot of an i)
    assert window.prediction.message() != mw.DRAW_SOMETHING


def test_esc_can_be_undone_and_the_canvas_undo_touches_only_strokes(window: MainWindow) -> None:
    c = window.controller
    draw_strokes(window.canvas, cross())
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert window.canvas.is_empty()
    examples = c.workspace.example_count(c.current_class)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # brings the drawing back
    assert len(window.canvas.strokes()) == 2 and c.workspace.example_count(c.current_class) == examples
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # then strokes one by one
    assert len(window.canvas.strokes()) == 1
    window.canvas.clear()
    # The Undo button under the canvas: off on an empty canvas; it never undoes a class edit.
    QTest.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    classes = len(c.workspace.classes())
    window.canvas.setFocus()
    window.menu_actions.undo_stroke.trigger()  # Esc's drawing comes back first
    window.canvas.clear(undoable=False)
    assert not window.menu_actions.undo_stroke.isEnabled()
    window.menu_actions.undo_stroke.trigger()
    assert len(c.workspace.classes()) == classes


def scribble() -> list[list[tuple[float, float]]]:
    rng = np.random.default_rng(4)
    return [[(float(x), float(y)) for x, y in rng.uniform(0.1, 0.9, (25, 2))] for _ in range(3)]


def test_a_scribble_looks_like_no_class(window: MainWindow) -> None:
    draw_strokes(window.canvas, scribble())
    assert window.prediction.unknown()
    assert "Doesn't look like any class" in window.prediction.accessibleDescription()
    window.canvas.clear()
    draw_stroke(window.canvas, ring())
    assert not window.prediction.unknown() and window.prediction.predictions()[0].name == "Ring"


def test_adding_where_the_prediction_disagrees_says_so_and_offers_the_other_class(window: MainWindow) -> None:
    c = window.controller
    cross_id = c.class_at(2).id  # type: ignore[union-attr]
    ring_id = c.class_at(1).id  # type: ignore[union-attr]
    c.select_class(cross_id)
    rings_before = c.workspace.example_count(ring_id)
    draw_stroke(window.canvas, ring())
    QTest.keyClick(window, Qt.Key.Key_Return)  # added to Cross, the selected class
    message = window.statusBar().currentMessage()
    assert "Added to “Cross”, though it looks like “Ring”" in message and "Shift+Enter" in message
    QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # one key: move it to Ring
    assert c.workspace.example_count(ring_id) == rings_before + 1
    assert "Moved to “Ring”" in window.statusBar().currentMessage()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert c.workspace.example_count(ring_id) == rings_before
    assert window.statusBar().currentMessage().startswith("Undone:")  # not a stale "now has 5 examples"
