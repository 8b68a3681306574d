"""Work off the GUI thread, with one signal vocabulary, and the one progress widget that shows it.

A :class:`Job` runs on the ``QThreadPool``; its :class:`JobSignals` say, queued to the GUI
thread, in this order: ``started``; any number of ``progressed(done, total, payload)``
(``total`` 0 while not known yet; ``payload`` whatever the job hands over on the way, e.g. a
labeled chunk, or ``None``); then exactly one of ``finished(result)``, ``cancelled()`` or
``errored(message)``. Nothing a job raises is lost on the worker thread: it becomes
``errored``, with the words to show. :class:`JobProgress` is the status bar's bar, text and
Cancel button that the window's runners share.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget


class JobSignals(QObject):
    started = Signal()
    progressed = Signal(int, int, object)  # done, total (0: not known yet), payload or None
    finished = Signal(object)  # the job's result
    cancelled = Signal()
    errored = Signal(str)  # what went wrong, in words


class Job(QRunnable):
    """Override :meth:`work`; call :meth:`progress` on the way and look at :attr:`cancelled`."""

    def __init__(self) -> None:
        super().__init__()
        self.signals = JobSignals()
        #: Set from the GUI thread (Cancel); the work looks at it between steps.
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def progress(self, done: int, total: int, payload: object = None) -> None:
        self.signals.progressed.emit(done, total, payload)

    def work(self) -> object:
        raise NotImplementedError

    def describe(self, exc: Exception) -> str:
        """The words ``errored`` carries for what the work raised."""
        return f"{type(exc).__name__}: {exc}"

    def run(self) -> None:
        self.signals.started.emit()
        try:
            result = self.work()
        except Exception as exc:  # reported to the window, never lost on a worker thread
            if self.cancelled:  # what a cancel interrupted is no error
                self.signals.cancelled.emit()
            else:
                self.signals.errored.emit(self.describe(exc))
            return
        if self.cancelled:
            self.signals.cancelled.emit()
        else:
            self.signals.finished.emit(result)


class JobProgress(QWidget):
    """A progress bar, a line of text and a Cancel button for the status bar; hidden when idle.

    ``format`` is the bar's text (``%v`` done, ``%m`` total, written with thousands separators);
    the bar is busy (moving) while the total is not known. ``cancelRequested`` is emitted by the button.
    """

    cancelRequested = Signal()

    def __init__(self, parent: QWidget, format: str, cancel_tip: str = "", width: int = 240) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(width)
        self.format = format
        self.bar.setFormat(format)
        self.text = QLabel(self)
        self.cancel_button = QPushButton("Cancel", self)
        if cancel_tip:
            self.cancel_button.setToolTip(cancel_tip)
        self.cancel_button.clicked.connect(self.cancelRequested.emit)
        for w in (self.bar, self.text, self.cancel_button):
            row.addWidget(w)
        self.hide()

    def begin(self, text: str = "", cancellable: bool = True) -> None:
        self.bar.setRange(0, 0)
        self.text.setText(text)
        self.text.setVisible(bool(text))
        self.cancel_button.setVisible(cancellable)
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
            # Qt's %v and %m have no thousands separators: "Labeling 4,096 of 20,000"
            self.bar.setFormat(self.format.replace("%v", f"{done:,}").replace("%m", f"{total:,}"))
        else:
            self.bar.setRange(0, 0)

    def say(self, text: str) -> None:
        self.text.setText(text)
        self.text.setVisible(bool(text))

    def end(self) -> None:
        self.hide()
