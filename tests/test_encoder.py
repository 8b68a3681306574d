"""The encoder session: the shipped model, metadata checks and clear errors for bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from protoglyph.core import preprocess as pp
from protoglyph.core.encoder import EncoderSession, ModelError, default_model_path
from protoglyph.core.shapes import draw_shape


@pytest.fixture(scope="module")
def shipped() -> EncoderSession:
    return EncoderSession()


def test_shipped_model_is_found_and_small() -> None:
    path = default_model_path()
    assert path.is_file(), f"the shipped encoder is missing at {path}"
    assert path.stat().st_size < 5_000_000


def test_shipped_model_metadata(shipped: EncoderSession) -> None:
    info = shipped.info
    assert info.preprocess == pp.PREPROCESS_VERSION
    assert info.input_size == pp.INPUT_SIZE and info.embedding_size > 0 and info.temperature > 0
    assert set(info.accuracy) >= {"5w1s", "5w5s", "20w1s", "20w5s", "20w1s_within"}
    assert "20-way 1-shot" in info.summary()


def test_shipped_model_is_deterministic_and_batch_independent(shipped: EncoderSession) -> None:
    rng = np.random.default_rng(0)
    images = [draw_shape(name, rng) for name in ("ring", "cross", "star", "check")]
    a = shipped.embed_images(images)
    b = shipped.embed_images(images)
    np.testing.assert_array_equal(a, b)
    one_by_one = np.concatenate([shipped.embed_images([im]) for im in images])
    np.testing.assert_allclose(one_by_one, a, rtol=1e-5, atol=1e-5)
    assert a.shape == (4, shipped.embedding_size) and a.dtype == np.float32
    assert shipped.embed_inputs(np.zeros((0, pp.INPUT_SIZE, pp.INPUT_SIZE), np.float32)).shape == (0, a.shape[1])


def test_shipped_model_separates_shapes(shipped: EncoderSession) -> None:
    from protoglyph.core.classifier import FewShotClassifier

    rng = np.random.default_rng(1)
    names = ("ring", "cross", "triangle", "zigzag", "check")
    clf = FewShotClassifier(shipped.embedding_size, shipped.info.temperature)
    for name in names:
        clf.add_examples(name, shipped.embed_images([draw_shape(name, rng)]))
    queries = shipped.embed_images([draw_shape(n, rng, size=420, pen=6) for n in names])
    keys, best, _ = clf.predict(queries)
    assert [keys[i] for i in best] == list(names)


def test_wrong_input_shape_is_refused(shipped: EncoderSession) -> None:
    with pytest.raises(ValueError, match="inputs"):
        shipped.embed_inputs(np.zeros((2, 28, 28), np.float32))


def test_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found") as err:
        EncoderSession(tmp_path / "nope.onnx")
    assert str(tmp_path / "nope.onnx") in str(err.value)


def test_truncated_and_garbage_models(tmp_path: Path) -> None:
    data = default_model_path().read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model\n" * 100)
    for path in (truncated, garbage):
        with pytest.raises(ModelError, match="cannot be loaded") as err:
            EncoderSession(path)
        assert err.value.path == path


def _with_metadata(tmp_path: Path, **changes: str | None) -> Path:
    model = onnx.load(str(default_model_path()))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    path = tmp_path / "changed.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"temperature": None}, "lacks temperature"),
    ({"format": "other/9"}, "model format"),
    ({"preprocess": "raw-v0"}, "preprocessing"),
    ({"input_size": "28"}, "input size 28"),
    ({"embedding_size": "7"}, "embedding_size"),
    ({"distance": "cosine"}, "distance"),
    ({"norm_std": "zero"}, "malformed"),
])
def test_mismatched_metadata(tmp_path: Path, changes: dict[str, str | None], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        EncoderSession(_with_metadata(tmp_path, **changes))


def test_no_telemetry_and_no_files_in_home(tmp_path: Path) -> None:
    """Loading and running the encoder sets ORT_DISABLE_TELEMETRY and writes nothing under $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    code = ("import os, numpy as np; import protoglyph.core.encoder as e; "
            "s = e.EncoderSession(); s.embed_inputs(np.zeros((3, s.input_size, s.input_size), np.float32)); "
            "print(os.environ['ORT_DISABLE_TELEMETRY'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert list(home.rglob("*")) == []
