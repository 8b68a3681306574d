"""Reviewing a labeled folder: the results grid with its sort, filters, "none of these" slider,
the teach switch, and the keys that review the selection.

Keys (while this panel is shown): 1–9 assign the selection to class 1–9, A to any class by name,
Enter confirms the prediction, U marks "none of these"; arrows, Shift and Ctrl move and select
as in any grid. The right-click menu offers the same, with every class.
After a review the selection moves on to the next item of the review order.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from protoglyph.core.labeling.results import SORTS
from protoglyph.core.labeling.states import Review, Status
from protoglyph.core.labeling.store import LabeledFolder
from protoglyph.core.text import readable
from protoglyph.gui.batch_session import BatchSession
from protoglyph.gui.results_model import ResultsModel
from protoglyph.gui.results_view import ResultsView
from protoglyph.gui.wording import plural

EMPTY = ("No folder labeled yet.\n\nChoose File ▸ Label a Folder… (Ctrl+L): every image below it is classified "
         "with this project's classes, least certain first, for you to review.")
STATUS_FILTERS = (("All items", None), ("To review", {Status.PREDICTED, Status.UNKNOWN}),
                  ("Predicted", {Status.PREDICTED}), ("Unknown", {Status.UNKNOWN}), ("Confirmed", {Status.CONFIRMED}),
                  ("Corrected", {Status.CORRECTED}), ("Errors", {Status.ERROR}))
SLIDER_STEPS = 1000


class ResultsPanel(QWidget):
    """``labelFolder`` asks the window to pick a folder; ``exportRequested`` to export."""

    labelFolder = Signal()
    exportRequested = Signal()
    #: A folder chosen in the list of the project's labeled folders (its results are shown again).
    folderChosen = Signal(Path)

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.session: BatchSession | None = None
        self.view = ResultsView(self)
        self.view.setModel(model)
        self.view.setObjectName("resultsView")
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.placeholder = QLabel(EMPTY, self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.folder = QLabel(self)
        self.folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long path must not widen the window: it is cut to fit (the tooltip has it whole).
        self.folder.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.folders = QComboBox(self)
        self.folders.setObjectName("labeledFolders")
        self.folders.setToolTip("The folders labeled in this project: choose one to show its results again")
        self.folders.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.folders.setMinimumContentsLength(14)
        self.folders.activated.connect(self._folder_activated)
        self.sort = QComboBox(self)
        self.sort.addItems([s.capitalize() for s in SORTS])
        self.statuses = QComboBox(self)
        for text, _ in STATUS_FILTERS:
            self.statuses.addItem(text)
        self.classes = QComboBox(self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("Items farther than this from every class are labeled “unknown” (none of these)")
        self.threshold_text = QLabel(self)
        self.default_button = QPushButton("Default", self)
        self.default_button.setToolTip("Back to the distance derived from your examples")
        self.teach = QCheckBox("Teach from reviews", self)
        self.teach.setChecked(True)
        self.teach.setToolTip("Confirming or correcting an item adds it to its class as an example, and every "
                              "other prediction is re-ranked at once")
        self.export_button = QPushButton("Export…", self)
        self.counts = QLabel(self)
        self._layout()
        self._max_distance = 1.0
        self._apply_timer = QTimer(self)
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(150)
        self._apply_timer.timeout.connect(self._apply_threshold)
        self.sort.currentIndexChanged.connect(self._filters_changed)
        self.statuses.currentIndexChanged.connect(self._filters_changed)
        self.classes.currentIndexChanged.connect(self._filters_changed)
        self.slider.valueChanged.connect(self._slider_moved)
        self.default_button.clicked.connect(self._default_threshold)
        self.teach.toggled.connect(self._teach_toggled)
        self.export_button.clicked.connect(self.exportRequested)
        self.set_session(None)

    def _layout(self) -> None:
        top = QHBoxLayout()
        label_button = QPushButton("Label a Folder…", self)
        label_button.clicked.connect(self.labelFolder)
        top.addWidget(label_button)
        top.addWidget(self.folders)
        top.addWidget(self.folder, 1)
        top.addWidget(self.teach)
        top.addWidget(self.export_button)
        filters = QHBoxLayout()
        for combo in (self.sort, self.statuses, self.classes):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8 if combo is not self.sort else 16)
        for text, w in (("Sort", self.sort), ("Show", self.statuses), ("Class", self.classes)):
            filters.addWidget(QLabel(text, self))
            filters.addWidget(w)
        filters.addStretch(1)
        unknown = QHBoxLayout()
        unknown.addWidget(QLabel("None of these beyond", self))
        unknown.addWidget(self.slider, 1)
        unknown.addWidget(self.threshold_text)
        unknown.addWidget(self.default_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 6, 4, 4)
        col.addLayout(top)
        col.addLayout(filters)
        col.addLayout(unknown)
        col.addWidget(self.placeholder, 1)
        col.addWidget(self.view, 1)
        col.addWidget(self.counts)

    # -- the shown folder --------------------------------------------------------------
    def set_folders(self, folders: list[LabeledFolder]) -> None:
        """The project's labeled folders, for the list (the shown one first)."""
        self.folders.clear()
        for f in folders:
            reviewed = f", {f.reviewed:,} reviewed" if f.reviewed else ""
            self.folders.addItem(readable(f.folder.name) or readable(str(f.folder)), f.folder)
            self.folders.setItemData(self.folders.count() - 1,
                                     f"{readable(str(f.folder))}\n{plural(f.files, 'file')}{reviewed}",
                                     Qt.ItemDataRole.ToolTipRole)
        self.folders.setVisible(len(folders) > 1 or (len(folders) == 1 and self.session is None))
        if self.session is not None:
            self.folders.setCurrentIndex(max(0, self.folders.findData(self.session.folder)))

    def _folder_activated(self, index: int) -> None:
        folder = self.folders.itemData(index)
        if isinstance(folder, Path) and (self.session is None or folder != self.session.folder):
            self.folderChosen.emit(folder)

    def set_session(self, session: BatchSession | None) -> None:
        if self.session is not None:
            self.session.updated.disconnect(self.refresh)
        if session is not None and (self.session is None or self.session.folder != session.folder):
            self._reset_filters()  # a filter chosen for another folder would hide this one's items
        self.session = session
        if session is not None:
            session.updated.connect(self.refresh)
            session.teach = self.teach.isChecked()
            where = session.folder
            self.folder.setText(f"<b>{html.escape(where.name)}</b> in {html.escape(str(where.parent))}")
            self.folder.setToolTip(str(session.folder))
        else:
            self.folder.setText("")
        for w in (self.sort, self.statuses, self.classes, self.slider, self.default_button, self.teach,
                  self.export_button):
            w.setEnabled(session is not None)
        self.placeholder.setVisible(session is None)
        self.view.setVisible(session is not None)
        self.model.set_session(session)
        self.refresh()

    def refresh(self) -> None:
        """Re-rank the view after any change, keeping the current item in view if it stays."""
        s = self.session
        if s is None:
            self.counts.setText("")
            self.threshold_text.setText("")
            return
        current = self.view.currentIndex()
        item = self.model.item(current.row()) if current.isValid() else -1
        selected = self.view.selected_items()
        self._fill_classes()
        self.model.refresh()
        if item >= 0 and self.model.row_of(item) >= 0:
            self.go_to(self.model.row_of(item), scroll=False)
        if len(selected) > 1:
            self.select_items(selected)
        self._update_slider()
        self._update_counts()

    def select_items(self, items: list[int]) -> None:
        """Select these items again after the rows moved (in runs of rows, not one by one)."""
        rows = np.sort(np.array([self.model.row_of(i) for i in items], np.int64))
        rows = rows[rows >= 0]
        selection = QItemSelection()
        if len(rows):
            breaks = np.flatnonzero(np.diff(rows) != 1)
            starts = np.concatenate([[rows[0]], rows[breaks + 1]])
            ends = np.concatenate([rows[breaks], [rows[-1]]])
            for a, b in zip(starts, ends, strict=True):
                selection.select(self.model.index(int(a)), self.model.index(int(b)))
        flags = QItemSelectionModel.SelectionFlag
        self.view.selectionModel().select(selection, flags.ClearAndSelect)

    def _reset_filters(self) -> None:
        for combo in (self.statuses, self.classes):
            combo.blockSignals(True)
            combo.setCurrentIndex(0)
            combo.blockSignals(False)
        self._filters_changed()

    def _fill_classes(self) -> None:
        assert self.session is not None
        wanted = [("All classes", None), ("Unknown", -1)] + [
            (name, class_id) for class_id, (name, _) in self.session.class_names().items()]
        have = [(self.classes.itemText(i), self.classes.itemData(i)) for i in range(self.classes.count())]
        if wanted != have:
            keep = self.classes.currentData()
            self.classes.blockSignals(True)
            self.classes.clear()
            for text, data in wanted:
                self.classes.addItem(text, data)
            self.classes.setCurrentIndex(max(0, self.classes.findData(keep)) if keep is not None else 0)
            self.classes.blockSignals(False)
            self.model.label_filter = self.classes.currentData()

    def _filters_changed(self) -> None:
        self.model.sort_by = SORTS[self.sort.currentIndex()]
        self.model.status_filter = STATUS_FILTERS[self.statuses.currentIndex()][1]
        self.model.label_filter = self.classes.currentData()
        self.refresh()
        if self.model.rowCount():
            self.go_to(0)

    def _update_counts(self) -> None:
        assert self.session is not None
        status = self.session.results.status()
        counts = np.bincount(status, minlength=len(Status))
        marked = int((self.session.results.reviews() == Review.UNKNOWN).sum())
        parts = []
        for name, n in zip((s.word for s in Status), counts.tolist(), strict=True):
            if n:
                by_you = f" ({marked:,} marked by you)" if name == "unknown" and marked else ""
                parts.append(f"{n:,} {name}{'s' if name == 'error' and n != 1 else ''}{by_you}")
        end = " — still labeling…" if self.session.running else "."
        self.counts.setText(f"{len(status):,} files: " + " · ".join(parts) + end +
                            "  Keys: 1–9 (or A) assign to a class, Enter confirms, U none of these, Ctrl+Z undo.")

    # -- "none of these" ---------------------------------------------------------------
    def _update_slider(self) -> None:
        assert self.session is not None
        r = self.session.results
        finite = r.min_distance[r.min_distance < float("inf")]
        base = self.session.default_threshold or 1.0
        self._max_distance = max(2.5 * base, float(finite.max()) if finite.size else 0.0)
        t = r.threshold
        self.slider.blockSignals(True)
        self.slider.setValue(SLIDER_STEPS if t is None else round(SLIDER_STEPS * min(t / self._max_distance, 1.0)))
        self.slider.blockSignals(False)
        self._show_threshold(t)

    def _show_threshold(self, t: float | None) -> None:
        assert self.session is not None
        if t is None:
            self.threshold_text.setText("(no examples yet)")
            return
        rejected = self.session.results.rejected(t)
        origin = "default" if self.session.user_threshold is None else "yours"
        # Items not yet reviewed that this distance calls unknown; the counts line below adds
        # those you marked unknown yourself.
        self.threshold_text.setText(f"{t:.1f} ({origin}): calls {rejected:,} not yet reviewed unknown")

    def _slider_moved(self, value: int) -> None:
        if self.session is None:
            return
        self._show_threshold(self._max_distance * value / SLIDER_STEPS)
        self._apply_timer.start()

    def _apply_threshold(self) -> None:
        if self.session is not None:
            self.session.set_threshold(self._max_distance * self.slider.value() / SLIDER_STEPS)

    def _default_threshold(self) -> None:
        if self.session is not None:
            self.session.set_threshold(None)

    def _teach_toggled(self, on: bool) -> None:
        if self.session is not None:
            self.session.teach = on

    # -- reviewing ---------------------------------------------------------------------
    def review(self, kind: str, class_id: int = -1) -> int:
        """Review the selection (or the current item); the selection moves to the next item."""
        s = self.session
        if s is None:
            return 0
        items = self.view.selected_items()
        if not items and self.view.currentIndex().isValid():
            items = [self.model.item(self.view.currentIndex().row())]
        if not items:
            return 0
        first_row = min(self.model.row_of(i) for i in items)
        changed = s.review(items, kind, class_id)
        if self.model.rowCount():
            row = min(max(first_row, 0), self.model.rowCount() - 1)
            if self.model.sort_by != SORTS[0] and len(items) == 1 and self.model.row_of(items[0]) == row:
                row = min(row + 1, self.model.rowCount() - 1)  # other orders don't move the item away
            self.go_to(row)
        return changed

    def go_to(self, row: int, scroll: bool = True) -> None:
        """Make ``row`` the current and only selected item."""
        index = self.model.index(row)
        flags = QItemSelectionModel.SelectionFlag
        self.view.selectionModel().setCurrentIndex(index, flags.ClearAndSelect)
        if scroll:
            self.view.scrollTo(index)

    def _context_menu(self, pos: QPoint) -> None:
        """Right-click: review the selection, with every class listed (not only 1–9)."""
        if self.session is None or not self.view.indexAt(pos).isValid():
            return
        if not self.view.selectionModel().isSelected(self.view.indexAt(pos)):
            self.go_to(self.view.indexAt(pos).row(), scroll=False)
        menu = self.review_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def review_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Confirm the Prediction\tEnter", lambda: self.review("confirm"))
        menu.addAction("None of These\tU", lambda: self.review("unknown"))
        assign = menu.addMenu("Assign to Class")
        assert self.session is not None
        for n, c in enumerate(self.session.controller.workspace.classes(), 1):
            key = f"\t{n}" if n <= 9 else ""
            assign.addAction(f"{c.name}{key}", functools.partial(self.review, "assign", c.id))
        menu.addSeparator()
        menu.addAction(self.view.preview_action)
        menu.addActions(self.view.zoom_actions())
        return menu

    def choose_class(self) -> int:
        """The A key: pick any class by name (type to jump), then assign the selection to it."""
        if self.session is None:
            return 0
        classes = self.session.controller.workspace.classes()
        if not classes:
            return 0
        names = [f"{n}  {c.name}" if n <= 9 else c.name for n, c in enumerate(classes, 1)]
        chosen, ok = QInputDialog.getItem(self, "Assign to Class", "Assign the selected items to:", names, 0, False)
        if not ok:
            return 0
        return self.review("assign", classes[names.index(chosen)].id)

    def assign_number(self, n: int) -> int:
        """Assign the selection to the class shown as number ``n``."""
        if self.session is None:
            return 0
        record = self.session.controller.class_at(n)
        if record is None:
            return 0
        return self.review("assign", record.id)
