"""Calibrated confidence (issue 11): the fit, the metadata, and what the app computes with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest

from models import calibration as cal
from protoglyph.core.classifier import (
    OPEN_SET_KEYS,
    TEMPERATURE_KEY,
    TYPICAL_SPREAD_KEY,
    Calibration,
    FewShotClassifier,
    OpenSetTerm,
    open_set_features,
    softmax_probabilities,
)
from protoglyph.core.encoder import EncoderSession
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.states import ItemState
from protoglyph.core.labeling.store import BatchTable
from protoglyph.core.threshold import (
    TYPICAL_SPREAD,
    OpenSetReference,
    default_threshold,
    open_set_reference,
    prototype_density,
)
from tests.model_factory import make_encoder

GOOD = {TEMPERATURE_KEY: "1.3", "unknown_scale": "7.0", "unknown_offset": "-8.5",
        "unknown_log_classes": "0.7", "unknown_inverse_shots": "1.1", "unknown_margin": "-0.8",
        "unknown_log_density": "-0.9", "unknown_scale_inverse_shots": "1.5"}
TERM = OpenSetTerm(7.0, -8.5, 0.7, 1.1, -0.8, -0.9, 1.5)


def gaussian_episodes(ways: int, temperature: float, count: int, seed: int, dim: int = 16) -> list[cal.Episode]:
    """Episodes whose true posterior is ``softmax(-d / temperature)``: queries of isotropic Gaussian
    classes (variance ``temperature / 2`` per dimension) measured against the true class means,
    the means spread in proportion, so that one query in 15 or so is confused whatever the temperature."""
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(temperature / 2)
    episodes = []
    for _ in range(count):
        means = rng.normal(0, 0.8 * sigma, (ways, dim))
        truth = np.repeat(np.arange(ways), 10)
        queries = means[truth] + rng.normal(0, sigma, (len(truth), dim))
        d = ((queries[:, None, :] - means[None]) ** 2).sum(-1).astype(np.float32)
        episodes.append(cal.Episode(d, truth, OpenSetReference(10.0, 1.0)))
    return episodes


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_fit_recovers_a_known_temperature(temperature: float) -> None:
    tasks = [gaussian_episodes(5, temperature, 150, 1), gaussian_episodes(20, temperature, 40, 2)]
    fitted = cal.fit_temperature(tasks, start=1.0)
    assert fitted == pytest.approx(temperature, rel=0.04)


def test_fit_recovers_a_known_open_set_term() -> None:
    """Distances and unknown flags drawn from a known logistic; every feature varies."""
    rng = np.random.default_rng(3)
    tasks = []
    for ways, shots in ((5, 1), (20, 1), (5, 5), (20, 5)):
        episodes = []
        for _ in range(300):
            threshold = 8.0 + 5 * (shots == 1)
            reference = OpenSetReference(threshold, 1 / shots, density=threshold * math.exp(rng.uniform(-1, 1)))
            r, g = rng.uniform(0.2, 2.0, 40), rng.uniform(0.0, 0.95, 40)
            d = np.full((40, ways), 1e3, np.float32)
            d[:, 0] = r * threshold
            d[:, 1] = d[:, 0] / (1 - g)
            p = TERM.unknown_probability(d, reference)
            truth = np.where(rng.random(40) < p, -1, 0)
            episodes.append(cal.Episode(d, truth, reference))
        tasks.append(episodes)
    got = cal.fit_open_set(tasks)
    assert got.scale == pytest.approx(TERM.scale, rel=0.1)
    assert got.offset == pytest.approx(TERM.offset, abs=0.6)
    assert got.log_classes == pytest.approx(TERM.log_classes, abs=0.25)
    assert got.inverse_shots == pytest.approx(TERM.inverse_shots, abs=0.3)
    assert got.margin == pytest.approx(TERM.margin, abs=0.2)
    assert got.log_density == pytest.approx(TERM.log_density, abs=0.2)
    assert got.scale_inverse_shots == pytest.approx(TERM.scale_inverse_shots, abs=0.6)
    # a form without the optional terms leaves them at 0
    plain = cal.fit_open_set(tasks, terms=())
    assert plain.margin == 0.0 and plain.log_density == 0.0 and plain.scale_inverse_shots == 0.0
    assert plain.scale > 0


def test_open_set_features_of_one_class_and_of_many() -> None:
    reference = OpenSetReference(4.0, 0.5, density=8.0)
    d = np.array([[2.0, 6.0, 3.0], [8.0, 8.0, 9.0]], np.float32)
    x = open_set_features(d, reference)
    np.testing.assert_allclose(x[:, 0], [0.5, 2.0])  # nearest / T
    np.testing.assert_allclose(x[:, 3], [1 / 3, 0.0])  # 1 - nearest / second nearest
    np.testing.assert_allclose(x[:, [1, 2, 4, 6]], [[math.log(3), 0.5, math.log(2), 1]] * 2)
    np.testing.assert_allclose(x[:, 5], [0.25, 1.0])  # r · mean 1/k: the slope by shots
    one = open_set_features(d[:, :1], OpenSetReference(4.0, 1.0, density=None))
    np.testing.assert_allclose(one, [[0.5, 0, 1, 0, 0, 0.5, 1], [2.0, 0, 1, 0, 0, 2.0, 1]])


def test_prototype_density() -> None:
    assert prototype_density(np.zeros((1, 3))) is None and prototype_density(np.zeros((0, 3))) is None
    protos = np.array([[0, 0], [1, 0], [5, 0], [5, 3]], np.float64)
    # nearest-other squared distances 1, 1, 9, 9: the median is 5
    assert prototype_density(protos) == pytest.approx(5.0)
    many = np.random.default_rng(0).normal(size=(5000, 8))
    exact = float(np.median([np.partition(((many - p) ** 2).sum(1), 1)[1] for p in many]))
    assert prototype_density(many) == pytest.approx(exact, rel=0.05)  # estimated from 512 of them


def test_expected_calibration_error() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    assert cal.expected_calibration_error(conf, rng.random(conf.size) < conf) < 0.01
    # always 90% sure, right 60% of the time: off by 0.3
    assert cal.expected_calibration_error(np.full(1000, 0.9), np.arange(1000) < 600) == pytest.approx(0.3)
    assert cal.expected_calibration_error(np.array([1.0, 0.0]), np.array([True, False])) == 0.0


# -- metadata --------------------------------------------------------------------------------
def test_metadata_with_a_calibration_is_read() -> None:
    c = Calibration.from_metadata(1.0, GOOD)
    assert c.temperature == 1.3 and c.open_set == TERM and c.ignored == ()
    assert Calibration.from_metadata(1.0, c.to_metadata()) == c
    # the two weights beside the offset are optional
    short = Calibration.from_metadata(1.0, {"unknown_scale": "2", "unknown_offset": "-1"})
    assert short == Calibration(1.0, OpenSetTerm(2.0, -1.0))


def test_no_calibration_keys_fall_back_to_the_models_softmax() -> None:
    c = Calibration.from_metadata(0.8, {"training_data": "x"})
    assert c == Calibration(0.8) and c.open_set is None and c.ignored == ()
    plain, calibrated = FewShotClassifier(2, 0.8), FewShotClassifier(2, 0.8, calibration=c)
    for clf in (plain, calibrated):
        clf.add_examples("a", np.array([[0.0, 0.0]]))
        clf.add_examples("b", np.array([[3.0, 0.0]]))
    q = np.array([[1.0, 0.5], [40.0, 9.0]])
    np.testing.assert_array_equal(calibrated.probabilities(q)[1], plain.probabilities(q)[1])
    assert calibrated.unknown_probability(q).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("key", [TEMPERATURE_KEY, *OPEN_SET_KEYS])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc", "", "1e9", "-1e9", "0x10"])
def test_bad_calibration_values_are_ignored(key: str, value: str) -> None:
    c = Calibration.from_metadata(0.9, {**GOOD, key: value})
    assert key in c.ignored
    if key == TEMPERATURE_KEY:
        assert c.temperature == 0.9 and c.open_set == TERM  # the model's temperature; the term stands
    else:
        assert c.temperature == 1.3 and c.open_set is None  # the term goes as a whole


@pytest.mark.parametrize("value", ["nan", "inf", "abc", "", "0", "-2", "1e9"])
def test_a_bad_typical_spread_is_ignored_and_the_rest_stands(value: str) -> None:
    c = Calibration.from_metadata(0.9, {**GOOD, TYPICAL_SPREAD_KEY: value})
    assert c.ignored == (TYPICAL_SPREAD_KEY,) and c.typical_spread is None
    assert c.temperature == 1.3 and c.open_set == TERM


def test_a_models_own_typical_spread_sets_its_default_threshold() -> None:
    own = Calibration.from_metadata(1.0, {**GOOD, TYPICAL_SPREAD_KEY: "7.0"})
    assert own.typical_spread == 7.0 and Calibration.from_metadata(1.0, own.to_metadata()) == own
    assert Calibration.from_metadata(1.0, GOOD).typical_spread is None  # 1.0.0's constant
    thresholds = []
    for calibration in (Calibration.from_metadata(1.0, GOOD), own):
        clf = FewShotClassifier(2, 1.0, calibration=calibration)
        clf.add_examples("a", np.array([[0.0, 0.0]]))
        clf.add_examples("b", np.array([[9.0, 0.0]]))
        thresholds.append(clf.default_threshold())
    assert thresholds[1] == pytest.approx(thresholds[0] * 7.0 / TYPICAL_SPREAD)  # 1-shot: the prior alone
    assert thresholds[0] == pytest.approx(default_threshold({"a": np.zeros(2), "b": np.array([9.0, 0.0])}))


def test_measured_typical_spread_of_gaussian_classes() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(200), 20)
    emb = rng.normal(0, 5, (200, 8))[labels] + rng.normal(0, 0.5, (len(labels), 8))
    assert cal.measure_typical_spread(emb, labels) == pytest.approx(8 * 0.25, rel=0.03)


@pytest.mark.parametrize(("key", "value"), [(TEMPERATURE_KEY, "0"), (TEMPERATURE_KEY, "-1"),
                                            ("unknown_scale", "0"), ("unknown_scale", "-3")])
def test_out_of_range_calibration_values_are_ignored(key: str, value: str) -> None:
    assert key in Calibration.from_metadata(1.0, {**GOOD, key: value}).ignored


def test_an_incomplete_open_set_term_is_ignored() -> None:
    c = Calibration.from_metadata(1.0, {TEMPERATURE_KEY: "1.2", "unknown_scale": "3"})
    assert c.open_set is None and c.temperature == 1.2 and c.ignored == ("unknown_scale",)


def test_a_model_with_bad_calibration_still_loads(tmp_path: Path) -> None:
    path = make_encoder(tmp_path / "m.onnx", metadata_overrides={TEMPERATURE_KEY: "nan", "unknown_scale": "inf",
                                                                 "unknown_offset": "1"})
    session = EncoderSession(path)
    c = Calibration.from_model(session.info)
    assert c == Calibration(session.info.temperature) and set(c.ignored) == {TEMPERATURE_KEY, "unknown_scale",
                                                                            "unknown_offset"}
    good = EncoderSession(make_encoder(tmp_path / "g.onnx", metadata_overrides=GOOD))
    assert Calibration.from_model(good.info).open_set == TERM


def test_write_model_metadata_keeps_the_weights(tmp_path: Path) -> None:
    path = make_encoder(tmp_path / "m.onnx", metadata_overrides={"unknown_scale": "5", "unknown_offset": "0"})
    before = onnx.load(str(path))
    meta = {**Calibration(1.25, TERM).to_metadata(), cal.FIT_KEY: "synthetic"}
    cal.write_model_metadata(path, meta)
    cal.write_model_metadata(path, meta)  # again: keys are replaced, never duplicated
    after = onnx.load(str(path))
    assert after.graph.SerializeToString() == before.graph.SerializeToString()
    keys = [p.key for p in after.metadata_props]
    assert len(keys) == len(set(keys))
    props = {p.key: p.value for p in after.metadata_props}
    assert props[cal.FIT_KEY] == "synthetic" and props["model_name"] == "protoglyph-test-encoder"
    assert Calibration.from_model(EncoderSession(path).info) == Calibration(1.25, TERM)


def test_calibration_json_round_trip_and_refusal(tmp_path: Path) -> None:
    good = tmp_path / "c.json"
    good.write_text(json.dumps(cal.calibration_json(Calibration(1.25, TERM), "synthetic")))
    meta = cal.read_calibration_json(good)
    assert Calibration.from_metadata(1.0, meta) == Calibration(1.25, TERM) and meta[cal.FIT_KEY] == "synthetic"
    for bad in ({**json.loads(good.read_text()), "unknown_scale": -1}, {"unknown_scale": 1},
                {**json.loads(good.read_text()), TEMPERATURE_KEY: "x"}, [1]):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            cal.read_calibration_json(path)


# -- what the app computes -------------------------------------------------------------------
def test_open_set_confidence_is_lower_for_far_items() -> None:
    calibration = Calibration(1.0, TERM)
    clf = FewShotClassifier(2, 1.0, calibration=calibration)
    clf.add_examples("a", np.array([[0.0, 0.0]]))
    clf.add_examples("b", np.array([[0.0, 40.0]]))
    threshold = clf.default_threshold()
    assert threshold is not None
    # same direction, so the same softmax between a and b; ever farther from both
    queries = np.array([[math.sqrt(f * threshold), 0.0] for f in (0.1, 0.5, 1.0, 1.5, 3.0)])
    _, p = clf.probabilities(queries)
    unknown = clf.unknown_probability(queries)
    assert (np.diff(p[:, 0]) < 0).all() and (np.diff(unknown) > 0).all()
    np.testing.assert_allclose(p.sum(1) + unknown, 1.0, rtol=1e-5)
    assert p[0, 0] > 0.9 and p[-1, 0] < 0.05
    top = clf.top_k(queries[3], k=5)
    assert top[0].class_key == "a" and sum(t.probability for t in top) == pytest.approx(1 - unknown[3], rel=1e-5)
    # without the term (a calibration of the temperature only) the far item stays sure
    plain = FewShotClassifier(2, 1.0, calibration=Calibration(1.0))
    plain.add_examples("a", np.array([[0.0, 0.0]]))
    plain.add_examples("b", np.array([[0.0, 40.0]]))
    assert plain.probabilities(queries)[1][-1, 0] > 0.99


def test_batch_confidences_use_the_calibration() -> None:
    rng = np.random.default_rng(0)
    examples = {0: rng.normal(0, 0.1, (3, 4)).astype(np.float32),
                1: (rng.normal(0, 0.1, (3, 4)) + np.array([3.0, 0, 0, 0])).astype(np.float32)}
    items = np.array([[0.1, 0, 0, 0], [1.4, 0, 0, 0], [0, 2, 0, 0], [0, 6, 0, 0]], np.float16).astype(np.float32)
    n = len(items)
    table = BatchTable(Path("f"), [f"{i}.png" for i in range(n)], np.zeros(n, np.int64), np.zeros(n, np.int64),
                       items.astype(np.float16), np.full(n, ItemState.DONE, np.int8), np.zeros(n, np.int8),
                       np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    protos = np.stack([examples[0].mean(0), examples[1].mean(0)])
    d = ((items[:, None] - protos[None]) ** 2).sum(-1)

    plain = BatchResults(table, 1.0)
    plain.set_prototypes([0, 1], protos)
    np.testing.assert_allclose(plain.confidence, softmax_probabilities(d, 1.0).max(1), rtol=1e-3)

    calibration = Calibration(2.0, TERM)
    results = BatchResults(table, 1.0, calibration, folder_share=False)  # at one half, as on the canvas
    results.set_prototypes([0, 1], protos)
    # no reference yet: the calibrated temperature only
    np.testing.assert_allclose(results.confidence, softmax_probabilities(d, 2.0).max(1), rtol=1e-3)
    reference = open_set_reference(examples)
    assert reference is not None
    results.set_reference(reference)
    expected, _ = calibration.probabilities(d, reference)
    np.testing.assert_allclose(results.confidence, expected.max(1), rtol=1e-3, atol=1e-6)
    assert results.confidence[3] < results.confidence[2] < results.confidence[0]
    assert results.order("least certain first")[0] == 3
    results.set_reference(None)
    np.testing.assert_allclose(results.confidence, softmax_probabilities(d, 2.0).max(1), rtol=1e-3)


def test_classifier_reference_follows_its_examples() -> None:
    rng = np.random.default_rng(5)
    support = {k: rng.normal(k, 1.0, (shots, 8)).astype(np.float32) for k, shots in enumerate((1, 3, 5))}
    clf = FewShotClassifier(8)
    assert clf.open_set_reference() is None and clf.default_threshold() is None
    for k, e in support.items():
        clf.add_examples(k, e)
    clf.add_examples(9, rng.normal(size=(2, 8)))
    clf.remove_examples(1, support[1][2:])
    clf.remove_class(9)
    expected = open_set_reference({0: support[0], 1: support[1][:2], 2: support[2]})
    got = clf.open_set_reference()
    assert got is not None and expected is not None
    assert got.threshold == pytest.approx(expected.threshold, rel=1e-6)
    assert got.mean_inverse_shots == pytest.approx((1 + 1 / 2 + 1 / 5) / 3)
    assert got.density is not None and got.density == pytest.approx(expected.density, rel=1e-5)
    assert clf.default_threshold() == pytest.approx(default_threshold({0: support[0], 1: support[1][:2],
                                                                        2: support[2]}), rel=1e-6)


# -- export ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_writes_the_calibration(tiny_run: Path, tmp_path: Path) -> None:
    from models import export

    source = tmp_path / "c.json"
    source.write_text(json.dumps(cal.calibration_json(Calibration(1.25, TERM), "synthetic")))
    out = tmp_path / "m.onnx"
    export.main(["--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--calibration", str(source)])
    info = EncoderSession(out).info
    assert Calibration.from_model(info) == Calibration(1.25, TERM) and info.extra[cal.FIT_KEY] == "synthetic"
    source.write_text(json.dumps({"unknown_scale": "nan"}))
    with pytest.raises(SystemExit, match="--calibration"):
        export.main(["--checkpoint", str(tiny_run / "best.pt"), "--out", str(out), "--calibration", str(source)])


# -- Omniglot --------------------------------------------------------------------------------
@pytest.mark.omniglot
def test_calibration_beats_the_softmax_on_validation_alphabets(omniglot_dir: Path, tmp_path: Path) -> None:
    """Fitted on a small validation sample, measured on fresh validation episodes (the evaluation
    alphabets are for the model card only); and the shipped model's stored calibration too."""
    session = EncoderSession()
    emb, labels = cal.split_embeddings("validation", session, omniglot_dir, tmp_path)
    shipped = Calibration.from_model(session.info)
    assert shipped.open_set is not None and shipped.ignored == ()
    # episodes under the model's own "none of these" rule, as the app makes them
    tasks = [cal.sample_episodes(emb, labels, w, k, 60, 100 + i, shipped) for i, (_, w, k) in enumerate(cal.TASKS)]
    fitted = cal.fit(tasks)
    for key, ways, shots in cal.TASKS:
        episodes = cal.sample_episodes(emb, labels, ways, shots, 60, 7, shipped)
        before = cal.calibration_figures(episodes, None, session.info.temperature)["ece"]
        for calibration in (fitted, shipped):
            after = cal.calibration_figures(episodes, calibration, session.info.temperature)["ece"]
            assert after < 0.05 < before, (key, before, after)
