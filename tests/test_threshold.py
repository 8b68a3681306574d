"""The default "none of these" threshold on synthetic clusters of known spread."""

from __future__ import annotations

import numpy as np
import pytest

from protoglyph.core.classifier import squared_distances
from protoglyph.core.threshold import (
    KEEP_FACTOR,
    PRIOR_WEIGHT,
    TYPICAL_SPREAD,
    ThresholdRule,
    default_threshold,
    open_set_reference,
    reference_from_moments,
    unknown_mask,
)

DIM = 512


def clusters(classes: int, shots: int, spread: float, seed: int = 0,
             separation: float = 400.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres ``(classes, D)``, examples ``(classes, shots, D)`` and fresh in-cluster points ``(classes, 50, D)``.

    Every cluster is isotropic with ``spread`` = expected squared distance of a point to its centre;
    centres lie about ``separation`` apart (squared).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, np.sqrt(separation / (2 * DIM)), (classes, DIM))
    sigma = np.sqrt(spread / DIM)
    examples = centres[:, None] + rng.normal(0, sigma, (classes, shots, DIM))
    fresh = centres[:, None] + rng.normal(0, sigma, (classes, 50, DIM))
    return centres.astype(np.float32), examples.astype(np.float32), fresh.astype(np.float32)


def min_distances(points: np.ndarray, examples: np.ndarray) -> np.ndarray:
    return squared_distances(points.reshape(-1, DIM), examples.mean(1)).min(1)


@pytest.mark.parametrize(("spread", "shots"), [(1.0, 5), (3.5, 5), (20.0, 5), (3.5, 1), (2.0, 1), (5.0, 2)])
@pytest.mark.parametrize("classes", [1, 5])
def test_keeps_in_cluster_points_and_rejects_far_ones(spread: float, shots: int, classes: int) -> None:
    _, examples, fresh = clusters(classes, shots, spread)
    threshold = default_threshold(dict(enumerate(examples)))
    assert threshold is not None
    assert (min_distances(fresh, examples) <= threshold).mean() >= 0.95
    # other characters: points of clusters the support set does not hold
    _, _, strangers = clusters(10, 1, spread, seed=1, separation=40 * spread)
    assert (min_distances(strangers, examples) > threshold).mean() >= 0.95


def test_many_examples_give_the_scaled_spread_of_the_support_set() -> None:
    spread, shots = 20.0, 30
    _, examples, _ = clusters(4, shots, spread)
    threshold = default_threshold({f"c{i}": e for i, e in enumerate(examples)})
    assert threshold == pytest.approx(KEEP_FACTOR * spread * (1 + 1 / shots), rel=0.03)


def test_one_shot_uses_the_typical_spread() -> None:
    _, examples, _ = clusters(5, 1, 50.0)
    assert default_threshold(dict(enumerate(examples))) == pytest.approx(KEEP_FACTOR * TYPICAL_SPREAD * 2)
    assert default_threshold({"only": examples[0]}) == pytest.approx(KEEP_FACTOR * TYPICAL_SPREAD * 2)
    assert default_threshold({"flat": examples[0][0]}) == pytest.approx(KEEP_FACTOR * TYPICAL_SPREAD * 2)


def test_the_typical_spread_fades_as_examples_are_added() -> None:
    spread = 20.0
    _, examples, _ = clusters(1, 3, spread)
    scatter = float(((examples[0].astype(np.float64) - examples[0].mean(0)) ** 2).sum())
    expected = KEEP_FACTOR * (PRIOR_WEIGHT * TYPICAL_SPREAD + scatter) / (PRIOR_WEIGHT + 2) * (1 + 1 / 3)
    assert default_threshold({"a": examples[0]}) == pytest.approx(expected, rel=1e-6)


