"""Which classes dropped or chosen files and folders become.

A folder whose subfolders hold images is a folder-per-class tree: every subfolder becomes a
class of that name (images anywhere below it are its examples). A folder of images alone
becomes one class named after the folder. Loose files go to the target class.
Files are recognised by their first bytes, read with :func:`~protoglyph.core.imagefile.read_file`,
so a FIFO, socket or device in a folder is reported as a problem instead of blocking the import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from protoglyph.core.imagefile import NOT_AN_IMAGE, ImageReadError, image_format, read_file

#: Most files one import takes from a folder tree (a safety net against dropping ``/``).
MAX_FILES = 20_000


@dataclass
class ImportPlan:
    """``groups[name]`` lists the files for the class called ``name``; ``None`` = the target class."""

    groups: dict[str | None, list[Path]] = field(default_factory=dict)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def file_count(self) -> int:
        return sum(len(v) for v in self.groups.values())

    def add(self, name: str | None, path: Path) -> None:
        self.groups.setdefault(name, []).append(path)


def looks_like_image(path: Path) -> bool:
    """True if the file starts like an image Protoglyph reads (content, not extension)."""
    return _problem(path) is None


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be imported (not an image, a FIFO, unreadable…), or ``None`` if it can."""
    try:
        head = read_file(path, head=16)
    except ImageReadError as exc:
        return exc.reason
    return None if image_format(head) is not None else NOT_AN_IMAGE


def _files_below(folder: Path, plan: ImportPlan) -> list[Path]:
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for above in folder.resolve().parents:  # a link up to one of these is a loop too
        try:
            st = os.stat(above)
        except OSError:
            continue
        seen.add((st.st_dev, st.st_ino))

    def onerror(exc: OSError) -> None:
        plan.problems.append((Path(exc.filename or folder), f"cannot be listed ({exc.strerror})"))

    for root, dirs, files in os.walk(folder, followlinks=True, onerror=onerror):
        try:
            st = os.stat(root)
        except OSError as exc:  # removed while being listed
            plan.problems.append((Path(root), f"cannot be listed ({exc.strerror})"))
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            plan.problems.append((Path(root), "a link back into a folder already read; skipped"))
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):  # FIFOs, sockets and devices too: _take names them as problems
            if not name.startswith("."):
                found.append(Path(root) / name)
        if len(found) > MAX_FILES:
            plan.problems.append((folder, f"more than {MAX_FILES:,} files; only the first {MAX_FILES:,} were taken"))
            return found[:MAX_FILES]
    return found


def _take(plan: ImportPlan, name: str | None, files: Iterable[Path]) -> None:
    for f in files:
        problem = _problem(f)
        if problem is None:
            plan.add(name, f)
        else:
            plan.problems.append((f, problem))


def plan_import(paths: Iterable[Path | str]) -> ImportPlan:
    """Sort dropped or chosen paths into classes (see the module docstring)."""
    plan = ImportPlan()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
            # not only is_file(): a FIFO or socket here is reported, not silently left out
            loose = sorted(p for p in path.iterdir() if not p.is_dir() and not p.name.startswith("."))
            class_folders = [d for d in subfolders if any(looks_like_image(f) for f in _files_below(d, ImportPlan()))]
            if class_folders:
                for d in class_folders:
                    _take(plan, d.name, _files_below(d, plan))
                _take(plan, path.name, loose)
            else:
                _take(plan, path.name, _files_below(path, plan))
        elif path.exists():  # a file, or a FIFO, socket or device (_take says why it is refused)
            _take(plan, None, [path])
        else:
            plan.problems.append((path, "no such file or folder"))
    plan.groups = {k: v for k, v in plan.groups.items() if v}
    return plan
