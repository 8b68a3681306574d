"""Exporting a labeled folder from the window: a CSV or JSON table, or a folder per class.

Tables are written at once (atomically). A folder-per-class export copies (or moves) files on
the thread pool with progress in the status bar; its journal lets an interrupted export be
resumed and finished ones be undone, newest first (File ▸ Undo Folder Export).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from protoglyph.core.export import ExportError
from protoglyph.core.export import folders as ex
from protoglyph.core.export.tables import write_csv, write_json
from protoglyph.core.labeling.results import folder_export_items, result_rows
from protoglyph.gui.batch_session import BatchSession
from protoglyph.gui.jobs import Job

FORMATS = ("CSV table (.csv)", "JSON (.json)", "A folder per class: copy the files",
           "A folder per class: move the files")


LAST_DEST_KEY = "exports/last_folder"


def can_undo(dest: Path | None) -> bool:
    """Whether File ▸ Undo Folder Export has something to undo (the last export's folder)."""
    try:
        return dest is not None and ex.can_undo_export(dest)
    except (OSError, ExportError):
        return False


class ExportChoice(QDialog):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Results")
        col = QVBoxLayout(self)
        col.addWidget(QLabel("Export the labels of this folder as:", self))
        self.formats = [QRadioButton(text, self) for text in FORMATS]
        self.formats[0].setChecked(True)
        for b in self.formats:
            col.addWidget(b)
        self.reviewed_only = QCheckBox("Only items a person reviewed (folders)", self)
        self.with_unknown = QCheckBox("Put unknown items in a folder “unknown” (folders)", self)
        col.addWidget(self.reviewed_only)
        col.addWidget(self.with_unknown)
        for b in self.formats:
            b.toggled.connect(self._folder_options)
        self._folder_options()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)

    def choice(self) -> int:
        return next(i for i, b in enumerate(self.formats) if b.isChecked())

    def _folder_options(self) -> None:
        """The two options are about folders: off (and unticked in effect) for a table."""
        folders = self.choice() >= 2
        for box in (self.reviewed_only, self.with_unknown):
            box.setEnabled(folders)


class _FolderJob(Job):
    """A folder export, its resumption or its undo; finishes with the ``ExportReport``."""

    def __init__(self, task: Callable[[Callable[[int, int], None]], ex.ExportReport]) -> None:
        super().__init__()
        self.task = task

    def work(self) -> ex.ExportReport:
        return self.task(lambda done, total: self.progress(done, total))

    def describe(self, exc: Exception) -> str:
        return f"{exc.path}: {exc.problem}" if isinstance(exc, ExportError) else super().describe(exc)


