"""The Ray engine: a folder's files embedded by Ray Data, on this machine or on a cluster.

``pip install 'protoglyph[ray]'`` on every machine. The files are listed on the machine that
runs ``protoglyph label`` (the driver), sent to the workers as ``(entry index, path)`` rows,
and read by the workers from the same path: the folder must be on storage every worker sees
at that path (a network file system; object storage is not read yet). The model is loaded by
each worker from its own path too (the shipped model is inside the installed package, so the
same installation everywhere gives the same file; a ``--model`` must be on shared storage) and
checked against the driver's by its content key. Only embeddings (float16) and reasons come
back; the project store is written on the driver alone.

Ray Data's ``map_batches`` runs :class:`_Embedder`, a callable class, on an actor pool: each
actor holds one ``EncoderSession`` with one intra-op thread (sessions are never pickled, each
is made on its worker), and one batch is one chunk of ``embedding.CHUNK`` files, the very chunks
the local workers get, given to ``embedding.embed_chunk``, the code every engine runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.imagefile import MAX_PIXELS
from protoglyph.core.labeling.embedding import CHUNK, WORKER_BATCH, BatchError, ChunkResult, default_jobs, embed_chunk
from protoglyph.core.labeling.engines import EngineError

INSTALL = "pip install 'protoglyph[ray]'"


def ray_module() -> Any:
    """Ray, with Ray Data; :class:`EngineError` with what to install where it is missing."""
    try:
        import ray
        import ray.data  # Ray Data is the extra's, not core Ray's
    except ImportError as exc:
        raise EngineError(f"the ray engine needs Ray Data, which is not installed here ({exc}); "
                          f"install it with: {INSTALL}") from exc
    return ray


class _Embedder:
    """One per Ray actor: loads the encoder on its worker and embeds one chunk per call.

    Its settings are a class attribute of a subclass made per run (:func:`_embedder_for`), not
    constructor arguments, which Ray would keep in its object store for restarting actors.
    """

    config: tuple[str, str, str, int]

    def __init__(self) -> None:
        import cv2

        model_path, model_key, folder, max_pixels = self.config
        cv2.setNumThreads(1)  # one core's share per actor, as the local workers
        self.session = EncoderSession(model_path, threads=1, batch_size=WORKER_BATCH)
        if self.session.model_key != model_key:
            raise BatchError(f"the encoder at {model_path} on this worker is not the driver's "
                             "(another version or a changed file); install the same version everywhere")
        self.folder, self.max_pixels = folder, max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (text,) = batch["chunk"]  # one chunk per batch: the same chunks as the local workers get
        chunk = [(int(i), str(p)) for i, p in json.loads(str(text))]
        result = embed_chunk(self.session, self.folder, chunk, self.max_pixels)
        n, size = result.count, self.session.embedding_size
        index = np.concatenate([result.indices, np.array([i for i, _ in result.errors], np.int64)])
        vectors = np.zeros((n, size), np.float16)
        vectors[: len(result.indices)] = result.embeddings
        reasons = np.array([""] * len(result.indices) + [r for _, r in result.errors], dtype=object)
        return {"index": index, "embedding": vectors, "error": reasons}


def _embedder_for(model_path: str, model_key: str, folder: str, max_pixels: int) -> type[_Embedder]:
    return type("ProtoglyphEmbedder", (_Embedder,), {"config": (model_path, model_key, folder, max_pixels)})


def _chunk_of(batch: dict[str, np.ndarray]) -> ChunkResult:
    """A ``ChunkResult`` from one output batch of :class:`_Embedder`."""
    reasons = [str(r) for r in batch["error"]]
    ok = np.array([not r for r in reasons], bool)
    index = np.asarray(batch["index"], np.int64)
    vectors = np.asarray(batch["embedding"], np.float16).reshape(len(index), -1)
    errors = [(int(i), r) for i, r, good in zip(index, reasons, ok, strict=True) if not good]
    return ChunkResult(index[ok], vectors[ok], errors)


@dataclass(frozen=True)
class RayEngine:
    """Ray Data on the cluster at ``address`` (``None``: the one this process is connected to,
    else a new local one); ``workers`` actors (default: the cluster's CPUs, locally one per core)."""

    address: str | None = None
    workers: int | None = None

    @property
    def description(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "Ray on this machine"
        if self.workers is None:
            return f"{where}, a worker per CPU"
        return f"{where}, {self.workers:,} worker{'s' if self.workers != 1 else ''}"

    def embed(self, folder: Path, todo: Sequence[tuple[int, str]], session: EncoderSession,
              should_stop: Callable[[], bool] | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[ChunkResult]:
        if not todo:
            return
        ray = ray_module()
        stop = should_stop or (lambda: False)
        started_here = not ray.is_initialized()
        for name in ("ray", "ray.data"):  # Ray's notes on its own setup are not the person's business
            logging.getLogger(name).setLevel(logging.ERROR)
        if started_here:
            try:
                local = self.address is None
                ray.init(address=self.address, num_cpus=(self.workers or default_jobs()) if local else None,
                         include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as exc:  # ConnectionError, a bad address, a cluster of another version
                raise EngineError(f"Ray could not start or reach its cluster ({self.address or 'local'}): "
                                  f"{type(exc).__name__}: {exc}") from exc
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            # One row per chunk of CHUNK files, as JSON text: each actor call embeds exactly the
            # chunk a local worker would, so the embeddings (and the CSV) are the same bit for bit.
            rows = [{"chunk": json.dumps(list(todo[i : i + CHUNK]))} for i in range(0, len(todo), CHUNK)]
            data = ray.data.from_items(rows, override_num_blocks=len(rows))
            actors = min(workers, len(rows))
            embedded = data.map_batches(
                _embedder_for(str(session.path), session.model_key, os.fspath(folder), max_pixels),
                batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
            for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                if stop():
                    return
                yield _chunk_of(batch)
        except (EngineError, BatchError):
            raise
        except Exception as exc:  # a worker's failure comes back wrapped in Ray's own exception
            raise BatchError(f"the ray engine stopped: {type(exc).__name__}: {str(exc)[:500]}; what was labeled "
                             "so far is kept, run again to go on") from exc
        finally:
            if started_here:
                with contextlib.suppress(Exception):
                    ray.shutdown()
