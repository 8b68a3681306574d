"""The folder-per-class export: copy or move, journaled so that it resumes and undoes, newest first."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import stat
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from protoglyph.core.export import ExportError
from protoglyph.core.export.names import class_folders, safe_folder_name, unique_name
from protoglyph.core.export.tables import atomic_text, json_text

#: The journal of an export in progress (or interrupted). A finished export's journal is kept as
#: ``.protoglyph-export.finished.NNNN.jsonl`` (numbered in order) so that each can be undone in turn;
#: ``FINISHED_JOURNAL`` is where versions before the numbering kept the only one: the oldest.
JOURNAL = ".protoglyph-export.jsonl"
FINISHED_JOURNAL = ".protoglyph-export.finished.jsonl"
_FINISHED_NUMBERED = re.compile(r"\.protoglyph-export\.finished\.(\d+)\.jsonl")
JOURNAL_VERSION = 1
#: A file modification time that FAT keeps to 2 s (exFAT to 10 ms): a copy's may differ that much.
_MTIME_SLACK_NS = 2_000_000_000


@dataclass
class ExportReport:
    """What an export (all its runs together), or an undo, did and what it had to leave.

    ``skipped`` names the source file for an export, the exported file for an undo.
    """

    done: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    stopped: bool = False



@dataclass(frozen=True)
class _Op:
    index: int
    source: Path  # absolute
    target: str  # "<class folder>/<file name>", relative to the destination
    size: int | None  # of the source when planned


@dataclass
class _Journal:
    path: Path
    move: bool
    ops: list[_Op]
    new_folders: list[str]  # class folders this export created (undo removes them when empty)
    done: set[int] = field(default_factory=set)
    skipped: dict[int, str] = field(default_factory=dict)


class _SourceProblem(Exception):
    """The file being copied or moved can't be used; the export skips it and goes on."""


Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def export_folders(items: Sequence[tuple[Path, str | None]], dest: Path, *, move: bool = False,
                   progress: Progress | None = None, should_stop: ShouldStop | None = None) -> ExportReport:
    """Copy (or move) each ``(file, class name)`` into ``dest/<class folder>/``, journaled; the
    class name ``None`` (none of these) goes to ``unknown`` (see :func:`class_folders`).

    Raises:
        ExportError: ``dest`` can't be written, holds an interrupted export, or has a class
            folder that is a link or a file (never written through).
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(dest, f"cannot be created ({exc.strerror or exc})") from exc
    root = dest.resolve()
    if (root / JOURNAL).exists():
        raise ExportError(root, f"an earlier export into this folder was interrupted ({pending_export(root)} "
                                "files left): resume it or discard it first")
    folders = class_folders(name for _, name in items)
    taken: dict[str, set[str]] = {}
    ops: list[_Op] = []
    for index, (source, name) in enumerate(items):
        folder = folders[name]
        if folder not in taken:
            path = _class_folder(root, folder)
            taken[folder] = _names_in(path)
        file_name = unique_name(safe_folder_name(Path(source).name), taken[folder], is_file=True)
        size = _regular_size(Path(source), follow_symlinks=True)
        ops.append(_Op(index, Path(os.path.abspath(source)), f"{folder}/{file_name}", size))
    new = [f for f in dict.fromkeys(folders.values()) if not (root / f).is_dir()]
    journal = _Journal(root / JOURNAL, move, ops, new)
    with atomic_text(journal.path) as f:  # the whole plan is on disk before any file moves
        f.write(json_text({"protoglyph_export": JOURNAL_VERSION, "mode": "move" if move else "copy",
                            "created": datetime.now(UTC).isoformat(timespec="seconds"),
                            "ops": len(ops), "new_folders": new}) + "\n")
        for op in ops:
            f.write(json_text({"op": op.index, "source": str(op.source), "target": op.target, "size": op.size})
                    + "\n")
    return _run(root, journal, progress, should_stop)


def resume_export(dest: Path, *, progress: Progress | None = None,
                  should_stop: ShouldStop | None = None) -> ExportReport:
    """Finish an interrupted export; the report covers all its runs."""
    root = Path(dest).resolve()
    if not (root / JOURNAL).exists():
        raise ExportError(root, "there is no interrupted export to resume here")
    return _run(root, _read_journal(root / JOURNAL), progress, should_stop)


def pending_export(dest: Path) -> int:
    """How many operations an interrupted export into ``dest`` still has (0 if there is none)."""
    path = Path(dest) / JOURNAL
    if not path.exists():
        return 0
    journal = _read_journal(path)
    return len(journal.ops) - len(journal.done) - len(journal.skipped)


def discard_export(dest: Path) -> None:
    """Forget an interrupted export: its journal and half-copied temporary files go, exported files stay."""
    path = Path(dest).resolve() / JOURNAL
    if path.exists():
        with suppress(ExportError):
            journal = _read_journal(path)
            for op in journal.ops:
                with suppress(ExportError):
                    _remove_partials(path.parent, op, journal.move)
        path.unlink()


def export_history(dest: Path) -> list[Path]:
    """The journals of the finished exports into ``dest``, oldest first (the unnumbered journal of
    an older version first of all)."""
    root = Path(dest)
    numbered: list[tuple[int, Path]] = []
    with suppress(OSError):
        for name in os.listdir(root):
            found = _FINISHED_NUMBERED.fullmatch(name)
            if found:
                numbered.append((int(found[1]), root / name))
    legacy = [root / FINISHED_JOURNAL] if (root / FINISHED_JOURNAL).is_file() else []
    return legacy + [path for _, path in sorted(numbered)]


def can_undo_export(dest: Path) -> bool:
    """Whether :func:`undo_export` has an export to undo in ``dest`` (an interrupted or a finished one)."""
    return (Path(dest) / JOURNAL).is_file() or bool(export_history(dest))


def _next_finished_journal(root: Path) -> Path:
    numbers = [int(m[1]) for p in export_history(root) if (m := _FINISHED_NUMBERED.fullmatch(p.name))]
    return root / f".protoglyph-export.finished.{max(numbers, default=0) + 1:04d}.jsonl"


def undo_export(dest: Path) -> ExportReport:
    """Undo the interrupted export into ``dest`` if there is one, else the newest finished one:
    put moved files back, remove copies (unless changed since), then the empty class folders the
    export created and its journal, so that the next undo undoes the export before. Safe to run
    again after an interruption; the journal is kept while some file could not be undone, so the
    undo can be retried once that is fixed."""
    root = Path(dest).resolve()
    history = export_history(root)
    path = root / JOURNAL if (root / JOURNAL).exists() else history[-1] if history else None
    if path is None:
        raise ExportError(root, "there is no export to undo here")
    journal = _read_journal(path)
    report = ExportReport()
    for op in journal.ops:
        if op.index not in journal.skipped:
            problem = _undo_one(root, op, journal.move, op.index in journal.done)
            if problem is None:
                report.done += 1
            elif problem:
                report.skipped.append((root / op.target, problem))
    for folder in journal.new_folders:
        with suppress(OSError):
            (root / folder).rmdir()  # only if empty: files put there since are kept
    if not report.skipped:
        path.unlink()
    return report


def _run(root: Path, journal: _Journal, progress: Progress | None, should_stop: ShouldStop | None) -> ExportReport:
    """Carry out the journal's unfinished operations, recording each as it completes."""
    report = ExportReport(len(journal.done), [(journal.ops[i].source, r) for i, r in journal.skipped.items()])
    with open(journal.path, "r+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")  # a line cut short by a crash must not swallow the next one
        for op in journal.ops:
            if op.index in journal.done and journal.move:
                _settle_moved(root, op)
            if op.index in journal.done or op.index in journal.skipped:
                continue
            if should_stop is not None and should_stop():
                report.stopped = True
                return report
            reason = _apply(root, op, journal.move)
            if reason is None:
                _write_line(f, {"done": op.index})
                report.done += 1
            else:
                _write_line(f, {"skipped": op.index, "reason": reason})
                report.skipped.append((op.source, reason))
            if progress is not None:
                progress(report.done + len(report.skipped), len(journal.ops))
        _write_line(f, {"finished": datetime.now(UTC).isoformat(timespec="seconds")})
    os.replace(journal.path, _next_finished_journal(root))
    return report


