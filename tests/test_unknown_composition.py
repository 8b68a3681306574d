"""models.unknown_composition: episodes whose characters of no class come from the classes'
own alphabet or from the others, on embeddings made in the test."""

from __future__ import annotations

import numpy as np
import pytest

from models import unknown_composition as uc
from protoglyph.core.classifier import Calibration, OpenSetTerm


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    alphabets = np.repeat(np.arange(3), 20)  # 3 alphabets of 20 characters
    # characters of one alphabet lie near each other; alphabets far apart
    centres = np.concatenate([rng.normal(0, 20, 8) + rng.normal(0, 2, (20, 8)) for _ in range(3)])
    labels = np.repeat(np.arange(60), 20)
    emb = (centres[labels] + rng.normal(0, 0.5, (len(labels), 8))).astype(np.float32)
    return emb, labels, alphabets


def test_same_and_other_alphabet_episodes_hold_what_they_say() -> None:
    emb, labels, alphabets = _data()
    calibration = Calibration(1.0, OpenSetTerm(5.0, -5.0))
    rng = np.random.default_rng(1)
    for mode in uc.MODES:
        e = uc.episode(emb, labels, alphabets, calibration, 5, 2, mode, rng)
        assert e.distances.shape == (10 * 15, 5)
        assert (e.truth == -1).sum() == 75 and np.bincount(e.truth[e.truth >= 0]).tolist() == [15] * 5
    # unknowns of another alphabet lie far beyond the classes; of the same one, among them
    far = uc.episode(emb, labels, alphabets, calibration, 5, 2, "other", rng)
    near = uc.episode(emb, labels, alphabets, calibration, 5, 2, "same", rng)
    assert far.distances[far.truth < 0].min(1).mean() > 3 * near.distances[near.truth < 0].min(1).mean()
    f = uc.figures(emb, labels, alphabets, calibration, 1.0, 3, 0)
    assert set(f) == {k for k, _, _ in uc.TASKS} and all(set(v) == set(uc.MODES) for v in f.values())
    assert all(0 <= cell["ece"] <= 1 for row in f.values() for cell in row.values())
    with pytest.raises(ValueError, match="no alphabet has the 42 characters"):
        uc.episode(emb, labels, alphabets, calibration, 21, 1, "same", rng)
