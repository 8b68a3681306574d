"""Labeling a folder in the real window: label, review with keys, see the rest re-ranked, undo, export."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from protoglyph.core.labeling.states import Status
from protoglyph.core.shapes import draw_shape
from protoglyph.gui.results_model import ResultRole

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SHAPES = ("ring", "cross", "triangle")


def glyph_folder(root: Path) -> Path:
    rng = np.random.default_rng(5)
    folder = root / "glyphs"
    (folder / "more").mkdir(parents=True)
    for shape in SHAPES:
        for k in range(4):
            where = folder / "more" if k == 3 else folder
            cv2.imwrite(str(where / f"{shape}{k}.png"), draw_shape(shape, rng, size=105, pen=4))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def label(window, qtbot, folder: Path):  # type: ignore[no-untyped-def]
    window.label_folder(folder)
    qtbot.waitUntil(lambda: not window.batch.busy(), timeout=30000)
    return window.batch.session


def click(view, row: int) -> None:  # type: ignore[no-untyped-def]
    index = view.model().index(row, 0)
    view.scrollTo(index)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())


def class_number(window, name: str) -> int:  # type: ignore[no-untyped-def]
    return [c.name for c in window.controller.workspace.classes()].index(name) + 1


def test_label_a_folder_review_with_keys_and_export(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = glyph_folder(tmp_path)
    before_files = snapshot(folder)
    session = label(window, qtbot, folder)
    panel, model = window.results, window.results.model
    assert window.tabs.currentWidget() is panel and model.rowCount() == 13
    assert panel.counts.text().startswith("13 files: ") and "1 error." in panel.counts.text()
    assert "(default)" in panel.threshold_text.text() and "unknown" in panel.threshold_text.text()
    assert 0 < panel.slider.value() < panel.slider.maximum()
    statuses = [model.index(r).data(ResultRole.STATUS) for r in range(13)]
    assert statuses[-1] == Status.ERROR and all(s in (Status.PREDICTED, Status.UNKNOWN) for s in statuses[:-1])
    labels = {session.table.paths[model.item(r)]: model.index(r).data(ResultRole.LABEL) for r in range(12)}
    assert labels["ring0.png"] == "Ring" and labels["more/cross3.png"] == "Cross"
    conf = [model.index(r).data(ResultRole.CONFIDENCE) for r in range(12)]
    assert conf == sorted(conf)  # least certain first
    assert "not an image" in model.index(12).data(Qt.ItemDataRole.ToolTipRole) or "damaged" in \
        model.index(12).data(Qt.ItemDataRole.ToolTipRole)

    # Correct the least certain item with a number key: it is taught, the rest re-ranked.
    ws = window.controller.workspace
    item = model.item(0)
    predicted = ws.class_record(int(session.results.best[item])).name
    target = "Star" if predicted != "Star" else "Zigzag"
    target_id = ws.classes()[class_number(window, target) - 1].id
    examples_before = ws.example_count(target_id)
    confidence_before = session.results.confidence.copy()
    column = session.results.keys.index(target_id)
    distance_before = session.results.distances[:, column].copy()
    click(panel.view, 0)
    QTest.keyClick(panel.view, Qt.Key(int(Qt.Key.Key_0) + class_number(window, target)))
    assert session.table.review[item] == 2 and session.table.person_class[item] == target_id
    assert ws.example_count(target_id) == examples_before + 1
    others = np.arange(len(session.table)) != item
    moved = np.abs(session.results.distances[others, column] - distance_before[others])
    assert moved.min() > 1e-3  # every other item was compared with the moved prototype again
    row = model.row_of(item)
    assert model.index(row).data(ResultRole.STATUS) == Status.CORRECTED and row == 11  # after the items still to review
    assert model.index(row).data(ResultRole.LABEL) == target
    assert panel.view.currentIndex().row() == 0 and model.item(0) != item  # moved on to the next

    # Undo takes back both the review and the example.
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert session.table.review[item] == 0 and ws.example_count(target_id) == examples_before
    np.testing.assert_allclose(session.results.confidence, confidence_before, atol=1e-5)

    # Enter confirms the current item's prediction; U says "none of these".
    click(panel.view, 0)
    first = model.item(0)
    QTest.keyClick(panel.view, Qt.Key.Key_Return)
    assert session.table.review[first] in (1, 3)
    assert panel.view.selected_items() == [model.item(0)]  # moved on to the next item
    second = model.item(0)
    QTest.keyClick(panel.view, Qt.Key.Key_U)
    assert session.table.review[second] == 3 and model.index(model.row_of(second)).data(ResultRole.LABEL) == "unknown"
    # Reviews are stored in the project: they are there after the project is reopened.
    assert ws.project.query("SELECT COUNT(*) FROM batch_items WHERE review IS NOT NULL").fetchone()[0] == 2

    # Export: a CSV of every item, and a folder per class (copy), leaving the source untouched.
    window.exports.export(session, choice=0, target=tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert len(rows) == 13 and rows["broken.png"]["status"] == "error" and rows["broken.png"]["reason"]
    marked = rows[session.table.paths[second]]
    assert marked["status"] == "unknown" and marked["reviewed"] == "yes"
    reviewed = {session.table.paths[first], session.table.paths[second]}
    ring = next(p for p in ("ring0.png", "ring1.png", "ring2.png") if p not in reviewed and rows[p]["label"])
    assert rows[ring]["label"] == "Ring"
    out = tmp_path / "by class"
    window.exports.export(session, choice=2, target=out)
    qtbot.waitUntil(lambda: not window.exports.busy, timeout=10000)
    assert (out / "Ring" / ring).read_bytes() == (folder / ring).read_bytes()
    assert sum(1 for p in out.rglob("*.png")) == sum(1 for r in rows.values() if r["label"])
    assert snapshot(folder) == before_files


def test_labeling_again_resumes_and_relabels_changed_files(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = glyph_folder(tmp_path)
    session = label(window, qtbot, folder)
    session.review([session.table.paths.index("ring1.png")], "confirm")
    rng = np.random.default_rng(9)
    cv2.imwrite(str(folder / "ring0.png"), draw_shape("star", rng, size=105, pen=4))  # changed content
    (folder / "cross0.png").unlink()
    session = label(window, qtbot, folder)
    # The changed file, and the unusable one (read again: its cause may be gone).
    assert "labeled 2 new or changed" in window.statusBar().currentMessage().lower().replace(",", "")
    paths = session.table.paths
    assert "cross0.png" not in paths and len(paths) == 12
    ring0, ring1 = paths.index("ring0.png"), paths.index("ring1.png")
    names = {c.id: c.name for c in window.controller.workspace.classes()}
    assert names[int(session.results.best[ring0])] == "Star"
    assert session.table.review[ring1] == Status.CONFIRMED  # reviews of unchanged files are kept


def test_cancel_keeps_what_was_done_and_labeling_again_goes_on(window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from protoglyph.core.labeling import embedding

    folder = glyph_folder(tmp_path)
    monkeypatch.setattr(embedding, "CHUNK", 2)
    real = embedding.embed_chunk

    def first_chunk_then_cancel(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        window.batch.job.cancelled = True  # as the Cancel button does, after one chunk
        return result

    monkeypatch.setattr(embedding, "embed_chunk", first_chunk_then_cancel)
    session = label(window, qtbot, folder)
    assert "cancelled after 2 images" in window.statusBar().currentMessage()
    assert window.results.model.rowCount() == 2  # the rest are still waiting, not shown
    monkeypatch.setattr(embedding, "embed_chunk", real)
    session = label(window, qtbot, folder)
    assert "Labeled 12 new or changed images" in window.statusBar().currentMessage()  # 11 + the unusable one
    assert window.results.model.rowCount() == 13 and (session.table.state != 0).all()


def test_a_taught_item_given_another_class_moves_its_example(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = label(window, qtbot, glyph_folder(tmp_path))
    ws = window.controller.workspace
    ids = {c.name: c.id for c in ws.classes()}
    item = session.table.paths.index("ring0.png")
    counts = {n: ws.example_count(i) for n, i in ids.items()}
    session.review([item], "confirm")  # Ring, taught
    assert ws.example_count(ids["Ring"]) == counts["Ring"] + 1
    session.review([item], "assign", ids["Star"])  # on second thought: Star
    assert ws.example_count(ids["Ring"]) == counts["Ring"] and ws.example_count(ids["Star"]) == counts["Star"] + 1
    session.review([item], "unknown")  # none of these: it teaches nothing
    assert {n: ws.example_count(i) for n, i in ids.items()} == counts
    window.controller.undo_stack.undo()
    window.controller.undo_stack.undo()
    assert ws.example_count(ids["Ring"]) == counts["Ring"] + 1 and ws.example_count(ids["Star"]) == counts["Star"]
    assert session.table.review[item] == Status.CONFIRMED


def test_reviews_of_a_deleted_class_step_back_and_return_with_undo(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = label(window, qtbot, glyph_folder(tmp_path))
    c = window.controller
    star = next(x.id for x in c.workspace.classes() if x.name == "Star")
    item = session.table.paths.index("ring1.png")
    session.review([item], "assign", star)
    c.delete_class(star)
    # not "corrected to a class that is gone"
    assert session.results.status()[item] in (Status.PREDICTED, Status.UNKNOWN)
    new = c.new_class("Brand new")
    assert new.id != star and session.results.labels()[item] != new.id  # ids are never reused
    window.exports.export(session, choice=2, target=tmp_path / "out")  # no KeyError for the gone class
    qtbot.waitUntil(lambda: not window.exports.busy, timeout=10000)
    c.undo_stack.undo()  # the new class
    c.undo_stack.undo()  # the deletion
    assert session.results.status()[item] == Status.CORRECTED and session.results.labels()[item] == star


def test_undo_after_labeling_the_same_folder_again_reaches_the_shown_results(window, qtbot,  # type: ignore[no-untyped-def]
                                                                             tmp_path: Path) -> None:
    folder = glyph_folder(tmp_path)
    first = label(window, qtbot, folder)
    first.review([first.table.paths.index("cross1.png")], "confirm")
    second = label(window, qtbot, folder)
    i = second.table.paths.index("cross1.png")
    assert second is not first and second.table.review[i] == Status.CONFIRMED
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert second.table.review[i] == 0 and second.results.status()[i] != Status.CONFIRMED


def test_undo_with_another_folder_shown_puts_the_review_back_in_the_project(window, qtbot,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    """The undo step holds the folder's path, not the results once shown: with another folder
    shown, Ctrl+Z takes the review back in the project, and the folder shows it undone."""
    folder = glyph_folder(tmp_path / "a")
    first = label(window, qtbot, folder)
    first.review([first.table.paths.index("cross1.png")], "confirm")
    other = label(window, qtbot, glyph_folder(tmp_path / "b"))
    assert other.folder != folder
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not other.table.review.any()  # the shown folder is untouched
    again = label(window, qtbot, folder)
    assert again.table.review[again.table.paths.index("cross1.png")] == 0
    window.menu_actions.redo.trigger()  # Edit ▸ Redo reaches the folder shown again
    assert again.table.review[again.table.paths.index("cross1.png")] == Status.CONFIRMED


def test_ctrl_z_while_reviewing_undoes_the_review_not_a_hidden_stroke(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.gui_helpers import draw_stroke

    window.tabs.setCurrentIndex(0)
    draw_stroke(window.canvas, [(0.2, 0.2), (0.8, 0.8)])
    session = label(window, qtbot, glyph_folder(tmp_path))
    item = session.table.paths.index("ring2.png")
    session.review([item], "confirm")
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert session.table.review[item] == 0 and len(window.canvas.strokes()) == 1


def test_a_multiple_selection_survives_a_refresh(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = label(window, qtbot, glyph_folder(tmp_path))
    panel = window.results
    panel.select_items([panel.model.item(r) for r in (1, 2, 3, 5)])
    chosen = sorted(panel.view.selected_items())
    session.updated.emit()  # as every chunk and edit does
    assert sorted(panel.view.selected_items()) == chosen


def test_any_class_by_the_right_click_menu_or_the_a_key(window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog

    c = window.controller
    session = label(window, qtbot, glyph_folder(tmp_path))
    tenth = [c.new_class(f"Extra {n}") for n in (9, 10)][-1]  # no number key reaches class 10
    panel = window.results
    click(panel.view, 0)
    item = panel.model.item(0)
    assign = next(a.menu() for a in panel.review_menu().actions() if a.menu() is not None)
    next(a for a in assign.actions() if a.text() == "Extra 10").trigger()
    assert session.table.person_class[item] == tenth.id and session.table.review[item] == 2
    click(panel.view, 0)
    other = panel.model.item(0)
    monkeypatch.setattr(QInputDialog, "getItem", lambda *args, **kwargs: ("Extra 10", True))
    QTest.keyClick(panel.view, Qt.Key.Key_A)
    assert session.table.person_class[other] == tenth.id


def test_forgetting_a_folder_deletes_its_labels_and_shrinks_the_project(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = glyph_folder(tmp_path)
    session = label(window, qtbot, folder)
    session.review([0, 1], "assign", window.controller.workspace.classes()[0].id)
    project = window.controller.workspace.project
    size = project.path.stat().st_size
    assert window.forget_results(ask=False)
    assert project.query("SELECT COUNT(*) FROM batch_items").fetchone()[0] == 0
    assert project.path.stat().st_size < size and window.batch.session is None
    assert window.results.model.rowCount() == 0 and sorted(p.name for p in folder.rglob("*.png"))  # files stay
    session = label(window, qtbot, folder)  # labeling it again starts from scratch
    assert (session.table.review == 0).all()


def test_a_file_name_that_is_not_utf8_is_labeled_and_shown(window, qtbot, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from PySide6.QtWidgets import QMessageBox

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(str(a[1:3])))
    folder = glyph_folder(tmp_path)
    odd = os.path.join(os.fsencode(folder), b"ring \xff\xfe.png")
    with open(odd, "wb") as f:
        f.write(cv2.imencode(".png", draw_shape("ring", np.random.default_rng(9), size=105, pen=4))[1].tobytes())
    session = label(window, qtbot, folder)
    assert warnings == []  # it was "Labeling stopped" (UnicodeEncodeError) on every run
    model = window.results.model
    assert model.rowCount() == 14
    row = next(r for r in range(14) if os.fsencode(session.table.paths[model.item(r)]).endswith(b"\xff\xfe.png"))
    assert model.index(row).data(ResultRole.LABEL) == "Ring"
    assert "ring \ufffd\ufffd.png" in model.index(row).data(Qt.ItemDataRole.ToolTipRole)
    # stored: labeling again reads only the broken file again (unusable files always are)
    again = label(window, qtbot, folder)
    assert [again.table.paths[i] for i in again.table.todo] == ["broken.png"]


def test_export_dialog_and_undo_menu_offer_only_what_applies(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from protoglyph.gui.export_runner import ExportChoice

    label(window, qtbot, glyph_folder(tmp_path))
    dialog = ExportChoice(window)
    assert dialog.formats[0].isChecked() and not dialog.reviewed_only.isEnabled()  # CSV: folder options off
    dialog.formats[2].click()
    assert dialog.reviewed_only.isEnabled() and dialog.with_unknown.isEnabled()
    dialog.formats[1].click()
    assert not dialog.with_unknown.isEnabled()
    dialog.deleteLater()
    assert not window.menu_actions.undo_export.isEnabled()  # nothing exported yet
    window.exports.export(window.batch.session, choice=2, target=tmp_path / "out")
    qtbot.waitUntil(lambda: not window.exports.busy and window.menu_actions.undo_export.isEnabled(), timeout=10000)


def test_filters_start_afresh_for_another_folder(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    panel = window.results
    label(window, qtbot, glyph_folder(tmp_path / "a"))
    panel.classes.setCurrentIndex(panel.classes.findText("Star"))  # a filter that shows few or none
    panel.statuses.setCurrentIndex(2)
    other = glyph_folder(tmp_path / "b")
    label(window, qtbot, other)
    assert panel.classes.currentIndex() == 0 and panel.statuses.currentIndex() == 0
    assert panel.model.rowCount() == 13  # every item of the new folder is shown


def test_a_change_of_the_classes_says_how_many_items_changed_label(window, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = label(window, qtbot, glyph_folder(tmp_path))
    c = window.controller
    ring = c.class_at(1)
    rings = int((session.results.labels() == ring.id).sum())
    assert rings >= 3
    c.select_class(ring.id)
    with qtbot.waitSignal(session.announced, timeout=5000) as said:
        window.menu_actions.delete_class.trigger()  # every item labeled Ring now gets another label
    assert f"{rings:,} items not yet reviewed changed label" in said.args[0]
