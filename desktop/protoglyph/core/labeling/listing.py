"""Labeling a folder, part 1: find its files.

Every file below the folder, recursively, in path order; links followed, a loop or a folder that
cannot be read becomes an entry with its problem instead of stopping the listing, and nothing
below ever writes to the folder.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from protoglyph.core.imagefile import (
    NOT_REGULAR,
)

#: Files that are never glyphs and would only clutter the error list.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class FileEntry:
    """One file found below the labeled folder."""

    path: str  # relative to the folder, '/'-separated
    size: int
    mtime_ns: int
    problem: str | None = None  # found while listing (a link loop, a folder that can't be read)


def list_folder(folder: Path) -> list[FileEntry]:
    """Every file below ``folder``, recursively, in path order (names sorted within each folder).

    Links are followed; a link back into a folder already listed (a loop) and a folder that
    cannot be read become entries with a ``problem`` instead of stopping the listing. Hidden
    files and folders (a leading dot) are skipped. There is no final sort of the whole list:
    that would hold the GIL for tens of milliseconds on 100,000 paths, and the window's
    event loop with it.
    """
    root = Path(folder)
    entries: list[FileEntry] = []
    seen: set[tuple[int, int]] = set()
    for above in [root.resolve(), *root.resolve().parents]:
        try:
            st = os.stat(above)
        except OSError:
            continue
        seen.add((st.st_dev, st.st_ino))
    stack = [("", iter(_children(root, "", entries)))]
    while stack:
        rel_dir, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if child.name.startswith(".") or child.name.lower() in IGNORED_NAMES:
            continue
        rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
        try:
            st = child.stat()  # follows links
        except OSError as exc:
            entries.append(FileEntry(rel, 0, 0, f"cannot be read ({exc.strerror})"))
            continue
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                entries.append(FileEntry(rel, 0, 0, "a link back into a folder already read (a loop); skipped"))
            else:
                seen.add((st.st_dev, st.st_ino))
                stack.append((rel, iter(_children(Path(child.path), rel, entries))))
        elif stat.S_ISREG(st.st_mode):
            entries.append(FileEntry(rel, st.st_size, st.st_mtime_ns))
        else:
            entries.append(FileEntry(rel, 0, 0, NOT_REGULAR))  # a FIFO would block whoever opened it
    return entries


def _children(folder: Path, rel: str, entries: list[FileEntry]) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        entries.append(FileEntry(rel or ".", 0, 0, f"the folder cannot be read ({exc.strerror})"))
        return []
