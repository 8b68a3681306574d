"""``protoglyph label``: a folder labeled from the command line, against a folder of examples or a
project (whose stored results make a second run free), and every way it can refuse to start."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from protoglyph.cli import main
from protoglyph.core.labeling import embedding
from protoglyph.core.project import Project
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import create_starter_project


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def drawing(shape: str, seed: int) -> np.ndarray:
    return draw_shape(shape, np.random.default_rng(seed), size=64)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A folder per class: ring/ and cross/, three drawings each."""
    folder = tmp_path / "examples"
    for shape in ("ring", "cross"):
        for k in range(3):
            write_png(folder / shape / f"{k}.png", drawing(shape, 10 + k))
    return folder


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """New rings and crosses (one in a subfolder) and one broken file."""
    folder = tmp_path / "scans"
    for k in range(3):
        write_png(folder / f"ring{k}.png", drawing("ring", 100 + k))
        write_png(folder / f"cross{k}.png", drawing("cross", 200 + k))
    write_png(folder / "more" / "ring9.png", drawing("ring", 109))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return folder


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the command reads and embeds (in this process: small folders are not sent to workers)."""
    paths: list[str] = []
    real = embedding.embed_chunk

    def counting(session: Any, folder: str, chunk: Any, max_pixels: int = embedding.MAX_PIXELS) -> Any:
        paths.extend(p for _, p in chunk)
        return real(session, folder, chunk, max_pixels)

    monkeypatch.setattr(embedding, "embed_chunk", counting)
    return paths


def label(*args: Any) -> int:
    return main(["label", *map(str, args)])


def test_labels_a_folder_against_a_folder_of_examples(
        examples: Path, scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels.csv"
    assert label(scans, "--examples", examples, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"8 files → {out} (7 predicted, 1 error;" in err and "Traceback" not in err
    header, rows = read_csv(out)
    assert ",".join(header).startswith("path,label,confidence,status")
    by_path = {r["path"]: r for r in rows}
    assert sorted(by_path) == sorted([*(f"ring{k}.png" for k in range(3)), *(f"cross{k}.png" for k in range(3)),
                                      "more/ring9.png", "broken.png"])
    for path, row in by_path.items():
        if path == "broken.png":
            assert (row["label"], row["confidence"], row["status"]) == ("", "", "error")
            assert "damaged" in row["reason"]
        else:
            expected = "ring" if "ring" in path else "cross"
            assert (row["label"], row["status"]) == (expected, "predicted"), row
            assert 0.5 < float(row["confidence"]) <= 1.0 and row["reason"] == ""


def test_threshold_zero_calls_everything_unknown(
        examples: Path, scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels.csv"
    assert label(scans, "--examples", examples, "--out", out, "--threshold", 0) == 0
    _, rows = read_csv(out)
    assert {r["status"] for r in rows if r["path"] != "broken.png"} == {"unknown"}
    assert {r["label"] for r in rows} == {""}
    assert "7 unknown, 1 error" in capsys.readouterr().err


def test_a_project_keeps_the_results_so_a_second_run_reads_nothing(
        scans: Path, tmp_path: Path, encoder: Any, embedded: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "starter.protoglyph"
    create_starter_project(project, encoder).project.close()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"

    assert label(scans, "--project", project, "--out", first) == 0
    assert "8 files read and 7 embedded" in capsys.readouterr().err
    assert sorted(embedded) == sorted(p.relative_to(scans).as_posix() for p in scans.rglob("*.png"))
    _, rows = read_csv(first)
    labels = {r["path"]: r["label"] for r in rows}
    assert labels["ring0.png"] == labels["more/ring9.png"] == "Ring" and labels["cross1.png"] == "Cross"
    opened = Project.open(project)
    try:
        stored = opened.query("SELECT b.folder, COUNT(*) FROM batches b JOIN batch_items i ON i.batch_id = b.id "
                              "GROUP BY b.id").fetchall()
        assert stored == [(str(scans.resolve()), 8)]
    finally:
        opened.close()

    embedded.clear()
    assert label(scans, "--project", project, "--out", second) == 0
    capsys.readouterr()
    assert embedded == ["broken.png"]  # only the file that could not be used is tried again
    assert second.read_bytes() == first.read_bytes()

    # A new file (and the unusable one) alone are read on the next run.
    embedded.clear()
    write_png(scans / "cross9.png", drawing("cross", 209))
    assert label(scans, "--project", project, "--out", second, "--quiet") == 0
    assert sorted(embedded) == ["broken.png", "cross9.png"]
    _, rows = read_csv(second)
    assert len(rows) == 9 and {r["path"]: r["label"] for r in rows}["cross9.png"] == "Cross"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["label", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "protoglyph label" in out and "--project" in out and "--examples" in out and "--threshold" in out


# -- refusing to start, and failing --------------------------------------------------
def test_no_such_folder(examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert label(missing, "--examples", examples, "--out", tmp_path / "o.csv") == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_a_project_without_examples(scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.protoglyph"
    Project.create(empty).close()
    assert label(scans, "--project", empty, "--out", tmp_path / "o.csv") == 2
    assert "no classes with examples" in capsys.readouterr().err
    with_class = Project.open(empty)
    with_class.add_class("Lonely", "#112233")
    with_class.close()
    assert label(scans, "--project", empty, "--out", tmp_path / "o.csv") == 2
    assert not (tmp_path / "o.csv").exists()


def test_a_broken_model(examples: Path, scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model at all" * 10)
    assert label(scans, "--examples", examples, "--out", tmp_path / "o.csv", "--model", model) == 2
    err = capsys.readouterr().err
    assert "encoder model" in err and str(model) in err and "Traceback" not in err


def test_examples_without_images(scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = tmp_path / "examples"
    (examples / "ring").mkdir(parents=True)
    (examples / "ring" / "readme.txt").write_text("no images here")
    assert label(scans, "--examples", examples, "--out", tmp_path / "o.csv") == 2
    assert "no classes with examples" in capsys.readouterr().err
    assert label(scans, "--examples", tmp_path / "missing", "--out", tmp_path / "o.csv") == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_empty_folder_gets_a_csv_with_the_header_only(
        examples: Path, tmp_path: Path, encoder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 like a folder of unusable files, and, as the README says, the CSV is still written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.png").write_bytes(b"x")
    out = tmp_path / "o.csv"
    out.write_text("path,label\nstale.png,ring\n")  # an earlier run's: must not survive
    assert label(empty, "--examples", examples, "--out", out) == 1
    err = capsys.readouterr().err
    assert "no files to label" in err and f"{out} has the header only" in err
    header, rows = read_csv(out)
    assert header[:4] == ["path", "label", "confidence", "status"] and rows == []
    project = tmp_path / "p.protoglyph"
    create_starter_project(project, encoder).project.close()
    out.unlink()
    assert label(empty, "--project", project, "--out", out) == 1
    assert read_csv(out)[1] == []


def test_a_folder_of_broken_files_still_gets_its_csv(
        examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    (folder / "b.jpg").write_text("text")
    write_png(folder / "c.png", np.full((40, 40), 255, np.uint8))  # blank
    out = tmp_path / "o.csv"
    assert label(folder, "--examples", examples, "--out", out) == 1
    _, rows = read_csv(out)
    assert [(r["path"], r["status"]) for r in rows] == [("a.png", "error"), ("b.jpg", "error"), ("c.png", "error")]
    assert all(r["reason"] for r in rows)
    err = capsys.readouterr().err
    assert f"3 files → {out} (3 errors;" in err
    assert "read 3 / 3 files (3 could not be used)" in err
    assert "3 files read and 0 embedded" in err and "; 3 could not be used" in err


def test_out_in_a_missing_folder_is_refused_before_any_work(
        examples: Path, scans: Path, tmp_path: Path, embedded: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "labels.csv"
    assert label(scans, "--examples", examples, "--out", out) == 2
    err = capsys.readouterr().err
    assert str(out.parent) in err and "does not exist" in err and "Traceback" not in err
    assert embedded == [] and not out.parent.exists()
    assert label(scans, "--examples", examples, "--out", tmp_path) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_project_that_is_not_a_project_is_left_alone(
        scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.protoglyph"
    content = b"SQLite format 3\x00" + bytes(range(256)) * 8
    fake.write_bytes(content)
    mtime = fake.stat().st_mtime_ns
    assert label(scans, "--project", fake, "--out", tmp_path / "o.csv") == 2
    err = capsys.readouterr().err
    assert "project cannot be used" in err and str(fake) in err
    assert fake.read_bytes() == content and fake.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.protoglyph", "scans"]  # no backup, no journal
    text = tmp_path / "notes.protoglyph"
    text.write_text("just some notes")
    assert label(scans, "--project", text, "--out", tmp_path / "o.csv") == 2
    assert text.read_text() == "just some notes"


def test_the_installed_command_labels_with_worker_processes(examples: Path, tmp_path: Path) -> None:
    """``python -m protoglyph label`` on more files than are done in-process, as a person runs it:
    the spawned worker processes start, embed and stop cleanly."""
    import subprocess
    import sys

    folder = tmp_path / "many"
    folder.mkdir()
    data = cv2.imencode(".png", drawing("ring", 3))[1].tobytes()
    for i in range(embedding.IN_PROCESS_BELOW + 40):
        (folder / f"r{i:05d}.png").write_bytes(data)
    out = tmp_path / "many.csv"
    done = subprocess.run([sys.executable, "-m", "protoglyph", "label", str(folder), "--examples", str(examples),
                           "--out", str(out), "--jobs", "2", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _, rows = read_csv(out)
    assert len(rows) == embedding.IN_PROCESS_BELOW + 40 and {r["label"] for r in rows} == {"ring"}


# -- wording of progress and summary -------------------------------------------------------------
def test_counts_say_what_was_read_and_what_could_not_be_used(
        examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from protoglyph.cli.label import plural

    folder = tmp_path / "mixed"
    write_png(folder / "ring.png", drawing("ring", 1))
    write_png(folder / "cross.png", drawing("cross", 2))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "o.csv"
    assert label(folder, "--examples", examples, "--out", out) == 0
    err = capsys.readouterr().err
    assert "read 3 / 3 files (1 could not be used)" in err and "labeled 3 / 3" not in err
    assert "3 files read and 2 embedded in" in err and "images/s, in this process); 1 could not be used" in err
    assert f"3 files → {out} (2 predicted, 1 error;" in err
    (folder / "broken.png").unlink()
    (folder / "cross.png").unlink()
    assert label(folder, "--examples", examples, "--out", out) == 0
    err = capsys.readouterr().err
    assert "read 1 / 1 file," in err and "could not be used" not in err
    assert f"1 file → {out} (1 predicted;" in err and "1 file read and 1 embedded" in err
    assert [plural(n, "error") for n in (0, 1, 2, 1234567)] == ["0 errors", "1 error", "2 errors", "1,234,567 errors"]


# -- what --examples takes ---------------------------------------------------------------------
def test_a_flat_folder_of_examples_is_refused(scans: Path, tmp_path: Path, embedded: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Images with no class subfolders used to become one class that labeled everything (exit 0)."""
    flat = tmp_path / "flat"
    for k in range(3):
        write_png(flat / f"ring{k}.png", drawing("ring", k))
        write_png(flat / f"cross{k}.png", drawing("cross", k))
    (flat / "empty-subfolder").mkdir()
    out = tmp_path / "o.csv"
    assert label(scans, "--examples", flat, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"--examples {flat} holds images but no class folders" in err and "Each subfolder of it is a class" in err
    assert str(flat / "ring" / "1.png") in err and "Traceback" not in err
    assert not out.exists() and embedded == []


def test_images_beside_the_class_folders_are_skipped_and_said(
        examples: Path, scans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_png(examples / "stray.png", drawing("triangle", 1))
    out = tmp_path / "o.csv"
    assert label(scans, "--examples", examples, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"skipped 1 image directly in {examples} (stray.png)" in err
    _, rows = read_csv(out)
    assert {r["label"] for r in rows} == {"ring", "cross", ""}  # no class named "examples"


def test_one_class_is_a_detector_with_a_note(scans: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One class is kept: the threshold still answers "unknown" (a ring detector); the note says so."""
    examples = tmp_path / "rings-only"
    for k in range(3):
        write_png(examples / "ring" / f"{k}.png", drawing("ring", 10 + k))
    out = tmp_path / "o.csv"
    assert label(scans, "--examples", examples, "--out", out) == 0
    err = capsys.readouterr().err
    assert "has one class, 'ring': each image is labeled 'ring' or 'unknown'" in err
    _, rows = read_csv(out)
    by_path = {r["path"]: r for r in rows}
    assert by_path["ring0.png"]["label"] == "ring"
    assert {by_path[f"cross{k}.png"]["status"] for k in range(3)} == {"unknown"}
    assert label(scans, "--examples", examples, "--out", out, "--quiet") == 0
    assert "one class" not in capsys.readouterr().err


# -- decoders' own messages stay off stderr ----------------------------------------------------
def damaged_files(folder: Path) -> dict[str, str]:
    """A damaged PNG, JPEG and TIFF, each of which makes its decoder print to stderr; name → format."""
    glyph = drawing("ring", 5)
    png = bytearray(cv2.imencode(".png", glyph)[1].tobytes())
    at = png.find(b"IDAT")
    for j in range(at + 8, at + 40):
        png[j] ^= 0x55  # libpng: "libpng error: IDAT: invalid …"
    crc = bytearray(cv2.imencode(".png", glyph)[1].tobytes())
    crc[crc.find(b"IHDR") + 17] ^= 1  # libpng: "libpng error: IHDR: CRC error"
    jpg = bytearray(cv2.imencode(".jpg", glyph)[1].tobytes())
    at = jpg.find(b"\xff\xda")
    for j in range(at + 20, min(len(jpg) - 2, at + 200)):
        jpg[j] = 0xAA if jpg[j] != 0xFF else 0  # libjpeg: "Corrupt JPEG data: …"
    tiff = bytearray(cv2.imencode(".tiff", glyph)[1].tobytes())
    tiff[8:40] = b"\xff" * 32  # OpenCV's log: "[ERROR:0@…] global grfmt_tiff.cpp … TIFF_Error …"
    files = {"bad.png": bytes(png), "crc.png": bytes(crc), "bad.jpg": bytes(jpg), "bad.tiff": bytes(tiff)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: name.split(".")[1] for name in files}


CHATTER = ("libpng", "Corrupt JPEG", "[ WARN:", "[ERROR:", "TIFF")


def label_process(*args: object, env: dict[str, str] | None = None) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "protoglyph", "label", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_decoder_messages_stay_off_stderr(examples: Path, tmp_path: Path) -> None:
    """Damaged files in this process (a small folder): only the command's own lines on stderr,
    with or without --quiet; every damaged PNG is in the CSV with its reason."""
    import os

    folder = tmp_path / "scans"
    write_png(folder / "good.png", drawing("ring", 1))
    damaged_files(folder)
    plain = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    out = tmp_path / "o.csv"
    for quiet in (["--quiet"], []):
        done = label_process(folder, "--examples", examples, "--out", out, *quiet, env=plain)
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        assert all(line.startswith(("protoglyph label: ", "read ")) for line in lines), done.stderr
        assert not any(word in done.stderr for word in CHATTER), done.stderr
        _, rows = read_csv(out)
        reasons = {r["path"]: r["reason"] for r in rows}
        assert "damaged" in reasons["bad.png"] and "damaged" in reasons["crc.png"] and reasons["bad.tiff"]
    # A level the person chose for OpenCV's log is theirs: its lines come through.
    done = label_process(folder, "--examples", examples, "--out", out, "--quiet",
                         env={**plain, "OPENCV_LOG_LEVEL": "WARNING"})
    assert "[ERROR:" in done.stderr and "libpng" not in done.stderr


def test_decoder_messages_of_worker_processes_stay_off_stderr(examples: Path, tmp_path: Path) -> None:
    """The same with the folder large enough for worker processes: their decoders' lines too."""
    import os

    folder = tmp_path / "many"
    folder.mkdir()
    data = cv2.imencode(".png", drawing("ring", 3))[1].tobytes()
    count = embedding.IN_PROCESS_BELOW + 40
    for i in range(count):
        (folder / f"r{i:05d}.png").write_bytes(data)
    damaged = damaged_files(folder / "zz")  # listed last: in the workers' chunks
    out = tmp_path / "many.csv"
    plain = {k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"}
    done = label_process(folder, "--examples", examples, "--out", out, "--jobs", 2, "--quiet", env=plain)
    assert done.returncode == 0, done.stderr
    assert not any(word in done.stderr for word in CHATTER), done.stderr
    total = count + len(damaged)
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0]]  # the summary alone
    assert f"{total:,} files → {out}" in done.stderr and "errors;" in done.stderr
    _, rows = read_csv(out)
    assert len(rows) == total
    assert {r["path"]: r["status"] for r in rows}["zz/bad.png"] == "error"
    done = label_process(folder, "--examples", examples, "--out", out, "--jobs", 2, env=plain)
    assert done.returncode == 0 and not any(word in done.stderr for word in CHATTER), done.stderr
    assert "embedded in" in done.stderr and "2 workers" in done.stderr


def test_the_filter_lets_every_other_message_through(tmp_path: Path) -> None:
    """Only decoder chatter is dropped: a child process's real error, this process's C-level
    writes, partial lines and Python's own stderr all come through, in order per writer."""
    import subprocess
    import sys

    script = tmp_path / "speak.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "from protoglyph.cli.label import DecoderChatterFilter\n"
        "with DecoderChatterFilter():\n"
        "    os.write(2, b'libpng error: IDAT: invalid code lengths set\\nreal C-level line\\n')\n"
        "    print('python line', file=sys.stderr)\n"
        "    subprocess.run([sys.executable, '-c', 'import os; os.write(2, b\"Corrupt JPEG data: 9 extraneous "
        "bytes before marker 0xd9\\\\nTraceback (most recent call last): worker died\\\\nno newline at the end\")'])\n"
        "print('after', file=sys.stderr)\n"
        "os.write(2, b'libpng warning: after the filter, shown\\n')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "libpng error" not in err and "Corrupt JPEG" not in err
    for line in ("real C-level line", "python line", "Traceback (most recent call last): worker died",
                 "no newline at the end", "after", "libpng warning: after the filter, shown"):
        assert line in err, err
    assert err.index("no newline at the end") < err.index("after\n")


def test_the_csv_written_inside_the_folder_is_not_labeled_by_the_next_run(
        examples: Path, scans: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = scans / "labels.csv"
    assert label(scans, "--examples", examples, "--out", out) == 0
    first = read_csv(out)[1]
    (scans / "same size.csv").write_bytes(b"x" * out.stat().st_size)  # another file of the CSV's size
    (scans / "alias.csv").hardlink_to(out)  # the CSV under another name: the same file
    assert label(scans, "--examples", examples, "--out", out) == 0
    paths = [r["path"] for r in read_csv(out)[1]]
    assert "labels.csv" not in paths and "alias.csv" not in paths
    assert "same size.csv" in paths and len(paths) == len(first) + 1
