"""The result tables: CSV (safe to open in a spreadsheet) and JSON, each written atomically."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from protoglyph.core.export import ExportError
from protoglyph.core.labeling.states import EXPORTED_STATUSES
from protoglyph.core.text import FILE_NAME_ERRORS

#: The CSV header; a command-line spec relies on it starting ``path,label,confidence,status``.
CSV_COLUMNS = ("path", "label", "confidence", "status", "reviewed", "reason")
_WINDOWS = os.name == "nt"
#: What makes a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = frozenset("=+-@\t\r")



@dataclass(frozen=True)
class ResultRow:
    """One labeled item; ``path`` is relative to the labeled folder, ``/``-separated."""

    path: str
    label: str | None
    confidence: float | None
    status: str
    reviewed: bool
    reason: str = ""  # why an "error" item could not be used

    def __post_init__(self) -> None:
        if self.status not in EXPORTED_STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(EXPORTED_STATUSES)}")



def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def write_csv(rows: Iterable[ResultRow], out: Path) -> int:
    """Write the rows as UTF-8 CSV with a header (atomically); the number of rows written.

    A path, label or reason starting with ``= + - @``, a tab or a carriage return gets a leading
    ``'``: a spreadsheet would run it as a formula (OWASP's advice on CSV injection; quotes and
    commas inside a cell are quoted by the ``csv`` module); so a path that begins so is the file's
    name with that ``'`` before it. A file name that is not UTF-8 (Linux allows any bytes) is
    written as its own bytes, so that reading the file back with ``errors="surrogateescape"``
    gives the exact name; such a file is then not strictly UTF-8.
    """
    count = 0
    with atomic_text(Path(out), newline="", errors=FILE_NAME_ERRORS) as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            confidence = _finite(row.confidence)
            writer.writerow([_csv_cell(row.path), _csv_cell(row.label or ""),
                             "" if confidence is None else f"{confidence:.4f}",
                             row.status, "yes" if row.reviewed else "no", _csv_cell(row.reason)])
            count += 1
    return count


def _csv_cell(text: str) -> str:
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def write_json(rows: Iterable[ResultRow], out: Path, meta: Mapping[str, object] | None = None) -> int:
    """Write ``{"meta": …, "items": […]}`` (atomically), one item per line so that 100,000 rows
    stream out instead of becoming one huge string; the number of rows written. Text is written
    as it is (JSON holds data, not formulas), except a file name that is not UTF-8: see
    :func:`json_text`."""
    count = 0
    with atomic_text(Path(out)) as f:
        f.write('{"meta": ' + json_text(dict(meta or {})) + ',\n "items": [')
        for row in rows:
            item = {"path": row.path, "label": row.label, "confidence": _finite(row.confidence),
                    "status": row.status, "reviewed": row.reviewed, "reason": row.reason}
            f.write(("\n  " if count == 0 else ",\n  ") + json_text(item))
            count += 1
        f.write("\n ]}\n" if count else "]}\n")
    return count


def json_text(value: object) -> str:
    """``value`` as JSON, non-ASCII letters as they are; but a value holding a file name that is
    not UTF-8 (its bytes are surrogate escapes, U+DC80–U+DCFF) is all ``\\u``-escaped: still valid
    UTF-8 JSON, and ``os.fsencode(json.loads(…))`` gives the name's bytes back."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, allow_nan=False)
    return text


@contextmanager
def atomic_text(out: Path, newline: str | None = None, errors: str = "strict") -> Iterator[IO[str]]:
    """A text file that appears at ``out`` complete or not at all: it is written under a temporary
    name in the same folder, flushed to disk, then renamed over ``out``; on any failure the
    temporary file is removed and an older ``out`` is left as it was. A process killed meanwhile
    can't remove it, so the name carries the writer's pid and the next write of ``out`` removes
    the temporary files of writers that are gone."""
    if out.is_dir():
        raise ExportError(out, "is a folder, not a file")
    if not out.parent.is_dir():
        raise ExportError(out, f"the folder {out.parent} does not exist")
    _remove_stale_parts(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        # os.open (not mkstemp) so the file gets the usual permissions, not owner-only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise ExportError(out, f"cannot be written ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ExportError(out, f"cannot be written ({exc.strerror or exc})") from exc
        raise
    fsync_folder(out.parent)


def _remove_stale_parts(out: Path) -> None:
    """Remove the temporary files that killed writers of ``out`` left: ``.{name}.{pid}-{hex}.part``
    whose process is gone, never this process's (another thread may be writing it) nor a live
    one's. Windows can't be asked safely (``os.kill`` there kills), so there, and for the older
    ``.{name}.{hex}.part`` without a pid, only files untouched for a day go."""
    prefix = f".{out.name}."
    try:
        entries = [e for e in os.scandir(out.parent) if e.name.startswith(prefix) and e.name.endswith(".part")]
    except OSError:
        return  # the write itself will say what is wrong with the folder
    for entry in entries:
        found = re.fullmatch(r"(?:(\d+)-)?[0-9a-f]{8}", entry.name[len(prefix):-len(".part")])
        if found is None:
            continue  # another file's (``a.csv.x``), or not ours at all
        pid = int(found[1]) if found[1] else None
        with suppress(OSError):
            if (_writer_gone(pid) if pid is not None and not _WINDOWS
                    else time.time() - entry.stat(follow_symlinks=False).st_mtime > 86400):
                os.unlink(entry.path)


def _writer_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs (POSIX only: signal 0 asks without sending anything)."""
    if pid <= 0 or pid == os.getpid():  # 0 and -1 would ask whole process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # e.g. another user's process: it runs
    return False


def fsync_folder(folder: Path) -> None:
    """Make a rename durable; not possible (nor needed) on Windows, where opening a folder fails."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
