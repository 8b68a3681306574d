"""The default distance beyond which an item is "none of these" (unknown).

An item whose squared distance to *every* prototype exceeds the threshold ``T`` is labeled
unknown instead of being forced into the nearest class. ``T`` comes from the support set:

    s² = (PRIOR_WEIGHT · TYPICAL_SPREAD + Σ_c Σ_i ‖x_ci − p_c‖²) / (PRIOR_WEIGHT + Σ_c (k_c − 1))
    T  = KEEP_FACTOR · s² · mean_c (1 + 1/k_c)

``s²`` is the spread of a class around its mean (the expected squared distance of one
drawing to its class's true mean), pooled over all classes: ``Σ ‖x − p‖² / (k − 1)`` is its
unbiased estimate from one class of ``k`` examples (the same as the leave-one-out distances
scaled by ``(k − 1)/k``). A new drawing of a class lies on average ``s² (1 + 1/k)`` from that
class's prototype of ``k`` examples, since the prototype itself is off by ``s²/k``;
``KEEP_FACTOR`` turns that average into a bound that keeps about 95% of them. Classes with one
example say nothing about spread, so ``s²`` starts from the encoder's typical spread, worth
``PRIOR_WEIGHT`` examples, and the support set's own spread takes over as examples are added.
The constants were chosen on Omniglot's background alphabets held out of training
(``python -m models.open_set --split background``); the model card reports the figures.

**Across domains** (:class:`ThresholdRule`, which a model may carry in its metadata): five
scans of one printed glyph agree far more closely than the glyph's other typefaces, so the
support set's own spread says too little about the queries to come. Two changes make the rule
hold on printed, scanned and handwritten glyphs as on drawings: the pooled spread never falls
below ``spread_floor`` times the encoder's typical spread, and with ``effective_shots`` examples
that agree more closely than typical count as fewer, ``k_eff = 1 + (k - 1) · min(1, s²_obs / s²_typ)``
in the ``(1 + 1/k)`` factor (five copies of one scan are about one example). And a rule may
hold a second keep factor for one-example classes, ``one_shot_keep_factor``: the keep factor
is then ``m · one_shot_keep_factor + (1 − m) · keep_factor`` with ``m = mean_c 1/k_c`` (the
examples the person gave, not the effective ones), so that the wide bound that five close
scans need does not also swallow everything near a single drawing.
``python -m models.open_set --domains --fit`` chooses them on validation data per model.

:func:`open_set_reference` gives ``T`` together with ``mean_c 1/k_c`` and how close the
classes lie to one another: the calibrated confidence (``classifier.Calibration``) measures
distances in units of ``T``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: The shipped encoder's typical spread ``s²`` of one character's drawings around their mean
#: (squared distance; its logits are at temperature 1): 3.53 on average on the 136 background
#: characters it never trained on, drawn by 20 different people each.
TYPICAL_SPREAD = 3.5
#: How many examples beyond a class's first the typical spread counts for: small, so that the
#: user's own examples decide once classes have two or three each.
PRIOR_WEIGHT = 2.0
#: Multiple of the expected distance of a new drawing to its class's prototype; 1.9 keeps at
#: least 95% of known queries in each 5/20-way, 1/5-shot background test (the smallest that did).
KEEP_FACTOR = 1.9


def blend_keep(mean_inverse_shots: float, one_shot: float | np.ndarray, many: float | np.ndarray) -> np.ndarray:
    """``m · one_shot + (1 − m) · many``, ``m = mean_c 1/k_c``: the keep factor of a rule with
    both (numpy arrays broadcast, for a grid of factor pairs)."""
    m = mean_inverse_shots
    return np.asarray(m * np.asarray(one_shot) + (1.0 - m) * np.asarray(many))


@dataclass(frozen=True)
class ThresholdRule:
    """How a support set's spread becomes its default threshold (see the module docstring).

    Attributes:
        typical_spread: the encoder's ``s²`` before any examples.
        keep_factor: the multiple of the expected distance that bounds a class.
        spread_floor: the pooled spread is at least this times ``typical_spread`` (0: no floor).
        effective_shots: count examples that agree more closely than typical as fewer.
        one_shot_keep_factor: the keep factor of a support set of one-example classes
            (``None``: ``keep_factor`` at any shots); between, it blends by ``mean_c 1/k_c``.
    """

    typical_spread: float = TYPICAL_SPREAD
    keep_factor: float = KEEP_FACTOR
    spread_floor: float = 0.0
    effective_shots: bool = False
    one_shot_keep_factor: float | None = None

    def keep(self, counts: Sequence[int]) -> float:
        """The keep factor of classes with ``counts`` examples (all ≥ 1)."""
        if self.one_shot_keep_factor is None:
            return self.keep_factor
        return float(blend_keep(float(np.mean([1.0 / k for k in counts])), self.one_shot_keep_factor,
                                self.keep_factor))

    def base(self, scatter: float, counts: Sequence[int]) -> float:
        """``T`` divided by the keep factor: the expected distance of a new item to its prototype."""
        degrees = sum(k - 1 for k in counts)
        scatter = max(float(scatter), 0.0)
        spread = (PRIOR_WEIGHT * self.typical_spread + scatter) / (PRIOR_WEIGHT + degrees)
        spread = max(spread, self.spread_floor * self.typical_spread)
        ratio = 1.0
        if self.effective_shots and degrees > 0:
            ratio = min(1.0, scatter / degrees / self.typical_spread)
        inverse = float(np.mean([1.0 / (1.0 + (k - 1) * ratio) for k in counts]))
        return spread * (1.0 + inverse)

    def threshold(self, scatter: float, counts: Sequence[int]) -> float:
        """``T`` of classes with ``counts`` examples (all ≥ 1) and total ``scatter``."""
        return self.keep(counts) * self.base(scatter, counts)


@dataclass(frozen=True)
class OpenSetReference:
    """What a calibration's open-set term needs to know about a support set (see ``classifier.Calibration``).

    Attributes:
        threshold: the support set's default threshold ``T`` (:func:`default_threshold`): the
            unit in which the nearest distance is measured, so that one fitted curve serves
            support sets of any spread and shots.
        mean_inverse_shots: ``mean_c 1/k_c`` over the classes with examples (1 for 1-shot).
        density: how close the classes lie: the median over prototypes of the squared distance
            to the nearest other prototype (:func:`prototype_density`); ``None`` with one class.
            Characters of a crowded script lie closer together, and a drawing of none of them
            is then nearer to one than in a sparse script.
    """

    threshold: float
    mean_inverse_shots: float
    density: float | None = None


#: :func:`prototype_density` looks at most this many prototypes' neighbours (evenly spaced):
#: the median of so many hardly moves, and it costs a 512 x C product (about 15 ms for 1,000
#: classes of 512 dimensions here), paid once per change of the examples, not per stroke.
DENSITY_SAMPLE = 512


def prototype_density(prototypes: np.ndarray) -> float | None:
    """Median over prototypes of the squared distance to the nearest other one.

    Args:
        prototypes: ``(C, D)`` class prototypes.
    Returns:
        ``None`` for fewer than two; otherwise a finite value ``>= 0``.
    """
    p = np.asarray(prototypes, dtype=np.float32)
    if p.ndim != 2 or len(p) < 2:
        return None
    rows = np.unique(np.linspace(0, len(p) - 1, min(len(p), DENSITY_SAMPLE)).astype(np.int64))
    sq = (p * p).sum(1)
    d = sq[rows, None] - 2.0 * (p[rows] @ p.T) + sq[None, :]
    d[np.arange(len(rows)), rows] = np.inf
    return float(np.maximum(np.median(d.min(1)), 0.0))


def reference_from_moments(scatter: float, shots: Sequence[int], prototypes: np.ndarray | None = None,
                           typical_spread: float = TYPICAL_SPREAD,
                           rule: ThresholdRule | None = None) -> OpenSetReference | None:
    """The default threshold from a support set's summary, for code that keeps running sums.

    Args:
        scatter: ``Σ_c Σ_i ‖x_ci − p_c‖²`` over all classes (squared distances, ≥ 0).
        shots: ``k_c`` of every class; classes with none are ignored.
        prototypes: ``(C, D)`` prototypes of the classes with examples, for ``density``
            (without them it is ``None``).
        typical_spread: the encoder's ``s²`` before any examples (a model may carry its own,
            ``classifier.TYPICAL_SPREAD_KEY``; :data:`TYPICAL_SPREAD` is the shipped encoder's).
        rule: the whole rule (a model's own); when given, ``typical_spread`` is not used.
    Returns:
        ``None`` when no class has examples.
    """
    counts = [int(k) for k in shots if k > 0]
    if not counts:
        return None
    mean_inverse = float(np.mean([1.0 / k for k in counts]))
    threshold = (rule or ThresholdRule(typical_spread)).threshold(scatter, counts)
    density = None if prototypes is None else prototype_density(prototypes)
    return OpenSetReference(threshold, mean_inverse, density)


def open_set_reference(examples: Mapping[Hashable, np.ndarray]) -> OpenSetReference | None:
    """:class:`OpenSetReference` of a support set: its default threshold and mean inverse shots.

    Args:
        examples: per class, its ``(k, D)`` example embeddings (or one ``(D,)``); classes
            with none are ignored.
    Returns:
        ``None`` when there are no examples at all.
    """
    scatter = 0.0
    shots: list[int] = []
    means = []
    for embeddings in examples.values():
        emb = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if emb.size == 0:
            continue
        mean = emb.mean(0)
        scatter += float(((emb - mean) ** 2).sum())
        shots.append(len(emb))
        means.append(mean)
    return reference_from_moments(scatter, shots, np.array(means) if means else None)


def default_threshold(examples: Mapping[Hashable, np.ndarray]) -> float | None:
    """The default "none of these" threshold on squared distance for a support set.

    Args:
        examples: per class, its ``(k, D)`` example embeddings (or one ``(D,)``); classes
            with none are ignored.
    Returns:
        ``T``: label an item unknown when its squared distance to every prototype exceeds it;
        ``None`` when there are no examples at all.
    """
    reference = open_set_reference(examples)
    return None if reference is None else reference.threshold


def beyond(nearest: np.ndarray, threshold: float | None) -> np.ndarray:
    """The "none of these" rule, the one the canvas, folders and the command all apply: which items
    lie farther than ``threshold`` from every prototype.

    Args:
        nearest: ``(n,)`` each item's squared distance to its nearest prototype (``inf``: no class).
        threshold: ``None``: no threshold, nothing is beyond it.
    Returns:
        ``(n,)`` ``bool``.
    """
    d = np.asarray(nearest)
    if threshold is None:
        return np.zeros(d.shape, dtype=bool)
    mask: np.ndarray = d > threshold
    return mask


def unknown_mask(distances: np.ndarray, threshold: float | None) -> np.ndarray:
    """``(n_query,)`` ``bool``: :func:`beyond` of ``(n_query, n_classes)`` squared distances.

    Every item is unknown when there are no classes (and a threshold); none is when ``threshold`` is ``None``.
    """
    d = np.asarray(distances)
    nearest = d.min(axis=1) if d.shape[1] else np.full(d.shape[0], np.inf)
    return beyond(nearest, threshold)
