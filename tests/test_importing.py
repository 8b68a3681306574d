"""Which classes dropped files and folders become (``plan_import``), recognising images by content."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import pytest

from protoglyph.core.importing import ImportPlan, looks_like_image, plan_import
from tests.hang_guard import finishes

PNG = cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes()
JPEG = cv2.imencode(".jpg", np.zeros((4, 4), np.uint8))[1].tobytes()
T = TypeVar("T")


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def names(plan: ImportPlan, root: Path) -> dict[str | None, list[str]]:
    return {k: [p.relative_to(root).as_posix() for p in v] for k, v in plan.groups.items()}


def test_looks_like_image_reads_content_not_extension(tmp_path: Path) -> None:
    files = tree(tmp_path, {"photo.txt": JPEG, "fake.png": b"hello", "empty.png": b""})
    assert looks_like_image(files / "photo.txt")
    assert not looks_like_image(files / "fake.png") and not looks_like_image(files / "empty.png")
    assert not looks_like_image(tmp_path / "missing.png") and not looks_like_image(tmp_path)


def test_folder_per_class_tree(tmp_path: Path) -> None:
    root = tree(tmp_path / "letters", {
        "alpha/1.png": PNG, "alpha/deep/er/2.png": PNG, "alpha/.hidden.png": PNG, "alpha/.cache/3.png": PNG,
        "beta/b.jpg": JPEG, "beta/readme.txt": b"notes", ".git/x.png": PNG, "loose.png": PNG,
        ".DS_Store": b"\0\0\0\1Bud1",
    })
    (root / "empty").mkdir()
    plan = plan_import([root])
    assert names(plan, root) == {
        "alpha": ["alpha/1.png", "alpha/deep/er/2.png"],
        "beta": ["beta/b.jpg"],
        "letters": ["loose.png"],  # loose images at the top go to a class named after the folder
    }
    assert plan.file_count == 4
    assert [(p.relative_to(root).as_posix(), why) for p, why in plan.problems] == [
        ("beta/readme.txt", "not an image Protoglyph can read (PNG, JPEG, BMP, TIFF, WebP or GIF)")]


def test_folder_of_images_becomes_one_class(tmp_path: Path) -> None:
    root = tree(tmp_path / "Runes", {"b.png": PNG, "a.jpg": JPEG, "notes/todo.txt": b"later"})
    plan = plan_import([str(root)])
    assert names(plan, root) == {"Runes": ["a.jpg", "b.png"]}
    assert [p.name for p, _ in plan.problems] == ["todo.txt"]


def test_loose_files_go_to_the_target_class(tmp_path: Path) -> None:
    files = tree(tmp_path, {"x.png": PNG, "y.jpg": JPEG, "z.doc": b"\xd0\xcf\x11\xe0"})
    plan = plan_import([files / "x.png", files / "z.doc", files / "y.jpg", files / "gone.png"])
    assert plan.groups == {None: [files / "x.png", files / "y.jpg"]}
    assert plan.problems == [(files / "z.doc", "not an image Protoglyph can read (PNG, JPEG, BMP, TIFF, WebP or GIF)"),
                             (files / "gone.png", "no such file or folder")]


def test_nothing_usable_gives_an_empty_plan(tmp_path: Path) -> None:
    root = tree(tmp_path / "docs", {"a.txt": b"a", "sub/b.txt": b"b"})
    plan = plan_import([root])
    assert plan.groups == {} and plan.file_count == 0 and len(plan.problems) == 2


def test_symlink_loop_inside_a_class_terminates_and_is_reported(tmp_path: Path) -> None:
    root = tree(tmp_path / "set", {"A/a.png": PNG, "A/sub/a2.png": PNG, "B/b.png": PNG})
    os.symlink(root / "A", root / "A" / "sub" / "up")  # sub/up is sub's parent again
    plan = plan_import([root])
    assert names(plan, root) == {"A": ["A/a.png", "A/sub/a2.png"], "B": ["B/b.png"]}
    assert plan.problems == [(root / "A" / "sub" / "up", "a link back into a folder already read; skipped")]


def test_link_from_a_class_to_the_dropped_folder_takes_no_file_twice(tmp_path: Path) -> None:
    root = tree(tmp_path / "set", {"A/a.png": PNG, "B/b.png": PNG})
    os.symlink(root, root / "A" / "top")  # A/top is A's parent
    plan = plan_import([root])
    assert names(plan, root) == {"A": ["A/a.png"], "B": ["B/b.png"]}
    assert [why for _, why in plan.problems] == ["a link back into a folder already read; skipped"]


def unix_socket(path: Path) -> socket.socket | None:
    """A Unix socket bound at ``path`` (its file is what a folder shows), or None where there are none."""
    if not hasattr(socket, "AF_UNIX"):
        return None
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.path.relpath(path))  # relative: the length limit of a socket path is about 100 bytes
    except OSError:
        sock.close()
        return None
    return sock


NOT_REGULAR = "not a regular file (a FIFO, socket or device); skipped"
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


@needs_fifo
def test_fifo_and_socket_in_a_class_tree_are_problems_and_never_block(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "set", {"A/a.png": PNG, "B/b.png": PNG, "loose.png": PNG})
    fifos = [root / "A" / "pipe", root / "top-pipe"]
    for fifo in fifos:
        os.mkfifo(fifo)
    monkeypatch.chdir(tmp_path)
    sock = unix_socket(root / "B" / "sock")
    try:
        plan = finishes(5, lambda: plan_import([root]), fifos)
    finally:
        if sock is not None:
            sock.close()
    assert names(plan, root) == {"A": ["A/a.png"], "B": ["B/b.png"], "set": ["loose.png"]}
    expected = [("A/pipe", NOT_REGULAR)] + ([("B/sock", NOT_REGULAR)] if sock is not None else [])
    assert [(p.relative_to(root).as_posix(), why) for p, why in plan.problems] == [*expected, ("top-pipe", NOT_REGULAR)]


@needs_fifo
def test_a_dropped_fifo_is_a_problem_and_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    plan = finishes(5, lambda: plan_import([fifo]), [fifo])
    assert plan.groups == {} and plan.problems == [(fifo, NOT_REGULAR)]
    assert not finishes(5, lambda: looks_like_image(fifo), [fifo])