class ExportRunner(QObject):
    finished = Signal()

    def __init__(self, window: QMainWindow, pool: QThreadPool) -> None:
        super().__init__(window)
        self.window, self.pool = window, pool
        # Where the last folder export went, kept across sessions so File ▸ Undo Folder Export knows.
        last = QSettings().value(LAST_DEST_KEY, "")
        self.last_dest: Path | None = Path(str(last)) if last else None
        self.busy = False
        self._dest, self._what = Path(), ""

    def export(self, session: BatchSession, choice: int | None = None, target: Path | None = None,
               reviewed_only: bool = False, with_unknown: bool = False) -> None:
        """Ask what and where (unless given, as tests do), then export."""
        if choice is None:
            dialog = ExportChoice(self.window)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice, reviewed_only, with_unknown = (dialog.choice(), dialog.reviewed_only.isChecked(),
                                                   dialog.with_unknown.isChecked())
        names = {c.id: c.name for c in session.controller.workspace.classes()}
        if choice in (0, 1):
            suffix = ".csv" if choice == 0 else ".json"
            if target is None:
                name, _ = QFileDialog.getSaveFileName(self.window, "Export Results", str(session.folder) + suffix,
                                                      f"*{suffix}")
                if not name:
                    return
                target = Path(name)
            self._table(session, names, choice, target)
        else:
            if target is None:
                chosen = QFileDialog.getExistingDirectory(self.window, "Export into Folder")
                if not chosen:
                    return
                target = Path(chosen)
            self._folders(session, names, target, move=choice == 3, reviewed_only=reviewed_only,
                          with_unknown=with_unknown)

    def _table(self, session: BatchSession, names: dict[int, str], choice: int, target: Path) -> None:
        rows = result_rows(session.results, names)
        try:
            if choice == 0:
                n = write_csv(rows, target)
            else:
                n = write_json(rows, target, {"folder": str(session.folder),
                                                 "threshold": session.results.threshold})
        except ExportError as exc:
            QMessageBox.warning(self.window, "Export failed", f"{exc.path}\n\n{exc.problem}")
            return
        self.window.statusBar().showMessage(f"Exported {n:,} items to {target}.", 10000)
        self.finished.emit()

    def _folders(self, session: BatchSession, names: dict[int, str], dest: Path, *, move: bool,
                 reviewed_only: bool, with_unknown: bool) -> None:
        pending = ex.pending_export(dest)
        if pending:
            answer = QMessageBox.question(
                self.window, "Unfinished export",
                f"An earlier export into {dest} was interrupted with {pending:,} files still to do.\n\n"
                "Finish it now? (No discards its journal; files already exported stay.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel)
            if answer == QMessageBox.StandardButton.Yes:
                self._run(lambda progress: ex.resume_export(dest, progress=progress), dest, "Export")
                return
            if answer != QMessageBox.StandardButton.No:
                return
            ex.discard_export(dest)
        items = folder_export_items(session.results, names, reviewed_only, with_unknown)
        if not items:
            QMessageBox.information(self.window, "Nothing to export", "No item matches what you chose to export.")
            return
        self._run(lambda progress: ex.export_folders(items, dest, move=move, progress=progress), dest,
                  "Move" if move else "Copy")

    def undo(self, dest: Path | None = None) -> None:
        """Undo the last folder export into ``dest`` (asks which folder if not given); each undo
        steps back one export."""
        if dest is None:
            start = str(self.last_dest or "")
            chosen = QFileDialog.getExistingDirectory(self.window, "Undo the Export into Folder", start)
            if not chosen:
                return
            dest = Path(chosen)
        if not ex.can_undo_export(dest):
            QMessageBox.information(self.window, "Nothing to undo", f"No folder export into {dest} is left to undo.")
            return
        self._run(lambda progress: ex.undo_export(dest), dest, "Undo of the export")

    def _run(self, work: Callable[[Callable[[int, int], None]], ex.ExportReport], dest: Path, what: str) -> None:
        if self.busy:
            self.window.statusBar().showMessage("An export is running; wait for it to finish.", 5000)
            return
        self.busy = True
        self._dest, self._what = dest, what
        job = _FolderJob(work)
        job.signals.progressed.connect(self._progressed)
        # Bound methods of this QObject (never lambdas), so each is queued to the GUI thread.
        job.signals.finished.connect(self._finished)
        job.signals.errored.connect(self._errored)
        self.pool.start(job)

    def _finished(self, report: ex.ExportReport) -> None:
        self._done(report, "")

    def _errored(self, error: str) -> None:
        self._done(None, error)

    def _progressed(self, done: int, total: int, _payload: object) -> None:
        self.window.statusBar().showMessage(f"{self._what}: {done:,} of {total:,} files…")

    def _done(self, report: ex.ExportReport | None, error: str) -> None:
        dest, what = self._dest, self._what
        self.busy = False
        self.last_dest = dest
        QSettings().setValue(LAST_DEST_KEY, str(dest))
        if report is None:
            again = ("Files already put back stay where they are; undo again to finish." if what.startswith("Undo")
                     else "Files already exported stay; choose the same folder again to finish the export.")
            QMessageBox.warning(self.window, f"{what} failed", f"{error}\n\n{again}")
        else:
            skipped = f"; {len(report.skipped):,} skipped" if report.skipped else ""
            self.window.statusBar().showMessage(f"{what} into {dest}: {report.done:,} files{skipped}.", 15000)
            if report.skipped:
                lines = "\n".join(f"{p}: {why}" for p, why in report.skipped[:20])
                QMessageBox.information(self.window, f"{what}: some files were skipped", lines)
        self.finished.emit()
