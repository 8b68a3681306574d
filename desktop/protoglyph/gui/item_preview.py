"""The preview of one item of a labeled folder: its image large, its label, and the examples of
its nearest class and of the runner-up that it is nearest to, with their distances.

The preview never takes the keyboard: the grid keeps it, so arrows move on (and the preview
follows), 1–9 and Enter still review, and Space or Esc close it.

The module-level functions are plain numpy (no Qt): which classes and examples are nearest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, QObject, QRunnable, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFont, QHideEvent, QImage, QKeyEvent, QPixmap, QShowEvent
from PySide6.QtWidgets import QApplication, QDialog, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from protoglyph.core.classifier import softmax_probabilities, squared_distances
from protoglyph.core.imagefile import ImageReadError, read_image, shrink_to
from protoglyph.core.labeling.states import ItemState, Status
from protoglyph.core.text import readable
from protoglyph.gui.images import ThumbnailCache, gray_to_qimage
from protoglyph.gui.wording import percent

if TYPE_CHECKING:
    from protoglyph.core.workspace import Workspace
    from protoglyph.gui.results_model import ResultsModel

#: Side of the large image (px), and of the example thumbnails.
IMAGE_SIDE = 360
EXAMPLE_SIDE = 64
#: Examples shown per class, and classes shown (the nearest and the runner-up).
EXAMPLES_SHOWN = 5
CLASSES_SHOWN = 2
GEOMETRY_SETTING = "results/preview_geometry"
#: Example thumbnails kept (16 KB each); each item shows ten.
EXAMPLES_KEPT = 400

# -- which examples are nearest (plain numpy: it belongs in the core) -------------------


@dataclass(frozen=True)
class ClassNeighbours:
    """One of an item's nearest classes and the examples of it nearest to the item."""

    class_id: int
    distance: float  # the item's squared distance to the class's prototype
    probability: float  # softmax over every class, as the item's confidence
    examples: tuple[tuple[int, float], ...]  # (example id, squared distance), nearest first


def nearest_examples(query: np.ndarray, example_ids: np.ndarray, embeddings: np.ndarray, k: int,
                     exclude: Collection[int] = ()) -> list[tuple[int, float]]:
    """The ``k`` examples nearest to ``query``, nearest first, as ``(example id, squared distance)``.

    Args:
        query: ``(D,)`` float16 or float32, the item's embedding.
        example_ids: ``(n,)`` int.
        embeddings: ``(n, D)`` float32, the examples' embeddings, in the order of ``example_ids``.
        exclude: example ids left out (the example the item itself taught).
    """
    ids = np.asarray(example_ids, np.int64)
    keep = ~np.isin(ids, list(exclude)) if len(exclude) else np.ones(len(ids), bool)
    if not keep.any():
        return []
    d = squared_distances(np.asarray(query, np.float32)[None], np.asarray(embeddings)[keep])[0]
    order = np.argsort(d, kind="stable")[:k]
    return [(int(ids[keep][j]), float(d[j])) for j in order]


def item_neighbours(query: np.ndarray, keys: Sequence[int], distances: np.ndarray, temperature: float,
                    examples_of: Callable[[int], tuple[np.ndarray, np.ndarray]], k: int = EXAMPLES_SHOWN,
                    classes: int = CLASSES_SHOWN, exclude: Collection[int] = ()) -> list[ClassNeighbours]:
    """An item's ``classes`` nearest classes (nearest first), each with its ``k`` nearest examples.

    Args:
        query: ``(D,)`` the item's embedding.
        keys: the class ids of the prototypes, in the order of ``distances``.
        distances: ``(n_classes,)`` float32, the item's squared distances to the prototypes
            (a row of ``BatchResults.distances``).
        temperature: the model's softmax temperature (probabilities as the confidences are).
        examples_of: ``class id -> (ids (n,), embeddings (n, D) float32)``; asked only for the
            classes shown.
        exclude: example ids left out (the example the item itself taught).
    """
    if not len(keys):
        return []
    d = np.asarray(distances, np.float32)
    probabilities = softmax_probabilities(d[None], temperature)[0]
    out = []
    for j in np.argsort(d, kind="stable")[:classes]:
        ids, vectors = examples_of(int(keys[j]))
        near = tuple(nearest_examples(query, ids, vectors, k, exclude))
        out.append(ClassNeighbours(int(keys[j]), float(d[j]), float(probabilities[j]), near))
    return out


