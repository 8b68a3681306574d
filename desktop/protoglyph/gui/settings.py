"""What the app remembers between runs (``QSettings``) and where it keeps its own files."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths
from PySide6.QtWidgets import QMainWindow

MAX_RECENT = 8
DATA_DIR_ENV_VAR = "PROTOGLYPH_DATA_DIR"


def data_dir() -> Path:
    """The app's own folder (starter project, log): ``$PROTOGLYPH_DATA_DIR`` or the platform's."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    folder = Path(override) if override else Path(
        QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class AppSettings:
    def __init__(self) -> None:
        self._q = QSettings()

    def recent_projects(self) -> list[str]:
        value: object = self._q.value("recent_projects", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list | tuple) else []

    def add_recent(self, path: Path) -> None:
        entry = str(path.resolve())
        items = [p for p in self.recent_projects() if p != entry]
        self._q.setValue("recent_projects", [entry, *items][:MAX_RECENT])

    def remove_recent(self, path: str) -> None:
        self._q.setValue("recent_projects", [p for p in self.recent_projects() if p != path])

    def last_project(self) -> str | None:
        recent = self.recent_projects()
        return recent[0] if recent else None

    def restore_window(self, window: QMainWindow) -> bool:
        """Restore the saved size and layout; ``False`` if there was none (first start)."""
        geometry = self._q.value("window/geometry")
        state = self._q.value("window/state")
        if isinstance(state, QByteArray):
            window.restoreState(state)
        return isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)

    def save_window(self, window: QMainWindow) -> None:
        self._q.setValue("window/geometry", window.saveGeometry())
        self._q.setValue("window/state", window.saveState())

    def sync(self) -> None:
        self._q.sync()
