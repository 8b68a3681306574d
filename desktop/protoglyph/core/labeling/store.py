"""Labeling a folder, part 2: the results kept in the project file, so a run resumes.

Each labeled folder is a row of ``batches``; each file below it a row of ``batch_items``,
keyed by its relative path and remembered with its size and modification time. A run first
reads what is stored (:func:`read_batch`), does only the files that are new or changed since,
and saves every chunk as it finishes (:meth:`BatchStore.save`), one transaction each: closing,
cancelling or crashing loses at most the chunks in flight. The person's reviews live in the
same rows; a file that changed is labeled again and its review is dropped.

Embeddings are kept as float16 (1 KB per image for a 512-d encoder): enough for distances,
and half the memory and disk of float32.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from protoglyph.core.labeling.embedding import ChunkResult
from protoglyph.core.labeling.listing import FileEntry
from protoglyph.core.labeling.states import ItemState, Review
from protoglyph.core.project import (
    Project,
    ProjectError,
    checksum,
    connect_for_reading,
    db_text,
    from_db_text,
    intact,
    now,
)

# Results of labeling folders, in the project file since its schema 2. Class and example ids are
# plain integers, not foreign keys, so that undoing a class deletion brings its reviews back.
SCHEMA = """
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,  -- absolute path of the labeled folder
    created TEXT NOT NULL,
    threshold REAL                -- the person's "none of these" distance (NULL: the default)
);
CREATE TABLE batch_items (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    path TEXT NOT NULL,           -- relative to the folder, '/'-separated
    size INTEGER NOT NULL,        -- with mtime_ns: a changed file is labeled again
    mtime_ns INTEGER NOT NULL,
    embedding BLOB,               -- float16, NULL when the file could not be used
    embedding_model TEXT,
    error TEXT,                   -- why the file could not be used
    review TEXT,                  -- NULL, 'confirmed', 'corrected' or 'unknown' (set by a person)
    class_id INTEGER,             -- the person's label
    example_id INTEGER,           -- the example this item taught, if any
    embedding_crc INTEGER,        -- CRC-32 of the embedding, checked on every read
    UNIQUE (batch_id, path)
);
"""


def _create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _add_checksums(db: sqlite3.Connection) -> None:
    # A file migrated from schema 1 got today's tables, which have the column already. Rows from
    # before checksums are taken as they are now: the best that can be known.
    db.create_function("crc32", 1, checksum, deterministic=True)
    if "embedding_crc" not in {r[1] for r in db.execute("PRAGMA table_info(batch_items)")}:
        db.execute("ALTER TABLE batch_items ADD COLUMN embedding_crc INTEGER")
    db.execute("UPDATE batch_items SET embedding_crc = crc32(embedding) WHERE embedding IS NOT NULL")


#: This store's part of upgrading a version-``v`` project file (``project.MIGRATIONS`` runs it,
#: after the project's own part, in the same transaction).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _create_tables, 2: _add_checksums}


@dataclass
class BatchTable:
    """Every file of a labeled folder, in path order, with what is known about it."""

    folder: Path
    paths: list[str]
    sizes: np.ndarray  # (N,) int64 bytes and modification times (ns), as listed
    mtimes: np.ndarray
    embeddings: np.ndarray  # (N, D) float16; zeros where not DONE
    state: np.ndarray  # (N,) int8: an ItemState
    review: np.ndarray  # (N,) int8: a Review (NONE: not reviewed)
    person_class: np.ndarray  # (N,) int64: the person's class id, -1 if none
    example_id: np.ndarray  # (N,) int64: the example the item taught, -1 if none
    errors: dict[int, str] = field(default_factory=dict)
    todo: list[int] = field(default_factory=list)  # PENDING items, to be embedded
    vanished: list[str] = field(default_factory=list)  # stored paths no longer in the folder
    threshold: float | None = None  # the person's "none of these" distance, if set
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def index(self) -> dict[str, int]:
        """``{path: item index}`` (built once: the paths never change)."""
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.paths)}
        return self._index

    @classmethod
    def fresh(cls, folder: Path, entries: Sequence[FileEntry], dim: int) -> BatchTable:
        n = len(entries)
        sizes = np.array([e.size for e in entries], np.int64)
        mtimes = np.array([e.mtime_ns for e in entries], np.int64)
        table = cls(Path(folder), [e.path for e in entries], sizes, mtimes, np.zeros((n, dim), np.float16),
                    np.zeros(n, np.int8), np.zeros(n, np.int8), np.full(n, -1, np.int64), np.full(n, -1, np.int64))
        for i, e in enumerate(entries):
            if e.problem is not None:
                table.state[i] = ItemState.ERROR
                table.errors[i] = e.problem
            else:
                table.todo.append(i)
        return table

    def __len__(self) -> int:
        return len(self.paths)

    def apply(self, result: ChunkResult, keep_embeddings: bool = True) -> None:
        """Take in one finished chunk.

        Reviews are left as they are: a new or changed file has none (:func:`read_batch`
        restores a review only for an unchanged file), and an unchanged file embedded again
        for a new encoder keeps the person's. The command line, which never re-ranks, does not
        keep the embeddings (``keep_embeddings=False``): the untouched rows of the zeroed
        array then never take memory.
        """
        if keep_embeddings:
            self.embeddings[result.indices] = result.embeddings
        self.state[result.indices] = ItemState.DONE
        for i in result.indices:
            self.errors.pop(int(i), None)
        for index, reason in result.errors:
            self.state[index] = ItemState.ERROR
            self.errors[index] = reason


def folder_key(folder: Path) -> str:
    return str(Path(folder).resolve())


def usable_threshold(value: object) -> float | None:
    """A stored "none of these" distance, or ``None`` (the default) if it is not a finite number."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) and value >= 0 else None


