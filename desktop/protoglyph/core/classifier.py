"""Few-shot classification by prototypes: the mean embedding of each class's examples.

A query belongs to the class whose prototype is nearest in squared Euclidean distance;
probabilities are ``softmax(-distance / temperature)`` with the model's temperature.
Adding or removing one example updates that class's running sum and one prototype row.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


def squared_distances(queries: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances.

    Args:
        queries: ``(n_query, D)`` ``float32``.
        prototypes: ``(n_classes, D)`` ``float32``.
    Returns:
        ``(n_query, n_classes)`` ``float32``, never negative.
    """
    q = np.asarray(queries, dtype=np.float32)
    p = np.asarray(prototypes, dtype=np.float32)
    d = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + (p * p).sum(1)[None, :]
    out: np.ndarray = np.maximum(d, 0.0)
    return out


def softmax_probabilities(distances: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(-distances / temperature)`` along the last axis, computed stably.

    Args:
        distances: ``(..., n_classes)``.
    Returns:
        same shape, ``float32``, rows summing to 1.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = -np.asarray(distances, dtype=np.float64) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    probabilities: np.ndarray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probabilities


@dataclass(frozen=True)
class Prediction:
    """One class's score for one query."""

    class_key: Hashable
    probability: float
    distance: float


class FewShotClassifier:
    """Prototypes of a support set, updated one example at a time.

    Args:
        embedding_size: ``D``, the encoder's output size.
        temperature: softmax temperature from the model's metadata.
    """

    def __init__(self, embedding_size: int, temperature: float = 1.0) -> None:
        if embedding_size < 1:
            raise ValueError("embedding_size must be positive")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.embedding_size = embedding_size
        self.temperature = temperature
        self._keys: list[Hashable] = []
        self._row: dict[Hashable, int] = {}
        self._sums = np.zeros((0, embedding_size), dtype=np.float64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._prototypes = np.zeros((0, embedding_size), dtype=np.float32)

    # -- the support set ---------------------------------------------------------------
    @property
    def classes(self) -> list[Hashable]:
        """Class keys with at least one example, in the order they were first added."""
        return [k for k in self._keys if self._counts[self._row[k]] > 0]

    def example_count(self, key: Hashable) -> int:
        row = self._row.get(key)
        return 0 if row is None else int(self._counts[row])

    def add_examples(self, key: Hashable, embeddings: np.ndarray) -> None:
        """Add ``(k, D)`` (or one ``(D,)``) example embeddings to class ``key``."""
        emb = self._check(embeddings)
        row = self._row.get(key)
        if row is None:
            row = len(self._keys)
            self._keys.append(key)
            self._row[key] = row
            self._sums = np.vstack([self._sums, np.zeros((1, self.embedding_size))])
            self._counts = np.append(self._counts, 0)
            self._prototypes = np.vstack([self._prototypes, np.zeros((1, self.embedding_size), np.float32)])
        self._sums[row] += emb.sum(0)
        self._counts[row] += emb.shape[0]
        self._refresh(row)

    def remove_examples(self, key: Hashable, embeddings: np.ndarray) -> None:
        """Remove example embeddings that were added to class ``key`` before."""
        emb = self._check(embeddings)
        row = self._row.get(key)
        if row is None or self._counts[row] < emb.shape[0]:
            raise KeyError(f"class {key!r} does not hold {emb.shape[0]} examples")
        self._sums[row] -= emb.sum(0)
        self._counts[row] -= emb.shape[0]
        if self._counts[row] == 0:
            self._sums[row] = 0.0
        self._refresh(row)

    def remove_class(self, key: Hashable) -> None:
        """Forget class ``key`` and all its examples."""
        row = self._row.pop(key)
        del self._keys[row]
        self._sums = np.delete(self._sums, row, 0)
        self._counts = np.delete(self._counts, row)
        self._prototypes = np.delete(self._prototypes, row, 0)
        self._row = {k: i for i, k in enumerate(self._keys)}

    def clear(self) -> None:
        for key in list(self._keys):
            self.remove_class(key)

    def prototypes(self) -> tuple[list[Hashable], np.ndarray]:
        """Class keys and their ``(n_classes, D)`` ``float32`` prototypes (classes with examples)."""
        active = self._counts > 0
        keys = [k for k, a in zip(self._keys, active, strict=True) if a]
        return keys, self._prototypes[active]

    # -- queries -----------------------------------------------------------------------
    def distances(self, queries: np.ndarray) -> tuple[list[Hashable], np.ndarray]:
        """Class keys and ``(n_query, n_classes)`` squared distances to their prototypes."""
        keys, protos = self.prototypes()
        return keys, squared_distances(self._check(queries), protos)

    def probabilities(self, queries: np.ndarray) -> tuple[list[Hashable], np.ndarray]:
        """Class keys and ``(n_query, n_classes)`` probabilities."""
        keys, d = self.distances(queries)
        if not keys:
            raise ValueError("the support set is empty: add examples to at least one class")
        return keys, softmax_probabilities(d, self.temperature)

    def predict(self, queries: np.ndarray) -> tuple[list[Hashable], np.ndarray, np.ndarray]:
        """Best class per query.

        Returns:
            class keys, ``(n_query,)`` ``int64`` index of the best class into them, and
            ``(n_query,)`` ``float32`` its probability.
        """
        keys, p = self.probabilities(queries)
        best = p.argmax(1)
        return keys, best, p[np.arange(len(best)), best]

    def top_k(self, query: np.ndarray, k: int = 5) -> list[Prediction]:
        """The ``k`` most probable classes for one ``(D,)`` query, best first."""
        keys, d = self.distances(query)
        if not keys:
            return []
        p = softmax_probabilities(d[0], self.temperature)
        order = np.argsort(-p, kind="stable")[:k]
        return [Prediction(keys[i], float(p[i]), float(d[0, i])) for i in order]

    # -- internals ---------------------------------------------------------------------
    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim == 1:
            emb = emb[None, :]
        if emb.ndim != 2 or emb.shape[1] != self.embedding_size:
            raise ValueError(f"expected (k, {self.embedding_size}) embeddings, got shape {emb.shape}")
        return emb

    def _refresh(self, row: int) -> None:
        count = self._counts[row]
        self._prototypes[row] = self._sums[row] / count if count else 0.0


def episode_accuracy(classifier_embeddings: Sequence[np.ndarray], query_embeddings: np.ndarray,
                     query_truth: np.ndarray, temperature: float = 1.0) -> float:
    """Accuracy of one few-shot episode through :class:`FewShotClassifier`.

    Args:
        classifier_embeddings: per class ``j``, its ``(shots, D)`` support embeddings.
        query_embeddings: ``(n_query, D)``.
        query_truth: ``(n_query,)`` true class index ``j`` of every query.
    """
    dim = query_embeddings.shape[1]
    clf = FewShotClassifier(dim, temperature)
    for j, emb in enumerate(classifier_embeddings):
        clf.add_examples(j, emb)
    keys, best, _ = clf.predict(query_embeddings)
    predicted = np.array([keys[i] for i in best])
    return float((predicted == query_truth).mean())
