"""Runs imports on the thread pool, shows their progress in the status bar with a Cancel
button, and adds what they read to the project as one undoable step when they finish."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox

from protoglyph.core.workspace import Workspace
from protoglyph.gui import dialogs
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.importer import ImportResult, ImportWorker
from protoglyph.gui.jobs import JobProgress


class ImportRunner(QObject):
    """``finished(added)`` is emitted after every import, cancelled or not."""

    finished = Signal(int)

    def __init__(self, window: QMainWindow, controller: ProjectController, pool: QThreadPool) -> None:
        super().__init__(window)
        self.window = window
        self.controller = controller
        self.pool = pool
        self.worker: ImportWorker | None = None
        # The project an import started in, weakly: a project closed since then must not stay in memory.
        self._started_in: Callable[[], Workspace | None] = weakref.ref(controller.workspace)
        self.progress = JobProgress(window, "Importing %v of %m", "Stop importing; nothing is added", width=220)
        self.progress.cancelRequested.connect(self.cancel)
        window.statusBar().addPermanentWidget(self.progress)
        self._started = 0.0

    def busy(self) -> bool:
        return self.worker is not None

    def start(self, paths: Sequence[Path], target: int) -> bool:
        if self.worker is not None:
            self.window.statusBar().showMessage("An import is already running; wait for it or cancel it.", 5000)
            return False
        worker = ImportWorker(self.controller.workspace, paths, target)
        worker.signals.progressed.connect(self._progressed)
        worker.signals.finished.connect(self._finished)
        worker.signals.cancelled.connect(self._cancelled)
        worker.signals.errored.connect(self._errored)
        self.worker = worker
        self._started_in = weakref.ref(self.controller.workspace)
        self._started = time.perf_counter()
        self.progress.begin()
        self.pool.start(worker)
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _progressed(self, done: int, total: int, _payload: object) -> None:
        self.progress.update_progress(done, max(total, 1))

    def _done(self) -> None:
        self.worker = None
        self.progress.end()

    def _cancelled(self) -> None:
        self._done()
        self.window.statusBar().showMessage("Import cancelled; nothing was added.", 8000)
        self.finished.emit(0)

    def _errored(self, text: str) -> None:
        self._done()
        QMessageBox.warning(self.window, "Import failed",
                            f"The import stopped with an error; nothing was added.\n\n{text}")
        self.finished.emit(0)

    def _finished(self, result: ImportResult) -> None:
        self._done()
        status = self.window.statusBar()
        if self.controller.workspace is not self._started_in():
            status.showMessage("The project changed during the import; nothing was added.", 8000)
            self.finished.emit(0)
            return
        added = self.controller.add_groups(result.groups, result.target)
        seconds = time.perf_counter() - self._started
        status.showMessage(f"Added {added} example{'s' if added != 1 else ''} in {seconds:.1f} s "
                           f"({len(result.problems)} skipped). Edit ▸ Undo takes them back.", 10000)
        if result.problems:
            dialogs.file_problems(self.window, result.problems, result.total)
        self.finished.emit(added)