def read_batch(project_path: Path | None, folder: Path, entries: Sequence[FileEntry], model_key: str,
               dim: int) -> BatchTable:
    """The folder's listing merged with the results stored in the project (if any).

    Opens its own read-only connection, so it may run on a worker thread while the project is
    open elsewhere. Files whose size, modification time and model match a stored result are
    DONE with the stored data; the rest, and files that could not be used last time (the cause
    may be gone), are PENDING and listed in ``todo``. An
    unchanged file embedded by another model (the app was updated) is PENDING but keeps its
    review: the person's label is about the file, and must not be lost to an update.
    """
    table = BatchTable.fresh(folder, entries, dim)
    if project_path is None:
        return table
    db = connect_for_reading(project_path)
    try:
        row = db.execute("SELECT id, threshold FROM batches WHERE folder = ?",
                         (db_text(folder_key(folder)),)).fetchone()
        if row is None:
            return table
        batch_id, threshold = row
        table.threshold = usable_threshold(threshold)
        index = {p: i for i, p in enumerate(table.paths)}
        todo = set(table.todo)
        cursor = db.execute("SELECT path, size, mtime_ns, embedding, embedding_model, error, review, class_id, "
                            "example_id, embedding_crc FROM batch_items WHERE batch_id = ?", (batch_id,))
        for stored, size, mtime, blob, model, error, review, class_id, example_id, crc in cursor:
            path = from_db_text(stored)
            i = index.get(path)
            if i is None:
                table.vanished.append(path)
                continue
            if i not in todo or table.sizes[i] != size or table.mtimes[i] != mtime:
                continue
            table.review[i] = Review.from_word(review)
            table.person_class[i] = -1 if class_id is None else class_id
            table.example_id[i] = -1 if example_id is None else example_id
            if error is not None:
                continue  # read again: the cause (permissions, a file in use) may be gone
            vector = np.frombuffer(blob, np.float16) if model == model_key and intact(blob, crc) else None
            if vector is None or len(vector) != dim or not np.isfinite(vector).all():
                continue  # another model's, or damaged: embedded again, review kept
            table.state[i] = ItemState.DONE
            table.embeddings[i] = vector
            todo.discard(i)
    except sqlite3.DatabaseError as exc:
        raise ProjectError(project_path, f"the labeling results cannot be read ({exc})") from exc
    finally:
        db.close()
    table.todo = sorted(todo)
    return table


#: The setting naming the labeled folder shown last (a ``batches`` id), shown again on open.
LAST_FOLDER_KEY = "last_labeled_folder"


@dataclass(frozen=True)
class LabeledFolder:
    """A folder whose results are kept in the project."""

    folder: Path
    files: int  # results stored, unusable files included
    reviewed: int


def labeled_folders(project: Project) -> list[LabeledFolder]:
    """The project's labeled folders, the one shown last first, then the newest first."""
    last = project.setting(LAST_FOLDER_KEY)
    rows = project.query("SELECT b.id, b.folder, COUNT(i.id), COUNT(i.review) FROM batches b "
                         "LEFT JOIN batch_items i ON i.batch_id = b.id GROUP BY b.id ORDER BY b.id DESC").fetchall()
    rows.sort(key=lambda r: str(r[0]) != last)  # stable: the rest stay newest first
    return [LabeledFolder(Path(from_db_text(folder)), int(n), int(reviewed)) for _, folder, n, reviewed in rows]