def test_mixed_shots_and_empty_classes() -> None:
    _, examples, _ = clusters(3, 5, 3.5)
    support = {"a": examples[0], "b": examples[1][:1], "c": examples[2][:0]}
    threshold = default_threshold(support)
    assert threshold is not None
    assert default_threshold({"a": examples[0], "b": examples[1][:1]}) == threshold


def test_no_examples_give_none() -> None:
    assert default_threshold({}) is None
    assert default_threshold({"a": np.zeros((0, DIM), np.float32)}) is None


def test_deterministic_and_independent_of_order() -> None:
    _, examples, _ = clusters(6, 3, 5.0)
    support = {i: e for i, e in enumerate(examples)}
    first = default_threshold(support)
    assert default_threshold(support) == first
    assert default_threshold(dict(reversed(list(support.items())))) == pytest.approx(first, rel=1e-12)
    assert isinstance(first, float)


def test_unknown_mask() -> None:
    d = np.array([[1.0, 9.0], [8.0, 7.0], [5.0, 5.0]])
    assert unknown_mask(d, 5.0).tolist() == [False, True, False]
    assert unknown_mask(d, None).tolist() == [False, False, False]
    assert unknown_mask(np.zeros((2, 0)), 5.0).tolist() == [True, True]
    # the one rule, on nearest distances: what folders and the command apply
    from protoglyph.core.threshold import beyond

    assert beyond(np.array([1.0, 8.0, 5.0, np.inf]), 5.0).tolist() == [False, True, False, True]
    assert beyond(np.array([1.0, np.inf]), None).tolist() == [False, False]


def test_open_set_reference_and_moments_agree_with_the_threshold() -> None:
    _, examples, _ = clusters(4, 3, 5.0)
    support = {"a": examples[0], "b": examples[1][:1], "c": examples[2][:2], "d": examples[3][:0]}
    reference = open_set_reference(support)
    assert reference is not None
    assert reference.threshold == default_threshold(support)
    assert reference.mean_inverse_shots == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    scatter = sum(float(((e.astype(np.float64) - e.mean(0)) ** 2).sum()) for e in (examples[0], examples[2][:2]))
    again = reference_from_moments(scatter, [3, 1, 2, 0])
    assert again is not None and again.threshold == pytest.approx(reference.threshold, rel=1e-12)
    assert reference_from_moments(0.0, []) is None and reference_from_moments(0.0, [0]) is None
    assert open_set_reference({}) is None


# -- a model's own rule, for glyphs of many domains -------------------------------------
def test_the_default_rule_is_encoder_one_s() -> None:
    rule = ThresholdRule()
    assert rule.threshold(6.0, [3, 1, 2]) == pytest.approx(
        KEEP_FACTOR * (PRIOR_WEIGHT * TYPICAL_SPREAD + 6.0) / (PRIOR_WEIGHT + 3) * (1 + (1 / 3 + 1 + 1 / 2) / 3))


def test_close_copies_cannot_tighten_the_threshold_below_the_floor() -> None:
    plain = ThresholdRule(typical_spread=4.0)
    floored = ThresholdRule(typical_spread=4.0, spread_floor=1.0)
    # five near-identical scans of one glyph: the support's own spread is tiny
    assert plain.threshold(0.01, [5]) < 0.5 * floored.threshold(0.01, [5])
    assert floored.threshold(0.01, [5]) == pytest.approx(KEEP_FACTOR * 4.0 * (1 + 1 / 5))
    # a spread wider than the floor is the support's own, floor or not
    assert floored.threshold(400.0, [5]) == pytest.approx(plain.threshold(400.0, [5]))


def test_examples_that_agree_more_than_typical_count_as_fewer() -> None:
    rule = ThresholdRule(typical_spread=4.0, spread_floor=1.0, effective_shots=True)
    one = rule.threshold(0.0, [1])
    assert rule.threshold(0.0, [5]) == pytest.approx(one)  # five copies are one example
    typical = rule.threshold(4.0 * 4, [5])  # five examples as spread as typical: five shots
    assert typical == pytest.approx(KEEP_FACTOR * 4.0 * (1 + 1 / 5))
    between = rule.threshold(4.0 * 4 / 4, [5])  # a quarter of the typical spread: k_eff = 2
    assert between == pytest.approx(KEEP_FACTOR * 4.0 * (1 + 1 / 2))


