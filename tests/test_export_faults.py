"""The export under real crashes: a child process runs an export (or an undo) and SIGKILLs itself at
the N-th file-system step, for every N; whatever it leaves must converge when resumed or undone
again: no file lost, none duplicated, no temporary file left, and the undo restores the folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protoglyph.core.export import ExportError
from protoglyph.core.export.folders import JOURNAL, export_folders, export_history, resume_export, undo_export
from protoglyph.core.export.tables import ResultRow, write_csv

needs_kill = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs POSIX processes and signals")

# The child process imports the export once, then forks one process per case: each counts every
# call of the functions below as one step and SIGKILLs itself at its step KILL_AT (0: never; it then
# prints how many steps it took). ``copyfileobj`` is a step too: killed there, half the bytes are in
# the partial copy. The child prints each case's exit status (-9: killed) as a JSON list.
CHILD = r"""
import json, os, shutil, signal, sys, traceback
from pathlib import Path
from protoglyph.core.export import folders as export

action, cases = sys.argv[1], json.loads(sys.argv[2])
kill_at = steps = 0

def step():
    global steps
    steps += 1
    return steps == kill_at

def hooked(real):
    def call(*args, **kwargs):
        if step():
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call

for name in ("link", "unlink", "rename", "replace", "fsync", "utime", "rmdir", "mkdir"):
    setattr(os, name, hooked(getattr(os, name)))
export._write_line = hooked(export._write_line)
real_copy = shutil.copyfileobj

