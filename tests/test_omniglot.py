"""Tests on the real Omniglot zips (skipped with a reason where ../shared/omniglot is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import evaluate, fidelity
from models.data import VALIDATION_ALPHABETS
from models.omniglot import list_drawings, read_images, zip_path
from protoglyph.core.encoder import EncoderSession

pytestmark = pytest.mark.omniglot


def test_reader_sees_the_official_layout(omniglot_dir: Path) -> None:
    background = list_drawings(zip_path(omniglot_dir, "images_background"))
    evaluation = list_drawings(zip_path(omniglot_dir, "images_evaluation"))
    assert len(background) == 19280 and len({d.character for d in background}) == 964
    assert len({d.alphabet for d in background}) == 30 and len({d.alphabet for d in evaluation}) == 20
    assert len(evaluation) == 13180
    assert set(VALIDATION_ALPHABETS) <= {d.alphabet for d in background}
    assert not {d.alphabet for d in background} & {d.alphabet for d in evaluation}
    image = read_images(zip_path(omniglot_dir, "images_background"), background[:1])[0]
    assert image.shape == (105, 105) and image.dtype == np.uint8


def test_replayed_strokes_classify_like_the_official_images(omniglot_dir: Path) -> None:
    """Real pen trajectories replayed on a canvas (held-out small1 alphabets) are classified
    about as well as the official images of the same drawings; see models.fidelity."""
    result = fidelity.measure(omniglot_dir, EncoderSession(), episodes=25)
    official = result["official"]["mean"]
    assert official > 0.85, result
    assert result["canvas_pen3"]["mean"] > official - 0.04, result
    assert result["canvas_pen14"]["mean"] > official - 0.04, result


def test_shipped_model_on_evaluation_alphabets(omniglot_dir: Path) -> None:
    """A short, fixed-seed run of the evaluation protocol (the full one is models.evaluate)."""
    session = EncoderSession()
    embeddings, labels, groups = evaluate.embed_set(omniglot_dir, "images_evaluation", session)
    result = evaluate.evaluate(embeddings, labels, groups, episodes=100, seed=0,
                               temperature=session.info.temperature)
    assert result["5w1s"]["mean"] > 0.95
    assert result["20w1s"]["mean"] > 0.88
    assert result["20w5s"]["mean"] > 0.95
