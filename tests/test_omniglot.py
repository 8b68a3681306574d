"""Tests on the real Omniglot zips (skipped with a reason where ../shared/omniglot is absent)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from protoglyph.core.classifier import episode_accuracy
from protoglyph.core.encoder import EncoderSession

from models import evaluate
from models.data import VALIDATION_ALPHABETS
from models.omniglot import list_drawings, read_images, read_strokes, zip_path

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


def render_strokes(strokes: list[list[tuple[float, float, float]]], size: int = 420, pen: int = 3) -> np.ndarray:
    """Replay pen trajectories (105x105 frame) onto a white canvas of ``size`` pixels."""
    canvas = np.full((size, size), 255, np.uint8)
    scale = size / 105
    for stroke in strokes:
        pts = np.round(np.array([(x, y) for x, y, _ in stroke]) * scale * 16).astype(np.int32)
        cv2.polylines(canvas, [np.vstack([pts, pts[-1:]]).reshape(-1, 1, 2)], False, 0, pen, cv2.LINE_AA, shift=4)
    return canvas


def test_replayed_strokes_classify_like_the_official_images(omniglot_dir: Path) -> None:
    """20-way 1-shot on the held-out small1 alphabets: support = one drawer's official image,
    queries = another drawer's official image (a) and the same drawing's replayed pen strokes (b)."""
    images_zip = zip_path(omniglot_dir, "images_background_small1")
    strokes_zip = zip_path(omniglot_dir, "strokes_background_small1")
    drawings = list_drawings(images_zip)
    characters = sorted({d.character for d in drawings})
    rng = np.random.default_rng(0)
    session = EncoderSession()
    by_key = {(d.character, d.drawer): d for d in drawings}
    acc_a: list[float] = []
    acc_b: list[float] = []
    with zipfile.ZipFile(strokes_zip) as strokes:
        for _ in range(25):
            chosen = rng.choice(len(characters), 20, replace=False)
            support, official, replayed = [], [], []
            for c in chosen:
                d1, d2 = rng.choice(np.arange(1, 21), 2, replace=False)
                support.append(by_key[(characters[c], d1)])
                query = by_key[(characters[c], d2)]
                official.append(query)
                member = query.member.replace("images_background_small1", "strokes_background_small1")
                replayed.append(render_strokes(read_strokes(strokes.read(member[:-4] + ".txt").decode())))
            s = session.embed_images(read_images(images_zip, support))
            qa = session.embed_images(read_images(images_zip, official))
            qb = session.embed_images(replayed)
            per_class = [s[i : i + 1] for i in range(20)]
            acc_a.append(episode_accuracy(per_class, qa, np.arange(20)))
            acc_b.append(episode_accuracy(per_class, qb, np.arange(20)))
    a, b = float(np.mean(acc_a)), float(np.mean(acc_b))
    assert a > 0.85, a
    assert b > a - 0.05, (a, b)


def test_shipped_model_on_evaluation_alphabets(omniglot_dir: Path) -> None:
    """A short, fixed-seed run of the evaluation protocol (the full one is models.evaluate)."""
    session = EncoderSession()
    embeddings, labels, groups = evaluate.embed_set(omniglot_dir, "images_evaluation", session)
    result = evaluate.evaluate(embeddings, labels, groups, episodes=100, seed=0,
                               temperature=session.info.temperature)
    assert result["5w1s"]["mean"] > 0.95
    assert result["20w1s"]["mean"] > 0.88
    assert result["20w5s"]["mean"] > 0.95
