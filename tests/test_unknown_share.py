"""The folder's own share of unknowns (``core.unknown_share``) and the confidences shown at it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from protoglyph.core import unknown_share
from protoglyph.core.classifier import Calibration, OpenSetTerm
from protoglyph.core.labeling.results import BatchResults
from protoglyph.core.labeling.states import ItemState
from protoglyph.core.labeling.store import BatchTable
from protoglyph.core.threshold import OpenSetReference


def _log_odds(share: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds of a well-specified term: unknown items' score ~ N(+1.5, 1), known ~ N(-1.5, 1),
    so the log-likelihood ratio at one half is exactly 3 x score."""
    rng = np.random.default_rng(seed)
    unknown = rng.random(n) < share
    score = rng.normal(np.where(unknown, 1.5, -1.5), 1.0)
    return 3.0 * score, unknown


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 0.8])
def test_estimate_finds_the_share_it_was_made_with(share: float) -> None:
    z, unknown = _log_odds(share, 20000, seed=int(10 * share))
    assert abs(unknown_share.estimate(z) - unknown.mean()) < 0.02
    # and the probabilities at that share are calibrated: their mean is the share itself
    p = unknown_share.unknown_probability(z, unknown_share.estimate(z, pseudo_items=0.0))
    assert abs(p.mean() - unknown.mean()) < 0.01


def test_estimate_is_the_fixed_point_of_saerens_em() -> None:
    z, _ = _log_odds(0.3, 3000, seed=4)
    share = 0.5
    for _ in range(2000):  # the EM of Saerens et al. 2002: the new prior is the mean posterior
        share = float(unknown_share.unknown_probability(z, share).mean())
    assert unknown_share.estimate(z, pseudo_items=0.0) == pytest.approx(share, abs=1e-6)


def test_estimate_edges() -> None:
    assert unknown_share.estimate(np.zeros(0)) == 0.5  # nothing to go on
    assert unknown_share.estimate(np.array([np.nan, np.inf])) == 0.5  # not finite: left out
    sure_known = np.full(1000, -60.0)  # beyond any float's e^z: clipped, no overflow
    assert unknown_share.estimate(sure_known, pseudo_items=0.0) == unknown_share.LIMIT
    assert unknown_share.estimate(-sure_known, pseudo_items=0.0) == 1.0 - unknown_share.LIMIT
    # a few items: the prior keeps them from the extremes; a person's reviews count
    few = np.full(3, -8.0)
    assert 0.05 < unknown_share.estimate(few) < 0.5
    assert unknown_share.estimate(few, reviewed_unknown=20) > 0.8
    # reviews alone: (1 + 1) / (1 + 1 + 9 + 1), the prior adding one item of each
    assert unknown_share.estimate(np.zeros(0), reviewed_known=9, reviewed_unknown=1) == pytest.approx(2 / 12, abs=1e-9)


def _folder(share: float, n: int = 400, seed: int = 0) -> tuple[BatchResults, np.ndarray]:
    """A folder of 2-D items around two prototypes, a share of them far from both."""
    rng = np.random.default_rng(seed)
    unknown = np.arange(n) < int(share * n)
    centers = np.array([[0.0, 0.0], [8.0, 0.0]])
    items = centers[rng.integers(0, 2, n)] + rng.normal(0, 0.5, (n, 2))
    items[unknown] = rng.normal(0, 1, (int(unknown.sum()), 2)) + np.array([4.0, 6.0])
    table = BatchTable(Path("f"), [f"{i:04}.png" for i in range(n)], np.zeros(n, np.int64), np.zeros(n, np.int64),
                       items.astype(np.float16), np.full(n, ItemState.DONE, np.int8), np.zeros(n, np.int8),
                       np.full(n, -1, np.int64), np.full(n, -1, np.int64))
    term = OpenSetTerm(scale=6.0, offset=-6.0)
    results = BatchResults(table, 1.0, Calibration(1.0, term))
    results.set_prototypes([0, 1], centers.astype(np.float32))
    results.set_reference(OpenSetReference(threshold=4.0, mean_inverse_shots=0.2))
    return results, unknown


def test_a_folder_of_known_items_is_shown_more_confident_than_at_one_half() -> None:
    results, _ = _folder(0.0)
    at_half = BatchResults(results.table, 1.0, results.calibration, folder_share=False)
    at_half.set_prototypes([0, 1], results._protos)
    at_half.set_reference(results.reference)
    assert at_half.unknown_share is None
    assert results.unknown_share is not None and results.unknown_share < 0.05
    assert (results.confidence >= at_half.confidence - 1e-6).all()
    assert results.confidence.mean() > at_half.confidence.mean() + 0.005
    # the confidences are the nearest class's softmax times p(known) at the estimated share
    z = results.calibration.open_set.log_odds(results.distances, results.reference)  # type: ignore[union-attr]
    known = 1.0 - unknown_share.unknown_probability(z, results.unknown_share)
    d = results.distances
    softmax = 1.0 / np.exp(d.min(1)[:, None] - d).sum(1)
    np.testing.assert_allclose(results.confidence, softmax * known, rtol=1e-4, atol=1e-6)


def test_the_share_follows_the_folder_as_items_arrive_and_as_a_person_reviews() -> None:
    results, unknown = _folder(0.6, seed=3)
    assert abs(results.unknown_share - unknown.mean()) < 0.08  # type: ignore[operator]
    # items still waiting count for nothing; when they arrive every confidence follows the share
    table = results.table
    table.state[unknown] = 0
    results._predict(np.flatnonzero(unknown))
    results.refresh_share()
    assert results.unknown_share < 0.1  # type: ignore[operator]
    first = results.confidence.copy()
    table.state[unknown] = ItemState.DONE
    results.update_rows(np.flatnonzero(unknown))
    assert results.unknown_share > 0.5  # type: ignore[operator]
    known_items = np.flatnonzero(~unknown)
    assert (results.confidence[known_items] < first[known_items]).all()  # more unknowns around: less sure
    # a person who says that items are unknown moves the estimate up
    before = results.unknown_share
    table.review[known_items[:100]] = 3
    results.refresh_share()
    assert results.unknown_share > before  # type: ignore[operator]


def test_the_measurement_samples_the_share_it_is_asked_for_and_the_folder_share_helps() -> None:
    from models import calibration as cal
    from models import folder_share

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(90), 20)  # 90 characters of 20 drawings, far apart (20w at 3/4: 80)
    emb = (rng.normal(0, 10, (90, 8))[labels] + rng.normal(0, 0.3, (len(labels), 8))).astype(np.float32)
    calibration = Calibration(1.0, OpenSetTerm(4.0, -4.0))
    for share, unknown in ((0.0, 0), (0.25, 30), (0.5, 75), (0.75, 225)):  # 0, 2, 5, 15 characters
        e = cal.sample_episodes(emb, labels, 5, 1, 1, 0, calibration, share)[0]
        assert (e.truth == -1).sum() == unknown and len(e.truth) == 75 + unknown
    f = folder_share.share_figures(emb, labels, calibration, 1.0, 20, 0)
    assert set(f) == {k for k, _, _ in cal.TASKS}
    assert all(set(row) == {"0", "0.25", "0.5", "0.75"} for row in f.values())
    for row in f.values():  # with no unknowns the folder's own share is far better calibrated
        assert row["0"][folder_share.FOLDER]["ece"] < row["0"][folder_share.HALF]["ece"] / 2
        assert row["0"]["estimated share"] < 0.1 < 0.6 < row["0.75"]["estimated share"]
