"""The labeling workspace: an open project, its support set in a few-shot classifier, and the
encoder that embeds examples and queries.

Every edit goes to the project file first and then to the classifier, so the two never
disagree. Edits return plain records that undo needs (the GUI's undo commands keep those,
never live objects). Embedding new examples (:meth:`Workspace.prepare`) touches neither the
file nor the classifier, so it may run on a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from protoglyph.core.classifier import Calibration, FewShotClassifier, Prediction
from protoglyph.core.drawing import Stroke, render_strokes
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.imagefile import encode_png, shrink_to
from protoglyph.core.project import ClassRecord, ExampleRecord, Project, now
from protoglyph.core.text import hidden_format_characters
from protoglyph.core.threshold import unknown_mask

#: Colours given to new classes in turn (distinct, readable on light and dark backgrounds).
CLASS_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
                "#469990", "#808000", "#dcbeff", "#000075", "#ffe119", "#aaffc3", "#800000", "#a9a9a9")
#: Longest stored side of an example image; larger ones are shrunk (area filter) when added.
MAX_STORED_SIDE = 1024
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class NewExample:
    """An example ready to be added: its gray image, where it came from, and its embedding."""

    image: np.ndarray  # (h, w) uint8
    source: str
    embedding: np.ndarray  # (D,) float32
    strokes: str | None = None


@dataclass(frozen=True)
class ClassSnapshot:
    """A deleted class with its examples, enough to put it back exactly."""

    record: ClassRecord
    examples: tuple[ExampleRecord, ...]


def strokes_json(strokes: Sequence[Stroke], width: float, height: float, pen: float) -> str:
    """A drawing's strokes as stored in the project (canvas coordinates, rounded to 0.1 px)."""
    return json.dumps({"width": width, "height": height, "pen": pen,
                       "strokes": [np.round(np.asarray(s, float), 1).tolist() for s in strokes]})


class DamagedExample(ValueError):
    """An example whose stored image no longer matches its checksum, or cannot be decoded."""