def class_examples(workspace: Workspace, class_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (n,) int64, embeddings (n, D) float32)`` of the examples of ``class_id`` in use.

    It reads the workspace's own tables (the embeddings the classifier holds; damaged examples
    are not among them): it belongs in ``Workspace`` as a public method.
    """
    ids = [e for e, c in workspace._class_of.items() if c == class_id]
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, workspace.encoder.embedding_size), np.float32)
    return np.array(ids, np.int64), np.stack([workspace._embedding[e] for e in ids]).astype(np.float32)


# -- reading the large image off the GUI thread ------------------------------------------


class _Signals(QObject):
    loaded = Signal(int, QImage)  # request number, image (null if unreadable)


class _ImageReader(QRunnable):
    def __init__(self, signals: _Signals, request: int, path: Path, side: int) -> None:
        super().__init__()
        self.signals, self.request, self.path, self.side = signals, request, path, side

    def run(self) -> None:
        try:
            image = gray_to_qimage(shrink_to(read_image(self.path), self.side))
        except (ImageReadError, ValueError):
            image = QImage()
        self.signals.loaded.emit(self.request, image)


# -- the widget --------------------------------------------------------------------------


def _text_label(parent: QWidget, bold: bool = False, small: bool = False) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # names and file names are shown as they are
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold or small:
        font = QFont(label.font())
        font.setBold(bold)
        if small:
            font.setPointSizeF(font.pointSizeF() * 0.9)
        label.setFont(font)
    return label


class ItemPreview(QDialog):
    """A non-modal window on one row of a :class:`ResultsModel`; ``imageShown(item)`` when the
    item's own image is on screen (it is read on the thread pool)."""

    imageShown = Signal(int)

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        flags = Qt.WindowType.Tool | Qt.WindowType.WindowDoesNotAcceptFocus
        super().__init__(parent, flags)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setModal(False)
        self.setWindowTitle("Preview")
        self.model = model
        self.item = -1
        self.neighbours: list[ClassNeighbours] = []
        self._session: object = None
        self._workspace: object = None
        self._examples = ThumbnailCache(EXAMPLE_SIDE)
        self._example_ids: set[int] = set()
        self._signals = _Signals()
        self._signals.loaded.connect(self._image_loaded)
        self._request = 0
        self._image_item = -1
        #: The item whose own image is on screen (-1 while it is being read).
        self.shown_item = -1
        self._placed = False
        self.image = QLabel(self)
        self.image.setObjectName("previewImage")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(IMAGE_SIDE, IMAGE_SIDE)
        self.image.setStyleSheet("background: white; border: 1px solid palette(mid);")
        self.file_name = _text_label(self, bold=True)
        self.where = _text_label(self, small=True)
        self.label = _text_label(self, bold=True)
        self.status = _text_label(self)
        self.headings = [_text_label(self) for _ in range(CLASSES_SHOWN)]
        self.thumbs = [[QLabel(self) for _ in range(EXAMPLES_SHOWN)] for _ in range(CLASSES_SHOWN)]
        self.distances = [[QLabel(self) for _ in range(EXAMPLES_SHOWN)] for _ in range(CLASSES_SHOWN)]
        self._layout()
        model.modelReset.connect(self._model_reset)

    def _layout(self) -> None:
        about = QVBoxLayout()
        for w in (self.file_name, self.where, self.label, self.status):
            w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            about.addWidget(w)
        about.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.image)
        top.addLayout(about, 1)
        col = QVBoxLayout(self)
        col.addLayout(top)
        for heading, thumbs, distances in zip(self.headings, self.thumbs, self.distances, strict=True):
            col.addWidget(heading)
            grid = QGridLayout()
            for n, (thumb, distance) in enumerate(zip(thumbs, distances, strict=True)):
                thumb.setFixedSize(EXAMPLE_SIDE, EXAMPLE_SIDE)
                distance.setAlignment(Qt.AlignmentFlag.AlignHCenter)
                grid.addWidget(thumb, 0, n, Qt.AlignmentFlag.AlignHCenter)
                grid.addWidget(distance, 1, n)
            grid.setColumnStretch(EXAMPLES_SHOWN, 1)
            col.addLayout(grid)
        self.resize(IMAGE_SIDE + 320, self.sizeHint().height())

    # -- what it shows -----------------------------------------------------------------
    def show_row(self, row: int) -> None:
        """Show the item of ``row`` of the model."""
        if self.model.session is None or not 0 <= row < self.model.rowCount():
            return
        self._show_item(self.model.item(row))

    def _show_item(self, item: int) -> None:
        s = self.model.session
        if s is None:
            return
        ws = s.controller.workspace
        if ws is not self._workspace or len(self._example_ids) > EXAMPLES_KEPT:
            self._examples.clear()  # (example ids are only unique within one project)
            self._example_ids.clear()
            self._workspace = ws
        self._session, self.item = s, item
        t, r = s.table, s.results
        status = int(r.status()[item])
        label = int(r.labels()[item])
        names = {c.id: c.name for c in ws.classes()}
        folder, _, file_name = readable(t.paths[item]).rpartition("/")
        self.setWindowTitle(f"Preview — {file_name}")
        self.file_name.setText(file_name)
        self.where.setText(f"in {readable(str(s.folder / folder)) if folder else readable(str(s.folder))}")
        if status == Status.ERROR:
            self.label.setText("error")
            self.status.setText(readable(t.errors.get(item, "")))
        else:
            self.label.setText(names.get(label, "?") if label >= 0 else "unknown")
            confidence = ""
            if r.best[item] >= 0:
                confidence = (f", distance {r.min_distance[item]:.1f} to the nearest class"
                              if status == Status.UNKNOWN else
                              f", {percent(float(r.confidence[item]))} confident (distance {r.min_distance[item]:.1f})")
            reviewed = " by you" if status in (Status.CONFIRMED, Status.CORRECTED) else ""
            self.status.setText(f"{Status(status).word}{reviewed}{confidence}")
        self.neighbours = self._neighbours(item) if status != Status.ERROR else []
        self._show_neighbours(names)
        if item != self._image_item:
            self._load_image(item)

    def _neighbours(self, item: int) -> list[ClassNeighbours]:
        s = self.model.session
        assert s is not None
        r, t = s.results, s.table
        if r.best[item] < 0 or item >= len(r.distances) or item >= len(t.embeddings):
            return []
        taught = int(t.example_id[item])
        ws = s.controller.workspace
        return item_neighbours(t.embeddings[item], r.keys, r.distances[item], r.temperature,
                               lambda c: class_examples(ws, c), exclude=(taught,) if taught >= 0 else ())

    def _show_neighbours(self, names: dict[int, str]) -> None:
        s = self.model.session
        assert s is not None
        project = s.controller.workspace.project
        for n, heading in enumerate(self.headings):
            near = self.neighbours[n] if n < len(self.neighbours) else None
            heading.setVisible(near is not None)
            if near is not None:
                what = "Nearest class" if n == 0 else "Runner-up"
                none = "" if near.examples else " (no examples to compare)"
                heading.setText(f"{what}: {names.get(near.class_id, '?')} — {100 * near.probability:.0f}%, "
                                f"distance {near.distance:.1f}{none}")
            for k, (thumb, distance) in enumerate(zip(self.thumbs[n], self.distances[n], strict=True)):
                example = near.examples[k] if near is not None and k < len(near.examples) else None
                pixmap = None
                if example is not None:
                    try:
                        pixmap = self._examples.get(project.example(example[0]))
                        self._example_ids.add(example[0])
                    except KeyError:  # removed since (the classifier follows at once; this is a race)
                        pixmap = None
                thumb.setVisible(pixmap is not None)
                distance.setVisible(pixmap is not None)
                if pixmap is not None and example is not None:
                    thumb.setPixmap(pixmap)
                    distance.setText(f"{example[1]:.1f}")
                    thumb.setToolTip(f"An example of {names.get(near.class_id, '?') if near else ''}: "
                                     f"distance {example[1]:.1f}")

    def _load_image(self, item: int) -> None:
        s = self.model.session
        assert s is not None
        self._image_item, self.shown_item = item, -1
        self._request += 1
        row = self.model.row_of(item)
        small = self.model.index(row).data(Qt.ItemDataRole.DecorationRole) if row >= 0 else None
        if isinstance(small, QPixmap):  # the grid's thumbnail, until the image is read
            self.image.setPixmap(small.scaled(IMAGE_SIDE, IMAGE_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))
        else:
            self.image.clear()
        if s.table.state[item] == ItemState.PENDING:
            return
        self.model.thumbnails.pool.start(_ImageReader(self._signals, self._request, s.path(item), 2 * IMAGE_SIDE))

    def _image_loaded(self, request: int, image: QImage) -> None:
        if request != self._request:
            return  # the preview moved on to another item
        if image.isNull():
            self.image.setText("This file cannot be read.")
        else:
            pixmap = QPixmap.fromImage(image)
            self.image.setPixmap(pixmap.scaled(IMAGE_SIDE - 2, IMAGE_SIDE - 2, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
        self.shown_item = self._image_item
        self.imageShown.emit(self.shown_item)

    def _model_reset(self) -> None:
        """A refresh (a review, a re-rank, another folder): the same item, with its new figures."""
        s = self.model.session
        if s is None or s is not self._session:
            self.hide()
            self._session, self.item, self._image_item = None, -1, -1
        elif self.isVisible() and self.item >= 0:
            self._show_item(self.item)

    # -- window ------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        """If the preview got the keys after all (a platform that gives a tool window the
        focus): Space and Esc close it, the rest go to the grid."""
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            self.hide()
            return
        parent = self.parentWidget()
        if parent is not None:
            QApplication.sendEvent(parent, QKeyEvent(event.type(), event.key(), event.modifiers(), event.text()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        # Where the platform activates a tool window anyway (it may ignore the flags above),
        # the keys go back to the grid at once: the preview is only looked at.
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            QTimer.singleShot(0, self._give_back_keys)

    def _give_back_keys(self) -> None:
        parent = self.parentWidget()
        if parent is not None and self.isActiveWindow():
            parent.window().activateWindow()
            parent.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        if not self._placed:
            self._placed = True
            geometry = QSettings().value(GEOMETRY_SETTING)
            if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
                parent = self.parentWidget()
                if parent is not None:  # beside the grid, over the window's right side
                    frame = parent.window().frameGeometry()
                    self.move(max(frame.left(), frame.right() - self.width() - 24), frame.top() + 80)
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        QSettings().setValue(GEOMETRY_SETTING, self.saveGeometry())
        super().hideEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._request += 1  # an image still being read is not wanted any more
        super().closeEvent(event)