def _write_line(f: IO[bytes], record: dict[str, Any]) -> None:
    """Append one journal line and force it to disk: after a crash, a line present means done."""
    f.write(json_text(record).encode("utf-8") + b"\n")
    f.flush()
    os.fsync(f.fileno())


def _apply(root: Path, op: _Op, move: bool) -> str | None:
    """Do one operation; ``None`` when the file is in place, else why it was skipped."""
    target = _target(root, op.target)
    partial = target.parent / _partial_name(op.index)
    _remove_partials(root, op, move)
    if os.path.lexists(target):
        if not _placed(op, target, move):
            return f"the name {op.target} is taken"
        if move and os.path.lexists(op.source):
            os.unlink(op.source)  # the crash came between placing (a link or a copy) and unlinking
        return None  # placed by an earlier run that died before journaling it
    if not op.source.is_file():
        return "the file is missing (or is not a file)"
    try:
        target.parent.mkdir(exist_ok=True)
        if move:
            _move(op.source, target, partial)
        else:
            _copy(op.source, target, partial)
    except _SourceProblem as exc:
        return str(exc)
    except FileExistsError:
        return f"the name {op.target} is taken"
    except OSError as exc:
        raise ExportError(target, f"cannot be written ({exc.strerror or exc}); resume the export when fixed") from exc
    return None