def decode_example(record: ExampleRecord) -> np.ndarray:
    """The example's gray ``uint8`` image.

    Raises:
        DamagedExample: the stored image is damaged.
    """
    image = None if record.damaged else cv2.imdecode(np.frombuffer(record.image, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DamagedExample(f"example {record.id}: its stored image is damaged")
    return image


def usable_embedding(blob: bytes | None, size: int) -> np.ndarray | None:
    """A stored float32 embedding of ``size`` values, or ``None`` if it is missing, the wrong
    size or not finite (then it is computed again from the image)."""
    if blob is None or len(blob) != 4 * size:
        return None
    vec = np.frombuffer(blob, np.float32)
    return vec.copy() if np.isfinite(vec).all() else None


class Workspace:
    """An open project with its classifier. ``classify_*`` answers use class ids as keys."""

    def __init__(self, project: Project, encoder: EncoderSession) -> None:
        self.project = project
        self.encoder = encoder
        self.model_key = encoder.model_key
        # Calibrated: probabilities fitted on held-out alphabets, with the chance of "none of these".
        self.classifier = FewShotClassifier(encoder.embedding_size, encoder.info.temperature,
                                            calibration=Calibration.from_model(encoder.info))
        self._embedding: dict[int, np.ndarray] = {}
        self._class_of: dict[int, int] = {}
        #: What could not be used when the project was opened, in words (damaged examples); the
        #: examples stay in the file.
        self.problems: list[str] = []
        self._load()

    # -- reading -----------------------------------------------------------------------
    def classes(self) -> list[ClassRecord]:
        return self.project.classes()

    def class_record(self, class_id: int) -> ClassRecord:
        for c in self.project.classes():
            if c.id == class_id:
                return c
        raise KeyError(f"no class with id {class_id}")

    def examples(self, class_id: int) -> list[ExampleRecord]:
        return self.project.examples(class_id)

    def example_count(self, class_id: int) -> int:
        return self.classifier.example_count(class_id)

    # -- classes -----------------------------------------------------------------------
    def check_name(self, name: str, ignore_id: int | None = None) -> str:
        """A valid class name (trimmed, NFC), or ``ValueError`` saying what is wrong."""
        clean = unicodedata.normalize("NFC", name).strip()
        if not clean:
            raise ValueError("a class name cannot be empty")
        if len(clean) > MAX_NAME_LENGTH:
            raise ValueError(f"a class name can have at most {MAX_NAME_LENGTH} characters")
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in clean):
            raise ValueError("a class name cannot contain control characters or line breaks")
        hidden = hidden_format_characters(clean)
        if hidden:
            raise ValueError(f"a class name cannot contain invisible formatting characters (U+{ord(hidden[0]):04X} "
                             f"{unicodedata.name(hidden[0], '')})".replace(" )", ")"))
        for c in self.project.classes():
            if c.id != ignore_id and c.name.casefold() == clean.casefold():
                raise ValueError(f"there is already a class named “{c.name}”")
        return clean

    def unused_name(self, base: str = "Class") -> str:
        taken = {c.name.casefold() for c in self.project.classes()}
        n = len(taken) + 1
        while f"{base} {n}".casefold() in taken:
            n += 1
        return f"{base} {n}"

    def next_color(self) -> str:
        used = [c.color for c in self.project.classes()]
        for color in CLASS_COLORS:
            if color not in used:
                return color
        return CLASS_COLORS[len(used) % len(CLASS_COLORS)]

    def add_class(self, name: str, color: str | None = None, position: int | None = None) -> ClassRecord:
        return self.project.add_class(self.check_name(name), color or self.next_color(), position)

    def rename_class(self, class_id: int, name: str) -> str:
        """Rename; returns the name it had."""
        old = self.class_record(class_id).name
        self.project.update_class(class_id, name=self.check_name(name, ignore_id=class_id))
        return old

    def recolor_class(self, class_id: int, color: str) -> str:
        """Set the colour; returns the colour it had."""
        old = self.class_record(class_id).color
        self.project.update_class(class_id, color=color)
        return old

    def move_class(self, class_id: int, position: int) -> int:
        """Move a class to ``position`` in the list; returns where it was."""
        order = [c.id for c in self.project.classes()]
        old = order.index(class_id)
        order.insert(max(0, min(position, len(order) - 1)), order.pop(old))
        self.project.set_class_order(order)
        return old

    def delete_class(self, class_id: int) -> ClassSnapshot:
        record, examples = self.project.delete_class(class_id)
        if self.classifier.example_count(class_id) or class_id in self.classifier.classes:
            self.classifier.remove_class(class_id)
        for e in examples:
            self._forget(e.id)
        return ClassSnapshot(record, tuple(examples))

    def restore_class(self, snapshot: ClassSnapshot) -> None:
        self.project.restore_class(snapshot.record, snapshot.examples)
        self._learn(snapshot.examples)

    # -- examples ----------------------------------------------------------------------
    def prepare(self, images: Sequence[np.ndarray], sources: Sequence[str],
                strokes: Sequence[str | None] | None = None,
                embeddings: np.ndarray | None = None) -> list[NewExample]:
        """Embed gray images as new examples (no file or classifier change; thread-safe).

        ``embeddings`` are theirs when already known (a labeled folder's items): no embedding then.
        """
        if not images:
            return []
        vectors = self.encoder.embed_images(list(images)) if embeddings is None else np.asarray(embeddings, np.float32)
        marks = strokes if strokes is not None else [None] * len(images)
        return [NewExample(shrink_to(img, MAX_STORED_SIDE), src, vec, st)
                for img, src, vec, st in zip(images, sources, vectors, marks, strict=True)]

    def prepare_drawing(self, strokes: Sequence[Stroke], width: float, height: float, pen: float) -> NewExample:
        image = render_strokes(strokes, width, height, pen)
        return self.prepare([image], ["drawing"], [strokes_json(strokes, width, height, pen)])[0]

    def add_examples(self, class_id: int, new: Sequence[NewExample]) -> list[ExampleRecord]:
        stamp = now()
        drafts = [ExampleRecord(0, class_id, 0, encode_png(n.image), n.source, n.strokes, stamp,
                                n.embedding.astype(np.float32).tobytes(), self.model_key) for n in new]
        records = self.project.add_examples(class_id, drafts)
        self._learn(records)
        return records

    def remove_examples(self, example_ids: Sequence[int]) -> list[ExampleRecord]:
        records = self.project.delete_examples(example_ids)
        for e in records:
            if e.id in self._embedding:  # a damaged example was never learned
                self.classifier.remove_examples(e.class_id, self._embedding[e.id])
            self._forget(e.id)
        return records

    def restore_examples(self, records: Sequence[ExampleRecord]) -> None:
        self.project.restore_examples(records)
        self._learn(records)

    def move_examples(self, example_ids: Sequence[int], class_id: int) -> list[tuple[int, int, int]]:
        """Move examples to the end of another class; returns ``(id, class_id, position)`` before."""
        before = [(e.id, e.class_id, e.position) for e in (self.project.example(i) for i in example_ids)]
        start = self.project.next_position(class_id)
        self.place_examples([(i, class_id, start + n) for n, i in enumerate(example_ids)])
        return before

    def place_examples(self, moves: Sequence[tuple[int, int, int]]) -> None:
        """Put examples at ``(id, class_id, position)`` each (moving, and undoing a move)."""
        self.project.move_examples(moves)
        for example_id, class_id, _ in moves:
            old = self._class_of.get(example_id, class_id)  # a damaged example was never learned
            if old != class_id:
                vec = self._embedding[example_id]
                self.classifier.remove_examples(old, vec)
                self.classifier.add_examples(class_id, vec)
                self._class_of[example_id] = class_id

    # -- queries -----------------------------------------------------------------------
    def has_examples(self) -> bool:
        return bool(self.classifier.classes)

    def embed_drawing(self, strokes: Sequence[Stroke], width: float, height: float, pen: float) -> np.ndarray:
        """``(D,)`` embedding of a drawing, rendered from its strokes."""
        out: np.ndarray = self.encoder.embed_images([render_strokes(strokes, width, height, pen)])[0]
        return out

    def support_embeddings(self) -> dict[int, np.ndarray]:
        """``{class id: (k, D) float32}``: every example's embedding, by class (for the default threshold)."""
        by_class: dict[int, list[np.ndarray]] = {}
        for example_id, class_id in self._class_of.items():
            by_class.setdefault(class_id, []).append(self._embedding[example_id])
        return {c: np.stack(v) for c, v in by_class.items()}

    def looks_like_no_class(self, embedding: np.ndarray) -> bool:
        """The "none of these" rule of labeled folders, for one query: farther (squared distance)
        from every prototype than the default threshold derived from the examples."""
        if not self.has_examples():
            return False
        _, distances = self.classifier.distances(np.asarray(embedding, np.float32)[None])
        threshold = self.classifier.default_threshold()  # from running sums: nothing restacked per stroke
        return bool(unknown_mask(distances, threshold)[0])

    def classify_embedding(self, embedding: np.ndarray, k: int = 5) -> list[Prediction]:
        """The ``k`` most probable classes (keys are class ids), best first; ``[]`` with no examples."""
        return self.classifier.top_k(embedding, k)

    # -- internals ---------------------------------------------------------------------
    def _load(self) -> None:
        records = self.project.examples()
        size = self.encoder.embedding_size
        stale = [e for e in records if not e.damaged and (e.embedding_model != self.model_key
                                                          or usable_embedding(e.embedding, size) is None)]
        images = {}
        for e in stale:
            with contextlib.suppress(DamagedExample):  # left out, and reported, by _learn
                images[e.id] = decode_example(e)
        if images:
            vectors = self.encoder.embed_images(list(images.values()))
            fresh = {i: v.astype(np.float32).tobytes() for i, v in zip(images, vectors, strict=True)}
            self.project.store_embeddings(self.model_key, fresh)
            records = self.project.examples()
        self._learn(records)

    def _learn(self, records: Sequence[ExampleRecord]) -> None:
        by_class: dict[int, list[np.ndarray]] = {}
        names = {c.id: c.name for c in self.project.classes()}
        for e in records:
            vec = (usable_embedding(e.embedding, self.encoder.embedding_size)
                   if not e.damaged and e.embedding_model == self.model_key else None)
            if vec is None:
                try:
                    vec = self.encoder.embed_images([decode_example(e)])[0]
                except DamagedExample:
                    self.problems.append(f"Class “{names.get(e.class_id, e.class_id)}” lost example {e.position + 1}: "
                                         "its stored image is damaged. It was left out (and kept in the file); "
                                         "delete it, or restore the project from a copy.")
                    continue
            self._embedding[e.id] = vec
            self._class_of[e.id] = e.class_id
            by_class.setdefault(e.class_id, []).append(vec)
        for class_id, vecs in by_class.items():
            self.classifier.add_examples(class_id, np.stack(vecs))

    def _forget(self, example_id: int) -> None:
        self._embedding.pop(example_id, None)
        self._class_of.pop(example_id, None)
