"""The grid's Qt model on its own, over a results table made by hand: no window, no project,
no encoder (as napari tests its list model from a plain list)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.states import ItemState, Review, Status
from protoglyph.core.labeling.store import BatchTable
from protoglyph.gui.results_model import ResultRole, ResultsModel
from tests.test_gui_review_grid import StubThumbnails

RING, CROSS = 10, 20


@dataclass
class Shown:
    """What the model needs of a labeled folder: its results, a file's path, the classes' names."""

    results: BatchResults
    names: dict[int, tuple[str, str]] = field(default_factory=lambda: {RING: ("Ring", "#e6194b"),
                                                                       CROSS: ("Cross", "#3cb44b")})

    @property
    def table(self) -> BatchTable:
        return self.results.table

    def path(self, index: int) -> Path:
        return self.table.folder / self.table.paths[index]

    def class_names(self) -> dict[int, tuple[str, str]]:
        return dict(self.names)


def hand_made() -> Shown:
    """Seven files: three near Ring, one near Cross, one far from both, one unreadable, one waiting;
    the Cross one reviewed as Ring."""
    paths = ["a.png", "b.png", "c.png", "d.png", "far.png", "sub/broken.png", "z.png"]
    vectors = [[0.1, 0], [0.5, 0], [1.4, 0], [3.9, 0], [2, 9], [0, 0], [0, 0]]
    n = len(paths)
    state = np.full(n, ItemState.DONE, np.int8)
    state[5], state[6] = ItemState.ERROR, ItemState.PENDING
    review, person = np.zeros(n, np.int8), np.full(n, -1, np.int64)
    review[3], person[3] = Review.CORRECTED, RING
    table = BatchTable(Path("/nowhere"), paths, np.zeros(n, np.int64), np.zeros(n, np.int64),
                       np.array(vectors, np.float16), state, review, person, np.full(n, -1, np.int64),
                       errors={5: "the PNG data is damaged or truncated"}, todo=[6])
    results = BatchResults(table, 1.0)
    results.set_prototypes([RING, CROSS], np.array([[0, 0], [4, 0]], np.float32))
    results.threshold = 9.0  # squared distance: only far.png is beyond it
    return Shown(results)


@pytest.fixture
def model(qtbot) -> ResultsModel:  # type: ignore[no-untyped-def]
    m = ResultsModel(StubThumbnails())  # type: ignore[arg-type]
    m.set_session(hand_made())  # type: ignore[arg-type]
    return m


def column(model: ResultsModel, role: int) -> list[object]:
    return [model.index(r).data(role) for r in range(model.rowCount())]


def test_rows_are_the_review_queue_with_names_statuses_and_confidences(model: ResultsModel) -> None:
    table = model.session.table  # type: ignore[union-attr]
    files = [table.paths[model.item(r)] for r in range(model.rowCount())]
    # the waiting file is not shown; still to review, least certain first; then reviewed; errors last
    assert files[-2:] == ["d.png", "sub/broken.png"] and "z.png" not in files and len(files) == 6
    open_items = files[:-2]
    confidences = [model.index(r).data(ResultRole.CONFIDENCE) for r in range(4)]
    assert confidences == sorted(confidences) and set(open_items) == {"a.png", "b.png", "c.png", "far.png"}
    by_file = dict(zip(files, column(model, ResultRole.LABEL), strict=True))
    assert by_file == {"a.png": "Ring", "b.png": "Ring", "c.png": "Ring", "far.png": "unknown", "d.png": "Ring",
                       "sub/broken.png": "broken.png"}
    statuses = dict(zip(files, column(model, ResultRole.STATUS), strict=True))
    assert statuses["far.png"] == Status.UNKNOWN and statuses["d.png"] == Status.CORRECTED
    assert statuses["sub/broken.png"] == Status.ERROR and statuses["a.png"] == Status.PREDICTED
    error_row = files.index("sub/broken.png")
    assert model.index(error_row).data(ResultRole.CONFIDENCE) == -1.0
    tip = model.index(error_row).data()  # DisplayRole: the file's name, the reason in the tooltip
    assert tip == "broken.png" and "damaged" in model.index(error_row).data(3)  # Qt.ToolTipRole
    far_tip = re.sub("<[^>]+>", "", model.index(files.index("far.png")).data(3))
    assert "nearest class: Ring" in far_tip and "“none of these” distance 9.0" in far_tip
    unknown, ring = (model.index(files.index(f)).data(ResultRole.CELL) for f in ("far.png", "a.png"))
    assert (unknown.label, unknown.color) == ("unknown", None) and unknown.thumbnail is not None
    assert ring.label == "Ring" and ring.color.name() == "#e6194b" and 0.5 < ring.confidence <= 1


def test_rows_and_items_map_both_ways_and_filters_narrow_them(model: ResultsModel) -> None:
    for r in range(model.rowCount()):
        assert model.row_of(model.item(r)) == r
    assert model.row_of(6) == -1  # waiting: not shown
    model.label_filter = -1
    model.refresh()
    assert [model.session.table.paths[model.item(r)] for r in range(model.rowCount())] == ["far.png"]  # type: ignore[union-attr]
    model.label_filter, model.status_filter = RING, {Status.CORRECTED}
    model.refresh()
    assert model.rowCount() == 1 and model.index(0).data(ResultRole.STATUS) == Status.CORRECTED
    model.label_filter = model.status_filter = None
    model.sort_by = "file name"
    model.refresh()
    paths = [model.session.table.paths[model.item(r)] for r in range(model.rowCount())]  # type: ignore[union-attr]
    assert paths == sorted(paths)


def test_a_renamed_class_and_a_new_threshold_show_after_a_refresh(model: ResultsModel, qtbot) -> None:  # type: ignore[no-untyped-def]
    shown: Shown = model.session  # type: ignore[assignment]
    shown.names[RING] = ("Circle", "#000000")
    shown.results.threshold = 0.5  # now c.png (1.4² = 1.96) and b.png (0.25 stays) : c is beyond
    with qtbot.waitSignal(model.modelReset):
        model.refresh()
    files = [shown.table.paths[model.item(r)] for r in range(model.rowCount())]
    labels = dict(zip(files, column(model, ResultRole.LABEL), strict=True))
    assert labels["a.png"] == labels["b.png"] == labels["d.png"] == "Circle" and labels["c.png"] == "unknown"
    model.set_session(None)
    assert model.rowCount() == 0 and model.index(0).data() is None
