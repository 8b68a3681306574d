"""Prototype maths on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from protoglyph.core.classifier import (
    Calibration,
    FewShotClassifier,
    OpenSetTerm,
    episode_accuracy,
    softmax_probabilities,
    squared_distances,
)


def test_squared_distances_match_the_definition() -> None:
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    expected = ((q[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(squared_distances(q, p), expected, rtol=1e-5, atol=1e-5)
    assert squared_distances(p, p).min() >= 0


def test_softmax_uses_the_temperature() -> None:
    d = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(softmax_probabilities(d, 1.0), [[1 / (1 + np.e**-1), 1 / (1 + np.e)]], rtol=1e-6)
    sharp = softmax_probabilities(d, 0.1)
    assert sharp[0, 0] > 0.9999 and np.isclose(sharp.sum(), 1)
    assert np.isfinite(softmax_probabilities(np.array([[1e6, 2e6]]), 1.0)).all()
    with pytest.raises(ValueError):
        softmax_probabilities(d, 0)


def test_prototypes_are_class_means_and_update_one_row() -> None:
    clf = FewShotClassifier(2)
    clf.add_examples("a", np.array([[0.0, 0.0], [2.0, 0.0]]))
    clf.add_examples("b", np.array([10.0, 10.0]))
    keys, protos = clf.prototypes()
    assert keys == ["a", "b"]
    np.testing.assert_allclose(protos, [[1, 0], [10, 10]])
    before_b = protos[1].copy()
    clf.add_examples("a", np.array([[4.0, 3.0]]))
    _, protos = clf.prototypes()
    np.testing.assert_allclose(protos[0], [2, 1])
    np.testing.assert_array_equal(protos[1], before_b)
    clf.remove_examples("a", np.array([[4.0, 3.0]]))
    np.testing.assert_allclose(clf.prototypes()[1][0], [1, 0])
    assert clf.example_count("a") == 2


def test_predict_top_k_and_probabilities() -> None:
    clf = FewShotClassifier(2, temperature=2.0)
    for key, centre in (("x", (0, 0)), ("y", (5, 0)), ("z", (0, 5))):
        clf.add_examples(key, np.array([centre], dtype=np.float32))
    keys, best, prob = clf.predict(np.array([[0.5, 0.2], [4.0, 0.5], [0.0, 6.0]]))
    assert [keys[i] for i in best] == ["x", "y", "z"]
    assert (prob > 0.5).all()
    top = clf.top_k(np.array([1.0, 0.0]), k=2)
    assert [t.class_key for t in top] == ["x", "y"]
    assert top[0].probability > top[1].probability and top[0].distance == pytest.approx(1.0)
    assert sum(t.probability for t in clf.top_k(np.array([1.0, 0.0]), k=10)) == pytest.approx(1.0)


def test_removing_classes_and_examples() -> None:
    clf = FewShotClassifier(2)
    clf.add_examples("a", np.ones((2, 2)))
    clf.add_examples("b", np.zeros((1, 2)))
    clf.remove_examples("b", np.zeros((1, 2)))
    assert clf.classes == ["a"]  # a class with no examples has no prototype
    clf.remove_class("a")
    assert clf.classes == [] and clf.top_k(np.zeros(2)) == []
    with pytest.raises(ValueError, match="support set is empty"):
        clf.predict(np.zeros((1, 2)))
    with pytest.raises(KeyError):
        clf.remove_examples("a", np.zeros((1, 2)))


def test_wrong_shapes_are_refused() -> None:
    clf = FewShotClassifier(3)
    with pytest.raises(ValueError, match="embeddings"):
        clf.add_examples("a", np.zeros((2, 4)))
    with pytest.raises(ValueError):
        FewShotClassifier(3, temperature=0)


def test_episode_accuracy() -> None:
    support = [np.array([[0.0, 0.0]]), np.array([[10.0, 0.0]])]
    queries = np.array([[1.0, 0.0], [9.0, 0.0], [6.0, 0.0], [2.0, 0.0]])
    assert episode_accuracy(support, queries, np.array([0, 1, 0, 0])) == pytest.approx(0.75)


def test_calibrated_probabilities_take_away_the_unknown_share() -> None:
    term = OpenSetTerm(scale=6.0, offset=-7.0)
    clf = FewShotClassifier(2, temperature=1.0, calibration=Calibration(2.0, term))
    for key, centre in (("x", (0, 0)), ("y", (3, 0))):
        clf.add_examples(key, np.array([centre], dtype=np.float32))
    queries = np.array([[0.5, 0.0], [0.5, 3.0]], np.float32)
    keys, p = clf.probabilities(queries)
    _, d = clf.distances(queries)
    reference = clf.open_set_reference()
    assert reference is not None and reference.threshold == clf.default_threshold()
    unknown = term.unknown_probability(d, reference)
    np.testing.assert_allclose(p, softmax_probabilities(d, 2.0) * (1 - unknown)[:, None], rtol=1e-5)
    np.testing.assert_allclose(clf.unknown_probability(queries), unknown, rtol=1e-5)
    _, best, prob = clf.predict(queries)
    assert [keys[i] for i in best] == ["x", "x"] and prob[1] < prob[0]
    top = clf.top_k(queries[1], k=2)
    assert [t.class_key for t in top] == ["x", "y"] and top[0].probability == pytest.approx(p[1, 0], rel=1e-6)
    empty = FewShotClassifier(2, calibration=Calibration(2.0, term))
    assert empty.unknown_probability(queries).tolist() == [1.0, 1.0] and empty.top_k(queries[0]) == []
    with pytest.raises(ValueError):
        FewShotClassifier(2, calibration=Calibration(0.0))


def test_the_nearest_class_probability_is_the_softmax_maximum() -> None:
    from protoglyph.core.classifier import nearest_probability

    d = np.random.default_rng(3).uniform(0, 40, (50, 7)).astype(np.float32)
    for t in (0.5, 1.0, 3.0):
        np.testing.assert_allclose(nearest_probability(d, t), softmax_probabilities(d, t).max(1), rtol=1e-5)
    with pytest.raises(ValueError, match="temperature must be positive"):
        nearest_probability(d, 0.0)
