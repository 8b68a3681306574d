"""Reading and embedding image files for import, on a worker thread (``QThreadPool``).

The worker gets plain data (paths, the target class id) and hands back plain data (embedded
examples grouped by class name, and the files it skipped with the reason). The window adds
them to the project on the GUI thread as one undoable step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.importing import plan_import
from protoglyph.core.workspace import NewExample, Workspace
from protoglyph.gui.jobs import Job

CHUNK = 64


@dataclass
class ImportResult:
    target: int
    groups: list[tuple[str | None, list[NewExample]]] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    total: int = 0  # files looked at, the skipped ones included


class ImportWorker(Job):
    """Sort ``paths`` into classes, read every image and embed it; finishes with an :class:`ImportResult`."""

    def __init__(self, workspace: Workspace, paths: Sequence[Path], target: int) -> None:
        super().__init__()
        self._workspace = workspace
        self._paths = list(paths)
        self._target = target

    def work(self) -> ImportResult:
        plan = plan_import(self._paths)
        result = ImportResult(self._target, problems=list(plan.problems), total=plan.file_count + len(plan.problems))
        total, done = plan.file_count, 0
        self.progress(0, total)
        for name, files in plan.groups.items():
            examples: list[NewExample] = []
            for start in range(0, len(files), CHUNK):
                if self.cancelled:
                    result.cancelled = True
                    return result
                images, sources = [], []
                for path in files[start : start + CHUNK]:
                    try:
                        images.append(read_image(path))
                        sources.append(str(path))
                    except ImageReadError as exc:
                        result.problems.append((exc.path, exc.reason))
                examples.extend(self._workspace.prepare(images, sources))
                done += len(files[start : start + CHUNK])
                self.progress(done, total)
            result.groups.append((name, examples))
        return result
