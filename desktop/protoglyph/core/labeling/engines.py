"""Where a folder's files are read, preprocessed and embedded: the engines of ``label_folder``.

Every engine takes ``(entry index, relative path)`` pairs and yields ``embedding.ChunkResult``
as chunks finish, in any order (each carries its entry indices), and runs the same
``embedding.embed_chunk`` on each chunk, so the same folder gives the same results on every engine.

- :class:`InProcess`: this process, one chunk after another (small folders, tests).
- :class:`LocalWorkers`: worker processes on this machine, one ``EncoderSession`` with one
  thread each (the default; in this process below ``embedding.IN_PROCESS_BELOW`` files).
- ``ray_engine.RayEngine``: Ray Data on this machine or a cluster (``protoglyph[ray]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.imagefile import MAX_PIXELS
from protoglyph.core.labeling.embedding import ChunkResult, default_jobs, embed_files

#: The names ``protoglyph label --engine`` takes.
ENGINE_NAMES = ("processes", "in-process", "ray")


class EngineError(RuntimeError):
    """An engine cannot be used (its package is not installed, its cluster cannot be reached)."""


class Engine(Protocol):
    """Embeds files chunk by chunk; see the module docstring."""

    @property
    def description(self) -> str: ...

    def embed(self, folder: Path, todo: Sequence[tuple[int, str]], session: EncoderSession,
              should_stop: Callable[[], bool] | None = None,
              max_pixels: int = MAX_PIXELS) -> Iterator[ChunkResult]: ...


@dataclass(frozen=True)
class InProcess:
    """In this process, with its own encoder session."""

    @property
    def description(self) -> str:
        return "in this process"

    def embed(self, folder: Path, todo: Sequence[tuple[int, str]], session: EncoderSession,
              should_stop: Callable[[], bool] | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[ChunkResult]:
        return embed_files(folder, todo, session, jobs=1, max_pixels=max_pixels, should_stop=should_stop)


@dataclass(frozen=True)
class LocalWorkers:
    """Worker processes on this machine (``jobs`` of them, default one per core)."""

    jobs: int | None = None

    @property
    def description(self) -> str:
        n = self.jobs or default_jobs()
        return f"{n:,} worker process{'es' if n != 1 else ''}"

    def embed(self, folder: Path, todo: Sequence[tuple[int, str]], session: EncoderSession,
              should_stop: Callable[[], bool] | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[ChunkResult]:
        return embed_files(folder, todo, session, jobs=self.jobs, max_pixels=max_pixels, should_stop=should_stop)


def make_engine(name: str, jobs: int | None = None, address: str | None = None) -> Engine:
    """The engine called ``name`` (:data:`ENGINE_NAMES`); ``address`` only for Ray."""
    if address is not None and name != "ray":
        raise EngineError(f"an address is for the ray engine only, not {name!r}")
    if name == "processes":
        return LocalWorkers(jobs)
    if name == "in-process":
        return InProcess()
    if name == "ray":
        from protoglyph.core.labeling import ray_engine

        ray_engine.ray_module()  # not installed: say so now, before the folder is even listed
        return ray_engine.RayEngine(address=address, workers=jobs)
    raise EngineError(f"no engine {name!r}; the engines are {', '.join(ENGINE_NAMES)}")
