"""Fault injection: Protoglyph killed at the worst instant, and the state it leaves.

Each test kills a real child process (SIGKILL, no clean-up of any kind) at a chosen point, or
at random points, and then checks what a person would: the project opens, with every change
that was committed before the kill; nothing is lost or half-done; no process is left behind.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from protoglyph.core.labeling.listing import list_folder
from protoglyph.core.labeling.store import read_batch
from protoglyph.core.project import Project, ProjectError, inspect
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project, open_starter_project

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kills child processes with POSIX signals")

REPO = Path(__file__).resolve().parent.parent


def child(code: str, *args: str) -> subprocess.Popen[bytes]:
    """A Python child running ``code`` (with ``sys.argv[1:] == args``)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def make_project(path: Path, classes: int = 3) -> None:
    project = Project.create(path)
    for c in range(classes):
        project.add_class(f"class {c}", "#000000")
    project.close()


# -- a crash inside a commit -------------------------------------------------------------------
# The child adds examples one transaction each and prints each committed id; with a tiny page
# cache SQLite writes pages into the file before COMMIT, so a kill leaves a hot journal.
WRITER = """
    import os, signal, sys
    import cv2, numpy as np
    from protoglyph.core.project import ExampleRecord, Project
    project = Project.open(sys.argv[1])
    project._db.execute("PRAGMA cache_size = 2")
    kill_in = int(sys.argv[2])
    cid = project.classes()[0].id
    for n in range(10_000):
        with project.transaction():
            noise = np.random.default_rng(n).integers(0, 256, (120, 120), dtype=np.uint8)
            big = cv2.imencode(".png", noise)[1].tobytes()  # a real image, of about 15 kB
            record = ExampleRecord(0, cid, 0, big, f"example {n}", None, "t", None, None)
            added = project.add_examples(cid, [record])
            if n == kill_in:
                os.kill(os.getpid(), signal.SIGKILL)  # inside the transaction, pages already written
        print(added[0].id, flush=True)
"""


def committed(proc: subprocess.Popen[bytes]) -> list[int]:
    out, _ = proc.communicate(timeout=60)
    return [int(x) for x in out.split()]


def test_a_kill_inside_a_commit_leaves_a_project_that_opens_everywhere(tmp_path: Path, encoder: object) -> None:
    path = tmp_path / "p.protoglyph"
    make_project(path)
    proc = child(WRITER, str(path), "3")
    ids = committed(proc)
    assert proc.returncode == -signal.SIGKILL and len(ids) == 3
    journal = path.with_name(path.name + "-journal")
    assert journal.exists() and journal.stat().st_size > 0  # the state that broke read-only opens
    # Every reader: inspect (the window's and the command's first look), the labeling results
    # reader, then a normal open; each sees exactly the committed examples.
    assert inspect(path) == 3
    folder = tmp_path / "empty"
    folder.mkdir()
    assert read_batch(path, folder, list_folder(folder), "m", 8).todo == []
    project = Project.open(path)
    try:
        assert [e.id for e in project.examples()] == ids
        assert [r[0] for r in project.query("PRAGMA integrity_check")] == ["ok"]
    finally:
        project.close()


