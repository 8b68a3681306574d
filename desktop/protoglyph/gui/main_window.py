"""The main window: classes and examples on the left, the canvas in the middle, the live
prediction on the right. It wires the widgets to the controller; the work happens there."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
    QPixmap,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QColorDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from protoglyph.core.labeling.states import Review
from protoglyph.core.labeling.store import labeled_folders
from protoglyph.core.preprocess import is_blank
from protoglyph.core.starter import HINT_KEY
from protoglyph.core.text import readable
from protoglyph.gui import dialogs
from protoglyph.gui.actions import create_actions
from protoglyph.gui.batch_runner import BatchRunner
from protoglyph.gui.canvas import DrawingCanvas
from protoglyph.gui.class_panel import ClassPanel, dropped_paths
from protoglyph.gui.controller import ProjectController
from protoglyph.gui.example_panel import ExamplePanel
from protoglyph.gui.export_runner import ExportRunner, can_undo
from protoglyph.gui.file_thumbnails import FileThumbnails
from protoglyph.gui.fonts import missing_glyphs_note
from protoglyph.gui.hint_bar import HintBar
from protoglyph.gui.images import qimage_to_gray
from protoglyph.gui.import_runner import ImportRunner
from protoglyph.gui.prediction_panel import PredictionPanel
from protoglyph.gui.project_files import ProjectFiles
from protoglyph.gui.results_model import ResultsModel
from protoglyph.gui.results_panel import ResultsPanel
from protoglyph.gui.settings import AppSettings
from protoglyph.gui.wording import plural, short

NO_CLASSES = ("No classes yet.\n\nMake one with Classes ▸ New Class (Ctrl+Shift+N), draw an example and press Enter. "
              "Or drop a folder of images on the window: each subfolder becomes a class.")
NO_EXAMPLES = ("Your classes have no examples yet.\n\nDraw a glyph and press Enter to add it to the selected class "
               "(1–9 for class 1–9), or drop image files on a class.")
DRAW_SOMETHING = "Draw on the canvas: the classes your drawing looks most like appear here, updated as you draw."
STARTER_HINT = ("This is the starter project: draw one of its shapes and watch the prediction. To make your own "
                "classes, choose File ▸ New Project, then Classes ▸ New Class; draw an example and press Enter. "
                "Or drop a folder of images with one subfolder per class.")
#: Narrower than this, the toolbar shows icons only (measured: its words need about 1,050 px).
TOOLBAR_TEXT_WIDTH = 1100
TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


class MainWindow(QMainWindow):
    def __init__(self, controller: ProjectController, settings: AppSettings, pool: QThreadPool | None = None) -> None:
        super().__init__()
        # The window owns its controller: when the window goes, so do the controller and its
        # connections, whose lambdas hold the window (and through it, the results it showed).
        controller.setParent(self)
        self.controller = controller
        self.settings = settings
        self.setAcceptDrops(True)
        self._closed = False
        self._show_results = True
        self._misplaced: tuple[int, int] | None = None  # (example just added, the class it looks like)
        self.menu_actions = a = create_actions(self)
        self.canvas = DrawingCanvas(self)
        self.canvas.setObjectName("canvas")
        self.prediction = PredictionPanel(self)
        self.prediction.setObjectName("prediction")
        self.classes = ClassPanel(controller, [a.new_class, a.delete_class, a.move_up, a.move_down, a.recolor], self)
        self.examples = ExamplePanel(controller, a.add_images, self)
        self.hint = HintBar(STARTER_HINT, self)
        self.files = ProjectFiles(self, controller, settings)
        pool = pool or QThreadPool.globalInstance()
        self.imports = ImportRunner(self, controller, pool)
        self.batch = BatchRunner(self, controller, pool)
        self.exports = ExportRunner(self, pool)
        self.results = ResultsPanel(ResultsModel(FileThumbnails(pool, parent=self)), self)
        self.results.setObjectName("results")
        self._layout()
        self._menus()
        self._connect()
        self.counts = QLabel(self)
        self.statusBar().addPermanentWidget(self.counts)
        self._project_switched()
        if not settings.restore_window(self):
            self.resize(1180, 720)

    # -- building ----------------------------------------------------------------------
    def _layout(self) -> None:
        a = self.menu_actions
        bar = QHBoxLayout()
        for act in (a.clear_drawing, a.undo_stroke):
            b = QToolButton(self)
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(b)
        bar.addStretch(1)
        self.add_button = QToolButton(self)
        self.add_button.setDefaultAction(a.add_drawing)
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addWidget(self.add_button)
        middle = QWidget(self)
        col = QVBoxLayout(middle)
        col.setContentsMargins(0, 6, 0, 6)
        col.addWidget(self.hint)
        col.addWidget(self.canvas, 1)
        col.addLayout(bar)
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(self.classes)
        left.addWidget(self.examples)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        draw = QSplitter(Qt.Orientation.Horizontal, self)
        draw.addWidget(middle)
        draw.addWidget(self.prediction)
        draw.setStretchFactor(0, 1)
        draw.setSizes([600, 290])
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("tabs")
        self.tabs.addTab(draw, "&Draw")
        self.tabs.addTab(self.results, "Label a &Folder")
        main = QSplitter(Qt.Orientation.Horizontal, self)
        main.setObjectName("mainSplitter")
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.setStretchFactor(1, 1)
        main.setSizes([280, 900])
        self.setCentralWidget(main)

    def _menus(self) -> None:
        a = self.menu_actions
        file = self.menuBar().addMenu("&File")
        file.addActions([a.new_project, a.open_project])
        file.addMenu(self.files.recent_menu)
        file.addAction(a.save_as)
        file.addSeparator()
        file.addActions([a.label_folder, a.export_results, a.undo_export, a.forget_results])
        file.addSeparator()
        file.addAction(a.quit)
        edit = self.menuBar().addMenu("&Edit")
        edit.addActions([a.undo, a.redo])
        edit.addSeparator()
        edit.addActions([a.paste, a.clear_drawing])
        classes = self.menuBar().addMenu("&Classes")
        classes.addActions([a.add_drawing, a.add_to_predicted, a.new_class, a.rename_class, a.delete_class,
                            a.move_up, a.move_down, a.recolor])
        classes.addSeparator()
        classes.addActions([a.add_images, a.import_folder])
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addActions([a.shortcuts, a.about])
        self.tools = tools = self.addToolBar("Main")
        tools.setObjectName("mainToolBar")
        tools.setMovable(False)
        tools.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tools.addActions([a.new_project, a.open_project, a.save_as])
        tools.addSeparator()
        tools.addActions([a.undo, a.redo])
        tools.addSeparator()
        tools.addActions([a.new_class, a.add_images, a.import_folder])
        tools.addSeparator()
        tools.addActions([a.label_folder, a.export_results])

    def _connect(self) -> None:
        a, c = self.menu_actions, self.controller
        a.new_project.triggered.connect(self.files.new_project)
        a.open_project.triggered.connect(self.files.open_project)
        a.save_as.triggered.connect(self.files.save_as)
        a.quit.triggered.connect(self.close)
        a.undo.triggered.connect(self.undo)
        a.redo.triggered.connect(self.redo)
        a.paste.triggered.connect(self.paste)
        a.clear_drawing.triggered.connect(lambda: self.canvas.clear())
        a.undo_stroke.triggered.connect(lambda: self._unless_reviewing(self.canvas.undo_stroke))
        a.add_drawing.triggered.connect(self._enter)
        a.add_to_predicted.triggered.connect(lambda: self._unless_reviewing(self.add_to_predicted))
        a.new_class.triggered.connect(self._new_class)
        a.rename_class.triggered.connect(self.classes.rename_current)
        a.delete_class.triggered.connect(self._delete_class)
        a.move_up.triggered.connect(lambda: self._move_current_class(-1))
        a.move_down.triggered.connect(lambda: self._move_current_class(1))
        a.recolor.triggered.connect(self._recolor)
        a.add_images.triggered.connect(self._add_images)
        a.import_folder.triggered.connect(self._import_folder)
        a.label_folder.triggered.connect(lambda: self.label_folder())  # triggered(bool) must not reach folder
        a.export_results.triggered.connect(self._export)
        a.undo_export.triggered.connect(lambda: self.exports.undo())
        a.forget_results.triggered.connect(lambda: self.forget_results())
        self.results.labelFolder.connect(lambda: self.label_folder())
        self.results.folderChosen.connect(self.label_folder)
        self.results.exportRequested.connect(self._export)
        self.batch.sessionStarted.connect(self._batch_started)
        self.batch.finished.connect(self._labeling_finished)
        self.exports.finished.connect(self._export_finished)
        self.tabs.currentChanged.connect(lambda _i: self._update_actions())
        a.about.triggered.connect(lambda: dialogs.about(self, c.workspace.encoder.info))
        a.shortcuts.triggered.connect(self._show_shortcuts)
        self.number_keys = []
        for n in range(1, 10):
            for key in (f"{n}", f"Num+{n}"):
                sc = QShortcut(QKeySequence(key), self)
                sc.activated.connect(lambda n=n: self._add_to_number(n))
                self.number_keys.append(sc)
        unknown = QShortcut(QKeySequence("U"), self)
        unknown.activated.connect(lambda: self.reviewing() and self.results.review("unknown"))
        pick = QShortcut(QKeySequence("A"), self)
        pick.activated.connect(lambda: self.reviewing() and self.results.choose_class())
        self.number_keys += [unknown, pick]  # like 1–9: off while a text field has the focus
        self.canvas.drawingChanged.connect(self._drawing_changed)
        c.changed.connect(self._project_changed)
        c.currentClassChanged.connect(lambda _id: self._update_actions())
        c.undo_stack.indexChanged.connect(self._stack_changed)
        self.classes.view.filesDropped.connect(lambda paths, cid: self.imports.start(paths, cid))
        self.classes.renameFailed.connect(lambda text: QMessageBox.warning(self, "Cannot rename the class", text))
        self.examples.filesDropped.connect(lambda paths: self.imports.start(paths, c.current_class))
        self.files.switched.connect(self._project_switched)
        self.hint.closed.connect(lambda: c.workspace.project.set_setting(HINT_KEY, "0"))
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._focus_changed)

    # -- drawing and predicting --------------------------------------------------------
    def _drawing_changed(self, finished: bool) -> None:
        self.refresh_prediction()
        if finished or not self.menu_actions.clear_drawing.isEnabled():
            self._update_actions()

    def refresh_prediction(self) -> None:
        ws = self.controller.workspace
        if not ws.classes():
            self.prediction.show_message(NO_CLASSES)
        elif not ws.has_examples():
            self.prediction.show_message(NO_EXAMPLES)
        elif not self.canvas.has_glyph():  # nothing yet, or only a click
            self.prediction.show_message(DRAW_SOMETHING)
        else:
            self.prediction.show_predictions(*self.controller.predict(self.canvas.strokes()))

    def add_drawing(self, class_id: int) -> None:
        if not self.canvas.has_glyph():
            self.statusBar().showMessage("Draw something first (a click alone is not a glyph), then add it to a "
                                         "class.", 5000)
            return
        c = self.controller
        created = class_id < 0
        shown = self.prediction.predictions()
        best = shown[0] if shown and not self.prediction.unknown() else None
        if created:
            class_id = c.new_class().id
        count = c.add_drawing(class_id, self.canvas.strokes())
        name = c.workspace.class_record(class_id).name
        self.canvas.clear(undoable=False)
        self._misplaced = None
        if best is not None and best.class_id != class_id and not created:
            # Not a refusal: the person may know better. But say so, and offer the other class.
            self._misplaced = (c.workspace.examples(class_id)[-1].id, best.class_id)
            self.statusBar().showMessage(f"Added to “{short(name)}”, though it looks like “{short(best.name)}”. "
                                         f"Ctrl+Z takes it back; Shift+Enter moves it to “{short(best.name)}”.", 12000)
        else:
            self.statusBar().showMessage(f"Added to “{short(name)}”, which now has {plural(count, 'example')}. "
                                         "Ctrl+Z takes it back.", 6000)
        if created:
            self.classes.rename_current()  # a new class gets its name from the user at once

    def add_to_predicted(self) -> None:
        """Shift+Enter: the drawing goes to the class it looks like; just after an example was
        added to another class than that, it is moved there instead."""
        c = self.controller
        if self.canvas.is_empty() and self._misplaced is not None:
            example_id, target = self._misplaced
            self._misplaced = None
            if any(e.id == example_id for e in c.workspace.project.examples()) and target in {
                    x.id for x in c.workspace.classes()}:
                c.move_examples([example_id], target)
                self.statusBar().showMessage(f"Moved to “{short(c.workspace.class_record(target).name)}”. "
                                             "Ctrl+Z takes it back.", 6000)
            return
        shown = self.prediction.predictions()
        if not self.canvas.has_glyph() or not shown or self.prediction.unknown():
            self.statusBar().showMessage("There is no prediction to follow: draw a glyph that looks like one of "
                                         "your classes, or choose a class with 1–9.", 5000)
            return
        self.add_drawing(shown[0].class_id)

    def reviewing(self) -> bool:
        """True while the results of a labeled folder are shown (keys review instead of draw)."""
        return self.tabs.currentWidget() is self.results

    def _unless_reviewing(self, action: Callable[[], object]) -> None:
        """A canvas key's action, unless the keys review a folder now."""
        if not self.reviewing():
            action()

    def _move_current_class(self, step: int) -> None:
        c = self.controller
        if c.current_class >= 0:
            c.move_class(c.current_class, step)

    def _labeling_finished(self) -> None:
        self._refresh_folders()
        self._update_actions()

    def _export_finished(self) -> None:
        self.results.refresh()
        self._update_actions()

    def _enter(self) -> None:
        if self.reviewing():
            self.results.review("confirm")
        else:
            self.add_drawing(self.controller.current_class)

    def _add_to_number(self, n: int) -> None:
        if self.reviewing():
            if not self.results.assign_number(n) and self.controller.class_at(n) is None:
                self.statusBar().showMessage(f"There is no class {n}.", 4000)
            return
        record = self.controller.class_at(n)
        if record is None:
            self.statusBar().showMessage(f"There is no class {n}.", 4000)
            return
        self.add_drawing(record.id)

    def undo(self) -> None:
        stack = self.controller.undo_stack
        self._misplaced = None
        if self.canvas.can_undo_stroke() and not self.reviewing():  # strokes only where they can be seen
            self.canvas.undo_stroke()
            self.statusBar().clearMessage()
        elif stack.canUndo():
            text = stack.undoText()
            stack.undo()
            self.statusBar().showMessage(f"Undone: {text}. Ctrl+Shift+Z redoes it.", 5000)  # "now has 4…" is stale

    def redo(self) -> None:
        stack = self.controller.undo_stack
        if self.canvas.can_redo_stroke() and not self.reviewing():
            self.canvas.redo_stroke()
            self.statusBar().clearMessage()
        elif stack.canRedo():
            text = stack.redoText()
            stack.redo()
            self.statusBar().showMessage(f"Redone: {text}.", 5000)

    # -- adding examples ---------------------------------------------------------------
    def paste(self) -> None:
        clipboard = QApplication.clipboard()
        data = clipboard.mimeData()
        if data is not None and data.hasImage():
            gray = qimage_to_gray(clipboard.image())
            if gray.size == 0 or is_blank(gray):
                self.statusBar().showMessage("The image on the clipboard is blank; nothing was added.", 5000)
                return
            new = self.controller.workspace.prepare([gray], ["clipboard"])
            self.controller.add_groups([(None, new)], self.controller.current_class)
            self.statusBar().showMessage("Added the clipboard image. Ctrl+Z takes it back.", 5000)
        elif data is not None and data.hasUrls():
            self.imports.start([Path(u.toLocalFile()) for u in data.urls() if u.isLocalFile()],
                               self.controller.current_class)
        else:
            self.statusBar().showMessage("The clipboard holds no image.", 5000)

    def _add_images(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add Images to Class", "",
                                                "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif);;"
                                                "All files (*)")
        if names:
            self.imports.start([Path(n) for n in names], self.controller.current_class)

    def _import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import Folder per Class")
        if folder:
            self.imports.start([Path(folder)], -1)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event)
        if paths:
            event.acceptProposedAction()
            self.imports.start(paths, self.controller.current_class)

    # -- labeling folders --------------------------------------------------------------
    def label_folder(self, folder: Path | None = None, show: bool = True) -> None:
        """Label ``folder`` (asked for if not given), or show its stored results again; ``show``
        brings the results tab to the front (not when a project just opened)."""
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, "Label a Folder of Images")
            if not chosen:
                return
            folder = Path(chosen)
        if not self.controller.workspace.has_examples():
            QMessageBox.information(self, "No examples yet", "Labeling a folder needs classes with a few examples "
                                    "each. Draw or import some first.")
            return
        if not folder.is_dir():
            QMessageBox.information(self, "The folder is not there", f"{readable(str(folder))} is not there (moved, "
                                    "renamed, or on a drive that is not connected). Its labels stay in the project "
                                    "and come back when the folder does.")
            return
        self._show_results = show
        if self.batch.start(folder):
            if show:
                self.tabs.setCurrentWidget(self.results)
            self._update_actions()

    def _batch_started(self, session: object) -> None:
        self.results.set_session(self.batch.session)
        self._refresh_folders()
        if self._show_results:
            self.tabs.setCurrentWidget(self.results)
            self.results.view.setFocus()

    def _refresh_folders(self) -> None:
        self.results.set_folders(labeled_folders(self.controller.workspace.project))

    def _show_last_folder(self) -> None:
        """A project opens on its last labeled folder, as it was left (in the Label a Folder tab)."""
        folders = labeled_folders(self.controller.workspace.project)
        self.results.set_folders(folders)
        if folders and folders[0].folder.is_dir() and self.controller.workspace.has_examples():
            self.label_folder(folders[0].folder, show=False)

    def _export(self) -> None:
        if self.batch.session is None:
            self.statusBar().showMessage("Label a folder first (File ▸ Label a Folder…).", 5000)
            return
        if self.batch.busy():  # a move would pull files away from under the labeling
            self.statusBar().showMessage("The folder is still being labeled; export when it is done.", 5000)
            return
        self.exports.export(self.batch.session)

    def forget_results(self, ask: bool = True) -> bool:
        """Delete the shown folder's results and reviews from the project (not undoable: asks)."""
        session = self.batch.session
        if session is None or self.batch.busy():
            return False
        reviewed = int((session.table.review != Review.NONE).sum())
        if ask and QMessageBox.question(
                self, "Forget this folder's labels",
                f"Delete the labels of {len(session.table):,} files in {session.folder} from this project, "
                f"including {reviewed:,} reviews? The files themselves stay as they are, and examples taught "
                "from reviews stay in their classes. This cannot be undone; the undo history is cleared."
                ) != QMessageBox.StandardButton.Yes:
            return False
        session.store.forget()
        self.controller.workspace.project.compact()
        self.batch.close_session()
        self.results.set_session(None)
        self.controller.undo_stack.clear()
        self._refresh_folders()
        self.statusBar().showMessage(f"Forgot the labels of {session.folder}.", 8000)
        self._update_actions()
        return True

    # -- classes -----------------------------------------------------------------------
    def _new_class(self) -> None:
        self.controller.new_class()
        self.classes.rename_current()

    def _delete_class(self) -> None:
        c = self.controller
        if c.current_class >= 0:
            name = c.workspace.class_record(c.current_class).name
            c.delete_class(c.current_class)
            self.statusBar().showMessage(f"Deleted “{name}”. Ctrl+Z brings it back.", 6000)

    def _recolor(self) -> None:
        c = self.controller
        if c.current_class < 0:
            return
        record = c.workspace.class_record(c.current_class)
        color = QColorDialog.getColor(QColor(record.color), self, f"Colour of “{record.name}”")
        if color.isValid():
            c.recolor_class(record.id, color.name())

    # -- state -------------------------------------------------------------------------
    def _project_changed(self) -> None:
        self.refresh_prediction()
        self._update_actions()

    def _project_switched(self) -> None:
        self.statusBar().clearMessage()  # "Added to …" was about the other project
        self.batch.close_session()
        self.results.set_session(None)
        project = self.controller.workspace.project
        self.canvas.clear(undoable=False)
        self.setWindowTitle(f"{project.path.stem} — Protoglyph")
        self.setWindowFilePath(str(project.path))
        self.hint.setVisible(project.setting(HINT_KEY) == "1")
        self._show_last_folder()
        self._project_changed()

    def _stack_changed(self, _index: int) -> None:
        self._update_actions()

    def _update_actions(self) -> None:
        a, c = self.menu_actions, self.controller
        current = c.current_record()
        has_class = current is not None
        for act in (a.rename_class, a.delete_class, a.recolor, a.move_up, a.move_down):
            act.setEnabled(has_class)
        drawing = not self.canvas.is_empty() and not self.reviewing()
        stroke = self.canvas.can_undo_stroke() and not self.reviewing()
        stack = c.undo_stack
        stroke_text = "&Undo Stroke" if drawing else "&Undo Clear"
        a.undo.setText(stroke_text if stroke else (f"&Undo {stack.undoText()}" if stack.canUndo() else "&Undo"))
        a.undo.setEnabled(stroke or stack.canUndo())
        a.undo_stroke.setText(stroke_text.replace("&", ""))
        a.undo_stroke.setEnabled(stroke)
        redo_stroke = self.canvas.can_redo_stroke() and not self.reviewing()
        a.redo.setText("&Redo Stroke" if redo_stroke else (f"&Redo {stack.redoText()}" if stack.canRedo() else "&Redo"))
        a.redo.setEnabled(redo_stroke or stack.canRedo())
        target = current.name if current is not None else "a New Class"
        a.add_drawing.setText(f"Add Drawing to “{short(target)}”" if has_class else "Add Drawing to a New Class")
        if self.reviewing():
            a.add_drawing.setText("Confirm the Selected Predictions")
        reviewing = self.reviewing()
        a.add_drawing.setEnabled((drawing or reviewing) and not self._typing())
        a.export_results.setEnabled(self.batch.session is not None)
        a.forget_results.setEnabled(self.batch.session is not None and not self.batch.busy())
        a.undo_export.setEnabled(not self.exports.busy and can_undo(self.exports.last_dest))
        a.clear_drawing.setEnabled(drawing and not self._typing())
        if current is not None:
            swatch = QPixmap(16, 16)
            swatch.fill(QColor(current.color))
            a.recolor.setIcon(QIcon(swatch))
        self.add_button.setToolTip(missing_glyphs_note(target) or a.add_drawing.statusTip())
        ws = c.workspace
        n_examples = sum(ws.example_count(x.id) for x in ws.classes())
        self.counts.setText(f"{plural(len(ws.classes()), 'class', 'classes')} · {plural(n_examples, 'example')} · "
                            f"{ws.encoder.info.model_name} {ws.encoder.info.model_version}")

    def _focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        if not self._closed:  # focus moves on as a closed window goes away
            self._update_key_actions()

    @staticmethod
    def _typing() -> bool:
        return isinstance(QApplication.focusWidget(), TEXT_INPUTS)

    def _update_key_actions(self) -> None:
        """Enter, Esc and 1–9 belong to a text field while one has the focus (renaming a class)."""
        typing = self._typing()
        for sc in self.number_keys:
            sc.setEnabled(not typing)
        self._update_actions()

    def shortcuts_text(self) -> str:
        """Help ▸ Keyboard Shortcuts: every action's key, grouped as the window is, and the keys
        that belong to no action (number keys, arrows, the review keys)."""
        a = self.menu_actions
        groups = {
            "Drawing": [a.add_drawing, a.add_to_predicted, a.clear_drawing],
            "Undo": [a.undo, a.redo],
            "Classes and examples": [a.new_class, a.rename_class, a.delete_class, a.move_up, a.move_down,
                                     a.add_images, a.import_folder, a.paste],
            "Projects and folders": [a.new_project, a.open_project, a.save_as, a.label_folder, a.export_results,
                                     a.quit],
            "Help": [a.shortcuts],
        }
        extra = {
            "Drawing": [("Add the drawing to class 1–9", "1 … 9"),
                        ("Undo the last stroke, or bring back what Esc cleared", "Ctrl+Z")],
            "Classes and examples": [("Remove the selected examples", "Del")],
            "Reviewing a folder": [("Assign the selection to class 1–9", "1 … 9"),
                                   ("Assign it to any class, picked by name", "A"),
                                   ("Confirm the predictions", "Enter"), ("None of these (unknown)", "U"),
                                   ("Undo a review (and the example it taught)", "Ctrl+Z"),
                                   ("Move through the items", "Arrows, Home, End, Page Up/Down"),
                                   ("Select several", "Shift+Arrows, Shift+click, Ctrl+click"),
                                   ("Preview the item and its nearest examples", "Space, double-click"),
                                   ("Bigger or smaller thumbnails", "Ctrl+Plus / Ctrl+Minus, Ctrl+wheel; Ctrl+0")],
        }
        native = QKeySequence.SequenceFormat.NativeText
        html_rows = []
        for group in [*groups, "Reviewing a folder"]:
            rows = [(act.text().replace("&", ""), act.shortcut().toString(native))
                    for act in groups.get(group, []) if not act.shortcut().isEmpty()] + extra.get(group, [])
            html_rows.append(f"<tr><td colspan='2'><b>{group}</b></td></tr>")
            html_rows += [f"<tr><td>{html.escape(what)}</td><td><b>{html.escape(key)}</b></td></tr>"
                          for what, key in rows]
        listed = {act for acts in groups.values() for act in acts}
        others = [(act.text().replace("&", ""), act.shortcut().toString(native)) for act in a.all()
                  if not act.shortcut().isEmpty() and act not in listed]  # a new action is never left out
        if others:
            html_rows.append("<tr><td colspan='2'><b>Other</b></td></tr>")
            html_rows += [f"<tr><td>{html.escape(w)}</td><td><b>{html.escape(k)}</b></td></tr>" for w, k in others]
        return f"<table cellpadding='3'>{''.join(html_rows)}</table>"

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard Shortcuts", self.shortcuts_text())

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Toolbar buttons lose their words on a narrow window, rather than overflowing into a
        hidden menu (their tooltips keep the names)."""
        super().resizeEvent(event)
        wide = event.size().width() >= TOOLBAR_TEXT_WIDTH
        style = Qt.ToolButtonStyle.ToolButtonTextBesideIcon if wide else Qt.ToolButtonStyle.ToolButtonIconOnly
        if self.tools.toolButtonStyle() != style:
            self.tools.setToolButtonStyle(style)

    def closeEvent(self, event: QCloseEvent) -> None:
        # The undo stack announces its own destruction; this window must not hear it.
        if not self._closed:
            self.controller.undo_stack.indexChanged.disconnect(self._stack_changed)
            self._closed = True
        self.imports.cancel()
        self.batch.cancel()
        self.settings.save_window(self)
        self.settings.sync()
        self.imports.pool.waitForDone(3000)
        super().closeEvent(event)
