"""The project file: one SQLite database holding classes, their examples (image data included,
so the file is self-contained) and settings.

Every edit is one transaction, committed before the method returns, so a crash or power cut
loses nothing. The file carries an application id and a schema version (``PRAGMA user_version``);
older versions are migrated on open (after a backup copy), newer ones are refused, and a file
that is not a project, or is damaged, raises :class:`ProjectError` without being written to.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: ``PRAGMA application_id``: "PGLY". Tells a Protoglyph project from any other SQLite file.
APPLICATION_ID = 0x50474C59
#: The schema this code writes. Bump it and add a step to :data:`MIGRATIONS` when it changes.
SCHEMA_VERSION = 3
SUFFIX = ".protoglyph"
#: SQLite's companion files of a database; a database is never moved or copied without them.
SIDECARS = ("-journal", "-wal", "-shm")
#: How long one wait for another program's lock on the project lasts before it is reported
#: (and tried again), and how long in all a background writer (the command line, a labeling
#: thread) waits before giving up. Edits on the window's own thread wait one step only, so the
#: window never freezes for long.
BUSY_STEP_S = 5.0
BUSY_LIMIT_S = 600.0

_SCHEMA = """
CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE examples (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    image BLOB NOT NULL,          -- PNG, gray
    source TEXT NOT NULL,         -- "drawing", "clipboard", or the file it came from
    strokes TEXT,                 -- JSON stroke list of a drawing, else NULL
    added TEXT NOT NULL,          -- ISO 8601, UTC
    embedding BLOB,               -- float32 cache; recomputed when embedding_model differs
    embedding_model TEXT,
    image_crc INTEGER,            -- CRC-32 of image and embedding, checked on every read
    embedding_crc INTEGER
);
CREATE INDEX examples_by_class ON examples(class_id, position);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: The project's own steps: ``_OWN_MIGRATIONS[v]`` upgrades its classes and examples from
#: version ``v``; the labeling store (``labeling/store.py``) owns its tables and their steps.
_OWN_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def _table_owners() -> list[tuple[str, dict[int, Callable[[sqlite3.Connection], None]]]]:
    """``(schema, migrations)`` of every part of the core that keeps tables in the project file.

    Imported here, when a file is created or migrated, not at the top: the labeling store
    builds on this module (its transactions, checksums and file names).
    """
    from protoglyph.core.labeling import store

    return [(store.SCHEMA, store.MIGRATIONS)]


def _upgrade_from(version: int) -> Callable[[sqlite3.Connection], None]:
    def upgrade(db: sqlite3.Connection) -> None:
        own = _OWN_MIGRATIONS.get(version)
        if own is not None:
            own(db)
        for _, steps in _table_owners():
            step = steps.get(version)
            if step is not None:
                step(db)

    return upgrade


def checksum(blob: object) -> int | None:
    """The CRC-32 kept beside every stored blob: damage that SQLite's own checks cannot see (a
    few overwritten bytes inside a row) must not reach the classifier unnoticed."""
    # A value that is not bytes (text or a number where a blob belongs: damage, or another
    # program's edit) gets no checksum, so it reads back as damaged instead of failing here.
    return zlib.crc32(blob) if isinstance(blob, bytes) else None


def intact(blob: bytes | None, crc: int | None) -> bool:
    """Whether a blob read back matches the checksum stored with it."""
    return blob is not None and crc is not None and zlib.crc32(blob) == crc


def _add_checksums(db: sqlite3.Connection) -> None:
    # Rows from before checksums are taken as they are now: the best that can be known.
    db.create_function("crc32", 1, checksum, deterministic=True)
    have = {r[1] for r in db.execute("PRAGMA table_info(examples)")}
    for column in ("image_crc", "embedding_crc"):
        if column not in have:  # a file made with today's tables under an older version number
            db.execute(f"ALTER TABLE examples ADD COLUMN {column} INTEGER")
    db.execute("UPDATE examples SET image_crc = crc32(image), embedding_crc = crc32(embedding)")