def copy(reader, writer, length=0):
    if step():
        data = reader.read()
        writer.write(data[: len(data) // 2])
        writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_copy(reader, writer, length)

shutil.copyfileobj = copy

def run(src, dest):
    items = [(p, "even" if i % 2 == 0 else "odd") for i, p in enumerate(sorted(src.iterdir()))]
    if action == "undo":
        export.undo_export(dest)
    else:
        export.export_folders(items, dest, move=action == "move")

codes = []
for kill_at, src, dest in cases:
    pid = os.fork()
    if pid == 0:
        try:
            run(Path(src), Path(dest))
            print(steps, flush=True)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(codes))
"""

FILES = 4


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than ``tmp_path`` (a tmpfs), removed afterwards."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no writable /dev/shm to serve as a second file system")
    if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same file system as the test folder")
    folder = shm / f"protoglyph-test-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


Case = tuple[Path, Path, dict[str, tuple[bytes, int]]]  # the sources, the destination, what the sources were


def run_children(action: str, cases: list[tuple[int, Path, Path]]) -> tuple[list[int], str]:
    """Run ``action`` once per ``(kill at step, sources, destination)``, each in its own process;
    their exit statuses, and what they printed."""
    done = subprocess.run([sys.executable, "-c", CHILD, action, json.dumps([(n, str(a), str(b)) for n, a, b in cases])],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    *printed, codes = done.stdout.splitlines()
    return json.loads(codes), "\n".join(printed) + done.stderr


def kill_at_every_step(tmp_path: Path, other_fs: Path, action: str, steps: int,
                       prepare: Callable[[Path, Path], None] = lambda src, dest: None) -> list[Case]:
    """For each step N, fresh sources and destination, prepared, then ``action`` killed at step N."""
    cases = []
    for kill_at in range(1, steps + 1):
        src, dest = tmp_path / f"k{kill_at}" / "in", other_fs / f"k{kill_at}"
        made = make_sources(src)
        prepare(src, dest)
        cases.append((src, dest, made))
    codes, printed = run_children(action, [(n, src, dest) for n, (src, dest, _) in enumerate(cases, 1)])
    assert codes == [-signal.SIGKILL] * steps, printed
    return cases


def make_sources(folder: Path) -> dict[str, tuple[bytes, int]]:
    """FILES images of distinct sizes and contents, each with its own modification time."""
    folder.mkdir(parents=True)
    made = {}
    for i in range(FILES):
        path = folder / f"img{i}.png"
        path.write_bytes(f"image {i} ".encode() * (1000 * (i + 1)))
        os.utime(path, ns=(1_600_000_000_000_000_000 + i, 1_600_000_000_123_456_789 + i * 1_000_000_007))
        made[path.name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return made


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def leftovers(*folders: Path) -> list[Path]:
    """Temporary files of an export anywhere below the folders: partial copies and ``.part`` files."""
    return [p for f in folders for p in f.rglob(".*") if p.name.startswith(".protoglyph-partial-")
            or p.name.endswith(".part")]


def exported_files(dest: Path) -> Counter[bytes]:
    return Counter(p.read_bytes() for p in dest.rglob("*") if p.is_file() and not p.name.startswith("."))


def assert_each_file_once(src: Path, dest: Path, made: dict[str, tuple[bytes, int]], move: bool) -> None:
    """Every original's bytes exist exactly once in the export (and, for a copy, once in the source
    folder too); no other file appeared; nothing temporary is left."""
    exported, in_source = exported_files(dest), Counter(p.read_bytes() for p in src.iterdir())
    for data, _ in made.values():
        assert exported[data] == 1
        assert in_source[data] == (0 if move else 1)
    assert sum(exported.values()) == len(made) and sum(in_source.values()) == (0 if move else len(made))
    assert leftovers(src, dest) == []


def assert_each_file_once_somewhere(src: Path, dest: Path, made: dict[str, tuple[bytes, int]]) -> None:
    """Every original's bytes exist exactly once, in the source folder or in the export; nothing
    else, nothing temporary."""
    everywhere = exported_files(dest) + Counter(p.read_bytes() for p in src.iterdir())
    assert everywhere == Counter(data for data, _ in made.values())
    assert leftovers(src, dest) == []


def assert_restored(src: Path, dest: Path, made: dict[str, tuple[bytes, int]]) -> None:
    assert snapshot(src) == made
    assert leftovers(src, dest) == []
    assert not dest.exists() or os.listdir(dest) == []  # its folders and journal are gone too


def finish(src: Path, dest: Path, move: bool) -> None:
    """What the person does after a crash: resume the export, or start it again if it never began."""
    if (dest / JOURNAL).exists():
        resume_export(dest)
    elif not export_history(dest):
        items = [(p, "even" if i % 2 == 0 else "odd") for i, p in enumerate(sorted(src.iterdir()))]
        export_folders(items, dest, move=move)


def undo_until_done(dest: Path) -> None:
    """Undo again after a crashed undo: while a journal is left (a crash after the last one went,
    the undo was complete)."""
    if (dest / JOURNAL).exists() or export_history(dest):
        assert undo_export(dest).skipped == []


def count_steps(tmp_path: Path, other_fs: Path, action: str,
                prepare: Callable[[Path, Path], None] = lambda src, dest: None) -> int:
    """How many steps ``action`` takes when it is not killed."""
    src, dest = tmp_path / "count" / "in", other_fs / "count"
    made = make_sources(src)
    prepare(src, dest)
    codes, printed = run_children(action, [(0, src, dest)])
    assert codes == [0], printed
    if action == "undo":
        assert_restored(src, dest, made)
    return int(printed.split()[0])


@needs_kill
@pytest.mark.parametrize("then", ["resume", "undo"])
@pytest.mark.parametrize("mode", ["move", "copy"])
def test_export_killed_at_every_step_converges(tmp_path: Path, other_fs: Path, mode: str, then: str) -> None:
    move = mode == "move"
    steps = count_steps(tmp_path, other_fs, mode)
    assert steps > 10 * FILES  # every file's copy, placing and unlinking is a step
    survived = 0
    for src, dest, made in kill_at_every_step(tmp_path, other_fs, mode, steps):
        if then == "resume":
            finish(src, dest, move)
            assert_each_file_once(src, dest, made, move)
        try:
            assert undo_export(dest).skipped == []
        except ExportError:  # killed before the plan was on disk: nothing had been touched
            assert then == "undo" and snapshot(src) == made
            finish(src, dest, move)  # a new export clears the half-written plan it left
            undo_export(dest)
        assert_restored(src, dest, made)
        survived += 1
    print(f"{mode} export killed then {then}: {steps} kill points tried, {survived} survived")
    assert survived == steps


def export_move(src: Path, dest: Path, *, stop_after: int | None = None) -> None:
    items = [(p, "even" if i % 2 == 0 else "odd") for i, p in enumerate(sorted(src.iterdir()))]
    calls = iter(range(10**9))
    export_folders(items, dest, move=True,
                   should_stop=None if stop_after is None else lambda: next(calls) >= stop_after)


@needs_kill
@pytest.mark.parametrize(("export", "then"), [("finished", "undo"), ("interrupted", "undo"),
                                              ("interrupted", "resume")])
def test_undo_of_a_move_killed_at_every_step_converges(tmp_path: Path, other_fs: Path, export: str,
                                                       then: str) -> None:
    """The undo killed; then the undo is run again, or (an interrupted export's) the export resumed."""
    def prepare(src: Path, dest: Path) -> None:
        export_move(src, dest, stop_after=None if export == "finished" else FILES // 2)

    steps = count_steps(tmp_path, other_fs, "undo", prepare)
    assert steps > 4 * FILES
    survived = 0
    for src, dest, made in kill_at_every_step(tmp_path, other_fs, "undo", steps, prepare):
        if then == "resume" and (dest / JOURNAL).exists():
            resume_export(dest)
            assert_each_file_once_somewhere(src, dest, made)  # a file the undo put back stays put back
        undo_until_done(dest)
        assert_restored(src, dest, made)
        survived += 1
    print(f"undo of the {export} move killed then {then}: {steps} kill points tried, {survived} survived")
    assert survived == steps


# -- the hidden .part file of a killed table write ----------------------------------------------------
WRITER = r"""
import os, signal, sys
from pathlib import Path
from protoglyph.core.export.tables import ResultRow, write_csv

def rows():
    for i in range(10_000):
        if i == 5_000:
            os.kill(os.getpid(), signal.SIGKILL)
        yield ResultRow(f"img{i}.png", "a", 0.5, "predicted", False)

write_csv(rows(), Path(sys.argv[1]))
"""


@needs_kill
def test_a_killed_table_write_leaves_a_part_the_next_write_removes(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    out.write_text("old", "utf-8")
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(out)])
    assert child.wait(timeout=60) == -signal.SIGKILL
    parts = [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    assert len(parts) == 1 and parts[0].startswith(f".labels.csv.{child.pid}-")  # who wrote it
    assert (tmp_path / parts[0]).stat().st_size > 0 and out.read_text("utf-8") == "old"
    live = tmp_path / f".labels.csv.{os.getppid()}-0123abcd.part"  # a writer that is still running
    live.write_text("being written")
    other = tmp_path / f".other.csv.{child.pid}-0123abcd.part"  # another file's: not this write's business
    other.write_text("x")
    assert write_csv([ResultRow("a.png", "a", 0.5, "predicted", False)], out) == 1
    assert sorted(os.listdir(tmp_path)) == sorted(["labels.csv", live.name, other.name])
    assert out.read_text("utf-8").splitlines()[1].startswith("a.png,a,")


def test_without_asking_processes_only_day_old_parts_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Windows ``os.kill`` would kill the writer, so it is never called: there (and for parts of
    older versions, which carry no pid) a part goes only when untouched for a day."""
    from protoglyph.core.export import tables as export

    def no_kill(*args: object) -> None:
        raise AssertionError("os.kill must not be called")

    out = tmp_path / "labels.csv"
    day_old = 1_000_000_000 * (int(time.time()) - 2 * 86400)
    fresh = [tmp_path / f".labels.csv.{os.getppid()}-0123abcd.part", tmp_path / ".labels.csv.89abcdef.part"]
    old = [tmp_path / ".labels.csv.999999999-0123abcd.part", tmp_path / ".labels.csv.fedcba98.part"]
    for part in [*fresh, *old]:
        part.write_text("x")
    for part in old:
        os.utime(part, ns=(day_old, day_old))
    monkeypatch.setattr(export, "_WINDOWS", True)
    monkeypatch.setattr(os, "kill", no_kill)
    write_csv([ResultRow("a.png", "a", 0.5, "predicted", False)], out)
    assert sorted(os.listdir(tmp_path)) == sorted(["labels.csv", *(p.name for p in fresh)])
    monkeypatch.undo()
    write_csv([], out)  # on POSIX the old-style part without a pid still waits for its day
    assert sorted(os.listdir(tmp_path)) == sorted(["labels.csv", *(p.name for p in fresh)])
