"""Choosing the "none of these" rule across domains (models.open_set --domains --fit), on
trials made in the test: a domain whose support examples agree far more closely than its
queries (five scans of one glyph) needs the floor and effective shots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