_OWN_MIGRATIONS[2] = _add_checksums
#: ``MIGRATIONS[v]`` upgrades a version-``v`` file to ``v + 1`` inside one transaction: the
#: project's own step and each table owner's, for that version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {v: _upgrade_from(v) for v in range(1, SCHEMA_VERSION)}


def db_text(text: str) -> str | bytes:
    """A file name or path as stored: text, or (a name that is not valid UTF-8, which Linux
    allows and Python holds as surrogate escapes) its exact bytes, so that nothing is lost."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def from_db_text(value: str | bytes) -> str:
    """The inverse of :func:`db_text`."""
    return value if isinstance(value, str) else os.fsdecode(value)


class ProjectError(RuntimeError):
    """A project file that cannot be created, opened or written, and why."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ProjectBusy(ProjectError):
    """Another program holds the project locked (for longer than a wait); nothing is wrong with it."""


class ProjectTooNew(ProjectError):
    """The project was written by a newer Protoglyph; it is fine, and must be left as it is."""


@dataclass(frozen=True)
class ClassRecord:
    id: int
    name: str
    color: str  # "#rrggbb"
    position: int


@dataclass(frozen=True)
class ExampleRecord:
    id: int
    class_id: int
    position: int
    image: bytes  # PNG
    source: str
    strokes: str | None
    added: str
    embedding: bytes | None = None
    embedding_model: str | None = None
    #: The stored image no longer matches its checksum (or cannot be decoded): the example is
    #: left out of its class, and kept in the file.
    damaged: bool = False


