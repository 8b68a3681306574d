"""The examples of the selected class as a grid of thumbnails: remove them, move them to
another class, or drop image files here to add them."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListView, QMenu, QVBoxLayout, QWidget

from protoglyph.gui.class_panel import dropped_paths
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.fonts import missing_glyphs_note
from protoglyph.gui.item_models import Role


class ExampleGrid(QListView):
    filesDropped = Signal(list)
    removeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(56, 56))
        self.setGridSize(QSize(64, 64))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setAcceptDrops(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event)
        if paths:
            event.acceptProposedAction()
            self.filesDropped.emit(paths)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedIndexes():
            self.removeRequested.emit()
            return
        super().keyPressEvent(event)


class ExamplePanel(QWidget):
    """Emits ``filesDropped(paths)`` for files to add to the current class."""

    filesDropped = Signal(list)

    def __init__(self, controller: ProjectController, add_images: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.grid = ExampleGrid(self)
        self.grid.setObjectName("exampleGrid")
        self.grid.setModel(controller.examples_model)
        self.empty = QLabel("No examples yet: draw one and press Enter, or drop image files here.", self)
        self.empty.setWordWrap(True)
        self.empty.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.empty)
        layout.addWidget(self.grid, 1)
        self.grid.filesDropped.connect(self.filesDropped)
        self.grid.removeRequested.connect(self.remove_selected)
        self.grid.customContextMenuRequested.connect(self._menu)
        self._add_images = add_images
        controller.changed.connect(self._update_title)
        controller.currentClassChanged.connect(lambda _id: self._update_title())
        self._update_title()

    def selected_ids(self) -> list[int]:
        return sorted(int(i.data(Role.ID)) for i in self.grid.selectedIndexes())

    def remove_selected(self) -> None:
        self.controller.remove_examples(self.selected_ids())

    def _update_title(self) -> None:
        c = self.controller
        if c.current_class < 0:
            self.title.setText("Examples")
            self.empty.setVisible(False)
            return
        record = c.workspace.class_record(c.current_class)
        n = c.examples_model.rowCount()
        name = record.name if len(record.name) <= 24 else record.name[:23] + "…"
        self.title.setText(f"Examples of “{name}” ({n})")
        self.title.setToolTip(missing_glyphs_note(record.name))
        self.empty.setVisible(n == 0)

    def _menu(self, pos: QPoint) -> None:
        ids = self.selected_ids()
        menu = QMenu(self)
        remove = menu.addAction(f"Remove {len(ids)} Example{'s' if len(ids) != 1 else ''}")
        remove.setEnabled(bool(ids))
        remove.triggered.connect(self.remove_selected)
        move = menu.addMenu("Move to Class")
        move.setEnabled(bool(ids))
        for record in self.controller.workspace.classes():
            if record.id != self.controller.current_class:
                act = move.addAction(record.name)
                act.triggered.connect(lambda _=False, cid=record.id: self.controller.move_examples(ids, cid))
        menu.addSeparator()
        menu.addAction(self._add_images)
        menu.popup(self.grid.viewport().mapToGlobal(pos))
