"""File ▸ New, Open, Open Recent and Save As: choosing project files and switching to them.

A project is saved as every edit happens, so there is no Save: New picks where the new
file lives, Save As copies the project and continues in the copy.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu

from protoglyph.core.project import SUFFIX, Project, ProjectError
from protoglyph.core.workspace import Workspace
from protoglyph.gui import dialogs
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.settings import AppSettings

FILTER = f"Protoglyph projects (*{SUFFIX});;All files (*)"


def open_workspace(path: Path, controller: ProjectController) -> Workspace:
    """Open a project file and load its support set; :class:`ProjectError` for anything wrong."""
    project = Project.open(path)
    try:
        return Workspace(project, controller.workspace.encoder)
    except Exception as exc:
        project.close()
        raise ProjectError(path, f"the project's contents are damaged ({exc})") from exc


class ProjectFiles(QObject):
    """``switched`` is emitted after another project was opened or made."""

    switched = Signal()

    def __init__(self, window: QMainWindow, controller: ProjectController, settings: AppSettings) -> None:
        super().__init__(window)
        self.window = window
        self.controller = controller
        self.settings = settings
        self.recent_menu = QMenu("Open &Recent", window)
        self.recent_menu.aboutToShow.connect(self._fill_recent)

    def _folder(self) -> str:
        current = self.controller.workspace.project.path
        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return str(current.parent if "Protoglyph" not in str(current.parent) else Path(docs or Path.home()))

    def new_project(self) -> None:
        suggested = str(Path(self._folder()) / f"Untitled{SUFFIX}")
        name, _ = QFileDialog.getSaveFileName(self.window, "New Project", suggested, FILTER,
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if name:
            self.create(Path(name if name.endswith(SUFFIX) else name + SUFFIX))

    def create(self, path: Path) -> bool:
        try:
            if path.exists():
                raise ProjectError(path, "a file of that name already exists; choose another name "
                                         "(Protoglyph never overwrites a file with a new project)")
            workspace = Workspace(Project.create(path), self.controller.workspace.encoder)
        except ProjectError as exc:
            dialogs.project_error(self.window, exc.path, exc.problem, "create")
            return False
        self._switch(workspace)
        return True

    def open_project(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self.window, "Open Project", self._folder(), FILTER)
        if name:
            self.open(Path(name))

    def open(self, path: Path) -> bool:
        if path.resolve() == self.controller.workspace.project.path.resolve():
            return True
        try:
            workspace = open_workspace(path, self.controller)
        except ProjectError as exc:
            dialogs.project_error(self.window, exc.path, exc.problem)
            return False
        self._switch(workspace)
        return True

    def save_as(self) -> None:
        current = self.controller.workspace.project.path
        name, _ = QFileDialog.getSaveFileName(self.window, "Save Project As", str(Path(self._folder()) / current.name),
                                              FILTER)
        if name:
            self.save_to(Path(name if name.endswith(SUFFIX) else name + SUFFIX))

    def save_to(self, path: Path) -> bool:
        try:
            self.controller.workspace.project.save_as(path)
        except ProjectError as exc:
            dialogs.project_error(self.window, exc.path, exc.problem, "save")
            return False
        self.settings.add_recent(path)
        self.switched.emit()
        return True

    def _switch(self, workspace: Workspace) -> None:
        self.controller.replace_workspace(workspace)
        self.settings.add_recent(workspace.project.path)
        self.switched.emit()
        if workspace.problems:
            dialogs.project_problems(self.window, workspace.project.path, workspace.problems)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_projects()
        for entry in recent:
            act = self.recent_menu.addAction(Path(entry).name)
            act.setToolTip(entry)
            act.setStatusTip(entry)
            act.triggered.connect(lambda _=False, p=entry: self._open_recent(p))
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)

    def _open_recent(self, entry: str) -> None:
        if not Path(entry).exists():
            self.settings.remove_recent(entry)
            dialogs.project_error(self.window, Path(entry), "the file is no longer there; it was removed from the "
                                                            "recent projects")
            return
        self.open(Path(entry))