def _settle_moved(root: Path, op: _Op) -> None:
    """A moved file that an undo killed midway left half-copied back, or in both places: resuming
    the export finishes the move again (an undo that finished with a file leaves it put back)."""
    _remove_partials(root, op, move=True)
    target = _target(root, op.target)
    if os.path.lexists(op.source) and os.path.lexists(target) and (
            os.path.samefile(op.source, target) or _own_copy(op.source, target)):
        os.unlink(op.source)


def _undo_one(root: Path, op: _Op, move: bool, journaled: bool) -> str | None:
    """Undo one operation: ``None`` if undone now, ``""`` if there was nothing to undo, else why not."""
    target = _target(root, op.target)
    _remove_partials(root, op, move)
    size = _regular_size(target)
    source_there = os.path.lexists(op.source)
    if size is None:
        lost = journaled and move and not source_there
        return "the file is no longer in the export folder" if lost else ""
    try:
        if move and source_there:
            if os.path.samefile(op.source, target) or _own_copy(op.source, target):
                os.unlink(target)  # the original is in place: the exported one is a second name or copy
                return None
            return f"its original place {op.source} is taken" if journaled else ""
        if not journaled and size != op.size:
            return ""  # never placed by this export: someone else's file
        if move:
            op.source.parent.mkdir(parents=True, exist_ok=True)
            _move(target, op.source, op.source.parent / _partial_name(op.index))
            return None
        if not source_there:
            return "the original is gone, so this copy is kept"
        if size != op.size or not filecmp.cmp(op.source, target, shallow=False):
            return "the copy was changed since the export, so it is kept"
        os.unlink(target)
        return None
    except _SourceProblem as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot be undone ({exc.strerror or exc})"


def _placed(op: _Op, target: Path, move: bool) -> bool:
    """Whether ``target`` is this operation's own result (a run died before journaling it)."""
    if move and os.path.lexists(op.source):
        return os.path.samefile(op.source, target) or _own_copy(op.source, target)
    if _regular_size(target) != op.size:
        return False
    return move or not os.path.lexists(op.source) or filecmp.cmp(op.source, target, shallow=False)


def _own_copy(source: Path, target: Path) -> bool:
    """Whether ``target`` is the copy a move across file systems made of ``source`` before it died
    (or an undo's copy back, the other way round): a regular file of the same size, the
    modification time :func:`_copy_to_temp` gives it, and the same bytes. Either of the two can
    then go without losing anything."""
    try:
        a, b = os.stat(source, follow_symlinks=False), os.stat(target, follow_symlinks=False)
    except OSError:
        return False
    if not (stat.S_ISREG(a.st_mode) and stat.S_ISREG(b.st_mode)) or a.st_size != b.st_size:
        return False
    if abs(a.st_mtime_ns - b.st_mtime_ns) > _MTIME_SLACK_NS:
        return False
    return filecmp.cmp(source, target, shallow=False)


def _copy(src: Path, target: Path, partial: Path) -> None:
    try:
        _copy_to_temp(src, partial)
        _place(partial, target)
    finally:
        _remove_quietly(partial)