_EXAMPLE_COLUMNS = "id, class_id, position, image, source, strokes, added, embedding, embedding_model"
_STORED_COLUMNS = f"{_EXAMPLE_COLUMNS}, image_crc, embedding_crc"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Project:
    """An open project file. Use :meth:`create` or :meth:`open`; close with :meth:`close`."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._depth = 0
        #: Told how many seconds an edit has waited for another program to release the file.
        self.on_wait: Callable[[float], None] | None = None
        #: How long in all an edit waits for another program's lock (beyond one step).
        self.patience_s = 0.0

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str) -> Project:
        """A new, empty project at ``path`` (which must not exist yet)."""
        p = Path(path)
        if p.exists():
            raise ProjectError(p, "a file of that name already exists")
        left = [n for n in sidecars(p) if n.exists()]
        if left:
            # SQLite would take a leftover journal for this new file's own and "replay" it into it.
            raise ProjectError(p, f"{left[0].name}, left by an earlier project of that name, is in the way; "
                                  "move it elsewhere first")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=SUFFIX, dir=p.parent)
            os.close(fd)
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                owned = " ".join(schema for schema, _ in _table_owners())
                db.executescript(f"BEGIN; {_SCHEMA} {owned} PRAGMA application_id = {APPLICATION_ID};"
                                 f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            finally:
                db.close()
            os.replace(tmp, p)
        except (OSError, sqlite3.Error) as exc:
            raise ProjectError(p, f"cannot be created ({exc})") from exc
        return cls.open(p)

    @classmethod
    def open(cls, path: Path | str) -> Project:
        """Open an existing project, migrating an older schema (a ``.bak`` copy is kept first)."""
        p = Path(path)
        version = inspect(p)
        if not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK):
            raise ProjectError(p, "the file or its folder is read-only; copy the project somewhere writable")
        if version < SCHEMA_VERSION:
            shutil.copy2(p, unused_name(p.with_name(f"{p.name}.v{version}.bak")))
        db = _connect(p, "rw")
        try:
            _migrate(db, version)
        except Exception as exc:  # a step's own bug must surface as ProjectError too
            db.close()
            raise ProjectError(p, f"could not be upgraded from schema {version}: {exc}") from exc
        return cls(p, db)

    @classmethod
    def attach(cls, path: Path | str) -> Project:
        """A second connection to a project already opened (and checked) with :meth:`open`,
        for a worker thread: SQLite connections are not shared between threads. It waits out
        other programs' locks for up to :data:`BUSY_LIMIT_S`."""
        project = cls(Path(path), _connect(Path(path), "rw"))
        project.patience_s = BUSY_LIMIT_S
        return project

    def close(self) -> None:
        self._db.close()

    def save_as(self, path: Path | str) -> None:
        """Copy the project to ``path`` (atomically, replacing it) and continue working there."""
        target = Path(path)
        if target.resolve() == self.path.resolve():
            return
        left = [n for n in sidecars(target) if n.exists()]
        if left:
            raise ProjectError(target, f"{left[0].name}, left by an earlier project of that name, is in the way; "
                                       "move it elsewhere first")
        try:
            fd, tmp = tempfile.mkstemp(prefix=".save-", suffix=SUFFIX, dir=target.parent)
            os.close(fd)
            dest = sqlite3.connect(tmp)
            try:
                self._db.backup(dest)
            finally:
                dest.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except (OSError, sqlite3.Error) as exc:
            if "tmp" in locals() and os.path.exists(tmp):
                os.unlink(tmp)
            raise ProjectError(target, f"cannot be written ({exc})") from exc
        self._db.close()
        self.path = target
        self._db = _connect(target, "rw")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic edit: everything inside commits together or not at all.

        Transactions nest: an inner one joins the outer, so several edits (an example added and
        the review that added it) can be made one atomic step. While another program holds the
        file (a reader inside a long transaction), the edit waits and tries again, telling
        :attr:`on_wait` how long it has waited, for up to :attr:`patience_s`.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self._db
            finally:
                self._depth -= 1
            return
        try:
            self._patiently("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ProjectError(self.path, f"cannot be written ({exc})") from exc
        self._depth = 1
        try:
            yield self._db
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            # A COMMIT that finds the file busy leaves the transaction open, so it can be retried.
            self._patiently("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ProjectError(self.path, f"the change could not be saved ({exc})") from exc

    def _rollback(self) -> None:
        # After a full disk or an I/O error SQLite may have rolled back already.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _patiently(self, statement: str) -> None:
        """Run ``statement``, waiting out another program's lock (SQLite waits up to
        :data:`BUSY_STEP_S` each try) until :attr:`patience_s` have passed."""
        start = time.monotonic()
        while True:
            try:
                self._db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                waited = time.monotonic() - start
                if not _is_busy(exc) or waited >= self.patience_s:
                    raise
                if self.on_wait is not None:
                    self.on_wait(waited)  # may raise, to give up (a cancelled labeling job)
                time.sleep(0.05)

    def compact(self) -> None:
        """Give the space of deleted rows back to the disk (``VACUUM``: rewrites the file safely)."""
        try:
            self._db.execute("VACUUM")
        except sqlite3.Error as exc:
            raise ProjectError(self.path, f"could not be compacted ({exc})") from exc

    def query(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run a read-only statement (for the stores built on the project, e.g. batch results)."""
        return self._db.execute(sql, tuple(args))

    # -- classes -----------------------------------------------------------------------
    def classes(self) -> list[ClassRecord]:
        rows = self._db.execute("SELECT id, name, color, position FROM classes ORDER BY position, id")
        return [ClassRecord(*r) for r in rows]

    def add_class(self, name: str, color: str, position: int | None = None, class_id: int | None = None) -> ClassRecord:
        """Insert a class at ``position`` (default: last); ``class_id`` restores a deleted one."""
        with self.transaction() as db:
            count = db.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
            pos = count if position is None else max(0, min(position, count))
            db.execute("UPDATE classes SET position = position + 1 WHERE position >= ?", (pos,))
            if class_id is None:
                # Never reuse the id of a deleted class: reviews of labeled folders refer to
                # classes by id, and must not pass to an unrelated new class.
                top = db.execute("SELECT COALESCE(MAX(id), 0) FROM classes").fetchone()[0]
                used = db.execute("SELECT value FROM settings WHERE key = 'last_class_id'").fetchone()
                class_id = max(int(top), int(used[0]) if used else 0) + 1
            db.execute("INSERT INTO classes (id, name, color, position) VALUES (?, ?, ?, ?)",
                       (class_id, name, color, pos))
            db.execute("INSERT INTO settings (key, value) VALUES ('last_class_id', ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(class_id),))
        return ClassRecord(class_id, name, color, pos)

    def update_class(self, class_id: int, *, name: str | None = None, color: str | None = None) -> None:
        with self.transaction() as db:
            if name is not None:
                db.execute("UPDATE classes SET name = ? WHERE id = ?", (name, class_id))
            if color is not None:
                db.execute("UPDATE classes SET color = ? WHERE id = ?", (color, class_id))

    def set_class_order(self, class_ids: Sequence[int]) -> None:
        """Reorder: ``class_ids`` lists every class once, in the new order."""
        with self.transaction() as db:
            existing = {r[0] for r in db.execute("SELECT id FROM classes")}
            if set(class_ids) != existing or len(class_ids) != len(existing):
                raise ValueError("the new order must list every class exactly once")
            db.executemany("UPDATE classes SET position = ? WHERE id = ?",
                           [(i, c) for i, c in enumerate(class_ids)])

    def delete_class(self, class_id: int) -> tuple[ClassRecord, list[ExampleRecord]]:
        """Delete a class and its examples; returns both, for :meth:`restore_class`."""
        with self.transaction() as db:
            row = db.execute("SELECT id, name, color, position FROM classes WHERE id = ?", (class_id,)).fetchone()
            if row is None:
                raise KeyError(f"no class with id {class_id}")
            record = ClassRecord(*row)
            examples = self._examples(db, "WHERE class_id = ?", (class_id,))
            db.execute("DELETE FROM examples WHERE class_id = ?", (class_id,))
            db.execute("DELETE FROM classes WHERE id = ?", (class_id,))
            db.execute("UPDATE classes SET position = position - 1 WHERE position > ?", (record.position,))
        return record, examples

    def restore_class(self, record: ClassRecord, examples: Sequence[ExampleRecord]) -> None:
        """Undo :meth:`delete_class`: the same ids, position and examples."""
        with self.transaction() as db:
            db.execute("UPDATE classes SET position = position + 1 WHERE position >= ?", (record.position,))
            db.execute("INSERT INTO classes (id, name, color, position) VALUES (?, ?, ?, ?)",
                       (record.id, record.name, record.color, record.position))
            self._insert_examples(db, examples)

    # -- examples ----------------------------------------------------------------------
    def examples(self, class_id: int | None = None) -> list[ExampleRecord]:
        if class_id is None:
            return self._examples(self._db, "ORDER BY class_id, position, id", ())
        return self._examples(self._db, "WHERE class_id = ? ORDER BY position, id", (class_id,))

    def class_summaries(self) -> dict[int, tuple[int, int]]:
        """``{class_id: (example count, id of its first example)}`` for classes with examples."""
        rows = self._db.execute("SELECT class_id, COUNT(*), (SELECT id FROM examples f WHERE f.class_id = e.class_id "
                                "ORDER BY position, id LIMIT 1) FROM examples e GROUP BY class_id")
        return {int(c): (int(n), int(first)) for c, n, first in rows}

    def example(self, example_id: int) -> ExampleRecord:
        found = self._examples(self._db, "WHERE id = ?", (example_id,))
        if not found:
            raise KeyError(f"no example with id {example_id}")
        return found[0]

    def add_examples(self, class_id: int, new: Sequence[ExampleRecord]) -> list[ExampleRecord]:
        """Append examples to a class; their ``id``, ``class_id`` and ``position`` are assigned here."""
        out = []
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM classes WHERE id = ?", (class_id,)).fetchone() is None:
                raise KeyError(f"no class with id {class_id}")
            pos = db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM examples WHERE class_id = ?",
                             (class_id,)).fetchone()[0]
            for i, e in enumerate(new):
                cur = db.execute(
                    "INSERT INTO examples (class_id, position, image, source, strokes, added, embedding, "
                    "embedding_model, image_crc, embedding_crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (class_id, pos + i, e.image, db_text(e.source), e.strokes, e.added, e.embedding,
                     e.embedding_model, checksum(e.image), checksum(e.embedding)))
                out.append(ExampleRecord(int(cur.lastrowid or 0), class_id, pos + i, e.image, e.source, e.strokes,
                                         e.added, e.embedding, e.embedding_model))
        return out

    def restore_examples(self, records: Sequence[ExampleRecord]) -> None:
        """Put back examples exactly as they were (ids, classes, positions)."""
        with self.transaction() as db:
            self._insert_examples(db, records)

    def delete_examples(self, example_ids: Sequence[int]) -> list[ExampleRecord]:
        """Delete examples; returns them, for :meth:`restore_examples`."""
        with self.transaction() as db:
            marks = ",".join("?" * len(example_ids))
            records = self._examples(db, f"WHERE id IN ({marks})", tuple(example_ids))
            db.execute(f"DELETE FROM examples WHERE id IN ({marks})", tuple(example_ids))
        return records

    def move_examples(self, moves: Sequence[tuple[int, int, int]]) -> None:
        """Move examples: ``(example_id, class_id, position)`` each."""
        with self.transaction() as db:
            db.executemany("UPDATE examples SET class_id = ?, position = ? WHERE id = ?",
                           [(c, p, e) for e, c, p in moves])

    def next_position(self, class_id: int) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM examples WHERE class_id = ?",
                               (class_id,)).fetchone()
        return int(row[0])

    def store_embeddings(self, model: str, vectors: dict[int, bytes]) -> None:
        """Cache example embeddings made by ``model`` (its name, version and preprocessing)."""
        with self.transaction() as db:
            db.executemany("UPDATE examples SET embedding = ?, embedding_model = ?, embedding_crc = ? WHERE id = ?",
                           [(v, model, checksum(v), i) for i, v in vectors.items()])

    # -- settings ----------------------------------------------------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                       (key, value, value))

    # -- internals ---------------------------------------------------------------------
    @staticmethod
    def _examples(db: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[ExampleRecord]:
        """Examples as stored, each blob checked against its checksum: a damaged embedding is
        dropped (it is computed again from the image), a damaged image marks the example."""
        out = []
        for *row, image_crc, embedding_crc in db.execute(f"SELECT {_STORED_COLUMNS} FROM examples {where}", args):
            eid, class_id, position, image, source, strokes, added, embedding, model = row
            ok = isinstance(image, bytes) and intact(image, image_crc)
            if not (isinstance(embedding, bytes) and intact(embedding, embedding_crc)):
                embedding = model = None
            out.append(ExampleRecord(eid, class_id, position, image if isinstance(image, bytes) else b"",
                                     from_db_text(source), strokes, added, embedding, model, damaged=not ok))
        return out

    @staticmethod
    def _insert_examples(db: sqlite3.Connection, records: Sequence[ExampleRecord]) -> None:
        db.executemany(f"INSERT INTO examples ({_STORED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [(e.id, e.class_id, e.position, e.image, db_text(e.source), e.strokes, e.added, e.embedding,
                         e.embedding_model, None if e.damaged else checksum(e.image), checksum(e.embedding))
                        for e in records])


def sidecars(path: Path) -> list[Path]:
    """The companion files SQLite may keep beside ``path`` (journal, write-ahead log)."""
    return [path.with_name(path.name + s) for s in SIDECARS]


def unused_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… : the first name not taken (a kept copy is never replaced)."""
    candidate, n = path, 1
    while candidate.exists() or any(c.exists() for c in sidecars(candidate)):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def set_aside(path: Path, suffix: str = ".damaged") -> Path:
    """Move a project that cannot be used out of the way, together with its journal (a database
    without its journal may lose committed changes), under a name never used before; returns
    the new name of the file. Nothing is deleted."""
    target = unused_name(path.with_name(path.name + suffix))
    for src, dst in zip([path, *sidecars(path)], [target, *sidecars(target)], strict=True):
        if src.exists():
            os.replace(src, dst)
    return target


def inspect(path: Path) -> int:
    """Check that ``path`` is a healthy Protoglyph project, reading only; return its schema version.

    Raises:
        ProjectError: missing, not SQLite, another program's database, newer, or damaged.
    """
    if not path.exists():
        raise ProjectError(path, "no such file")
    if not path.is_file():
        raise ProjectError(path, "not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ProjectError(path, f"cannot be read ({exc.strerror})") from exc
    if head != b"SQLite format 3\x00":
        raise ProjectError(path, "not a Protoglyph project (the file is not a project database)")
    db = connect_for_reading(path)
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise ProjectError(path, "not a Protoglyph project (it is a database of another program)")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version < 1:
            raise ProjectError(path, "the project file is damaged (it has no project format version)")
        if version > SCHEMA_VERSION:
            raise ProjectTooNew(path, f"made by a newer Protoglyph (project format {version}; this version "
                                     f"reads up to {SCHEMA_VERSION}). Update Protoglyph to open it.")
        check = [r[0] for r in db.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            raise ProjectError(path, f"the project file is damaged ({'; '.join(check[:3])})")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"classes", "examples", "settings"} <= tables:
            raise ProjectError(path, "the project file is damaged (tables are missing)")
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise ProjectBusy(path, "is in use by another program, which holds it locked; try again when it is done"
                              ) from exc
        raise ProjectError(path, f"the project file is damaged ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise ProjectError(path, f"the project file is damaged ({exc})") from exc
    finally:
        db.close()
    return version


def connect_for_reading(path: Path | str) -> sqlite3.Connection:
    """A connection for reading only, which first finishes what a crash left undone.

    A crash (or power cut) inside a commit leaves a *hot journal* beside the file: the pages to
    put back. SQLite replays it on the next read-write open, but a read-only connection cannot,
    and refuses the file. So where a journal is present, the file is opened read-write (SQLite
    replays the journal only if no living process holds the file, so this is safe while the
    project is open elsewhere); that is the only write this makes.
    """
    p = Path(path)
    journal = p.with_name(p.name + "-journal")
    try:
        hot = journal.stat().st_size > 0
    except OSError:  # none, or removed this instant by a writer's commit
        hot = False
    if hot:
        if not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)):
            raise ProjectError(p, "was interrupted while saving and can only be repaired where it can be written: "
                                  f"copy it together with {journal.name} to a writable folder and open it there")
        db = _connect(p, "rw")
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # replays a hot journal
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ProjectError(p, f"the project file is damaged ({exc})") from exc
        return db
    return _connect(p, "ro")


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(exc)


def _read_text(raw: bytes) -> str:
    """A TEXT value as read: UTF-8, and bytes that are not (damage) as surrogate escapes, as
    :func:`from_db_text` reads a stored file name, so that a damaged name never stops the
    project from opening (the default raised sqlite3.OperationalError on reading the row)."""
    return raw.decode("utf-8", "surrogateescape")


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None,
                             timeout=BUSY_STEP_S)
        db.text_factory = _read_text
        db.execute("PRAGMA foreign_keys = ON")
        if mode == "rw":
            db.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise ProjectError(path, f"cannot be opened ({exc})") from exc
    return db


def _migrate(db: sqlite3.Connection, version: int) -> None:
    while version < SCHEMA_VERSION:
        step = MIGRATIONS[version]
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
