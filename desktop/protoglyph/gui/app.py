"""Starting the desktop app: the Qt application, the encoder (with a clear dialog when it
can't load), the project to open, the main window, and a safety net for unexpected errors."""

from __future__ import annotations

import sys
import time
import traceback
from importlib import resources
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

import protoglyph
from protoglyph.core.encoder import EncoderSession, ModelError
from protoglyph.core.project import SUFFIX, Project, ProjectError
from protoglyph.core.starter import open_starter_project
from protoglyph.core.workspace import Workspace
from protoglyph.gui import dialogs
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.main_window import MainWindow
from protoglyph.gui.settings import AppSettings, data_dir

STARTER_NAME = f"Starter project{SUFFIX}"


def application() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Protoglyph")
    app.setOrganizationName("Protoglyph")
    app.setApplicationVersion(protoglyph.__version__)
    app.setDesktopFileName("protoglyph")
    icon = resources.files("protoglyph") / "assets" / "protoglyph.svg"
    app.setWindowIcon(QIcon(str(icon)))
    return app


def starter_workspace(encoder: EncoderSession) -> Workspace:
    """The starter project in the app's data folder (what happened to a damaged one is the first
    of its ``problems``)."""
    return open_starter_project(data_dir() / STARTER_NAME, encoder)


def first_workspace(encoder: EncoderSession, settings: AppSettings, requested: Path | None) -> tuple[Workspace, str]:
    """The project to show at start: the one asked for, else the last one, else the starter;
    and why the one asked for could not be opened (``"file\n\nwhat is wrong"``), if so."""
    for candidate, asked in ((requested, True), (Path(settings.last_project() or ""), False)):
        if candidate is None or not str(candidate) or str(candidate) == ".":
            continue
        try:
            project = Project.open(candidate)
            return Workspace(project, encoder), ""
        except ProjectError as exc:
            if asked:
                return starter_workspace(encoder), f"{exc.path}\n\n{exc.problem}"
            settings.remove_recent(str(candidate))
    return starter_workspace(encoder), ""


class ErrorReporter:
    """Shows unexpected errors in a dialog (and a log file) instead of a hidden traceback."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self, kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, value, tb))
        try:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{text}\n")
        except OSError:
            pass
        if sys.__stderr__:
            sys.__stderr__.write(text)
        box = QMessageBox(QMessageBox.Icon.Critical, "Something went wrong",
                          f"Protoglyph hit an unexpected error: {value}\n\nYour project is safe: every edit is saved "
                          f"as it happens. Details were written to {self.log}.")
        box.setDetailedText(text)
        box.setObjectName("unexpectedError")
        box.open()


def run(project: Path | None = None, model: Path | None = None, exit_when_ready: bool = False) -> int:
    started = time.perf_counter()
    app = application()
    try:
        encoder = EncoderSession(model)
    except ModelError as exc:
        print(dialogs.model_error_text(exc), file=sys.stderr)
        dialogs.model_error(exc)
        return 2
    settings = AppSettings()
    sys.excepthook = ErrorReporter(data_dir() / "protoglyph.log")
    try:
        workspace, problem = first_workspace(encoder, settings, project)
    except ProjectError as exc:  # the starter itself is held locked by another program
        dialogs.project_error(None, exc.path, exc.problem, wait=True)
        return 2
    controller = ProjectController(workspace)
    settings.add_recent(workspace.project.path)
    window = MainWindow(controller, settings)
    window.show()
    if problem:
        dialogs.project_error(window, Path(problem.split("\n")[0]), problem.split("\n\n", 1)[-1])
    elif workspace.problems:
        for line in workspace.problems:  # for the log and a terminal, as well as the dialog
            print(f"protoglyph: {workspace.project.path}: {line}", file=sys.stderr)
        dialogs.project_problems(window, workspace.project.path, workspace.problems)
    if exit_when_ready:
        # Posted now, so it runs once the event loop has shown the window and handled pending events.
        QTimer.singleShot(0, lambda: (print(f"ready {time.perf_counter() - started:.3f}", flush=True),
                                      window.close(), app.quit()))
    return app.exec()