def _move(src: Path, target: Path, partial: Path) -> None:
    """A hard link then an unlink on one file system; a copy then an unlink across file systems."""
    try:
        os.link(src, target)
    except FileExistsError:
        raise
    except OSError:
        _copy(src, target, partial)
    try:
        os.unlink(src)
    except OSError as exc:
        os.unlink(target)  # all or nothing: the file stays where it was
        raise _SourceProblem(f"cannot be moved away ({exc.strerror or exc})") from exc


def _copy_to_temp(src: Path, partial: Path) -> None:
    """Copy the bytes and the modification time, and flush them to disk."""
    try:
        reader = open(src, "rb")  # noqa: SIM115 -- closed by the with below
    except OSError as exc:
        raise _SourceProblem(f"cannot be read ({exc.strerror or exc})") from exc
    with reader, open(partial, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    st = os.stat(src)
    os.utime(partial, ns=(st.st_atime_ns, st.st_mtime_ns))


def _place(partial: Path, target: Path) -> None:
    """Give ``partial`` the name ``target`` without ever replacing a file: a hard link fails when
    the name is taken, where ``os.rename`` would silently overwrite. Without hard links (FAT, some
    network shares) a checked rename is the fallback, with a tiny window for a race."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(target):
            raise FileExistsError(17, "the name is taken", str(target)) from None
        os.rename(partial, target)
        return
    os.unlink(partial)


def _class_folder(root: Path, folder: str) -> Path:
    """``root/folder``, refused when it is a link, junction or file: writing through it could
    land outside the destination."""
    path = root / folder
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir() or path.resolve() != path):
        raise ExportError(path, "is a link or a file, not a folder; the export only writes into real folders")
    return path


def _target(root: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if len(parts) != 2 or any(p in (".", "..") or "\\" in p for p in parts):
        raise ExportError(root / JOURNAL, f"the journal names {relative!r}, which is not inside the export")
    return _class_folder(root, parts[0]) / parts[1]


def _partial_name(index: int) -> str:
    return f".protoglyph-partial-{index}"


def _names_in(folder: Path) -> set[str]:
    """The names in ``folder``, NFC and case-folded as :func:`unique_name` compares them."""
    try:
        return {unicodedata.normalize("NFC", n).casefold() for n in os.listdir(folder)} if folder.is_dir() else set()
    except OSError as exc:
        raise ExportError(folder, f"cannot be read ({exc.strerror or exc})") from exc


def _regular_size(path: Path, *, follow_symlinks: bool = False) -> int | None:
    """The size of a regular file (a link is one only when followed), else ``None``."""
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _remove_quietly(path: Path) -> None:
    with suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(path)


def _remove_partials(root: Path, op: _Op, move: bool) -> None:
    """Remove the half-made copies of ``op`` a killed run left: an export's in the class folder, and
    for a move, an undo's beside the original. A copy never writes beside the original (which may
    be on a read-only disk, where even removing a name that is not there fails)."""
    _remove_quietly(_target(root, op.target).parent / _partial_name(op.index))
    if move:
        with suppress(OSError):
            _remove_quietly(op.source.parent / _partial_name(op.index))


def _read_journal(path: Path) -> _Journal:
    """The plan and progress recorded in a journal; a last line cut short by a crash is ignored."""
    try:
        lines = path.read_text("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(path, f"the export journal cannot be read ({exc})") from exc
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            if line.strip():
                records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ExportError(path, f"the export journal is damaged (line {number})") from None
    try:
        head = records[0]
        if head.get("protoglyph_export") != JOURNAL_VERSION:
            raise ExportError(path, "is not an export journal this version of Protoglyph can read")
        count = int(head["ops"])
        ops = [_Op(int(r["op"]), Path(r["source"]), str(r["target"]), r["size"]) for r in records[1:count + 1]]
        journal = _Journal(path, head["mode"] == "move", ops, [str(f) for f in head["new_folders"]])
        for r in records[count + 1:]:
            if "done" in r:
                journal.done.add(int(r["done"]))
            elif "skipped" in r:
                journal.skipped[int(r["skipped"])] = str(r["reason"])
    except (IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExportError(path, f"the export journal is damaged ({exc!r})") from exc
    if [op.index for op in ops] != list(range(count)):
        raise ExportError(path, "the export journal is damaged (its plan is incomplete)")
    return journal
