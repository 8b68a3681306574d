"""The SQLite project store: edits, undo records, atomic saves, migrations, and files it must refuse untouched."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from protoglyph.core import project
from protoglyph.core.project import APPLICATION_ID, SCHEMA_VERSION, ExampleRecord, Project, ProjectError, inspect, now

Snapshot = tuple[list[project.ClassRecord], list[ExampleRecord], str | None]


def draft(tag: str, embedding: bytes | None = None) -> ExampleRecord:
    model = "model:1" if embedding else None
    return ExampleRecord(0, 0, 0, tag.encode() * 50, f"{tag}.png", None, now(), embedding, model)


def snapshot(p: Project) -> Snapshot:
    return p.classes(), p.examples(), p.setting("threshold")


def make_project(path: Path) -> Path:
    """A closed project with three classes, examples (one with an embedding) and a setting."""
    p = Project.create(path)
    a, b, _ = (p.add_class(n, c) for n, c in (("A", "#ff0000"), ("B", "#00ff00"), ("C", "#0000ff")))
    p.add_examples(a.id, [draft("a1", np.arange(4, dtype=np.float32).tobytes()), draft("a2")])
    p.add_examples(b.id, [draft("b1")])
    p.set_setting("threshold", "0.5")
    p.close()
    return path


def pragma(path: Path, name: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        db.close()


def test_create_writes_an_identified_file_and_refuses_an_existing_one(tmp_path: Path) -> None:
    path = make_project(tmp_path / "new.protoglyph")
    assert (pragma(path, "application_id"), pragma(path, "user_version")) == (APPLICATION_ID, SCHEMA_VERSION)
    precious = tmp_path / "precious.protoglyph"
    precious.write_bytes(b"keep me")
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(precious)
    assert precious.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["new.protoglyph", "precious.protoglyph"]


def test_reopen_gives_identical_content(tmp_path: Path) -> None:
    path = tmp_path / "p.protoglyph"
    p = Project.create(path)
    a = p.add_class("A", "#ff0000")
    p.add_class("Z", "#123456", position=0)
    p.add_examples(a.id, [draft("x", b"\x01\x02\x03\x04"), draft("y")])
    p.set_setting("threshold", "0.9")
    before = snapshot(p)
    p.close()
    again = Project.open(path)
    assert snapshot(again) == before
    assert [c.name for c in again.classes()] == ["Z", "A"]
    again.close()


def test_a_failing_edit_rolls_back_completely(tmp_path: Path) -> None:
    p = Project.open(make_project(tmp_path / "p.protoglyph"))
    before = snapshot(p)
    with pytest.raises(RuntimeError), p.transaction() as db:
        db.execute("DELETE FROM examples")
        db.execute("UPDATE settings SET value = 'x'")
        raise RuntimeError("crash in the middle")
    with pytest.raises(sqlite3.IntegrityError):  # shifts positions, then the duplicate name fails
        p.add_class("B", "#000000", position=0)
    with pytest.raises(ValueError):
        p.set_class_order([c.id for c in p.classes()][:2])
    assert snapshot(p) == before
    p.set_setting("threshold", "0.7")  # no transaction was left open
    assert p.setting("threshold") == "0.7"
    p.close()


def test_class_and_example_edits(tmp_path: Path) -> None:
    p = Project.open(make_project(tmp_path / "p.protoglyph"))
    a, b, c = p.classes()
    p.update_class(b.id, name="Bee", color="#abcdef")
    p.set_class_order([c.id, a.id, b.id])
    assert [(x.name, x.position) for x in p.classes()] == [("C", 0), ("A", 1), ("Bee", 2)]
    assert p.class_summaries() == {a.id: (2, p.examples(a.id)[0].id), b.id: (1, p.examples(b.id)[0].id)}
    a2 = p.examples(a.id)[1]
    p.move_examples([(a2.id, c.id, 0)])
    p.store_embeddings("model:2", {a2.id: b"\0" * 8})
    moved = p.example(a2.id)
    assert (moved.class_id, moved.embedding, moved.embedding_model) == (c.id, b"\0" * 8, "model:2")
    gone = p.delete_examples([a2.id])
    assert p.class_summaries().get(c.id) is None
    p.restore_examples(gone)
    assert p.example(a2.id) == moved
    p.close()


def test_delete_and_restore_class_bring_back_ids_positions_and_examples(tmp_path: Path) -> None:
    p = Project.open(make_project(tmp_path / "p.protoglyph"))
    before = snapshot(p)
    a = p.classes()[0]
    record, examples = p.delete_class(a.id)
    assert [(c.name, c.position) for c in p.classes()] == [("B", 0), ("C", 1)]
    assert p.examples(a.id) == []
    p.restore_class(record, examples)
    assert snapshot(p) == before
    p.close()


def _text(path: Path) -> None:
    path.write_text("name,label\nring,1\n")


def _random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(10_000))


def _truncated(path: Path) -> None:
    path.write_bytes(make_project(path.with_name("whole.protoglyph")).read_bytes()[:2000])


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.commit()
    db.close()


def _newer(path: Path) -> None:
    make_project(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


@pytest.mark.parametrize(("make", "problem"), [
    (_text, "not a Protoglyph project"), (_random, "not a Protoglyph project"), (_truncated, "damaged"),
    (_foreign, "database of another program"), (_newer, "newer Protoglyph"),
    (lambda p: None, "no such file"), (lambda p: p.mkdir(), "not a file"),
], ids=["text", "random", "truncated", "foreign", "newer", "missing", "directory"])
def test_unusable_files_are_refused_untouched(tmp_path: Path, make: Callable[[Path], None], problem: str) -> None:
    path = tmp_path / "bad.protoglyph"
    make(path)
    listing = sorted(os.listdir(tmp_path))
    state = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
    with pytest.raises(ProjectError, match=problem) as caught:
        Project.open(path)
    assert caught.value.path == path and problem in caught.value.problem
    assert sorted(os.listdir(tmp_path)) == listing  # no journal, backup or temp file left behind
    assert ((path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None) == state


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path = make_project(tmp_path / "p.protoglyph")
    path.chmod(0o444)
    with pytest.raises(ProjectError, match="read-only"):
        Project.open(path)


def test_older_file_is_migrated_after_a_backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path / "old.protoglyph")
    original = path.read_bytes()
    v = SCHEMA_VERSION
    monkeypatch.setattr(project, "SCHEMA_VERSION", v + 1)
    monkeypatch.setattr(project, "MIGRATIONS", {v: lambda db: db.execute("ALTER TABLE classes ADD COLUMN note")})
    p = Project.open(path)
    assert [c.name for c in p.classes()] == ["A", "B", "C"]
    p.close()
    assert pragma(path, "user_version") == v + 1 and inspect(path) == v + 1
    assert (tmp_path / f"old.protoglyph.v{v}.bak").read_bytes() == original


def _bad_sql(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE classes ADD COLUMN note")
    db.execute("UPDATE no_such_table SET x = 1")


def _python_error(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE classes ADD COLUMN note")
    raise RuntimeError("bug in the migration step")


@pytest.mark.parametrize("step", [_bad_sql, _python_error])
def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     step: Callable[[sqlite3.Connection], None]) -> None:
    path = make_project(tmp_path / "old.protoglyph")
    v = SCHEMA_VERSION
    monkeypatch.setattr(project, "SCHEMA_VERSION", v + 1)
    monkeypatch.setattr(project, "MIGRATIONS", {v: step})
    with pytest.raises(ProjectError, match=f"could not be upgraded from schema {v}"):
        Project.open(path)
    assert pragma(path, "user_version") == v
    db = sqlite3.connect(path)
    assert "note" not in [row[1] for row in db.execute("PRAGMA table_info(classes)")]
    db.close()


def test_save_as_copies_and_continues_in_the_new_file(tmp_path: Path) -> None:
    old = make_project(tmp_path / "old.protoglyph")
    state = (old.read_bytes(), old.stat().st_mtime_ns)
    p = Project.open(old)
    content = snapshot(p)
    with pytest.raises(ProjectError, match="cannot be written"):
        p.save_as(tmp_path / "no such folder" / "x.protoglyph")
    new = tmp_path / "new.protoglyph"
    p.save_as(new)
    assert p.path == new and snapshot(p) == content and inspect(new) == SCHEMA_VERSION
    p.add_class("Later", "#000000")
    p.close()
    assert sorted(os.listdir(tmp_path)) == ["new.protoglyph", "old.protoglyph"]  # no temp file left
    assert (old.read_bytes(), old.stat().st_mtime_ns) == state
    for path, names in ((old, ["A", "B", "C"]), (new, ["A", "B", "C", "Later"])):
        q = Project.open(path)
        assert [c.name for c in q.classes()] == names and q.examples() == content[1]
        q.close()


def test_a_schema_1_file_gains_the_batch_tables(tmp_path: Path) -> None:
    path = tmp_path / "v1.protoglyph"
    db = sqlite3.connect(path)
    db.executescript(f"{project._SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;")
    db.execute("INSERT INTO classes (name, color, position) VALUES ('A', '#ff0000', 0)")
    db.commit()
    db.close()
    p = Project.open(path)
    tables = {r[0] for r in p.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"batches", "batch_items"} <= tables and [c.name for c in p.classes()] == ["A"]
    p.close()
    assert pragma(path, "user_version") == SCHEMA_VERSION and (tmp_path / "v1.protoglyph.v1.bak").exists()


def test_nested_transactions_commit_or_roll_back_together(tmp_path: Path) -> None:
    p = Project.open(make_project(tmp_path / "p.protoglyph"))
    with pytest.raises(RuntimeError), p.transaction():
        p.add_class("D", "#000000")
        raise RuntimeError("the second half failed")
    assert [c.name for c in p.classes()] == ["A", "B", "C"]
    with p.transaction():
        p.add_class("D", "#000000")
        p.set_setting("x", "1")
    assert [c.name for c in p.classes()][-1] == "D" and p.setting("x") == "1"
    p.close()


def test_the_id_of_a_deleted_class_is_never_given_to_a_new_one(tmp_path: Path) -> None:
    p = Project.open(make_project(tmp_path / "p.protoglyph"))
    last = p.classes()[-1]
    record, examples = p.delete_class(last.id)
    assert p.add_class("New", "#123456").id == last.id + 1  # reviews of the deleted class stay its own
    p.restore_class(record, examples)  # undo brings the old id back
    assert {c.id for c in p.classes()} >= {last.id, last.id + 1}
    assert p.add_class("Newer", "#654321").id == last.id + 2
    p.close()


def test_the_labeling_store_owns_its_tables_and_a_new_file_has_them(tmp_path: Path) -> None:
    from protoglyph.core.labeling import store

    Project.create(tmp_path / "new.protoglyph").close()
    made, declared = sqlite3.connect(tmp_path / "new.protoglyph"), sqlite3.connect(":memory:")
    declared.executescript(store.SCHEMA)
    for table in ("batches", "batch_items"):
        columns = f"PRAGMA table_info({table})"
        assert list(made.execute(columns)) == list(declared.execute(columns))
    made.close()
    assert "batch_items" not in project._SCHEMA and set(store.MIGRATIONS) <= set(project.MIGRATIONS)
