"""The workspace with the real encoder: class names, edits that keep the file and the classifier in step,
embeddings cached in the file, and the starter project."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.project import Project
from protoglyph.core.shapes import draw_shape
from protoglyph.core.starter import EXAMPLES_PER_CLASS, STARTER_CLASSES, create_starter_project
from protoglyph.core.workspace import MAX_NAME_LENGTH, MAX_STORED_SIDE, Workspace


@pytest.fixture
def workspace(tmp_path: Path, encoder: EncoderSession) -> Iterator[Workspace]:
    ws = Workspace(Project.create(tmp_path / "p.protoglyph"), encoder)
    yield ws
    ws.project.close()


def prototypes(ws: Workspace) -> dict[object, np.ndarray]:
    keys, protos = ws.classifier.prototypes()
    return dict(zip(keys, protos, strict=True))


def add_drawn(ws: Workspace, class_id: int, shape: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images = [draw_shape(shape, rng, size=105) for _ in range(count)]
    ws.add_examples(class_id, ws.prepare(images, [f"{shape}.png"] * count))


def test_names_are_cleaned_and_checked(workspace: Workspace) -> None:
    assert workspace.add_class("  Cafe\u0301 ").name == "Café"  # trimmed, NFC
    alpha = workspace.add_class("Alpha")
    for bad, why in [("", "empty"), (" \t ", "empty"), ("x" * (MAX_NAME_LENGTH + 1), "at most"),
                     ("a\nb", "control"), ("tab\there", "control"), ("nul\0", "control"), ("\ud800", "control"),
                     ("ALPHA", "already"), (" café", "already"), ("CAFE\u0301", "already")]:
        with pytest.raises(ValueError, match=why):
            workspace.check_name(bad)
    assert workspace.check_name("ALPHA", ignore_id=alpha.id) == "ALPHA"  # renaming to another case
    assert workspace.check_name("y" * MAX_NAME_LENGTH) == "y" * MAX_NAME_LENGTH
    for odd in ["../x", "CON", "a/b", "🙂 smile", "日本語"]:
        assert workspace.add_class(odd).name == odd
    assert [c.name for c in workspace.classes()][-5:] == ["../x", "CON", "a/b", "🙂 smile", "日本語"]
    with pytest.raises(ValueError, match="already"):
        workspace.add_class("con")


def test_unused_name_rename_recolor_and_move(workspace: Workspace) -> None:
    one, three = workspace.add_class("Class 1"), workspace.add_class("class 3")
    assert workspace.unused_name() == "Class 4"
    assert workspace.rename_class(three.id, " Third ") == "class 3"
    with pytest.raises(ValueError, match="already"):
        workspace.rename_class(three.id, "CLASS 1")
    assert workspace.recolor_class(one.id, "#010203") == one.color
    assert workspace.move_class(three.id, 0) == 1
    assert [(c.name, c.color) for c in workspace.classes()] == [("Third", three.color), ("Class 1", "#010203")]


def test_file_and_classifier_agree_after_edits(tmp_path: Path, encoder: EncoderSession) -> None:
    ws = Workspace(Project.create(tmp_path / "p.protoglyph"), encoder)
    ids = {shape: ws.add_class(shape).id for shape in ("ring", "cross", "square", "star")}
    for seed, shape in enumerate(ids):
        add_drawn(ws, ids[shape], shape, 3, seed)
    ring = [e.id for e in ws.examples(ids["ring"])]
    before = ws.move_examples(ring[:2], ids["cross"])
    assert ws.example_count(ids["cross"]) == 5 and ws.example_count(ids["ring"]) == 1
    ws.place_examples(before)  # undo the move
    ws.move_examples([ring[2]], ids["square"])
    removed = ws.remove_examples([ring[0], ws.examples(ids["cross"])[0].id])
    ws.restore_examples([r for r in removed if r.id == ring[0]])
    ws.restore_class(ws.delete_class(ids["ring"]))
    ws.delete_class(ids["cross"])
    ws.remove_examples([e.id for e in ws.examples(ids["star"])])  # a class left without examples
    ws.restore_class(ws.delete_class(ids["star"]))
    for c in ws.classes():
        assert ws.example_count(c.id) == len(ws.examples(c.id))
    fresh = Workspace(Project.open(ws.project.path), encoder)
    live, stored = prototypes(ws), prototypes(fresh)
    assert set(live) == set(stored) == {ids["ring"], ids["square"]}
    for key in live:
        np.testing.assert_allclose(live[key], stored[key], rtol=1e-5, atol=1e-5)
    fresh.project.close()
    ws.project.close()


def test_embeddings_are_cached_and_recomputed_for_another_model(tmp_path: Path, encoder: EncoderSession,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(Project.create(tmp_path / "p.protoglyph"), encoder)
    star = ws.add_class("Star").id
    add_drawn(ws, star, "star", 4, seed=7)
    original = prototypes(ws)[star]
    ws.project.close()
    calls: list[int] = []
    real = encoder.embed_images
    monkeypatch.setattr(encoder, "embed_images", lambda images: calls.append(len(images)) or real(images))

    again = Workspace(Project.open(tmp_path / "p.protoglyph"), encoder)
    assert calls == []
    examples = again.examples(star)
    again.project.store_embeddings("some-other-model:0.1:v0", {examples[0].id: examples[0].embedding or b""})
    again.project.store_embeddings(again.model_key, {examples[1].id: b"\0" * 8})  # the wrong size
    again.project.close()

    third = Workspace(Project.open(tmp_path / "p.protoglyph"), encoder)
    assert calls == [2]
    assert {e.embedding_model for e in third.examples(star)} == {third.model_key}
    np.testing.assert_allclose(prototypes(third)[star], original, rtol=1e-5, atol=1e-5)
    third.project.close()


def test_prepare_shrinks_large_images_and_keeps_strokes(workspace: Workspace) -> None:
    big = np.full((2000, 1000), 255, np.uint8)
    big[500:1500, 400:600] = 0
    (example,) = workspace.prepare([big], ["scan.png"])
    assert example.image.shape == (MAX_STORED_SIDE, MAX_STORED_SIDE // 2) and example.source == "scan.png"
    assert example.embedding.shape == (workspace.encoder.embedding_size,)
    assert workspace.prepare([], []) == []
    drawn = workspace.prepare_drawing([np.array([[10.0, 10.0], [90.0, 90.0]])], 100, 100, 2.0)
    assert drawn.source == "drawing" and json.loads(drawn.strokes or "")["strokes"] == [[[10.0, 10.0], [90.0, 90.0]]]
    assert workspace.classify_embedding(drawn.embedding) == []  # no examples yet


def test_starter_project_classifies_fresh_drawings(tmp_path: Path, encoder: EncoderSession) -> None:
    ws = create_starter_project(tmp_path / "starter.protoglyph", encoder)
    classes = ws.classes()
    assert [c.name for c in classes] == [name for name, _ in STARTER_CLASSES]
    assert sorted(n for n, _ in ws.project.class_summaries().values()) == [EXAMPLES_PER_CLASS] * 8 == [4] * 8
    shape_class = {shape: c.id for (_, shape), c in zip(STARTER_CLASSES, classes, strict=True)}
    rng = np.random.default_rng(2024)
    queries = [shape for shape in shape_class for _ in range(2)]
    vectors = encoder.embed_images([draw_shape(shape, rng, size=300) for shape in queries])
    predicted = [ws.classify_embedding(v, k=3)[0].class_key for v in vectors]
    assert predicted == [shape_class[shape] for shape in queries]
    cross = [np.array([[150.0, 40.0], [150.0, 260.0]]), np.array([[40.0, 150.0], [260.0, 150.0]])]
    best = ws.classify_embedding(ws.embed_drawing(cross, 300, 300, 5.0))
    assert best[0].class_key == shape_class["cross"] and len(best) == 5
    # Calibrated: the classes share what "none of these" leaves (its chance is small for a clear ring).
    unknown = float(ws.classifier.unknown_probability(vectors[0][None])[0])
    assert 0.0 <= unknown < 0.5
    assert sum(p.probability for p in ws.classify_embedding(vectors[0], k=8)) == pytest.approx(1.0 - unknown, abs=1e-5)
    ws.project.close()
