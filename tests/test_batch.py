"""Labeling a folder, core: the listing, reading and embedding of every kind of file a real
folder holds (broken ones skipped with a reason), resuming from the project file, the worker
processes, and the predictions, statuses and review order of :class:`BatchResults`."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from protoglyph.core.export.tables import ResultRow
from protoglyph.core.labeling import embedding
from protoglyph.core.labeling import results as results_module
from protoglyph.core.labeling.embedding import BLANK, BatchError, embed_chunk, embed_files
from protoglyph.core.labeling.listing import list_folder
from protoglyph.core.labeling.results import BatchResults, distances_to, result_rows
from protoglyph.core.labeling.states import ItemState, Status
from protoglyph.core.labeling.store import BatchStore, BatchTable, read_batch
from protoglyph.core.project import Project
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project
from protoglyph.core.workspace import Workspace


def drawing(shape: str, seed: int, size: int = 64) -> np.ndarray:
    return draw_shape(shape, np.random.default_rng(seed), size=size)


def write_png(path: Path, image: np.ndarray) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(buf.tobytes())
    return buf.tobytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(real_png: bytes) -> bytes:
    """A real PNG whose IHDR (with a valid CRC) now claims 50000 x 50000 pixels."""
    assert real_png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", 50000, 50000) + real_png[24:29]
    return real_png[:8] + png_chunk(b"IHDR", ihdr) + real_png[33:]


def snapshot(folder: Path) -> dict[str, Any]:
    """Every name below ``folder`` with its bytes (or link target) and modification time; links not followed."""
    out: dict[str, Any] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            st = os.lstat(p)
            if p.is_symlink():
                content: Any = ("link", os.readlink(p))
            elif p.is_dir():
                content = "folder"
            else:
                content = p.read_bytes()
            out[str(p.relative_to(folder))] = (content, st.st_mtime_ns, st.st_size)
    return out


def model_key(encoder: Any) -> str:
    return str(encoder.model_key)


def embed_all(folder: Path, table: BatchTable, encoder: Any, **kwargs: Any) -> None:
    todo = [(i, table.paths[i]) for i in table.todo]
    for chunk in embed_files(folder, todo, encoder, **kwargs):
        table.apply(chunk)


# -- every kind of file ----------------------------------------------------------------
@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """Good drawings and every kind of file that cannot be labeled, side by side."""
    from PIL import Image

    folder = tmp_path / "scans"
    ring = drawing("ring", 1)
    real = write_png(folder / "ring.png", ring)
    write_png(folder / "cross.png", drawing("cross", 2))
    write_png(folder / "sub" / "ring2.png", drawing("ring", 3))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(300))
    (folder / "truncated.png").write_bytes(real[: len(real) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "x.png").write_text("this is text, not a picture\n")
    (folder / "notes.txt").write_text("notes\n")
    (folder / "bomb.png").write_bytes(bomb_png(real))
    assert cv2.imwrite(str(folder / "deep16.png"), ring.astype(np.uint16) * 257)
    rgb = Image.fromarray(ring).convert("RGB")
    rgb.save(folder / "rgb.jpg", quality=95)
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    rgba = np.zeros((64, 64, 4), np.uint8)  # black ink whose alpha is the drawing, on a transparent background
    rgba[..., 3] = 255 - ring
    write_png(folder / "rgba.png", rgba)
    write_png(folder / "blank.png", np.full((64, 64), 255, np.uint8))
    (folder / "dangling.png").symlink_to(folder / "no-such-file.png")
    (folder / "sub" / "loop").symlink_to("..", target_is_directory=True)
    return folder


BAD = {  # path: words its reason must hold
    "corrupt.png": "damaged",
    "truncated.png": "damaged or truncated",
    "empty.png": "empty",
    "x.png": "not an image",
    "notes.txt": "not an image",
    "bomb.png": "50000x50000",
    "blank.png": BLANK,
    "dangling.png": "cannot be read",
    "sub/loop": "loop",
}
GOOD = ("cross.png", "ring.png", "sub/ring2.png", "deep16.png", "rgb.jpg", "cmyk.jpg", "rgba.png")


def test_every_bad_file_is_listed_with_its_reason_and_the_rest_is_labeled(
        odd_folder: Path, encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(odd_folder)
    entries = list_folder(odd_folder)
    assert sorted(e.path for e in entries) == sorted([*BAD, *GOOD])
    # Small chunks: good and bad files share some chunks, and some chunks hold only bad files.
    monkeypatch.setattr(embedding, "CHUNK", 3)
    table = BatchTable.fresh(odd_folder, entries, encoder.embedding_size)
    embed_all(odd_folder, table, encoder, jobs=1)

    assert not (table.state == ItemState.PENDING).any()
    reasons = {table.paths[i]: r for i, r in table.errors.items()}
    assert set(reasons) == set(BAD)
    for path, words in BAD.items():
        assert words in reasons[path], (path, reasons[path])
        assert table.state[table.paths.index(path)] == ItemState.ERROR
    done = {table.paths[i] for i in np.flatnonzero(table.state == ItemState.DONE)}
    assert done == set(GOOD)

    # The odd-but-fine images are labeled as what they show.
    workspace = create_starter_project(tmp_path / "starter.protoglyph", encoder)
    try:
        def label(path: str) -> str:
            vector = table.embeddings[table.paths.index(path)].astype(np.float32)
            return workspace.class_record(int(workspace.classify_embedding(vector, 1)[0].class_key)).name

        for path in ("ring.png", "sub/ring2.png", "deep16.png", "rgb.jpg", "cmyk.jpg", "rgba.png"):
            assert label(path) == "Ring", path
        assert label("cross.png") == "Cross"
    finally:
        workspace.project.close()
    emb = {p: table.embeddings[table.paths.index(p)].astype(np.float32) for p in GOOD}
    scale = float(np.linalg.norm(emb["ring.png"] - emb["cross.png"]))
    assert np.linalg.norm(emb["cmyk.jpg"] - emb["rgb.jpg"]) < 0.1 * scale  # the same picture, other colour model
    assert np.linalg.norm(emb["deep16.png"] - emb["ring.png"]) < 0.05 * scale  # the same picture, 16-bit
    assert np.linalg.norm(emb["rgba.png"] - emb["ring.png"]) < 0.05 * scale  # transparency is paper

    assert snapshot(odd_folder) == before  # nothing below the folder was touched


def test_a_chunk_of_nothing_but_bad_files_is_a_result_not_a_crash(odd_folder: Path, encoder: Any) -> None:
    result = embed_chunk(encoder, str(odd_folder), [(0, "x.png"), (1, "empty.png"), (2, "bomb.png")])
    assert len(result.indices) == 0 and result.embeddings.shape == (0, encoder.embedding_size)
    assert [i for i, _ in result.errors] == [0, 1, 2] and result.count == 3
    assert embed_chunk(encoder, str(odd_folder), []).count == 0


def test_listing_ends_on_link_loops_and_reports_each(tmp_path: Path) -> None:
    folder = tmp_path / "top"
    write_png(folder / "a" / "b" / "one.png", drawing("ring", 1))
    outside = tmp_path / "elsewhere"
    write_png(outside / "two.png", drawing("cross", 2))
    (folder / "a" / "b" / "up").symlink_to("../..", target_is_directory=True)  # to the listed folder itself
    (folder / "a" / "self").symlink_to(".", target_is_directory=True)
    (folder / "a" / "root").symlink_to("/", target_is_directory=True)  # an ancestor of everything
    (folder / "other").symlink_to(outside, target_is_directory=True)  # not a loop: listed
    (folder / "knot").symlink_to("knot")  # a file link to itself
    (folder / ".hidden.png").write_bytes(b"x")
    (folder / "Thumbs.db").write_bytes(b"x")
    entries = {e.path: e.problem for e in list_folder(folder)}
    assert entries["a/b/one.png"] is None and entries["other/two.png"] is None
    for path in ("a/b/up", "a/self", "a/root"):
        assert "loop" in (entries[path] or ""), path
    assert "cannot be read" in (entries["knot"] or "")
    assert set(entries) == {"a/b/one.png", "other/two.png", "a/b/up", "a/self", "a/root", "knot"}


# -- resuming from the project --------------------------------------------------------
def label_folder(project: Project | None, folder: Path, encoder: Any, *, stop_after: int | None = None,
                 embedded: list[str] | None = None, key: str | None = None) -> BatchTable:
    """One run as the app and the command do it: read what is stored, embed the rest, save each chunk."""
    key = key or model_key(encoder)
    table = read_batch(project.path if project else None, folder, list_folder(folder), key,
                       encoder.embedding_size)
    store = BatchStore(project, folder) if project else None
    if store is not None:  # files no longer there keep their stored results (they may come back)
        store.save_listing_problems(table, key)
    done = 0

    def should_stop() -> bool:
        return stop_after is not None and done >= stop_after

    todo = [(i, table.paths[i]) for i in table.todo]
    for chunk in embed_files(folder, todo, encoder, jobs=1, should_stop=should_stop):
        table.apply(chunk)
        if embedded is not None:
            embedded.extend(table.paths[int(i)] for i in chunk.indices)
            embedded.extend(table.paths[i] for i, _ in chunk.errors)
        if store is not None:
            touched = np.concatenate([chunk.indices, np.array([i for i, _ in chunk.errors], np.int64)])
            store.save(table, touched, key)
        done += 1
    return table


def predictions(table: BatchTable, workspace: Workspace) -> list[ResultRow]:
    keys, protos = workspace.classifier.prototypes()
    results = BatchResults(table, workspace.encoder.info.temperature)
    results.set_prototypes([int(k) for k in keys], protos)  # type: ignore[call-overload]
    return result_rows(results, {c.id: c.name for c in workspace.classes()})


def test_a_stopped_run_resumes_with_only_the_rest_and_ends_as_one_run(
        tmp_path: Path, encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "CHUNK", 4)
    folder = tmp_path / "scans"
    shapes = ["ring", "cross", "star", "square"]
    for i in range(10):
        write_png(folder / f"g{i:02d}.png", drawing(shapes[i % 4], 100 + i, size=48))
    (folder / "g05.png").write_text("not an image")  # an error is resumed too
    project = Project.create(tmp_path / "p.protoglyph")
    classes = create_starter_project(tmp_path / "classes.protoglyph", encoder)
    try:
        first: list[str] = []
        table = label_folder(project, folder, encoder, stop_after=1, embedded=first)
        assert first == [f"g{i:02d}.png" for i in range(4)]  # one chunk, then stopped
        assert (table.state == ItemState.PENDING).sum() == 6

        again = read_batch(project.path, folder, list_folder(folder), model_key(encoder), encoder.embedding_size)
        assert again.todo == list(range(4, 10))
        second: list[str] = []
        resumed = label_folder(project, folder, encoder, embedded=second)
        assert sorted(second) == [f"g{i:02d}.png" for i in range(4, 10)]  # only the rest

        whole = label_folder(None, folder, encoder)
        assert (resumed.state == whole.state).all() and resumed.errors == whole.errors
        assert "not an image" in resumed.errors[5]
        np.testing.assert_array_equal(resumed.embeddings, whole.embeddings)
        stored = read_batch(project.path, folder, list_folder(folder), model_key(encoder), encoder.embedding_size)
        assert stored.todo == [5] and stored.errors == {}  # a file that could not be used is read again
        np.testing.assert_array_equal(stored.embeddings, whole.embeddings)
        stored.state[5], stored.errors[5] = whole.state[5], whole.errors[5]  # as the next run finds it
        rows = predictions(stored, classes)
        assert rows == predictions(whole, classes)
        assert [r.label for r in rows[:4]] == ["Ring", "Cross", "Star", "Square"]

        # A third run only tries the unusable file again.
        third: list[str] = []
        label_folder(project, folder, encoder, embedded=third)
        assert third == ["g05.png"]

        # Reviews are kept; a changed file is labeled again and loses its review; a deleted one is
        # not shown, but its result and review stay stored in case it comes back.
        store = BatchStore(project, folder)
        store.set_reviews(["g00.png", "g01.png"], [1, 2], [7, 8], [-1, 42])
        old = folder / "g01.png"
        mtime = old.stat().st_mtime_ns
        write_png(old, drawing("ring", 999, size=48))
        os.utime(old, ns=(mtime + 5_000_000_000, mtime + 5_000_000_000))
        (folder / "g02.png").unlink()

        before = read_batch(project.path, folder, list_folder(folder), model_key(encoder), encoder.embedding_size)
        assert [before.paths[i] for i in before.todo] == ["g01.png", "g05.png"]
        assert before.vanished == ["g02.png"]
        i0, i1 = before.paths.index("g00.png"), before.paths.index("g01.png")
        assert (before.review[i0], before.person_class[i0]) == (1, 7)
        fourth: list[str] = []
        after = label_folder(project, folder, encoder, embedded=fourth)
        assert fourth == ["g01.png", "g05.png"]
        assert "g02.png" not in after.paths and after.vanished == ["g02.png"]
        final = read_batch(project.path, folder, list_folder(folder), model_key(encoder), encoder.embedding_size)
        assert final.vanished == ["g02.png"]  # still stored
        assert (final.review[i0], final.person_class[i0]) == (1, 7)
        assert (final.review[i1], final.person_class[i1], final.example_id[i1]) == (0, -1, -1)
        changed = predictions(final, classes)
        assert {r.path: r.label for r in changed}["g01.png"] == "Ring"  # was a cross
        assert "g02.png" not in {r.path for r in changed}
    finally:
        project.close()
        classes.project.close()


def test_another_models_embeddings_are_done_again_and_reviews_survive_it(tmp_path: Path, encoder: Any) -> None:
    folder = tmp_path / "scans"
    for i in range(3):
        write_png(folder / f"{i}.png", drawing("ring", i, size=48))
    project = Project.create(tmp_path / "p.protoglyph")
    try:
        label_folder(project, folder, encoder)
        BatchStore(project, folder).set_reviews(["1.png", "2.png"], [2, 3], [5, -1], [9, -1])
        entries = list_folder(folder)
        assert read_batch(project.path, folder, entries, model_key(encoder), encoder.embedding_size).todo == []
        update = read_batch(project.path, folder, entries, "other:1:x", encoder.embedding_size)
        assert update.todo == [0, 1, 2] and list(update.review) == [0, 2, 3]
        again: list[str] = []
        label_folder(project, folder, encoder, key="other:1:x", embedded=again)  # the app, updated
        assert again == ["0.png", "1.png", "2.png"]
        after = read_batch(project.path, folder, entries, "other:1:x", encoder.embedding_size)
        assert after.todo == [] and (after.state == ItemState.DONE).all()
        assert list(after.review) == [0, 2, 3] and list(after.person_class) == [-1, 5, -1]
        assert list(after.example_id) == [-1, 9, -1]
    finally:
        project.close()


# -- worker processes ------------------------------------------------------------------
def test_worker_processes_give_the_same_embeddings_as_one_process(
        tmp_path: Path, encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scans"
    for i in range(13):
        write_png(folder / f"{i:02d}.png", drawing(["ring", "cross", "zigzag"][i % 3], i, size=48))
    (folder / "07.png").write_bytes(b"")
    entries = list_folder(folder)
    monkeypatch.setattr(embedding, "CHUNK", 4)
    monkeypatch.setattr(embedding, "IN_PROCESS_BELOW", 8)

    one = BatchTable.fresh(folder, entries, encoder.embedding_size)
    embed_all(folder, one, encoder, jobs=1)

    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("embedded in the parent process, not in a worker")

    monkeypatch.setattr(embedding, "embed_chunk", not_here)  # workers re-import the module: only this process is hit
    two = BatchTable.fresh(folder, entries, encoder.embedding_size)
    sizes = []
    for chunk in embed_files(folder, [(i, p) for i, p in enumerate(two.paths)], encoder, jobs=2):
        sizes.append(chunk.count)
        two.apply(chunk)
    assert sizes == [4, 4, 4, 1]  # yielded in order, chunk by chunk
    assert (one.state == two.state).all() and one.errors == two.errors == {7: "the file is empty"}
    assert (two.state == ItemState.DONE).sum() == 12
    np.testing.assert_allclose(two.embeddings.astype(np.float32), one.embeddings.astype(np.float32),
                               rtol=1e-2, atol=2e-3)

    # Stopping between chunks ends the pool early; what was yielded is valid.
    got: list[Any] = []
    for chunk in embed_files(folder, [(i, p) for i, p in enumerate(two.paths)], encoder, jobs=2,
                             should_stop=lambda: len(got) >= 1):
        got.append(chunk)
    assert len(got) == 1 and list(got[0].indices) == [0, 1, 2, 3]


def test_a_worker_that_cannot_start_is_a_batch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scans"
    for i in range(3):
        write_png(folder / f"{i}.png", drawing("ring", i, size=32))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00" * 64)
    monkeypatch.setattr(embedding, "IN_PROCESS_BELOW", 2)
    fake = SimpleNamespace(path=garbage, model_key="garbage",  # only the workers load it
                           sha256=hashlib.sha256(garbage.read_bytes()).hexdigest())
    with pytest.raises(BatchError, match="worker process"):
        list(embed_files(folder, [(0, "0.png"), (1, "1.png"), (2, "2.png")], fake, jobs=2))


# -- predictions, statuses and the review order ----------------------------------------
def results_fixture() -> tuple[BatchResults, np.ndarray, list[int]]:
    """Eight items in a 4-d space around three prototypes, one of every status."""
    protos = np.array([[0, 0, 0, 0], [4, 0, 0, 0], [0, 4, 0, 0]], np.float32)
    keys = [10, 20, 30]
    emb = np.array([
        [0.2, 0, 0, 0],  # 0 near 10: confident
        [1.9, 0, 0, 0],  # 1 between 10 and 20: unsure
        [0, 0, 9, 0],  # 2 far from all: unknown by the threshold
        [0.1, 0.1, 0, 0],  # 3 confirmed as 10
        [3.9, 0, 0, 0],  # 4 predicted 20, corrected to 30
        [0, 3.5, 0, 0],  # 5 the person said: none of these
        [0, 0, 0, 0],  # 6 error
        [0, 0, 0, 0],  # 7 waiting
    ], np.float16)
    n = len(emb)
    table = BatchTable(Path("/nowhere"), [f"{i}.png" for i in range(n)], np.zeros(n, np.int64),
                       np.zeros(n, np.int64), emb, np.full(n, ItemState.DONE, np.int8), np.zeros(n, np.int8),
                       np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    table.state[6], table.errors[6] = ItemState.ERROR, "the file is empty"
    table.state[7] = ItemState.PENDING
    table.review[[3, 4, 5]] = [1, 2, 3]
    table.person_class[[3, 4]] = [10, 30]
    results = BatchResults(table, temperature=1.0)
    results.set_prototypes(keys, protos)
    results.threshold = 20.0
    return results, protos, keys


def test_statuses_and_labels() -> None:
    results, _, _ = results_fixture()
    assert list(results.status()) == [Status.PREDICTED, Status.PREDICTED, Status.UNKNOWN, Status.CONFIRMED,
                                      Status.CORRECTED, Status.UNKNOWN, Status.ERROR, Status.WAITING]
    assert list(results.labels()) == [10, 10, -1, 10, 30, -1, -1, -1]
    assert results.best[4] == 20 and results.best[1] == 10
    results.threshold = None  # no threshold: the far item is predicted too
    assert results.status()[2] == Status.PREDICTED and results.labels()[2] == 10
    rows = {r.path: r for r in result_rows(results, {10: "a", 20: "b", 30: "c"})}
    assert "7.png" not in rows  # waiting
    error = rows["6.png"]
    assert (error.status, error.reason, error.confidence) == ("error", "the file is empty", None)
    assert rows["4.png"].label == "c" and rows["4.png"].confidence is None  # the person's label, not the model's
    assert rows["3.png"].reviewed and rows["3.png"].confidence == pytest.approx(float(results.confidence[3]))


def test_review_order_puts_the_least_certain_open_items_first_and_errors_last() -> None:
    results, _, _ = results_fixture()
    conf = results.confidence
    order = list(results.order())
    assert 7 not in order and len(order) == 7
    open_items, reviewed = order[:3], order[3:6]
    assert set(open_items) == {0, 1, 2} and list(conf[open_items]) == sorted(conf[open_items])
    assert conf[1] < conf[0] and open_items.index(1) < open_items.index(0)
    assert set(reviewed) == {3, 4, 5} and list(conf[reviewed]) == sorted(conf[reviewed])
    assert order[-1] == 6
    assert list(results.order("most certain first"))[-1] == 6
    assert list(results.order("file name")) == [0, 1, 2, 3, 4, 5, 6]
    assert list(results.order(label=10)) == [1, 0, 3]  # open ones least certain first, then reviewed
    assert set(results.order(label=-1)) == {2, 5}  # the unknown ones; the unreadable file (6) is not "unknown"
    assert list(results.order(statuses={Status.CONFIRMED, Status.CORRECTED})) == sorted([3, 4], key=lambda i: conf[i])
    assert list(results.order(statuses={Status.ERROR})) == [6]
    assert list(results.order(statuses={Status.WAITING})) == []


def test_rejected_counts_open_predictions_beyond_a_threshold() -> None:
    results, _, _ = results_fixture()
    assert results.rejected(1e9) == 0
    assert results.rejected(0.0) == 3  # items 0, 1, 2: not reviewed, not errors or waiting
    assert results.rejected(20.0) == 1  # item 2 only
    d = results.min_distance
    assert results.rejected(float(d[1]) - 1e-3) == 2 and results.rejected(float(d[1]) + 1e-3) == 1


def test_new_prototypes_recompute_only_the_columns_that_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    results, protos, keys = results_fixture()
    calls: list[np.ndarray] = []
    real: Callable[[np.ndarray, np.ndarray], np.ndarray] = results_module.distances_to

    def spy(embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
        calls.append(np.array(prototypes))
        return real(embeddings, prototypes)

    monkeypatch.setattr(results_module, "distances_to", spy)
    results.set_prototypes(keys, protos.copy())  # nothing moved
    assert calls == []
    moved = protos.copy()
    moved[1] = [3, 1, 0, 0]  # class 20 gained an example
    new_keys = [30, 20, 40]  # class 10 was deleted, 40 added, the order changed
    new_protos = np.stack([moved[2], moved[1], np.array([0, 0, 8, 0], np.float32)])
    results.set_prototypes(new_keys, new_protos)
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], new_protos[[1, 2]])  # only 20 and the new 40
    fresh = BatchResults(results.table, temperature=1.0)
    fresh.set_prototypes(new_keys, new_protos)
    np.testing.assert_allclose(results.distances, fresh.distances, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(results.best, fresh.best)
    np.testing.assert_allclose(results.confidence, fresh.confidence, rtol=1e-6)
    assert results.best[2] == 40 and results.keys == new_keys
    direct = distances_to(results.table.embeddings, new_protos)
    np.testing.assert_allclose(results.distances, direct, rtol=1e-6, atol=1e-6)


def test_arriving_rows_are_predicted() -> None:
    results, _, _ = results_fixture()
    table = results.table
    table.embeddings[7] = np.array([0, 3.8, 0, 0], np.float16)
    table.state[7] = ItemState.DONE
    assert results.best[7] == -1  # a waiting item has no prediction yet
    results.update_rows(np.array([7]))
    assert results.best[7] == 30 and results.labels()[7] == 30 and results.confidence[7] > 0.5



def test_folder_export_items_follow_the_statuses() -> None:
    from protoglyph.core.labeling.results import folder_export_items

    results, _, _ = results_fixture()
    names = {k: f"class {k}" for k in results.keys}
    status = results.status()
    every = folder_export_items(results, names)
    assert len(every) == int(np.isin(status, (Status.PREDICTED, Status.CONFIRMED, Status.CORRECTED)).sum())
    assert all(name in names.values() for _, name in every)
    reviewed = folder_export_items(results, names, reviewed_only=True, with_unknown=True)
    assert {p.name for p, _ in reviewed} <= {results.table.paths[i].rsplit("/", 1)[-1] for i in
                                              np.flatnonzero(results.reviews() != 0)}
    assert len(folder_export_items(results, {})) == 0  # no class names: nothing to place


def test_an_items_distances_do_not_depend_on_how_items_are_grouped() -> None:
    """Stored items are compared in big blocks, new ones a chunk at a time: the same item must
    get the same numbers either way (in float32 the product's last bits depend on the block,
    and a resumed run's CSV differed from a fresh one's in the 4th decimal on 19 of 20,000 rows)."""
    rng = np.random.default_rng(0)
    items = rng.normal(size=(9000, 256)).astype(np.float16)
    prototypes = rng.normal(size=(20, 256)).astype(np.float32)
    whole = results_module.distances_to(items, prototypes)
    chunked = np.concatenate([results_module.distances_to(items[i : i + 256], prototypes)
                              for i in range(0, len(items), 256)])
    one_by_one = np.concatenate([results_module.distances_to(items[i : i + 1], prototypes) for i in range(300)])
    assert np.array_equal(whole, chunked) and np.array_equal(whole[:300], one_by_one)
