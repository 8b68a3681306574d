"""The window's one worker base (``gui/jobs.py``): each job says started, progressed, then exactly
one of finished, cancelled or errored, on the GUI thread; and the status bar's progress widget."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QObject, Qt, QThreadPool
from PySide6.QtWidgets import QMainWindow

from protoglyph.gui.jobs import Job, JobProgress


class Recorder(QObject):
    """Bound slots of a GUI-thread QObject, as the runners connect them."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.events: list[tuple[object, ...]] = []
        self.threads: set[int] = set()
        s = job.signals
        s.started.connect(self.started)
        s.progressed.connect(self.progressed)
        s.finished.connect(self.finished)
        s.cancelled.connect(self.cancelled)
        s.errored.connect(self.errored)

    def _note(self, *event: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(event)

    def started(self) -> None:
        self._note("started")

    def progressed(self, done: int, total: int, payload: object) -> None:
        self._note("progressed", done, total, payload)

    def finished(self, result: object) -> None:
        self._note("finished", result)

    def cancelled(self) -> None:
        self._note("cancelled")

    def errored(self, message: str) -> None:
        self._note("errored", message)


class Counting(Job):
    def __init__(self, fail: bool = False, stop_after: int | None = None) -> None:
        super().__init__()
        self.fail, self.stop_after = fail, stop_after

    def work(self) -> object:
        for i in range(3):
            if self.stop_after is not None and i == self.stop_after:
                self.cancel()  # as Cancel does from the GUI thread, between steps
            if self.cancelled:
                return None
            self.progress(i + 1, 3, f"step {i}")
        if self.fail:
            raise OSError("the disk went away")
        return "done"


def _run(qtbot, job: Job) -> Recorder:  # type: ignore[no-untyped-def]
    recorder = Recorder(job)
    QThreadPool.globalInstance().start(job)
    qtbot.waitUntil(lambda: bool(recorder.events) and recorder.events[-1][0] in ("finished", "cancelled", "errored"),
                    timeout=5000)
    return recorder


@pytest.mark.parametrize(("how", "last"), [({}, ("finished", "done")),
                                           ({"fail": True}, ("errored", "OSError: the disk went away")),
                                           ({"stop_after": 1}, ("cancelled",))])
def test_a_job_says_one_ending_after_its_progress_on_the_gui_thread(qtbot, how: dict, last: tuple) -> None:  # type: ignore[no-untyped-def]
    job = Counting(**how)
    recorder = _run(qtbot, job)
    assert recorder.events[0] == ("started",)
    assert recorder.events[-1] == last
    endings = [e for e in recorder.events if e[0] in ("finished", "cancelled", "errored")]
    assert len(endings) == 1
    steps = [e for e in recorder.events if e[0] == "progressed"]
    assert steps[0] == ("progressed", 1, 3, "step 0")
    assert recorder.threads == {threading.get_ident()}  # queued to this (the GUI) thread


def test_the_progress_widget_is_busy_until_a_total_is_known_and_its_button_cancels(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = QMainWindow()
    qtbot.addWidget(window)
    progress = JobProgress(window, "Doing %v of %m")
    window.statusBar().addPermanentWidget(progress)
    window.show()
    assert not progress.isVisible()
    progress.begin("listing…")
    assert progress.isVisible() and progress.bar.maximum() == 0 and progress.text.text() == "listing…"
    progress.update_progress(4096, 20000)
    assert (progress.bar.value(), progress.bar.maximum()) == (4096, 20000)
    assert progress.bar.text() == "Doing 4,096 of 20,000"  # with thousands separators, which Qt's %v lacks
    with qtbot.waitSignal(progress.cancelRequested, timeout=1000):
        qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    progress.begin(cancellable=False)
    assert not progress.cancel_button.isVisible()
    progress.end()
    assert not progress.isVisible()


def test_percentages_never_say_impossible_or_certain_when_neither() -> None:
    from protoglyph.gui.wording import percent

    assert [percent(p) for p in (0.0, 0.001, 0.004, 0.37, 0.994, 0.996, 1.0)] == [
        "0%", "<1%", "<1%", "37%", "99%", ">99%", "100%"]
