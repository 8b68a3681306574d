"""Labels a folder on the thread pool and shows progress (done / total, rate, time left) and
Cancel in the status bar.

The job on the pool runs the core's one pipeline (``core.labeling.run.label_folder``: list the
folder, read what the project already holds for it, predict the stored items, then embed the
rest on local worker processes and store every finished chunk) with its own connection to the
project file. The GUI thread only takes finished chunks into the
arrays the results view reads (well under a millisecond each) and refreshes the view a few
times a second, so the window stays responsive throughout.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QMainWindow, QMessageBox

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling.embedding import BatchError, ChunkResult, default_jobs
from protoglyph.core.labeling.engines import LocalWorkers
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.run import ChunkDone, Started, Support, label_folder
from protoglyph.core.project import Project
from protoglyph.core.threshold import OpenSetReference
from protoglyph.core.workspace import Workspace
from protoglyph.gui.batch_session import BatchSession
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.jobs import Job, JobProgress

#: Time between two updates of the progress bar, and (at least) of the results view.
PROGRESS_MS = 300
REFRESH_MS = 1000


class BatchJob(Job):
    """Everything of a labeling run that takes time, off the GUI thread: the core's one pipeline
    (``labeling.run.label_folder``), each of its events handed over as a ``progressed`` payload
    (first ``Started`` with the results, then a ``ChunkDone`` per chunk, already stored).

    ``keys``/``prototypes`` are a copy of the classifier's at the start; the window re-ranks
    with the current ones when it takes the results in.
    """

    def __init__(self, folder: Path, project_path: Path, encoder: EncoderSession, jobs: int,
                 keys: list[int], prototypes: np.ndarray) -> None:
        super().__init__()
        self.folder, self.project_path, self.encoder, self.jobs = folder, project_path, encoder, jobs
        self.keys, self.prototypes = keys, prototypes
        self.reference: OpenSetReference | None = None  # the support set's, for calibrated confidences

    def work(self) -> None:
        project = Project.attach(self.project_path)
        project.on_wait = self._give_up_if_cancelled  # another program holds the file: Cancel still works
        try:
            support = Support(self.keys, self.prototypes, self.reference)
            done = total = 0
            for event in label_folder(self.folder, self.encoder, support, project=project,
                                      engine=LocalWorkers(self.jobs), should_stop=lambda: self.cancelled,
                                      mark_shown=True):  # shown again when the project is opened next time
                if isinstance(event, Started):
                    total = len(event.results.table.todo)
                else:
                    done += event.chunk.count
                self.progress(done, total, event)
        finally:
            project.close()

    def _give_up_if_cancelled(self, waited: float) -> None:
        if self.cancelled:
            raise BatchError(f"cancelled after waiting {waited:.0f} s for another program to release the project")


class BatchRunner(QObject):
    """``sessionStarted(session)`` when a folder's results are ready to show; ``finished(message)``."""

    sessionStarted = Signal(object)
    finished = Signal()  # done, cancelled or failed: what it said is in the status bar or a message

    def __init__(self, window: QMainWindow, controller: ProjectController, pool: QThreadPool) -> None:
        super().__init__(window)
        self.window, self.controller, self.pool = window, controller, pool
        self.job: BatchJob | None = None
        self.session: BatchSession | None = None
        # The project the last run started in, weakly: a project closed since then must not stay in memory.
        self._started_in: Callable[[], Workspace | None] = weakref.ref(controller.workspace)
        self.jobs = default_jobs()
        self.status = JobProgress(window, "Labeling %v of %m",
                                  "Stop labeling; what is done is kept, and labeling the folder again goes on")
        self.status.cancelRequested.connect(self.cancel)
        window.statusBar().addPermanentWidget(self.status)
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.timeout.connect(self._show_progress)
        self._started = 0.0
        self._done = self._total = 0
        self._interval = REFRESH_MS
        self._last_view = 0.0

    def busy(self) -> bool:
        return self.job is not None

    def start(self, folder: Path) -> bool:
        if self.job is not None:
            self.window.statusBar().showMessage("A folder is being labeled; wait for it or cancel it.", 5000)
            return False
        ws = self.controller.workspace
        keys, prototypes = ws.classifier.prototypes()
        job = BatchJob(folder, ws.project.path, ws.encoder, self.jobs,
                       [int(k) for k in keys], prototypes.copy())  # type: ignore[call-overload]
        job.reference = ws.classifier.open_set_reference()
        job.signals.progressed.connect(self._progressed)
        # Bound methods of this QObject (never lambdas), so each is queued to the GUI thread.
        job.signals.finished.connect(self._finished)
        job.signals.cancelled.connect(self._cancelled)
        job.signals.errored.connect(self._ended)
        self.job = job
        self._started_in = weakref.ref(ws)
        self.window.statusBar().clearMessage()  # what the last run said is not about this one
        self.status.begin("listing the folder…")
        self.pool.start(job)
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.say("stopping…")

    def close_session(self) -> None:
        """Forget the shown folder (the project was switched)."""
        self.cancel()
        if self.session is not None:
            self.session.close()
            self.session = None
        self.controller.shown_folder = None

    def _finished(self, _result: object) -> None:
        self._ended("")

    def _cancelled(self) -> None:
        self._ended("cancelled")

    def _progressed(self, _done: int, _total: int, event: object) -> None:
        if isinstance(event, Started):
            self._prepared(event.results)
        elif isinstance(event, ChunkDone):
            self._chunk(event.chunk)

    def _prepared(self, results: BatchResults) -> None:
        if self.controller.workspace is not self._started_in():
            self.cancel()
            return
        session = BatchSession(self.controller, results)
        session.announced.connect(self._announce)
        if self.session is not None:
            self.session.close(successor=session)
        session.running = True
        self.session = session
        self.controller.shown_folder = session
        self._started = time.perf_counter()
        self._done, self._total = 0, len(results.table.todo)
        self.status.update_progress(0, max(self._total, 1))
        self.sessionStarted.emit(session)

    def _announce(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 8000)

    def _chunk(self, chunk: ChunkResult) -> None:
        session = self.session
        if session is None or self.controller.workspace is not self._started_in():
            return
        session.table.apply(chunk)
        session.chunk_arrived(chunk.indices)
        self._done += chunk.count
        if not self._refresh.isActive():
            self._refresh.start(PROGRESS_MS)

    def _show_progress(self) -> None:
        self.status.update_progress(self._done, max(self._total, 1))
        elapsed = time.perf_counter() - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = (self._total - self._done) / rate if rate > 0 else 0.0
        self.status.say(f"{rate:,.0f} images/s, {left:,.0f} s left")
        now = time.perf_counter()
        if self.session is not None and 1000 * (now - self._last_view) >= self._interval:
            self.session.updated.emit()
            self._last_view = time.perf_counter()
            # A view of 100,000 items takes longer to refresh: refresh it less often.
            self._interval = max(REFRESH_MS, round(20_000 * (self._last_view - now)))

    def _ended(self, message: str) -> None:
        """The job is over: ``message`` "" when done, "cancelled", or what went wrong."""
        self.job = None
        self._refresh.stop()
        self.status.end()
        session = self.session
        if session is not None:
            session.running = False
            session.results.refresh_share()  # from every item: the same confidences however they came
            session.updated.emit()
        elapsed = time.perf_counter() - self._started
        status = self.window.statusBar()
        if message and message != "cancelled":
            QMessageBox.warning(self.window, "Labeling stopped",
                                f"Labeling the folder stopped with an error. What was labeled is kept; "
                                f"labeling the folder again goes on from there.\n\n{message}")
        elif message == "cancelled":
            status.showMessage(f"Labeling cancelled after {self._done:,} images; they are kept. Label the folder "
                               "again to go on.", 10000)
        elif session is not None:
            errors = len(session.table.errors)
            rate = f" ({self._done / elapsed:,.0f} images/s)" if self._done and elapsed > 0 else ""
            status.showMessage(f"Labeled {self._done:,} new or changed images in {elapsed:.1f} s{rate}; "
                               f"{len(session.table):,} files in the folder, {errors:,} could not be used.", 15000)
        self.finished.emit()
