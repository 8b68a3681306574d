"""Few-shot classification by prototypes: the mean embedding of each class's examples.

A query belongs to the class whose prototype is nearest in squared Euclidean distance;
probabilities are ``softmax(-distance / temperature)`` with the model's temperature.
Adding or removing one example updates that class's running sums and one prototype row.

With a :class:`Calibration` (fitted on held-out Omniglot alphabets by ``models/calibration.py``
and stored in the model's metadata) the probabilities are calibrated: the softmax uses the
fitted temperature, and an open-set term takes away the probability that the item is none of
the classes, ``p(class c) = (1 - p_unknown) * softmax_c``, with ``p_unknown`` a logistic
function of the distances in units of the support set's default "none of these"
threshold (:mod:`protoglyph.core.threshold`). A model without calibration keys gives today's
softmax probabilities.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from protoglyph.core.threshold import OpenSetReference, ThresholdRule, reference_from_moments


def squared_distances(queries: np.ndarray, prototypes: np.ndarray,
                      prototype_norms: np.ndarray | None = None, exact: bool = False) -> np.ndarray:
    """Squared Euclidean distances: the one formula of the canvas, folders and evaluation.

    Args:
        queries: ``(n_query, D)`` ``float32``.
        prototypes: ``(n_classes, D)`` ``float32``.
        prototype_norms: ``(n_classes,)`` their squared norms, when the caller keeps them (a
            folder's items are compared block by block with the same prototypes).
        exact: compute in float64: a row's distances then come out the same (as float32) however
            the rows are grouped. In float32 the matrix product's last bits depend on the block a
            row is in, and a folder's stored items (compared in big blocks) and new ones (a chunk
            at a time) showed confidences one unit apart in the 4th decimal on 19 of 20,000 rows.
    Returns:
        ``(n_query, n_classes)`` ``float32``, never negative.
    """
    kind: type[np.floating[Any]] = np.float64 if exact else np.float32
    q: np.ndarray = np.asarray(queries, dtype=kind)
    p: np.ndarray = np.asarray(prototypes, dtype=kind)
    p_sq: np.ndarray = (p * p).sum(1) if prototype_norms is None else np.asarray(prototype_norms, dtype=kind)
    d = (q * q).sum(1)[:, None] - 2.0 * (q @ p.T) + p_sq[None, :]
    out: np.ndarray = np.maximum(d, 0.0).astype(np.float32, copy=False)
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


def nearest_probability(distances: np.ndarray, temperature: float) -> np.ndarray:
    """``(n,)`` ``float32``: the softmax probability of each row's nearest class, the largest of
    :func:`softmax_probabilities` (``1 / Σ_j exp(-(d_j - d_min) / T)``), without the full matrix."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    d = np.asarray(distances, dtype=np.float32)
    spread = np.exp((d.min(axis=-1, keepdims=True) - d) / np.float32(temperature)).sum(-1)
    out: np.ndarray = (1.0 / spread).astype(np.float32)
    return out


#: Metadata keys of a fitted calibration, as ``models/calibration.py`` and ``models/export.py``
#: write them (each a ``repr`` of a float); the model card explains them.
TEMPERATURE_KEY = "calibrated_temperature"
OPEN_SET_KEYS = ("unknown_scale", "unknown_offset", "unknown_log_classes", "unknown_inverse_shots",
                 "unknown_margin", "unknown_log_density", "unknown_scale_inverse_shots")
#: Accepted ranges. Anything else is ignored as a hand-edited or foreign value: the temperature
#: divides the distances (the shipped model's is 1.0); a scale must be positive (farther never
#: means more likely known) and every weight is an ordinary number, not one that saturates
#: every probability to 0 or 1.
TEMPERATURE_RANGE = (1e-3, 1e3)
#: The encoder's typical spread ``s²`` of a class's drawings around their mean, which the
#: default threshold starts from (``threshold.TYPICAL_SPREAD`` where a model has none): it
#: belongs to the encoder, so an encoder other than 1.0.0 carries its own, measured on
#: validation data (``python -m models.calibration --typical-spread``).
TYPICAL_SPREAD_KEY = "typical_spread"
SPREAD_RANGE = (1e-6, 1e6)
#: The rest of a model's own :class:`threshold.ThresholdRule` (absent: encoder 1's rule).
KEEP_FACTOR_KEY, SPREAD_FLOOR_KEY, EFFECTIVE_SHOTS_KEY, ONE_SHOT_KEEP_FACTOR_KEY = (
    "threshold_keep_factor", "threshold_spread_floor", "threshold_effective_shots",
    "threshold_one_shot_keep_factor")