def test_random_kills_while_committing_lose_no_committed_change(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "p.protoglyph"
    make_project(path)
    kills = survived = 0
    expected: list[int] = []
    for _ in range(12):
        proc = child(WRITER, str(path), "-1")
        time.sleep(float(rng.uniform(0.4, 1.2)))  # the child spends most of its time inside commits
        proc.send_signal(signal.SIGKILL)
        ids = committed(proc)
        kills += 1
        inspect(path)  # opens (recovering the journal if the kill left one)
        project = Project.open(path)
        stored = [e.id for e in project.examples()]
        project.close()
        # Every acknowledged commit is there; at most one more (killed after COMMIT, before print).
        assert stored[: len(expected) + len(ids)] == expected + ids
        assert len(stored) - len(expected) - len(ids) in (0, 1)
        expected = stored
        survived += 1
    print(f"\nkills during commits: {kills} tried, {survived} survived")
    assert survived == kills


def test_a_read_only_copy_with_a_hot_journal_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "p.protoglyph"
    make_project(path)
    assert committed(child(WRITER, str(path), "1")) == [1]
    folder = tmp_path
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        with pytest.raises(ProjectError, match=r"interrupted while saving.*writable"):
            inspect(path)
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


# -- the starter project -------------------------------------------------------------------------
def test_a_starter_killed_in_a_commit_opens_and_a_damaged_one_is_kept_never_overwritten(
        tmp_path: Path, encoder: object) -> None:
    path = tmp_path / "Starter project.protoglyph"
    create_starter_project(path, encoder).project.close()  # type: ignore[arg-type]
    proc = child(WRITER, str(path), "2")
    mine = committed(proc)
    assert path.with_name(path.name + "-journal").exists()
    # 1. the interrupted starter opens, with the examples the person added before the crash
    ws = open_starter_project(path, encoder)  # type: ignore[arg-type]
    ids = {e.id for e in ws.project.examples()}
    assert set(mine) <= ids and ws.problems == []
    ws.project.close()
    # 2. a starter that really is damaged is set aside with its journal, and a new one made
    for attempt in (1, 2):
        path.write_bytes(os.urandom(4000))  # refused before SQLite reads it, so the journal stays as it is
        path.with_name(path.name + "-journal").write_bytes(f"journal {attempt}".encode())
        ws = open_starter_project(path, encoder)  # type: ignore[arg-type]
        assert "kept as" in ws.problems[0] and ws.classifier.classes
        ws.project.close()
    first, second = path.with_name(path.name + ".damaged"), path.with_name(path.name + ".damaged-2")
    assert first.exists() and second.exists()  # the second start did not overwrite the first copy
    assert first.with_name(first.name + "-journal").read_bytes() == b"journal 1"
    assert second.with_name(second.name + "-journal").read_bytes() == b"journal 2"


def test_an_orphaned_journal_never_replays_into_a_new_project(tmp_path: Path) -> None:
    path = tmp_path / "new.protoglyph"
    path.with_name(path.name + "-journal").write_bytes(b"left over")
    with pytest.raises(ProjectError, match="in the way"):
        Project.create(path)
    assert path.with_name(path.name + "-journal").read_bytes() == b"left over"


# -- worker processes --------------------------------------------------------------------------
def _children_of(pid: int) -> set[int]:
    """Every living descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has installed a handler for ``sig`` (its ``SigCgt`` mask in /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def big_folder(tmp_path: Path) -> tuple[Path, Path]:
    """4,000 small drawings (enough for worker processes and a few seconds of work), and examples."""
    folder, examples = tmp_path / "scans", tmp_path / "examples"
    folder.mkdir()
    ring = cv2.imencode(".png", draw_shape("ring", np.random.default_rng(1), size=64))[1].tobytes()
    for k in range(4000):
        (folder / f"{k:05d}.png").write_bytes(ring)
    for shape in ("ring", "cross"):
        (examples / shape).mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(examples / shape / f"{k}.png"), draw_shape(shape, np.random.default_rng(k), size=64))
    return folder, examples


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_worker_processes_end_with_a_killed_command(big_folder: tuple[Path, Path], tmp_path: Path,
                                                    how: signal.Signals) -> None:
    folder, examples = big_folder
    proc = subprocess.Popen([sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples),
                             "--out", str(tmp_path / "out.csv"), "--jobs", "2"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children_of(proc.pid)
        if len(workers) >= 3:  # two workers and the resource tracker
            break
        time.sleep(0.05)
    assert proc.poll() is None and len(workers) >= 2, "the command ended before its workers could be seen"
    proc.send_signal(how)
    # The caller reading the command's output must not hang: every holder of the pipes is gone.
    _, err = proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)], f"left running: {[p for p in workers if _alive(p)]}"
    if how == signal.SIGTERM:
        assert proc.returncode == 143 and b"stopped" in err
    else:
        assert proc.returncode == -signal.SIGKILL


def test_sigterm_stops_labeling_in_this_process_too(big_folder: tuple[Path, Path], tmp_path: Path) -> None:
    """With ``--jobs 1`` files are read in the command's own process, inside ``except Exception``
    handlers that must not take SIGTERM for a file's error."""
    folder, examples = big_folder
    project = tmp_path / "p.protoglyph"
    proc = subprocess.Popen([sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples),
                             "--out", str(tmp_path / "out.csv"), "--jobs", "1"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Start-up (imports, the model) takes long on a loaded machine: wait until the command
    # handles SIGTERM, then a little more to be inside the 4,000 files.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not _catches(proc.pid, signal.SIGTERM):
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be stopped"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"stopped" in err and not project.exists()


# The window labels on a thread of its pool, so its workers are started from that thread.
THREADED_LABELING = """
    import sys, threading
    from pathlib import Path
    from protoglyph.core.labeling.embedding import embed_files
    from protoglyph.core.labeling.listing import list_folder
    from protoglyph.core.encoder import EncoderSession
    folder = Path(sys.argv[1])
    todo = [(i, e.path) for i, e in enumerate(list_folder(folder))]
    def label():
        for chunk in embed_files(folder, todo, EncoderSession(), jobs=2):
            print(chunk.count, flush=True)
    thread = threading.Thread(target=label)
    thread.start()
    thread.join()
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_workers_started_from_a_labeling_thread_end_with_a_killed_app(big_folder: tuple[Path, Path]) -> None:
    proc = child(THREADED_LABELING, str(big_folder[0]))
    assert proc.stdout is not None
    proc.stdout.readline()  # the first chunk is done: the workers are running
    workers = _children_of(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]


def test_random_kills_while_labeling_into_a_project_lose_nothing(tmp_path: Path, encoder: object) -> None:
    """``protoglyph label --project`` killed at random instants, then run again to the end: the
    CSV is the same as one uninterrupted run's, and the project opens every time."""
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for k in range(3000):
        shape = ("ring", "cross", "star")[k % 3]
        cv2.imwrite(str(folder / f"{k:04d}.png"), draw_shape(shape, np.random.default_rng(k), size=48))
    clean, killed = tmp_path / "clean.protoglyph", tmp_path / "killed.protoglyph"
    for path in (clean, killed):
        create_starter_project(path, encoder).project.close()  # type: ignore[arg-type]
    command = [sys.executable, "-m", "protoglyph", "label", str(folder), "--jobs", "1", "--quiet"]
    (tmp_path / "empty").mkdir()
    started = time.monotonic()  # machines differ: measure the start-up (about 1 s) and a whole run
    subprocess.run([*command[:4], str(tmp_path / "empty"), *command[5:], "--project", str(clean), "--out",
                    str(tmp_path / "empty.csv")], cwd=REPO, capture_output=True, timeout=300)
    start_up = time.monotonic() - started
    subprocess.run([*command, "--project", str(clean), "--out", str(tmp_path / "clean.csv")], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    labeling = max(time.monotonic() - started - 2 * start_up, 0.5)  # then 256 files a chunk
    kills = runs = 0
    while kills < 6 and runs < 12:
        runs += 1
        proc = subprocess.Popen([*command, "--project", str(killed), "--out", str(tmp_path / "killed.csv")],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # after the start-up, at a random instant of the first third of labeling the whole
        # folder: each run does a part and is killed while files are being labeled and stored
        time.sleep(start_up + float(rng.uniform(0.05, 0.35)) * labeling)
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait(timeout=60)
        inspect(killed)  # opens after every kill
    subprocess.run([*command, "--project", str(killed), "--out", str(tmp_path / "killed.csv")], cwd=REPO, check=True,
                   capture_output=True, timeout=300)
    print(f"\nkills while labeling: {kills} of {runs} runs killed, all survived")
    assert kills >= 3
    assert (tmp_path / "killed.csv").read_bytes() == (tmp_path / "clean.csv").read_bytes()
    assert not list(tmp_path.glob(".killed.csv.*.part"))


# -- another program holding the file ------------------------------------------------------------
def test_a_long_reader_makes_the_command_wait_not_fail(tmp_path: Path, encoder: object,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from protoglyph.cli.label import main as label_main
    from protoglyph.core import project as project_module

    monkeypatch.setattr(project_module, "BUSY_STEP_S", 0.2)
    path = tmp_path / "p.protoglyph"
    create_starter_project(path, encoder).project.close()  # type: ignore[arg-type]
    folder = tmp_path / "scans"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"{k}.png"), draw_shape("ring", np.random.default_rng(k), size=64))
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM examples").fetchone()  # holds a read lock

    import threading

    threading.Timer(1.5, reader.rollback).start()  # the other program finishes after 1.5 s
    started = time.monotonic()
    assert label_main([str(folder), "--project", str(path), "--out", str(tmp_path / "out.csv")]) == 0
    assert time.monotonic() - started >= 1.0
    assert "waiting for another program to release" in capsys.readouterr().err
    reader.close()
    project = Project.open(path)
    assert project.query("SELECT COUNT(*) FROM batch_items").fetchone()[0] == 3
    project.close()
