"""Reviewing and teaching, in the core alone (``core.labeling.reviewing``): no window, as the
command line or a script would; the window's tests do the same through keys and menus."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling import engines, reviewing
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.run import ChunkDone, Started, Support, label_folder, take_chunk
from protoglyph.core.labeling.states import Review, Status
from protoglyph.core.labeling.store import read_batch
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project
from protoglyph.core.workspace import Workspace


@pytest.fixture
def labeled(tmp_path: Path, encoder: EncoderSession):  # type: ignore[no-untyped-def]
    """A starter project and a labeled folder of its shapes; yields (workspace, started)."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for k in range(12):
        shape = ("ring", "cross", "star")[k % 3]
        image = draw_shape(shape, np.random.default_rng(50 + k), size=64)
        assert cv2.imwrite(str(folder / f"{k:02d}-{shape}.png"), image)
    workspace = create_starter_project(tmp_path / "p.protoglyph", encoder)
    keys, prototypes = workspace.classifier.prototypes()
    support = Support([int(k) for k in keys], prototypes, workspace.classifier.open_set_reference())  # type: ignore[call-overload]
    events = label_folder(folder, encoder, support, project=workspace.project, engine=engines.InProcess())
    started = next(events)
    assert isinstance(started, Started) and started.store is not None
    for event in events:
        assert isinstance(event, ChunkDone)
        take_chunk(started.results, event.chunk)
    yield workspace, started
    workspace.project.close()


def _class_id(workspace: Workspace, name: str) -> int:
    return next(c.id for c in workspace.classes() if c.name.lower() == name)


def _reread(workspace: Workspace, results: BatchResults, encoder: EncoderSession) -> BatchResults:
    """The folder as the project holds it now (a restart)."""
    from protoglyph.core.labeling.listing import list_folder

    folder = results.table.folder
    table = read_batch(workspace.project.path, folder, list_folder(folder), encoder.model_key, encoder.embedding_size)
    return BatchResults(table, 1.0)


def test_confirm_teaches_from_the_stored_embedding_and_undo_takes_it_back(labeled, encoder) -> None:  # type: ignore[no-untyped-def]
    workspace, started = labeled
    results, store = started.results, started.store
    before = len(workspace.project.examples())
    change = reviewing.review(workspace, store, results, [0, 1], "confirm")
    assert change is not None and change.text == "Confirm 2 Items (Taught)"
    assert len(change.added) == 2 and len(workspace.project.examples()) == before + 2
    assert list(results.status()[[0, 1]]) == [Status.CONFIRMED, Status.CONFIRMED]
    stored = _reread(workspace, results, encoder)
    assert list(stored.table.review[[0, 1]]) == [Review.CONFIRMED, Review.CONFIRMED]
    assert reviewing.review(workspace, store, results, [0, 1], "confirm") is None  # already reviewed
    reviewing.apply_change(workspace, store, results, change, undo=True)
    assert len(workspace.project.examples()) == before
    assert list(results.table.review[[0, 1]]) == [Review.NONE, Review.NONE]
    assert list(_reread(workspace, results, encoder).table.review[[0, 1]]) == [Review.NONE, Review.NONE]
    reviewing.apply_change(workspace, store, results, change)  # redo
    assert len(workspace.project.examples()) == before + 2


def test_reassigning_a_taught_item_moves_its_example_and_unknown_takes_it_away(labeled) -> None:  # type: ignore[no-untyped-def]
    workspace, started = labeled
    results, store = started.results, started.store
    ring, cross = _class_id(workspace, "ring"), _class_id(workspace, "cross")
    first = reviewing.review(workspace, store, results, [0], "assign", ring)
    assert first is not None and len(first.added) == 1
    taught = first.added[0]
    moved = reviewing.review(workspace, store, results, [0], "assign", cross)
    assert moved is not None and [e.id for e in moved.removed] == [taught.id]
    assert [e.class_id for e in moved.added] == [cross]
    assert results.table.person_class[0] == cross
    gone = reviewing.review(workspace, store, results, [0], "unknown")
    assert gone is not None and gone.text == "Mark Unknown 1 Item" and len(gone.removed) == 1 and not gone.added
    assert results.status()[0] == Status.UNKNOWN and results.table.example_id[0] == -1
    # without teaching, a review stores only the review
    plain = reviewing.review(workspace, store, results, [3], "assign", ring, teach=False)
    assert plain is not None and not plain.added and results.table.example_id[3] == -1


def test_items_that_cannot_be_reviewed_are_skipped_and_a_bad_kind_is_refused(labeled) -> None:  # type: ignore[no-untyped-def]
    workspace, started = labeled
    results, store = started.results, started.store
    results.table.state[2] = 2  # an error item
    assert reviewing.review(workspace, store, results, [2], "assign", _class_id(workspace, "ring")) is None
    with pytest.raises(ValueError, match="no review 'approve'"):
        reviewing.review(workspace, store, results, [0], "approve")
