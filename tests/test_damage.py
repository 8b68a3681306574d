"""Damaged projects and hostile values: what SQLite's own checks cannot see must still never
reach the classifier, and every problem is reported in words, never as a traceback."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.cli.label import main as label_main
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling.listing import list_folder
from protoglyph.core.labeling.store import BatchStore, BatchTable, read_batch
from protoglyph.core.project import Project, ProjectError
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project
from protoglyph.core.workspace import Workspace
from tests.model_factory import make_encoder

REPO = Path(__file__).resolve().parent.parent


def drawing(shape: str, seed: int) -> np.ndarray:
    return draw_shape(shape, np.random.default_rng(seed), size=64)


def write_scans(folder: Path, n: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        cv2.imwrite(str(folder / f"{k:03d}.png"), drawing(("ring", "cross", "star")[k % 3], 500 + k))
    return folder


def labeled_project(tmp_path: Path, encoder: EncoderSession) -> tuple[Path, Path]:
    """The starter project with a labeled folder's results stored in it."""
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()
    folder = write_scans(tmp_path / "scans", 40)
    assert label_main([str(folder), "--project", str(path), "--out", str(tmp_path / "first.csv"), "--quiet"]) == 0
    return path, folder


# -- blobs damaged below SQLite's notice ---------------------------------------------------------
def test_random_overwrites_are_refused_or_caught_never_used(tmp_path: Path, encoder: EncoderSession) -> None:
    path, folder = labeled_project(tmp_path, encoder)
    good = Workspace(Project.open(path), encoder)
    truth = {i: v.copy() for i, v in good._embedding.items()}
    good.project.close()
    entries = list_folder(folder)
    batch_truth = read_batch(path, folder, entries, encoder.model_key, encoder.embedding_size).embeddings.copy()
    size = path.stat().st_size
    rng = np.random.default_rng(11)
    outcome = {"refused": 0, "repaired": 0, "unharmed": 0}
    for trial in range(40):
        damaged = tmp_path / f"damaged{trial}.protoglyph"
        shutil.copy(path, damaged)
        with open(damaged, "r+b") as f:
            f.seek(int(rng.integers(0, size - 512)))
            f.write(rng.integers(0, 256, 512, dtype=np.uint8).tobytes())
        try:
            project = Project.open(damaged)
        except ProjectError:
            outcome["refused"] += 1
            continue
        try:
            ws = Workspace(project, encoder)
            table = read_batch(damaged, folder, entries, encoder.model_key, encoder.embedding_size)
        except ProjectError:
            outcome["refused"] += 1
            project.close()
            continue
        # Every embedding in use is the true one (recomputed from a verified image where the
        # stored one was damaged); an example whose image is damaged is left out and reported.
        for example_id, vector in ws._embedding.items():
            np.testing.assert_allclose(vector, truth[example_id], rtol=1e-4, atol=1e-4)
        assert len(ws._embedding) + len(ws.problems) >= len(truth) or len(project.examples()) < len(truth)
        done = table.state == 1
        np.testing.assert_array_equal(table.embeddings[done], batch_truth[done])
        changed = bool(ws.problems) or len(ws._embedding) != len(truth) or not done.all()
        outcome["repaired" if changed else "unharmed"] += 1
        project.close()
    print(f"\n40 damaged projects (512 random bytes each): {outcome}")
    assert sum(outcome.values()) == 40


