"""Thumbnails of a labeled folder's files, made on demand off the GUI thread.

A results grid may hold 100,000 items; only the few dozen on screen ever need a picture. The
grid asks for a thumbnail when it paints an item; a missing one is queued and read on the
thread pool, newest request first (what is on screen now), and the oldest requests are
dropped when the person scrolls far. Made thumbnails are kept in a bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.thumbnail import glyph_thumbnail
from protoglyph.gui.images import gray_to_qimage

#: Memory for made thumbnails (4 bytes a pixel as screen pixmaps): about 4,000 at 64 px, 250 at
#: 256 px; a screen shows about a hundred at 64 px.
CACHE_BYTES = 64 * 1024 * 1024
#: Requests kept waiting; older ones are dropped (their items have scrolled away).
QUEUE_SIZE = 400


class _Signals(QObject):
    loaded = Signal(int, int, QImage)  # generation, item index, thumbnail (null if unreadable)


class _Loader(QRunnable):
    def __init__(self, owner: FileThumbnails) -> None:
        super().__init__()
        self.owner = owner

    def run(self) -> None:
        while True:
            job = self.owner._next_job()
            if job is None:
                return
            generation, index, path = job
            try:
                image = gray_to_qimage(glyph_thumbnail(read_image(path), self.owner.size))
            except (ImageReadError, ValueError):
                image = QImage()
            self.owner.signals.loaded.emit(generation, index, image)


class FileThumbnails(QObject):
    """``changed(index)`` is emitted when an item's thumbnail becomes available."""

    changed = Signal(int)

    def __init__(self, pool: QThreadPool, size: int = 64, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.size = size
        self.signals = _Signals()
        self.signals.loaded.connect(self._loaded)
        self._cache: OrderedDict[int, QPixmap | None] = OrderedDict()
        self._queue: OrderedDict[int, Path] = OrderedDict()
        self._lock = threading.Lock()
        self._running = False
        self._generation = 0

    def get(self, index: int, path: Path) -> QPixmap | None:
        """The thumbnail if made (``None`` while loading or if unreadable); queues it otherwise."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        with self._lock:
            self._queue[index] = path
            self._queue.move_to_end(index)
            while len(self._queue) > QUEUE_SIZE:
                self._queue.popitem(last=False)
            start = not self._running
            self._running = True
        if start:
            self.pool.start(_Loader(self))
        return None

    def set_size(self, size: int) -> None:
        """Make thumbnails at ``size`` px from now on; those made at the old size are dropped."""
        if size != self.size:
            self.size = size
            self.clear()

    def clear(self) -> None:
        """Forget everything (another folder, or files moved by an export)."""
        with self._lock:
            self._queue.clear()
            self._generation += 1
        self._cache.clear()

    def _next_job(self) -> tuple[int, int, Path] | None:
        with self._lock:
            if not self._queue:
                self._running = False
                return None
            return (self._generation, *self._queue.popitem(last=True))

    def _loaded(self, generation: int, index: int, image: QImage) -> None:
        if generation != self._generation:
            return  # made for the folder shown before
        self._cache[index] = None if image.isNull() else QPixmap.fromImage(image)
        limit = max(100, CACHE_BYTES // (4 * self.size * self.size))
        while len(self._cache) > limit:
            self._cache.popitem(last=False)
        self.changed.emit(index)