KEEP_FACTOR_RANGE = (0.1, 100.0)
SPREAD_FLOOR_RANGE = (0.0, 10.0)
#: :class:`Calibration`'s fields that make up the threshold rule.
RULE_FIELDS = ("typical_spread", "keep_factor", "spread_floor", "effective_shots", "one_shot_keep_factor")
SCALE_RANGE = (1e-3, 1e3)
WEIGHT_LIMIT = 1e3


class _ModelInfoLike(Protocol):
    """What :meth:`Calibration.from_model` reads of ``encoder.ModelInfo`` (no onnxruntime import here)."""

    @property
    def temperature(self) -> float: ...
    @property
    def extra(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class OpenSetTerm:
    """The probability that an item is none of the classes, from its distances to the prototypes.

    ``p_unknown = sigmoid(scale * r + offset + log_classes * ln(C) + inverse_shots * mean_c 1/k_c
    + margin * g + log_density * ln(ρ / T) + scale_inverse_shots * r * mean_c 1/k_c)``
    with ``r = d_1 / T`` and ``g = 1 - d_1 / d_2``
    (``d_1 <= d_2`` the two smallest squared distances), ``T`` the support set's default
    threshold, ``C`` its number of classes and ``ρ`` its density (``OpenSetReference.density``).
    ``r`` measures the nearest distance in units of what a new drawing of a known class usually
    stays within; the offsets say that with more classes, or with 1-shot classes, an item at the
    same ``r`` is more often a character of none of them; a drawing of a known class stands out
    from the runner-up (``g`` near 1), one of none lies about as far from several (``g`` near 0,
    as for anything far from every class); and in a crowded script (small ``ρ / T``) a drawing
    of none of the classes lies nearer to some of them. The last weight lets ``r``'s slope
    differ between one-example and many-example support sets (a threshold rule with a keep
    factor of its own for one example measures ``r`` in different units there). With one
    class ``g`` and ``ln(ρ / T)`` are 0. Fitted with as many unknown as known items (a prior of
    one half); for a prior ``π`` add ``ln(π / (1 - π))`` to ``offset``.
    """

    scale: float
    offset: float
    log_classes: float = 0.0
    inverse_shots: float = 0.0
    margin: float = 0.0
    log_density: float = 0.0
    scale_inverse_shots: float = 0.0

    def unknown_probability(self, distances: np.ndarray, reference: OpenSetReference) -> np.ndarray:
        """``p_unknown``.

        Args:
            distances: ``(n, C)`` squared distances to the prototypes, ``C >= 1``.
            reference: the support set's :class:`OpenSetReference`.
        Returns:
            ``(n,)`` ``float64`` in ``[0, 1]``.
        """
        z = self.log_odds(distances, reference)
        out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic, without overflow
        return out

    def log_odds(self, distances: np.ndarray, reference: OpenSetReference) -> np.ndarray:
        """``(n,)`` ``float64`` log-odds of "unknown" at the fitted prior of one half (what
        ``unknown_share`` shifts for a folder's own share of unknowns)."""
        weights = np.array([self.scale, self.log_classes, self.inverse_shots, self.margin, self.log_density,
                            self.scale_inverse_shots, self.offset])
        out: np.ndarray = open_set_features(distances, reference) @ weights
        return out


def open_set_features(distances: np.ndarray, reference: OpenSetReference) -> np.ndarray:
    """``(n, 7)`` ``float64`` features of :class:`OpenSetTerm`: ``r``, ``ln C``, ``mean 1/k``,
    ``g``, ``ln(ρ / T)``, ``r · mean 1/k`` and 1, of ``(n, C)`` squared distances (``C >= 1``)."""
    d = np.asarray(distances)  # no float64 copy of the whole (n, C): a big folder's is gigabytes
    n, classes = d.shape
    t = reference.threshold
    if classes > 1:
        two = np.empty((n, 2))
        for start in range(0, n, 8192):  # partition copies what it sorts: a block at a time
            two[start : start + 8192] = np.partition(d[start : start + 8192], 1, axis=1)[:, :2]
        nearest = two[:, 0]
        margin = np.where(two[:, 1] > 0, 1.0 - nearest / np.where(two[:, 1] > 0, two[:, 1], 1.0), 0.0)
    else:
        nearest, margin = d[:, 0].astype(np.float64), np.zeros(n)
    density = reference.density
    log_density = math.log(density / t) if classes > 1 and density is not None and density > 0 else 0.0
    ones = np.ones(n)
    r = nearest / t
    m = reference.mean_inverse_shots
    return np.stack([r, math.log(classes) * ones, m * ones, margin, log_density * ones, r * m, ones], 1)


@dataclass(frozen=True)
class Calibration:
    """How to turn distances into calibrated probabilities (see the module docstring).

    Attributes:
        temperature: the softmax temperature (the fitted one, else the model's).
        open_set: the open-set term, or ``None`` (probabilities of the classes sum to 1).
        ignored: metadata keys that were present but unusable, for a message (never fatal).
        typical_spread: the model's own typical spread for the default threshold, or ``None``
            (``threshold.TYPICAL_SPREAD``).
        keep_factor, spread_floor, effective_shots, one_shot_keep_factor: the rest of the
            model's own threshold rule (``None``/``False``: encoder 1's).
    """

    temperature: float
    open_set: OpenSetTerm | None = None
    ignored: tuple[str, ...] = field(default=(), compare=False)
    typical_spread: float | None = None
    keep_factor: float | None = None
    spread_floor: float | None = None
    effective_shots: bool = False
    one_shot_keep_factor: float | None = None

    @property
    def threshold_rule(self) -> ThresholdRule:
        """The default threshold's rule for this model."""
        default = ThresholdRule()
        return ThresholdRule(
            default.typical_spread if self.typical_spread is None else self.typical_spread,
            default.keep_factor if self.keep_factor is None else self.keep_factor,
            default.spread_floor if self.spread_floor is None else self.spread_floor,
            self.effective_shots, self.one_shot_keep_factor)

    def with_rule(self, rule: ThresholdRule) -> Calibration:
        """This calibration with ``rule`` as its default threshold's rule."""
        return dataclasses.replace(self, typical_spread=rule.typical_spread, keep_factor=rule.keep_factor,
                                   spread_floor=rule.spread_floor, effective_shots=rule.effective_shots,
                                   one_shot_keep_factor=rule.one_shot_keep_factor)

    def with_rule_of(self, other: Calibration) -> Calibration:
        """This calibration with ``other``'s threshold-rule fields, as they are (``None`` stays ``None``)."""
        return dataclasses.replace(self, **{f: getattr(other, f) for f in RULE_FIELDS})

    @classmethod
    def from_metadata(cls, temperature: float, extra: Mapping[str, str]) -> Calibration:
        """The calibration a model's metadata describes; its plain ``temperature`` where it has none.

        Args:
            temperature: the model's required ``temperature`` (already checked by the encoder).
            extra: the model's other metadata (``ModelInfo.extra``).
        Values must parse as finite floats in the ranges above; a bad temperature falls back
        to ``temperature``, and a bad or incomplete open-set term is dropped as a whole.
        """
        ignored: list[str] = []
        fitted = _number(extra, TEMPERATURE_KEY, TEMPERATURE_RANGE, ignored)
        open_set: OpenSetTerm | None = None
        present = [k for k in OPEN_SET_KEYS if k in extra]
        if present:
            scale = _number(extra, "unknown_scale", SCALE_RANGE, ignored)
            limits = (-WEIGHT_LIMIT, WEIGHT_LIMIT)
            offset = _number(extra, "unknown_offset", limits, ignored)
            weights = [_number(extra, key, limits, ignored, 0.0) for key in OPEN_SET_KEYS[2:]]
            if scale is None or offset is None or any(w is None for w in weights):
                ignored.extend(k for k in present if k not in ignored)
            else:
                open_set = OpenSetTerm(scale, offset, *(float(w) for w in weights if w is not None))
        spread = _number(extra, TYPICAL_SPREAD_KEY, SPREAD_RANGE, ignored)
        keep = _number(extra, KEEP_FACTOR_KEY, KEEP_FACTOR_RANGE, ignored)
        floor = _number(extra, SPREAD_FLOOR_KEY, SPREAD_FLOOR_RANGE, ignored)
        one_shot = _number(extra, ONE_SHOT_KEEP_FACTOR_KEY, KEEP_FACTOR_RANGE, ignored)
        effective = extra.get(EFFECTIVE_SHOTS_KEY)
        if effective is not None and effective not in ("0", "1"):
            ignored.append(EFFECTIVE_SHOTS_KEY)
        return cls(temperature if fitted is None else fitted, open_set, tuple(ignored), spread, keep, floor,
                   effective == "1", one_shot)

    @classmethod
    def from_model(cls, info: _ModelInfoLike) -> Calibration:
        """:meth:`from_metadata` of an ``encoder.ModelInfo`` (``EncoderSession.info``)."""
        return cls.from_metadata(info.temperature, info.extra)

    def to_metadata(self) -> dict[str, str]:
        """The metadata keys that describe this calibration (what :meth:`from_metadata` reads)."""
        meta = {TEMPERATURE_KEY: repr(float(self.temperature))}
        if self.open_set is not None:
            o = self.open_set
            values = (o.scale, o.offset, o.log_classes, o.inverse_shots, o.margin, o.log_density,
                      o.scale_inverse_shots)
            meta.update({k: repr(float(v)) for k, v in zip(OPEN_SET_KEYS, values, strict=True)})
        if self.typical_spread is not None:
            meta[TYPICAL_SPREAD_KEY] = repr(float(self.typical_spread))
        if self.keep_factor is not None:
            meta[KEEP_FACTOR_KEY] = repr(float(self.keep_factor))
        if self.spread_floor is not None:
            meta[SPREAD_FLOOR_KEY] = repr(float(self.spread_floor))
        if self.effective_shots:
            meta[EFFECTIVE_SHOTS_KEY] = "1"
        if self.one_shot_keep_factor is not None:
            meta[ONE_SHOT_KEEP_FACTOR_KEY] = repr(float(self.one_shot_keep_factor))
        return meta

    def probabilities(self, distances: np.ndarray,
                      reference: OpenSetReference | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated class probabilities and the probability of none of them.

        Args:
            distances: ``(n, C)`` squared distances to the prototypes, ``C >= 1``.
            reference: the support set's :class:`OpenSetReference`; without one (or without
                an open-set term) ``p_unknown`` is 0.
        Returns:
            ``(n, C)`` ``float32`` ``p(class c)`` and ``(n,)`` ``float32`` ``p_unknown``; each
            row of the first sums to ``1 - p_unknown``.
        """
        d = np.asarray(distances, np.float64)
        softmax = softmax_probabilities(d, self.temperature).astype(np.float64)
        unknown = self.unknown_probability(d, reference)
        return (softmax * (1.0 - unknown)[:, None]).astype(np.float32), unknown.astype(np.float32)

    def unknown_probability(self, distances: np.ndarray, reference: OpenSetReference | None) -> np.ndarray:
        """``(n,)`` ``float64`` ``p_unknown`` of ``(n, C)`` distances (0 without a term or reference)."""
        d = np.asarray(distances)
        if self.open_set is None or reference is None or d.shape[1] == 0:
            return np.zeros(d.shape[0], np.float64)
        return self.open_set.unknown_probability(d, reference)


def _number(extra: Mapping[str, str], key: str, bounds: tuple[float, float], ignored: list[str],
            default: float | None = None) -> float | None:
    """``extra[key]`` as a float within ``bounds``; ``default`` if absent; ``None`` (and ``key`` noted) if bad."""
    if key not in extra:
        return default
    try:
        value = float(extra[key])
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
        ignored.append(key)
        return None
    return value


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
        calibration: if given (``Calibration.from_model(session.info)``), probabilities and
            :meth:`top_k` are calibrated: its temperature replaces ``temperature`` and its
            open-set term, measured against this support set's own default threshold, takes
            away the probability of "none of these" (:meth:`unknown_probability`).
    """

    def __init__(self, embedding_size: int, temperature: float = 1.0,
                 calibration: Calibration | None = None) -> None:
        if embedding_size < 1:
            raise ValueError("embedding_size must be positive")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if calibration is not None and not calibration.temperature > 0:
            raise ValueError(f"calibrated temperature must be positive, got {calibration.temperature}")
        self.embedding_size = embedding_size
        self.temperature = temperature
        self.calibration = calibration
        self._keys: list[Hashable] = []
        self._row: dict[Hashable, int] = {}
        self._sums = np.zeros((0, embedding_size), dtype=np.float64)
        # Σ‖x‖² of each class's examples: with the sums it gives the scatter Σ‖x − p‖² that
        # the default threshold needs, without keeping the examples themselves.
        self._squares = np.zeros(0, dtype=np.float64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._prototypes = np.zeros((0, embedding_size), dtype=np.float32)
        # open_set_reference() of the current support set (its density costs C² distances, so
        # the canvas should not pay it on every stroke); any change forgets it.
        self._reference: OpenSetReference | None = None
        self._reference_known = False

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
            self._squares = np.append(self._squares, 0.0)
            self._counts = np.append(self._counts, 0)
            self._prototypes = np.vstack([self._prototypes, np.zeros((1, self.embedding_size), np.float32)])
        self._sums[row] += emb.sum(0)
        self._squares[row] += _square_sum(emb)
        self._counts[row] += emb.shape[0]
        self._refresh(row)

    def remove_examples(self, key: Hashable, embeddings: np.ndarray) -> None:
        """Remove example embeddings that were added to class ``key`` before."""
        emb = self._check(embeddings)
        row = self._row.get(key)
        if row is None or self._counts[row] < emb.shape[0]:
            raise KeyError(f"class {key!r} does not hold {emb.shape[0]} examples")
        self._sums[row] -= emb.sum(0)
        self._squares[row] -= _square_sum(emb)
        self._counts[row] -= emb.shape[0]
        if self._counts[row] == 0:
            self._sums[row] = 0.0
            self._squares[row] = 0.0
        self._refresh(row)

    def remove_class(self, key: Hashable) -> None:
        """Forget class ``key`` and all its examples."""
        row = self._row.pop(key)
        del self._keys[row]
        self._sums = np.delete(self._sums, row, 0)
        self._squares = np.delete(self._squares, row)
        self._counts = np.delete(self._counts, row)
        self._prototypes = np.delete(self._prototypes, row, 0)
        self._row = {k: i for i, k in enumerate(self._keys)}
        self._reference_known = False

    def clear(self) -> None:
        for key in list(self._keys):
            self.remove_class(key)

    def prototypes(self) -> tuple[list[Hashable], np.ndarray]:
        """Class keys and their ``(n_classes, D)`` ``float32`` prototypes (classes with examples)."""
        active = self._counts > 0
        keys = [k for k, a in zip(self._keys, active, strict=True) if a]
        return keys, self._prototypes[active]

    def open_set_reference(self) -> OpenSetReference | None:
        """The support set's default "none of these" threshold and mean inverse shots.

        The same as ``threshold.open_set_reference`` of the examples (up to rounding), from the
        running sums: the scatter of class ``c`` is ``Σ‖x‖² − ‖Σx‖² / k``. ``None`` when empty.
        Kept until the support set changes.
        """
        if not self._reference_known:
            active = self._counts > 0
            counts = self._counts[active]
            sums = self._sums[active]
            scatter = self._squares[active] - (sums * sums).sum(1) / np.maximum(counts, 1)
            rule = ThresholdRule() if self.calibration is None else self.calibration.threshold_rule
            self._reference = reference_from_moments(float(np.maximum(scatter, 0.0).sum()), counts.tolist(),
                                                     self._prototypes[active], rule=rule)
            self._reference_known = True
        return self._reference

    def default_threshold(self) -> float | None:
        """``threshold.default_threshold`` of the current examples (``None`` when empty)."""
        reference = self.open_set_reference()
        return None if reference is None else reference.threshold

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
        return keys, self._probabilities(d)

    def unknown_probability(self, queries: np.ndarray) -> np.ndarray:
        """``(n_query,)`` ``float32`` probability that each query is none of the classes.

        0 without a calibration with an open-set term; 1 when there are no classes.
        """
        keys, d = self.distances(queries)
        if not keys:
            return np.ones(d.shape[0], np.float32)
        if self.calibration is None:
            return np.zeros(d.shape[0], np.float32)
        return self.calibration.unknown_probability(d, self.open_set_reference()).astype(np.float32)

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
        """The ``k`` most probable classes for one ``(D,)`` query, best first.

        Calibrated when the classifier has a calibration; the probabilities of all classes then
        sum to ``1 - unknown_probability``.
        """
        keys, d = self.distances(query)
        if not keys:
            return []
        p = self._probabilities(d[:1])[0]
        order = np.argsort(-p, kind="stable")[:k]
        return [Prediction(keys[i], float(p[i]), float(d[0, i])) for i in order]

    # -- internals ---------------------------------------------------------------------
    def _probabilities(self, d: np.ndarray) -> np.ndarray:
        """``(n, C)`` probabilities of ``(n, C)`` distances, ``C >= 1``: calibrated if possible."""
        if self.calibration is None:
            return softmax_probabilities(d, self.temperature)
        probabilities, _ = self.calibration.probabilities(d, self.open_set_reference())
        return probabilities

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
        self._reference_known = False


def _square_sum(embeddings: np.ndarray) -> float:
    """``Σ‖x‖²`` of ``(k, D)`` embeddings, in float64."""
    e = np.asarray(embeddings, np.float64)
    return float((e * e).sum())


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
