"""The starter project a new user sees first: a few symbol classes drawn in code with random
jitter (no external data), so live predictions work within seconds of the first start."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protoglyph.core.drawing import PEN_FRACTION, RENDER_SIZE
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.project import (
    SCHEMA_VERSION,
    Project,
    ProjectBusy,
    ProjectError,
    ProjectTooNew,
    set_aside,
    sidecars,
)
from protoglyph.core.shapes import draw_shape
from protoglyph.core.workspace import Workspace

#: Class name shown to the user, and the built-in shape behind it.
STARTER_CLASSES = (("Ring", "ring"), ("Cross", "cross"), ("Triangle", "triangle"), ("Square", "square"),
                   ("Check mark", "check"), ("Arrow", "arrow"), ("Zigzag", "zigzag"), ("Star", "star"))
EXAMPLES_PER_CLASS = 4
HINT_KEY = "starter_hint"


def create_starter_project(path: Path | str, encoder: EncoderSession, seed: int = 0) -> Workspace:
    """Write a new starter project to ``path`` and return it open."""
    rng = np.random.default_rng(seed)
    project = Project.create(path)
    workspace = Workspace(project, encoder)
    pen = round(RENDER_SIZE * PEN_FRACTION)
    for name, shape in STARTER_CLASSES:
        record = workspace.add_class(name)
        images = [draw_shape(shape, rng, size=RENDER_SIZE, pen=pen) for _ in range(EXAMPLES_PER_CLASS)]
        workspace.add_examples(record.id, workspace.prepare(images, [f"built-in {shape}"] * len(images)))
    project.set_setting(HINT_KEY, "1")
    return workspace


def open_starter_project(path: Path, encoder: EncoderSession) -> Workspace:
    """The starter project at ``path``, made on first use. If it had to be made anew, the
    first of the workspace's ``problems`` says why and where the old one was kept.

    A starter that is damaged is set aside with its journal under a name never used before
    (``… .damaged``, ``… .damaged-2``), never deleted or overwritten: it holds the person's own
    classes if they added any. A journal left without its file goes the same way. One written by
    a newer Protoglyph is fine and stays as it is (that version will want it back); this version
    then uses a starter of its own beside it. One that another program holds locked is waited for.
    """
    problem = ""
    if path.exists():
        try:
            return Workspace(_open_patiently(path), encoder)
        except ProjectTooNew as exc:
            own = path.with_name(f"{path.stem} (format {SCHEMA_VERSION}){path.suffix}")
            if own.exists():
                return open_starter_project(own, encoder)
            path, problem = own, f"The starter project was {exc.problem.split('.')[0]}; it is left as it is."
        except ProjectBusy:
            raise
        except ProjectError as exc:
            kept = set_aside(path)
            problem = (f"The starter project could not be opened ({exc.problem}). It was kept as {kept} "
                       "and a new starter project was made.")
    elif any(s.exists() for s in sidecars(path)):
        kept = set_aside(path)
        problem = f"A journal left without its starter project was kept as {kept.name}-journal."
    workspace = create_starter_project(path, encoder)
    if problem:
        workspace.problems.insert(0, problem)
    return workspace


def _open_patiently(path: Path, tries: int = 6) -> Project:
    """Open, waiting out another program that holds the file locked (about 30 s in all)."""
    for _ in range(tries - 1):
        try:
            return Project.open(path)
        except ProjectBusy:
            continue
    return Project.open(path)
