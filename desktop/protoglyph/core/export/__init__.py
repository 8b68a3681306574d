"""Exporting a labeled folder: a CSV or JSON table of every item (:mod:`.tables`), and a folder
per class (the ImageNet / CVAT layout) filled by copying or moving the images (:mod:`.folders`),
with names every file system takes (:mod:`.names`).

The folder export may move thousands of a person's files, so before it touches one it writes a
journal into the destination (the whole plan, then a line per finished operation): an
interrupted export can be resumed, and finished ones undone, newest first. Nothing is written
outside the destination and no existing file is ever replaced.
"""

from __future__ import annotations

from pathlib import Path


class ExportError(RuntimeError):
    """An export that cannot be written (or resumed, or undone), and why."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