def test_a_damaged_example_image_is_reported_and_left_out(tmp_path: Path, encoder: EncoderSession,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()
    db = sqlite3.connect(path)
    victim = db.execute("SELECT id FROM examples ORDER BY id LIMIT 1").fetchone()[0]
    db.execute("UPDATE examples SET image = ? WHERE id = ?", (b"\x89PNG not any more", victim))
    db.commit()
    db.close()
    ws = Workspace(Project.open(path), encoder)
    assert len(ws.problems) == 1 and "Ring" in ws.problems[0] and "damaged" in ws.problems[0]
    assert victim not in ws._embedding and ws.example_count(ws.classes()[0].id) == 3
    # the person can still delete it, and undo puts it back (still marked damaged)
    removed = ws.remove_examples([victim])
    ws.restore_examples(removed)
    assert any(e.id == victim and e.damaged for e in ws.project.examples())
    ws.project.close()
    folder = write_scans(tmp_path / "scans", 3)
    assert label_main([str(folder), "--project", str(path), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "Class “Ring” lost example 1" in err and "Traceback" not in err


def test_damaged_text_that_is_not_utf8_is_read_never_a_crash(tmp_path: Path, encoder: EncoderSession) -> None:
    """Random damage once landed in an example's file name: SQLite returned bytes that are not
    UTF-8 and reading the examples raised sqlite3.OperationalError (found by the random
    overwrites above with another model's bytes)."""
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()
    db = sqlite3.connect(path)
    victim = db.execute("SELECT id FROM examples ORDER BY id LIMIT 1").fetchone()[0]
    db.execute("UPDATE examples SET source = CAST(X'7CFF59E92F' AS TEXT) WHERE id = ?", (victim,))
    first_class = db.execute("SELECT id FROM classes ORDER BY position LIMIT 1").fetchone()[0]
    db.execute("UPDATE classes SET name = CAST(X'52696E67FE' AS TEXT) WHERE id = ?", (first_class,))
    db.commit()
    db.close()
    ws = Workspace(Project.open(path), encoder)
    examples = {e.id: e for e in ws.project.examples()}
    assert examples[victim].source == os.fsdecode(b"|\xffY\xe9/") and not examples[victim].damaged
    assert victim in ws._embedding  # the example itself is whole and used
    assert ws.classes()[0].name == os.fsdecode(b"Ring\xfe")
    ws.project.close()


def test_non_finite_stored_numbers_are_computed_again(tmp_path: Path, encoder: EncoderSession) -> None:
    path, folder = labeled_project(tmp_path, encoder)
    project = Project.open(path)
    example = project.examples()[0]
    nan = np.full(encoder.embedding_size, np.nan, np.float32).tobytes()
    project.store_embeddings(encoder.model_key, {example.id: nan})  # with a valid checksum
    store = BatchStore(project, folder)
    entries = list_folder(folder)
    table = BatchTable.fresh(folder, entries, encoder.embedding_size)
    table.state[:] = 1
    table.embeddings[0] = np.nan
    store.save(table, [0], encoder.model_key)
    with project.transaction() as db:
        db.execute("UPDATE batches SET threshold = 'nan'")
    project.close()
    ws = Workspace(Project.open(path), encoder)
    assert np.isfinite(ws._embedding[example.id]).all()
    _, prototypes = ws.classifier.prototypes()
    assert np.isfinite(prototypes).all()
    ws.project.close()
    again = read_batch(path, folder, entries, encoder.model_key, encoder.embedding_size)
    assert again.todo == [0] and again.threshold is None
    with pytest.raises(ValueError, match="finite"):
        BatchStore(Project.open(path), folder).set_threshold(float("nan"))
    assert label_main([str(folder), "--project", str(path), "--out", str(tmp_path / "o.csv"),
                       "--threshold", "nan"]) == 2


def test_a_file_without_a_format_version_is_called_damaged(tmp_path: Path) -> None:
    path = tmp_path / "p.protoglyph"
    Project.create(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.close()
    with pytest.raises(ProjectError, match="no project format version"):
        Project.open(path)


def test_a_schema_2_file_gets_checksums_and_keeps_every_backup(tmp_path: Path, encoder: EncoderSession) -> None:
    path = tmp_path / "old.protoglyph"
    create_starter_project(path, encoder).project.close()
    for _ in range(2):
        db = sqlite3.connect(path, isolation_level=None)
        for table, column in (("examples", "image_crc"), ("examples", "embedding_crc"),
                              ("batch_items", "embedding_crc")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("PRAGMA user_version = 2")
        db.close()
        ws = Workspace(Project.open(path), encoder)
        assert ws.problems == [] and len(ws._embedding) == 32
        assert ws.project.query("SELECT COUNT(*) FROM examples WHERE image_crc IS NULL").fetchone()[0] == 0
        ws.project.close()
    assert (tmp_path / "old.protoglyph.v2.bak").exists() and (tmp_path / "old.protoglyph.v2.bak-2").exists()


# -- another model with the same metadata --------------------------------------------------------
def test_a_different_model_with_the_same_metadata_never_reuses_embeddings(tmp_path: Path) -> None:
    a = EncoderSession(make_encoder(tmp_path / "a.onnx", weights_seed=1))
    b = EncoderSession(make_encoder(tmp_path / "b.onnx", weights_seed=2))
    assert a.info.model_name == b.info.model_name and a.info.model_version == b.info.model_version
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, a).project.close()
    folder = write_scans(tmp_path / "scans", 6)
    out = tmp_path / "o.csv"
    assert label_main([str(folder), "--project", str(path), "--out", str(out), "--model", str(a.path)]) == 0
    entries = list_folder(folder)
    assert read_batch(path, folder, entries, b.model_key, b.embedding_size).todo == list(range(6))
    ws = Workspace(Project.open(path), b)
    example = ws.project.examples()[0]
    image = cv2.imdecode(np.frombuffer(example.image, np.uint8), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_allclose(ws._embedding[example.id], b.embed_images([image])[0], rtol=1e-5, atol=1e-5)
    ws.project.close()


# -- hostile file names and files in the labeled folder ---------------------------------------------
def test_names_that_are_not_utf8_are_labeled_stored_and_exported_exactly(tmp_path: Path, encoder: EncoderSession,
                                                                         ) -> None:
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()
    folder = tmp_path / "scans"
    folder.mkdir()
    names = [b"caf\xe9.png", b"\xff\xfe ring.png", b"ok.png"]
    for k, name in enumerate(names):
        _, png = cv2.imencode(".png", drawing("ring", k))
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(png.tobytes())
    out = tmp_path / "o.csv"
    assert label_main([str(folder), "--project", str(path), "--out", str(out), "--quiet"]) == 0
    raw = out.read_bytes()
    for name in names:
        assert name in raw  # the exact bytes of the name
    with open(out, newline="", encoding="utf-8", errors="surrogateescape") as f:
        rows = list(csv.DictReader(f))
    assert sorted(os.fsencode(r["path"]) for r in rows) == sorted(names)
    assert {r["status"] for r in rows} == {"predicted"}
    stored = read_batch(path, folder, list_folder(folder), encoder.model_key, encoder.embedding_size)
    assert stored.todo == []  # every chunk was stored: a second run reads nothing


def test_links_to_themselves_and_fifos_get_a_row_with_the_reason(tmp_path: Path, encoder: EncoderSession) -> None:
    folder = write_scans(tmp_path / "scans", 3)
    os.symlink("self.png", folder / "self.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.png")
    examples = tmp_path / "examples"
    for shape in ("ring", "cross"):
        (examples / shape).mkdir(parents=True)
        cv2.imwrite(str(examples / shape / "1.png"), drawing(shape, 1))
    out = tmp_path / "o.csv"
    assert label_main([str(folder), "--examples", str(examples), "--out", str(out), "--quiet"]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert rows["self.png"]["status"] == "error" and rows["self.png"]["reason"]
    if hasattr(os, "mkfifo"):
        assert rows["pipe.png"]["status"] == "error" and "FIFO" in rows["pipe.png"]["reason"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_among_the_examples_never_hangs(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    for shape in ("ring", "cross"):
        (examples / shape).mkdir(parents=True)
        cv2.imwrite(str(examples / shape / "1.png"), drawing(shape, 1))
    os.mkfifo(examples / "ring" / "2.png")
    folder = write_scans(tmp_path / "scans", 2)
    result = subprocess.run([sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples),
                             "--out", str(tmp_path / "o.csv")], cwd=REPO, capture_output=True, timeout=120,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "2.png" in result.stderr and "FIFO" in result.stderr


def test_class_names_with_invisible_formatting_are_refused(tmp_path: Path, encoder: EncoderSession) -> None:
    ws = Workspace(Project.create(tmp_path / "p.protoglyph"), encoder)
    for hostile in ("abc\u202edef", "\u2066x", "a\ufeff", "b\u200e"):
        with pytest.raises(ValueError, match="invisible formatting"):
            ws.add_class(hostile)
    assert ws.add_class("می\u200cخواهم").name == "می\u200cخواهم"  # ZWNJ is part of Persian writing
    assert ws.add_class("👩\u200d💻").name == "👩\u200d💻"
    ws.project.close()


def test_a_model_replaced_while_labeling_stops_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protoglyph.core.labeling import embedding
    from protoglyph.core.labeling.embedding import BatchError, embed_files

    path = make_encoder(tmp_path / "m.onnx", weights_seed=1)
    session = EncoderSession(path)
    make_encoder(path, weights_seed=2)  # the workers would load this one
    folder = write_scans(tmp_path / "scans", 3)
    monkeypatch.setattr(embedding, "IN_PROCESS_BELOW", 2)
    with pytest.raises(BatchError, match="was replaced while labeling"):
        list(embed_files(folder, [(i, e.path) for i, e in enumerate(list_folder(folder))], session, jobs=2))


def test_a_100_megapixel_image_in_a_worker_is_labeled_or_a_reason_never_the_end(
        tmp_path: Path, encoder: EncoderSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from protoglyph.core.imagefile import OUT_OF_MEMORY
    from protoglyph.core.labeling import embedding
    from protoglyph.core.labeling.embedding import embed_files

    folder = write_scans(tmp_path / "scans", 3)
    huge = np.full((10_000, 10_000), 255, np.uint8)
    cv2.circle(huge, (5000, 5000), 3000, 0, 200)
    cv2.imwrite(str(folder / "huge.png"), huge)
    del huge
    monkeypatch.setattr(embedding, "IN_PROCESS_BELOW", 2)
    todo = [(i, e.path) for i, e in enumerate(list_folder(folder))]
    chunks = list(embed_files(folder, todo, encoder, jobs=2))  # in worker processes, under their memory limit
    done = {int(i) for c in chunks for i in c.indices}
    errors = {i: reason for c in chunks for i, reason in c.errors}
    huge_index = [p for _, p in todo].index("huge.png")
    assert done | set(errors) == set(range(4)) and set(range(4)) - {huge_index} <= done
    assert huge_index in done or errors[huge_index] == OUT_OF_MEMORY


def test_a_blob_that_is_not_bytes_reads_as_damaged_after_the_upgrade(tmp_path: Path, encoder: EncoderSession) -> None:
    path = tmp_path / "old.protoglyph"
    create_starter_project(path, encoder).project.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE examples SET image = 'text, not an image' WHERE id = (SELECT MIN(id) FROM examples)")
    for table, column in (("examples", "image_crc"), ("examples", "embedding_crc"), ("batch_items", "embedding_crc")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    db.execute("PRAGMA user_version = 2")
    db.close()
    ws = Workspace(Project.open(path), encoder)  # the migration computed checksums of what was there
    assert len(ws.problems) == 1 and "Ring" in ws.problems[0] and len(ws._embedding) == 31
    ws.project.close()


def test_an_undecodable_image_never_lends_another_models_embedding(tmp_path: Path, encoder: EncoderSession) -> None:
    from protoglyph.core.project import ExampleRecord

    project = Project.create(tmp_path / "p.protoglyph")
    cid = project.add_class("Ring", "#000000").id
    other = np.ones(encoder.embedding_size, np.float32).tobytes()  # another model's embedding, checksum intact
    project.add_examples(cid, [ExampleRecord(0, cid, 0, b"\x89PNG but not one", "x", None, "t", other, "old:1")])
    project.close()
    ws = Workspace(Project.open(tmp_path / "p.protoglyph"), encoder)
    assert ws._embedding == {} and len(ws.problems) == 1
    ws.project.close()


def test_a_starter_from_a_newer_version_is_left_as_it_is(tmp_path: Path, encoder: EncoderSession) -> None:
    from protoglyph.core.starter import open_starter_project

    path = tmp_path / "Starter project.protoglyph"
    create_starter_project(path, encoder).project.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = path.read_bytes()
    for _ in range(2):
        ws = open_starter_project(path, encoder)
        assert ws.project.path.name == "Starter project (format 3).protoglyph" and ws.classifier.classes
        ws.project.close()
    assert path.read_bytes() == before and not list(tmp_path.glob("*.damaged*"))


def test_save_as_never_lands_on_a_leftover_journal(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "a.protoglyph")
    (tmp_path / "b.protoglyph-journal").write_bytes(b"left over")
    with pytest.raises(ProjectError, match="in the way"):
        project.save_as(tmp_path / "b.protoglyph")
    assert project.path.name == "a.protoglyph" and not (tmp_path / "b.protoglyph").exists()
    project.close()


def test_a_copy_export_never_writes_beside_the_originals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protoglyph.core.export import folders as export

    source = write_scans(tmp_path / "scans", 3)
    touched: list[str] = []
    real_unlink = os.unlink
    monkeypatch.setattr(export.os, "unlink", lambda p, *a, **k: (touched.append(str(p)), real_unlink(p, *a, **k)))
    items = [(source / f"{k:03d}.png", "ring") for k in range(3)]
    export.export_folders(items, tmp_path / "out")
    export.undo_export(tmp_path / "out")
    assert not [t for t in touched if Path(t).parent == source]  # a read-only source (a DVD) would fail there


def test_names_with_lone_surrogates_are_shown_without_failing() -> None:
    from protoglyph.core.text import readable

    assert readable("caf\udce9.png") == "caf\ufffd.png"  # a byte that is not UTF-8 (POSIX)
    assert readable("a\ud800b") == "a\ufffdb"  # a lone UTF-16 surrogate (a Windows name)
