"""Labeling a folder: the one pipeline that the window, the command line and the benchmarks run.

``label_folder`` lists the folder, merges the listing with what the project already holds for
it (``store.read_batch``: unchanged files keep their embeddings and reviews), makes the
:class:`~protoglyph.core.labeling.results.BatchResults` that rank every item against the classes, stores
what the listing found unusable, and then has an engine (``engines``) embed the new and
changed files, storing each chunk in the project as it arrives. It is a generator: first one
:class:`Started` (the results, with the stored items already predicted), then one
:class:`ChunkDone` per chunk, already stored. Taking a chunk into the results (``table.apply``
and ``results.update_rows``) is the caller's, so that the window can do it on its own thread
while this runs on a worker thread; :func:`take_chunk` is that step for a caller with one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protoglyph.core.classifier import Calibration
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling.embedding import ChunkResult
from protoglyph.core.labeling.engines import Engine, LocalWorkers
from protoglyph.core.labeling.listing import FileEntry, list_folder
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.store import BatchStore, read_batch, usable_threshold
from protoglyph.core.project import Project
from protoglyph.core.threshold import OpenSetReference


@dataclass(frozen=True)
class Support:
    """What the items are compared with: a copy of the classifier's classes at the start.

    Attributes:
        keys: class ids, one per prototype row.
        prototypes: ``(C, D)`` ``float32``.
        reference: the support set's :class:`OpenSetReference`, for calibrated confidences.
    """

    keys: Sequence[int]
    prototypes: np.ndarray
    reference: OpenSetReference | None = None


@dataclass
class Started:
    """The folder is listed and its stored items are predicted; ``store`` is ``None`` without a project."""

    results: BatchResults
    store: BatchStore | None


@dataclass
class ChunkDone:
    """A chunk of files is embedded (and stored, with a project)."""

    chunk: ChunkResult


def label_folder(folder: Path, session: EncoderSession, support: Support, *, project: Project | None = None,
                 engine: Engine | None = None, should_stop: Callable[[], bool] | None = None,
                 skip: Callable[[FileEntry], bool] | None = None,
                 mark_shown: bool = False) -> Iterator[Started | ChunkDone]:
    """Label ``folder``; see the module docstring.

    Args:
        folder: the folder of images (read recursively, never written to).
        session: the encoder in this process (engines load the same model file elsewhere).
        support: the classes to compare with.
        project: where stored results are read from and new ones written to (``None``: nothing
            is stored, every file is embedded).
        engine: where files are embedded (default: :class:`~.engines.LocalWorkers`).
        should_stop: polled between chunks; True ends the generator early (what was stored stays).
        skip: leave listed files out (the command's own output CSV).
        mark_shown: remember this folder as the one the project shows when opened next.
    Raises:
        embedding.BatchError: the batch as a whole cannot go on (what was stored before stays).
        project.ProjectError: the project cannot be read or written.
    """
    entries = list_folder(folder)
    if skip is not None:
        entries = [e for e in entries if not skip(e)]
    model_key = session.model_key
    table = read_batch(project.path if project is not None and entries else None, folder, entries, model_key,
                       session.embedding_size)
    results = BatchResults(table, session.info.temperature, Calibration.from_model(session.info))
    results.set_prototypes([int(k) for k in support.keys], support.prototypes)
    results.set_reference(support.reference)
    store = BatchStore(project, folder) if project is not None and entries else None
    if store is not None:
        # Files no longer in the folder keep their stored results and reviews: they may come
        # back (an export moved them and was undone, a drive was not mounted).
        store.save_listing_problems(table, model_key)
        if mark_shown:
            store.mark_shown()
    yield Started(results, store)
    work = [(i, table.paths[i]) for i in table.todo]
    for chunk in (engine or LocalWorkers()).embed(folder, work, session, should_stop):
        if store is not None:
            store.save_chunk(table, chunk, model_key)
        yield ChunkDone(chunk)


def take_chunk(results: BatchResults, chunk: ChunkResult, keep_embeddings: bool = True) -> None:
    """Take a finished chunk into the results: its items' embeddings, distances and predictions.

    ``keep_embeddings`` ``False`` where the classes never move while the results live (the
    command line): 100,000 embeddings would be 100 MB.
    """
    results.table.apply(chunk, keep_embeddings=keep_embeddings)
    results.update_rows(chunk.indices, None if keep_embeddings else chunk.embeddings)


def choose_threshold(person: float | None, stored: float | None, default: float | None) -> float | None:
    """The "none of these" threshold in force: the one the person gives now (a command-line
    option), else the one stored with the folder, else the default derived from the examples."""
    for value in (person, stored):
        if usable_threshold(value) is not None:
            return value
    return default
