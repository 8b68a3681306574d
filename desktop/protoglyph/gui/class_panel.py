"""The class list: each class with its colour, a thumbnail, its number key and example count,
with buttons to add, delete, reorder and recolour. Files dropped on a class are added to it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QListView, QToolButton, QVBoxLayout, QWidget

from protoglyph.gui.controller import ProjectController
from protoglyph.gui.item_models import Role


def dropped_paths(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> list[Path]:
    data = event.mimeData()
    if not data.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in data.urls() if u.isLocalFile()]


class ClassListView(QListView):
    """Emits ``filesDropped(paths, class_id)`` for files dropped on a class (-1: between classes)."""

    filesDropped = Signal(list, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setIconSize(QSize(64, 56))
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if dropped_paths(event):
            index = self.indexAt(event.position().toPoint())
            if index.isValid():
                self.setCurrentIndex(index)
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event)
        if not paths:
            super().dropEvent(event)
            return
        index = self.indexAt(event.position().toPoint())
        event.acceptProposedAction()
        self.filesDropped.emit(paths, int(index.data(Role.ID)) if index.isValid() else -1)


class ClassPanel(QWidget):
    """Shows ``controller.classes_model``; keeps the view's selection and the current class in step."""

    renameFailed = Signal(str)

    def __init__(self, controller: ProjectController, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.view = ClassListView(self)
        self.view.setModel(controller.classes_model)
        self.view.setObjectName("classList")
        self.view.setToolTip("")
        title = QLabel("<b>Classes</b>", self)
        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for action in actions:
            b = QToolButton(self)
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(title)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        self.view.selectionModel().currentChanged.connect(self._view_changed)
        controller.currentClassChanged.connect(self._show_current)
        controller.classes_model.modelReset.connect(self._model_reset)
        controller.classes_model.rename_handler = self._rename
        self._show_current(controller.current_class)

    def _model_reset(self) -> None:
        self._show_current(self.controller.current_class)

    def _view_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.isValid():
            self.controller.select_class(int(current.data(Role.ID)))

    def _show_current(self, class_id: int) -> None:
        row = self.controller.classes_model.row_of(class_id)
        with QSignalBlocker(self.view.selectionModel()):
            if row < 0:
                self.view.clearSelection()
            else:
                index = self.controller.classes_model.index(row)
                self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.view.scrollTo(index)
        self.view.viewport().update()

    def _rename(self, class_id: int, name: str) -> bool:
        try:
            self.controller.rename_class(class_id, name)
        except ValueError as exc:
            self.renameFailed.emit(str(exc))
            return False
        return True

    def rename_current(self) -> None:
        index = self.view.currentIndex()
        if index.isValid():
            self.view.setFocus()
            self.view.edit(index)
