"""Labeling a folder, part 2: read, preprocess and embed its files.

The work is spread over worker processes, one ``EncoderSession`` with one thread in each:
decoding and preprocessing are plain Python/numpy/OpenCV work that one process cannot
spread over cores, so processes are what makes a 2-core machine label twice as fast. Files
go to the workers in chunks of :data:`CHUNK` paths; what comes back is small (a float16
embedding per usable image, a reason per unusable one), and the caller stores it chunk by
chunk, so a cancel or a crash loses at most the chunks in flight. Small folders are done
in this process, where starting workers would cost more than it saves.

A file that cannot be used (not an image, damaged, too many pixels, blank, unreadable) is
never an exception here: it comes back with the reason, and the batch goes on. Nothing
below ever writes to the labeled folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.imagefile import (
    MAX_PIXELS,
    OUT_OF_MEMORY,
    ImageReadError,
    address_space,
    limit_memory,
    read_image,
)

#: Files per unit of work sent to a worker process.
CHUNK = 256
#: Below this many files to do, work in this process (no worker start-up, about 0.5 s each).
IN_PROCESS_BELOW = 1024
BLANK = "blank: no glyph found in the image"
OVERFLOW = "the encoder's embedding of this image is too large to store (float16)"


class BatchError(RuntimeError):
    """The batch as a whole cannot go on (a worker process died, the folder vanished)."""


@dataclass
class ChunkResult:
    """Embeddings of the usable files of one chunk, and the reason for each unusable one."""

    indices: np.ndarray  # (n,) int64: the entries that were embedded
    embeddings: np.ndarray  # (n, D) float16
    errors: list[tuple[int, str]]  # (entry index, reason)

    @property
    def count(self) -> int:
        return len(self.indices) + len(self.errors)


def embed_chunk(session: EncoderSession, folder: str, chunk: Sequence[tuple[int, str]],
                max_pixels: int = MAX_PIXELS) -> ChunkResult:
    """Read, preprocess and embed ``(entry index, relative path)`` pairs."""
    images, ok, errors = [], [], []
    for index, rel in chunk:
        try:
            images.append(read_image(os.path.join(folder, rel), max_pixels))
            ok.append(index)
        except ImageReadError as exc:
            errors.append((index, exc.reason))
        except Exception as exc:  # a decoder's own failure must not end the batch
            errors.append((index, f"could not be decoded ({type(exc).__name__}: {str(exc)[:200]})"))
    try:
        inputs = session.preprocess(images)
    except MemoryError:  # under a worker's memory limit: find the image that does not fit
        inputs, ok, errors = _preprocess_one_by_one(images, ok, errors, session)
    # any() over the pixel axes, not a reshape to (n, -1): numpy cannot infer -1 when n is 0,
    # which is every chunk in which no file could be read at all.
    blank = ~inputs.any(axis=(1, 2, 3))
    errors.extend((ok[i], BLANK) for i in np.flatnonzero(blank))
    keep = np.flatnonzero(~blank)
    vectors = session.embed_inputs(inputs[keep]).astype(np.float16)
    # The encoder's output is checked to be finite; float16 (largest 65504) must hold it too.
    fits = np.isfinite(vectors).all(axis=1)
    errors.extend((ok[keep[i]], OVERFLOW) for i in np.flatnonzero(~fits))
    return ChunkResult(np.asarray(ok, dtype=np.int64)[keep[fits]], vectors[fits], errors)


def _preprocess_one_by_one(images: list[np.ndarray], ok: list[int], errors: list[tuple[int, str]],
                           session: EncoderSession) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    kept, fitted = [], []
    for index, image in zip(ok, images, strict=True):
        try:
            fitted.append(session.preprocess([image])[0])
            kept.append(index)
        except MemoryError:
            errors.append((index, OUT_OF_MEMORY))
    size = session.input_size
    return np.asarray(fitted, np.float32).reshape(-1, session.channels, size, size), kept, errors


# -- worker processes -------------------------------------------------------------------
_worker_session: EncoderSession | None = None


#: Images per ``session.run`` in a worker. Small batches are as fast per image on one thread
#: (measured: 206 us at 8, 241 us at 256) and keep the activations, and so each worker's
#: memory, small (106 instead of 315 MB peak at 256).
WORKER_BATCH = 16


def _start_worker(model_path: str, model_key: str) -> None:
    global _worker_session
    _die_with_parent()
    with contextlib.suppress(AttributeError, OSError):  # os.nice is POSIX only
        os.nice(5)  # the window (or the command's own process) comes first for the CPU
    # One thread: each worker is one core's share already, and OpenCV's pool would reserve
    # 72 MB of address space per core (measured: 498 to 1,733 MB on 16 cores).
    cv2.setNumThreads(1)
    _worker_session = EncoderSession(model_path, threads=1, batch_size=WORKER_BATCH)
    if _worker_session.model_key != model_key:  # the file was replaced since the batch began
        raise BatchError(f"the encoder {model_path} changed while labeling; run again")
    in_use = address_space()
    if in_use is not None:
        limit_memory(in_use + WORKER_MEMORY_HEADROOM)


#: Memory a worker may take beyond what it holds once its encoder is loaded (Linux, RLIMIT_AS).
#: Images are decoded reduced to 16 megapixels (a 10,000 x 10,000 RGBA PNG then peaks at about
#: 810 MB in OpenCV's decoder), so this is room for the worst image, not a squeeze: one that
#: still does not fit becomes an error item instead of the kernel killing the worker and the batch.
WORKER_MEMORY_HEADROOM = 1536 * 2**20

#: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: Linux kills the worker the moment its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Make this worker process end when the process that started it ends, however it ends.

    A parent killed with SIGKILL (or a crash, or the window's process ending) runs no clean-up,
    and its workers would live on: about 100 MB each, holding its stdout and stderr open, so
    that a caller reading them waits forever. On Linux the kernel kills the worker at once
    (``PR_SET_PDEATHSIG``); everywhere, a thread waits on the parent's sentinel (it becomes
    ready when the parent is gone) and ends the process.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.name == "posix" and os.getppid() != parent.pid:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _work(folder: str, chunk: list[tuple[int, str]], max_pixels: int) -> ChunkResult:
    assert _worker_session is not None, "worker started without its encoder"
    return embed_chunk(_worker_session, folder, chunk, max_pixels)


def _model_changed(session: EncoderSession) -> bool:
    """Whether the model file no longer holds what ``session`` loaded (workers load it by path)."""
    try:
        return hashlib.sha256(Path(session.path).read_bytes()).hexdigest() != session.sha256
    except OSError:
        return True


def default_jobs() -> int:
    """Worker processes to use: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def embed_files(folder: Path, todo: Sequence[tuple[int, str]], session: EncoderSession, *,
                jobs: int | None = None, max_pixels: int = MAX_PIXELS,
                should_stop: Callable[[], bool] | None = None) -> Iterator[ChunkResult]:
    """Embed files chunk by chunk, in worker processes where it pays; yields as chunks finish.

    Args:
        folder: the labeled folder; ``todo`` paths are relative to it.
        todo: ``(entry index, relative path)`` of the files to do.
        session: the encoder (used in this process; workers load the same model file).
        jobs: worker processes (default: one per core); 1 works in this process.
        should_stop: polled between chunks; True stops early (what was yielded stays valid).
    Raises:
        BatchError: a worker process died (the chunks yielded before it are valid).
    """
    stop = should_stop or (lambda: False)
    chunks = [list(todo[i : i + CHUNK]) for i in range(0, len(todo), CHUNK)]
    jobs = default_jobs() if jobs is None else max(1, jobs)
    if jobs == 1 or len(todo) < IN_PROCESS_BELOW:
        for chunk in chunks:
            if stop():
                return
            yield embed_chunk(session, str(folder), chunk, max_pixels)
        return
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(str(session.path), session.model_key))
    pending: deque[Future[ChunkResult]] = deque()
    sent = 0
    try:
        while sent < len(chunks) and len(pending) < 2 * jobs:
            pending.append(pool.submit(_work, str(folder), chunks[sent], max_pixels))
            sent += 1
        while pending and not stop():
            try:
                result = pending.popleft().result()
            except BrokenProcessPool as exc:
                if _model_changed(session):
                    raise BatchError(f"the encoder {session.path} was replaced while labeling; what was labeled "
                                     "so far is kept, run again to go on with the new one") from exc
                raise BatchError("a worker process stopped unexpectedly (out of memory, or a decoder crashed); "
                                 "what was labeled so far is kept, run again to go on") from exc
            if sent < len(chunks):
                pending.append(pool.submit(_work, str(folder), chunks[sent], max_pixels))
                sent += 1
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
