"""A tiny meta-training run on synthetic glyphs, end to end: official zip layout -> training ->
resume -> ONNX export -> onnxruntime -> evaluation, with PyTorch and ONNX in agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch", reason="training tests need the 'train' extra (torch)")

from models import evaluate, export, train  # noqa: E402
from models.sampler import EpisodeSampler  # noqa: E402
from protoglyph.core import preprocess as pp  # noqa: E402
from protoglyph.core.encoder import EncoderSession  # noqa: E402

from .conftest import synthetic_character  # noqa: E402


def test_training_writes_checkpoints_and_log(tiny_run: Path) -> None:
    records = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records] == [15, 30]
    assert all(0 <= r["val"]["20w1s"] <= 1 for r in records)
    state = torch.load(tiny_run / "last.pt", weights_only=False)
    assert state["episode"] == 30 and state["config"]["validation_alphabets"]


def test_resume_continues_where_it_stopped(tiny_run: Path, synthetic_omniglot: Path) -> None:
    train.main(["--data", str(synthetic_omniglot), "--out", str(tiny_run), "--episodes", "45", "--ways", "8",
                "--queries", "3", "--val-every", "15", "--width", "16", "--threads", "1", "--resume"])
    records = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in records] == [15, 30, 45]


def test_export_metadata_and_torch_onnx_agreement(tiny_model: Path, tiny_run: Path) -> None:
    model = onnx.load(str(tiny_model))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["preprocess"] == pp.PREPROCESS_VERSION and meta["embedding_size"] == "64"
    session = EncoderSession(tiny_model, threads=1)
    images = [synthetic_character("star", v, k) for v in range(3) for k in range(1, 4)]
    got = session.embed_images(images)
    encoder, state = export.load_encoder(tiny_run / "best.pt")
    x = (session.preprocess(images) - state["config"]["mean"]) / state["config"]["std"]
    with torch.no_grad():
        expected = encoder(torch.from_numpy(x.astype(np.float32))).numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_augment_without_jitter_is_the_app_preprocessing() -> None:
    from models import augment, data

    image = synthetic_character("ring", 3, 1)
    skeleton = pp.skeletons([image])[0]
    distance = torch.from_numpy(pp.stroke_distance(skeleton))[None]
    np.testing.assert_allclose(augment.render(distance, pp.INPUT_SIZE)[0, 0].numpy(), pp.preprocess(image), atol=1e-5)
    # every version, from the maps as training stores them (float16, capped distances)
    images = [synthetic_character(name, 2, 4) for name in ("ring", "star", "cross")]
    for version in pp.PREPROCESS_CHANNELS:
        stored = torch.from_numpy(data.glyph_maps(images, version).astype(np.float32))
        for size in (32, 64):
            got = augment.render(stored, size, preprocess=version).numpy()
            np.testing.assert_allclose(got, pp.encoder_inputs(images, size, version), atol=2e-3, err_msg=version)


def test_ink_width_jitter_changes_only_the_ink_channel_width() -> None:
    from models import augment, data

    maps = data.glyph_maps([synthetic_character("ring", 1, 1)], "skeleton-ink-v1")
    stored = torch.from_numpy(maps.astype(np.float32))
    only_ink = augment.Jitter(pen_scale=(1.0, 1.0), rotation_deg=0.0, scale=(1.0, 1.0), shear=0.0, shift_px=0.0,
                              ink_grow=(1.0, 1.0))
    plain = augment.render(stored, 64, preprocess="skeleton-ink-v1")
    wider = augment.render(stored, 64, only_ink, preprocess="skeleton-ink-v1")
    np.testing.assert_allclose(wider[:, 0], plain[:, 0], atol=1e-4)  # an identity resampling
    assert wider[:, 1].sum() > 1.3 * plain[:, 1].sum()


def test_two_channel_model_trains_exports_and_agrees_with_onnx(synthetic_omniglot: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from models import data

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    run = tmp_path / "run"
    train.main(["--data", str(synthetic_omniglot), "--out", str(run), "--episodes", "10", "--ways", "8",
                "--queries", "3", "--val-every", "10", "--width", "16", "--threads", "1",
                "--preprocess", "skeleton-ink-v1"])
    out = tmp_path / "ink.onnx"
    export.export([run / "best.pt"], out, version="0.0.1-test")
    session = EncoderSession(out, threads=1)
    assert session.info.preprocess == "skeleton-ink-v1" and session.channels == 2
    images = [synthetic_character("star", v, k) for v in range(3) for k in range(1, 4)]
    got = session.embed_images(images)
    encoder, state = export.load_encoder(run / "best.pt")
    inputs = pp.encoder_inputs(images, session.input_size, "skeleton-ink-v1")
    x = (inputs - state["config"]["mean"]) / state["config"]["std"]
    with torch.no_grad():
        expected = encoder(torch.from_numpy(x.astype(np.float32))).numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_evaluation_runs_through_the_app_path(tiny_model: Path, synthetic_omniglot: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    evaluate.main(["--data", str(synthetic_omniglot), "--model", str(tiny_model), "--episodes", "20", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"5w1s", "5w5s", "20w1s", "20w5s", "20w1s_within"}
    for row in result.values():
        assert 0 <= row["mean"] <= 1 and row["ci95"] >= 0


def test_sampler_checks_its_arguments() -> None:
    labels = np.repeat(np.arange(6), 4)
    with pytest.raises(ValueError, match="fewer than"):
        EpisodeSampler(labels, 3, 2, 3)
    with pytest.raises(ValueError, match="no group"):
        EpisodeSampler(labels, 5, 1, 1, groups=np.array([0, 0, 0, 1, 1, 1]))
    support, query = EpisodeSampler(labels, 3, 1, 2).sample(np.random.default_rng(0))
    assert len(support) == 3 and len(query) == 6 and not set(support) & set(query)


def test_ensemble_distances_average_the_members_logits(tiny_run: Path, tmp_path: Path) -> None:
    from protoglyph.core.classifier import squared_distances

    members = [tiny_run / "best.pt", tiny_run / "last.pt"]
    export.export(members, tmp_path / "ens.onnx", version="0.0.1-test")
    ensemble = EncoderSession(tmp_path / "ens.onnx", threads=1)
    images = [synthetic_character(s, 1, k) for s in ("ring", "cross") for k in (1, 2)]
    expected = 0
    for i, member in enumerate(members):
        export.export([member], tmp_path / f"m{i}.onnx", version="0.0.1-test")
        session = EncoderSession(tmp_path / f"m{i}.onnx", threads=1)
        e = session.embed_images(images)
        expected = expected + squared_distances(e, e) / session.info.temperature / len(members)
    e = ensemble.embed_images(images)
    assert ensemble.info.temperature == 1.0 and ensemble.embedding_size == 2 * 64
    np.testing.assert_allclose(squared_distances(e, e), expected, rtol=1e-4, atol=1e-4)


def test_font_validation_embeds_only_the_items_its_episodes_use() -> None:
    from models.data import GlyphSet
    from models.network import Encoder
    from protoglyph.core.classifier import episode_accuracy

    rng = np.random.default_rng(0)
    chars = [f"font:{script}/c{i}" for script in ("Latin", "Greek") for i in range(25)]
    label = np.repeat(np.arange(len(chars)), 8)  # eight families per character
    drawer = np.tile(np.arange(8), len(chars))
    fonts = GlyphSet(rng.random((len(label), 2, 64, 64)).astype(np.float16), label, drawer, chars)
    omniglot = GlyphSet(rng.random((500, 2, 64, 64)).astype(np.float16), np.repeat(np.arange(25), 20),
                        np.tile(np.arange(1, 21), 25), [f"A{i // 5}/character{i:02d}" for i in range(25)])
    check = train.Validator(omniglot, 32, episodes=3, fonts=fonts, preprocess="skeleton-ink-v2")
    assert 0 < len(check.font_items) < len(fonts.label)
    encoder = Encoder(8, 4, 2)
    score = check(encoder, 0.0, 1.0, "cpu")["fonts_20w1s"]
    everything = check._embed(fonts, encoder.eval(), 0.0, 1.0, "cpu")
    expected = []
    for support, query in train.font_episodes(fonts, 20, 3, 4321):  # the same episodes, on every item
        truth = np.repeat(np.arange(len(support)), len(query) // len(support))
        expected.append(episode_accuracy(list(everything[support][:, None, :]), everything[query], truth))
    assert score == pytest.approx(float(np.mean(expected)), abs=1e-9)


def test_quantised_copies_keep_the_metadata_and_nearly_the_embeddings(tiny_model: Path, tmp_path: Path) -> None:
    from models import quantize

    session = EncoderSession(tiny_model, threads=1)
    images = [synthetic_character(name, v, k) for name in ("ring", "star", "cross") for v in range(2) for k in (1, 2)]
    inputs = session.preprocess(images)
    calibration = ((inputs - session.info.norm_mean) / session.info.norm_std).astype(np.float32)
    paths = quantize.make_variants(tiny_model, tmp_path, calibration)
    assert set(paths) == set(quantize.VARIANTS) and paths["float32"] == tiny_model
    expected = session.embed_inputs(inputs)
    for name in ("int8-dynamic", "int8-static", "float16"):
        copy = EncoderSession(paths[name], threads=1)
        assert copy.info == session.info, name  # the app reads everything it needs from the metadata
        got = copy.embed_inputs(inputs)
        moved = np.linalg.norm(got - expected, axis=1) / np.linalg.norm(expected, axis=1)
        assert moved.max() < (0.01 if name == "float16" else 0.2), (name, moved.max())
        assert quantize.speed(paths[name], inputs, 1, 4, runs=1) > 0