def test_a_model_carries_its_rule_and_the_classifier_uses_it() -> None:
    from protoglyph.core.classifier import Calibration, FewShotClassifier

    meta = {"typical_spread": "2.5", "threshold_keep_factor": "2.4", "threshold_spread_floor": "0.8",
            "threshold_effective_shots": "1"}
    calibration = Calibration.from_metadata(1.0, meta)
    assert calibration.threshold_rule == ThresholdRule(2.5, 2.4, 0.8, True) and not calibration.ignored
    assert Calibration.from_metadata(1.0, calibration.to_metadata()).threshold_rule == calibration.threshold_rule
    rng = np.random.default_rng(3)
    examples = {c: rng.normal(size=(4, 16)) * 0.1 for c in range(3)}
    clf = FewShotClassifier(16, calibration=calibration)
    for c, e in examples.items():
        clf.add_examples(c, e)
    scatter = sum(float(((e - e.mean(0)) ** 2).sum()) for e in examples.values())
    assert clf.default_threshold() == pytest.approx(calibration.threshold_rule.threshold(scatter, [4, 4, 4]), rel=1e-4)
    # hostile values are ignored, each named, and the rest of the rule stays encoder 1's
    bad = Calibration.from_metadata(1.0, {"threshold_keep_factor": "nan", "threshold_spread_floor": "-1",
                                          "threshold_effective_shots": "yes"})
    assert bad.threshold_rule == ThresholdRule()
    assert set(bad.ignored) == {"threshold_keep_factor", "threshold_spread_floor", "threshold_effective_shots"}


def test_one_example_classes_may_have_their_own_keep_factor_and_mixed_sets_blend_the_two() -> None:
    from protoglyph.core.classifier import Calibration, FewShotClassifier

    rule = ThresholdRule(typical_spread=4.0, keep_factor=3.0, one_shot_keep_factor=2.0)
    plain = ThresholdRule(typical_spread=4.0, keep_factor=3.0)
    assert rule.threshold(0.0, [1, 1]) == pytest.approx(2.0 * 4.0 * 2)  # one-shot: its own factor
    assert rule.threshold(80.0, [5, 5]) == pytest.approx(plain.threshold(80.0, [5, 5]) * (0.2 * 2 + 0.8 * 3) / 3)
    mixed = rule.threshold(40.0, [1, 5])  # m = (1 + 1/5) / 2 = 0.6
    assert mixed == pytest.approx(plain.threshold(40.0, [1, 5]) * (0.6 * 2 + 0.4 * 3) / 3)
    assert ThresholdRule(4.0, 3.0).keep([1]) == 3.0  # none: one factor at any shots, as before
    # carried in a model's metadata and read back; the classifier's threshold follows it
    calibration = Calibration(1.0).with_rule(rule)
    meta = calibration.to_metadata()
    assert meta["threshold_one_shot_keep_factor"] == "2.0"
    assert Calibration.from_metadata(1.0, meta).threshold_rule == rule
    clf = FewShotClassifier(8, calibration=calibration)
    clf.add_examples("a", np.zeros((1, 8)))
    clf.add_examples("b", np.ones((1, 8)))
    assert clf.default_threshold() == pytest.approx(16.0, rel=1e-5)
    # a hostile value is ignored and named; the rest of the rule stands
    bad = Calibration.from_metadata(1.0, {**meta, "threshold_one_shot_keep_factor": "inf"})
    assert bad.threshold_rule == ThresholdRule(4.0, 3.0) and bad.ignored == ("threshold_one_shot_keep_factor",)
