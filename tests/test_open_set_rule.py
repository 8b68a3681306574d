"""Choosing the "none of these" rule across domains (models.open_set --domains --fit), on
trials made in the test: a domain whose support examples agree far more closely than its
queries (five scans of one glyph) needs the floor and effective shots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import calibration, open_set
from models.font_suite import Trial
from protoglyph.core.classifier import Calibration
from protoglyph.core.threshold import ThresholdRule

SPREAD = 2.0


def _trials(rng: np.random.Generator, support_spread: float, query_scale: float, shots: int,
            episodes: int = 60) -> list[Trial]:
    out = []
    for _ in range(episodes):
        ways = 5
        known = rng.chisquare(8, ways * 5) / 8 * SPREAD * query_scale  # about the typical distance
        unknown = rng.chisquare(8, ways * 5) / 8 * SPREAD * 6.0
        out.append(Trial(1.0, known, unknown, support_spread * ways * (shots - 1), (shots,) * ways))
    return out


def test_the_fit_keeps_enough_of_every_domain_and_rejects_what_it_can(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trials = {
        "drawings/5w1s": (_trials(rng, SPREAD, 1.0, 1), ["x"]),
        "drawings/5w5s": (_trials(rng, SPREAD, 1.0, 5), ["x"]),
        # five scans of one glyph: the support's spread is a twentieth of the queries'
        "scanned/5w5s": (_trials(rng, SPREAD / 20, 1.2, 5), ["x"]),
    }
    plain = ThresholdRule(SPREAD)
    kept_plain = np.mean([t.figures(plain)[1] for t in trials["scanned/5w5s"][0]])
    assert kept_plain < 0.8  # encoder 1's rule fails that domain
    rule, worst, rejected = open_set.fit_rule(trials, SPREAD)
    assert worst >= 0.95 and rejected > 0.5
    assert rule.spread_floor > 0 or rule.effective_shots
    for rows, _ in trials.values():
        assert np.mean([t.figures(rule)[1] for t in rows]) >= 0.95
    # what it writes is what the calibration and the app read back
    out = tmp_path / "rule.json"
    out.write_text(json.dumps(open_set.rule_metadata(rule)))
    assert Calibration.from_metadata(1.0, calibration.read_rule_json(out)).threshold_rule == rule


def test_when_nothing_keeps_enough_the_fit_keeps_the_most() -> None:
    rng = np.random.default_rng(1)
    hopeless = {"far/5w1s": (_trials(rng, SPREAD, 30.0, 1), ["x"])}
    rule, worst, _ = open_set.fit_rule(hopeless, SPREAD)
    assert worst < 0.95 and rule.keep_factor == max(open_set.KEEP_FACTORS)


def _cell(rng: np.random.Generator, shots: int, support_spread: float, known_scale: float,
          unknown_scale: float, episodes: int = 60, ways: int = 5) -> list[Trial]:
    out = []
    for _ in range(episodes):
        known = rng.chisquare(8, ways * 5) / 8 * SPREAD * known_scale
        unknown = rng.chisquare(8, ways * 5) / 8 * SPREAD * unknown_scale
        out.append(Trial(1.0, known, unknown, support_spread * ways * (shots - 1), (shots,) * ways))
    return out


def _cells(trials: dict[str, tuple[list[Trial], list[str]]], rule: ThresholdRule) -> dict[str, np.ndarray]:
    return {k: np.mean([t.figures(rule) for t in rows], 0)[1:] for k, (rows, _) in trials.items()}


def test_one_shot_classes_get_their_own_keep_factor_so_the_wide_bound_of_close_scans_does_not_silence_them() -> None:
    """The candidate encoder 2's failure: five close scans of a glyph need a wide bound, and one
    keep factor for every support set then rejects almost nothing near a single drawing."""
    rng = np.random.default_rng(0)
    trials = {"drawings/5w1s": (_cell(rng, 1, SPREAD, 1.5, 6.0), ["x"]),
              "scanned/5w5s": (_cell(rng, 5, SPREAD / 20, 4.0, 12.0), ["x"])}
    rule, worst, _ = open_set.fit_rule(trials, SPREAD)
    assert worst >= 0.95 and rule.one_shot_keep_factor is not None
    assert rule.one_shot_keep_factor < rule.keep_factor
    # the best rule of one keep factor, by brute force over the same grid
    single = []
    for effective in (False, True):
        for floor in open_set.SPREAD_FLOORS:
            for factor in open_set.KEEP_FACTORS:
                cells = _cells(trials, ThresholdRule(SPREAD, factor, floor, effective))
                if min(v[0] for v in cells.values()) >= 0.95:
                    single.append((float(np.mean([v[1] for v in cells.values()])), cells))
    best_single = max(single, key=lambda s: s[0])[1]
    fitted = _cells(trials, rule)
    assert min(v[0] for v in fitted.values()) >= 0.95
    assert fitted["drawings/5w1s"][1] > best_single["drawings/5w1s"][1] + 0.5
    assert fitted["scanned/5w5s"][1] >= best_single["scanned/5w5s"][1] - 0.02


def test_the_omniglot_report_judges_the_models_own_rule() -> None:
    """``models.open_set --split ...`` measures the rule the app uses: encoder 1's without one
    in the metadata (the old figures), a model's own (one-shot factor and all) with one."""
    from protoglyph.core.threshold import default_threshold

    rng = np.random.default_rng(4)
    centres = rng.normal(0, 3, (12, 8))
    emb = np.concatenate([c + rng.normal(0, 1, (20, 8)) for c in centres]).astype(np.float32)
    support = np.array([c * 20 + i for c in range(6) for i in range(2)])
    query = np.array([c * 20 + 5 + i for c in range(6) for i in range(open_set.QUERIES)])
    own = ThresholdRule(2.0, keep_factor=3.0, spread_floor=0.5, effective_shots=True, one_shot_keep_factor=1.5)
    rows = open_set.episode(emb, support, query, 3, 2, (ThresholdRule(), own))
    per_class = emb[support].reshape(6, 2, 8)[:3]
    d_known = ((emb[query[: 3 * open_set.QUERIES]][:, None] - per_class.mean(1)[None]) ** 2).sum(-1).min(1)
    d_unknown = ((emb[query[3 * open_set.QUERIES :]][:, None] - per_class.mean(1)[None]) ** 2).sum(-1).min(1)
    plain = default_threshold(dict(enumerate(per_class)))
    scatter = float(sum(((e - e.mean(0)) ** 2).sum() for e in per_class.astype(np.float64)))
    for row, threshold in zip(rows, (plain, own.threshold(scatter, [2, 2, 2])), strict=True):
        assert threshold is not None
        assert row[0] == pytest.approx((d_known <= threshold).mean(), abs=1e-6)
        assert row[2] == pytest.approx((d_unknown > threshold).mean(), abs=1e-6)