class BatchStore:
    """Writes one folder's results and reviews into an open project."""

    def __init__(self, project: Project, folder: Path) -> None:
        self.project = project
        self.folder = db_text(folder_key(folder))
        row = project.query("SELECT id FROM batches WHERE folder = ?", (self.folder,)).fetchone()
        self._batch_id: int | None = None if row is None else int(row[0])

    def _batch(self, db: sqlite3.Connection) -> int:
        # Another connection (the labeling thread's) may have made the row since we looked.
        if self._batch_id is None:
            db.execute("INSERT OR IGNORE INTO batches (folder, created) VALUES (?, ?)", (self.folder, now()))
            self._batch_id = int(db.execute("SELECT id FROM batches WHERE folder = ?", (self.folder,)).fetchone()[0])
        return self._batch_id

    def save_listing_problems(self, table: BatchTable, model_key: str) -> None:
        """Store what the listing itself found unusable (link loops, folders that can't be read):
        the errors of items that are not to be embedded."""
        todo = set(table.todo)
        problems = [i for i in table.errors if i not in todo]
        if problems:
            self.save(table, problems, model_key)

    def save_chunk(self, table: BatchTable, chunk: ChunkResult, model_key: str) -> None:
        """Store a chunk as it arrives from the workers, before ``table.apply`` (the embeddings
        come from the chunk), so that a thread of its own can do it while the window takes
        the chunk in."""
        rows: list[tuple[object, ...]] = [
            (table.paths[int(i)], int(table.sizes[i]), int(table.mtimes[i]), vector.tobytes(), model_key, None,
             *self._review(table, int(i))) for i, vector in zip(chunk.indices, chunk.embeddings, strict=True)]
        rows += [(table.paths[i], int(table.sizes[i]), int(table.mtimes[i]), None, None, reason,
                  *self._review(table, i)) for i, reason in chunk.errors]
        self._upsert(rows)

    @staticmethod
    def _review(table: BatchTable, i: int) -> tuple[str | None, int | None, int | None]:
        c, e = int(table.person_class[i]), int(table.example_id[i])
        return Review(int(table.review[i])).word, None if c < 0 else c, None if e < 0 else e

    def save(self, table: BatchTable, indices: Sequence[int] | np.ndarray, model_key: str) -> None:
        """Store the results of ``indices`` (DONE or ERROR items of ``table``), with their reviews
        as the table has them: none for a new or changed file, so a stored one is dropped."""
        rows: list[tuple[object, ...]] = []
        for i in map(int, indices):
            path, size, mtime = table.paths[i], int(table.sizes[i]), int(table.mtimes[i])
            if table.state[i] == ItemState.DONE:
                vector = table.embeddings[i].tobytes()
                rows.append((path, size, mtime, vector, model_key, None, *self._review(table, i)))
            else:
                reason = table.errors.get(i, "could not be used")
                rows.append((path, size, mtime, None, None, reason, *self._review(table, i)))
        self._upsert(rows)

    def _upsert(self, rows: Sequence[tuple[object, ...]]) -> None:
        with self.project.transaction() as db:
            batch = self._batch(db)
            db.executemany(
                "INSERT INTO batch_items (batch_id, path, size, mtime_ns, embedding, embedding_model, error, review, "
                "class_id, example_id, embedding_crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (batch_id, path) DO UPDATE "
                "SET size = excluded.size, mtime_ns = excluded.mtime_ns, embedding = excluded.embedding, "
                "embedding_model = excluded.embedding_model, error = excluded.error, review = excluded.review, "
                "class_id = excluded.class_id, example_id = excluded.example_id, "
                "embedding_crc = excluded.embedding_crc",
                [(batch, db_text(str(path)), *rest, checksum(rest[2] if isinstance(rest[2], bytes) else None))
                 for path, *rest in rows])

    def set_reviews(self, paths: Sequence[str], review: Sequence[int] | np.ndarray,
                    class_id: Sequence[int] | np.ndarray, example_id: Sequence[int] | np.ndarray) -> None:
        """Store the person's reviews (``Review.NONE`` clears one; -1 ids mean none)."""
        with self.project.transaction() as db:
            batch = self._batch(db)
            db.executemany(
                "UPDATE batch_items SET review = ?, class_id = ?, example_id = ? WHERE batch_id = ? AND path = ?",
                [(Review(int(r)).word, None if c < 0 else int(c), None if e < 0 else int(e), batch, db_text(p))
                 for p, r, c, e in zip(paths, review, class_id, example_id, strict=True)])

    def mark_shown(self) -> None:
        """Remember this folder as the one to show when the project is opened again."""
        with self.project.transaction() as db:
            batch = self._batch(db)
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value", (LAST_FOLDER_KEY, str(batch)))

    def set_threshold(self, threshold: float | None) -> None:
        if threshold is not None and usable_threshold(threshold) is None:
            raise ValueError(f"a “none of these” distance must be a finite number of at least 0, not {threshold}")
        with self.project.transaction() as db:
            db.execute("UPDATE batches SET threshold = ? WHERE id = ?", (threshold, self._batch(db)))

    def forget(self) -> None:
        """Delete this folder's stored results and reviews."""
        if self._batch_id is None:
            return
        with self.project.transaction() as db:
            db.execute("DELETE FROM batches WHERE id = ?", (self._batch_id,))
        self._batch_id = None
