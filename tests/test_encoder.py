"""The encoder session: the shipped model, metadata checks and clear errors for bad files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from protoglyph.core import encoder as enc
from protoglyph.core import preprocess as pp
from protoglyph.core.encoder import EncoderSession, ModelError, default_model_path
from protoglyph.core.shapes import draw_shape
from tests.model_factory import build_encoder, make_encoder


@pytest.fixture(scope="module")
def shipped() -> EncoderSession:
    return EncoderSession()


def test_shipped_model_is_found_and_small() -> None:
    path = default_model_path()
    assert path.is_file(), f"the shipped encoder is missing at {path}"
    assert path.stat().st_size < 5_000_000


def test_shipped_model_metadata(shipped: EncoderSession) -> None:
    info = shipped.info
    assert info.preprocess in pp.PREPROCESS_CHANNELS and shipped.channels == len(pp.channels(info.preprocess))
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
    empty = np.zeros((0, shipped.channels, pp.INPUT_SIZE, pp.INPUT_SIZE), np.float32)
    assert shipped.embed_inputs(empty).shape == (0, a.shape[1])


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
    code = ("import os, numpy as np; import protoglyph.core.encoder as e; s = e.EncoderSession(); "
            "s.embed_inputs(np.zeros((3, s.channels, s.input_size, s.input_size), np.float32)); "
            "print(os.environ['ORT_DISABLE_TELEMETRY'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert list(home.rglob("*")) == []


# -- the model's identity -----------------------------------------------------------------
def test_model_key_tells_apart_models_with_the_same_metadata(tmp_path: Path) -> None:
    """Two models that differ only in their weights must never share cached embeddings."""
    a = EncoderSession(make_encoder(tmp_path / "a.onnx", weights_seed=0))
    b = EncoderSession(make_encoder(tmp_path / "b.onnx", weights_seed=1))
    assert a.info == b.info
    assert a.model_key != b.model_key
    prefix = f"{a.info.model_name}:{a.info.model_version}:{a.info.preprocess}:"
    digest = hashlib.sha256((tmp_path / "a.onnx").read_bytes()).hexdigest()
    assert a.model_key == prefix + digest[:16]
    (tmp_path / "elsewhere").mkdir()
    copy = shutil.copy(tmp_path / "a.onnx", tmp_path / "elsewhere" / "renamed.onnx")
    assert EncoderSession(copy).model_key == a.model_key


def test_what_is_hashed_is_what_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime gets the very bytes that were hashed, not the path (which could change in between)."""
    seen: list[Any] = []
    real = enc.ort.InferenceSession

    def spy(model: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(enc.ort, "InferenceSession", spy)
    session = EncoderSession(make_encoder(tmp_path / "m.onnx"))
    assert len(seen) == 1 and isinstance(seen[0], bytes)
    assert hashlib.sha256(seen[0]).hexdigest()[:16] == session.model_key.rsplit(":", 1)[1]


def test_shipped_model_key(shipped: EncoderSession) -> None:
    name, version, preprocess, digest = shipped.model_key.split(":")
    assert (name, version, preprocess) == (shipped.info.model_name, shipped.info.model_version, shipped.info.preprocess)
    assert digest == hashlib.sha256(default_model_path().read_bytes()).hexdigest()[:16]


# -- non-finite numbers -------------------------------------------------------------------
def test_a_model_computing_nan_is_refused_at_load(tmp_path: Path) -> None:
    path = make_encoder(tmp_path / "nan.onnx", nan_output=True)
    with pytest.raises(ModelError, match="produces NaN or infinite embeddings") as err:
        EncoderSession(path)
    assert err.value.path == path


def test_a_nan_embedding_on_any_batch_is_refused(tmp_path: Path) -> None:
    """A model that passes the load-time probe but computes NaN for some real inputs."""
    path = make_encoder(tmp_path / "nan-on-ink.onnx", nan_above_ink=0.2)
    session = EncoderSession(path, batch_size=8)
    inputs = np.zeros((20, session.input_size, session.input_size), np.float32)
    assert np.isfinite(session.embed_inputs(inputs)).all()
    inputs[9:11] = 1.0  # images 10 and 11, in the second batch
    with pytest.raises(ModelError, match=r"NaN or infinite embeddings for 2 of 8 images \(images 9-16 of 20\)") as err:
        session.embed_inputs(inputs)
    assert str(path) in str(err.value)


# -- broken models: every kind gives a ModelError with a clear message ----------------------
Maker = Callable[[Path], Path]


def _meta(**changes: str | None) -> Maker:
    return lambda folder: make_encoder(folder / "m.onnx", metadata_overrides=changes)


def _edited(edit: Callable[[onnx.ModelProto], object], **options: Any) -> Maker:
    def make(folder: Path) -> Path:
        model = build_encoder(**options)
        edit(model)
        path = folder / "m.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    return make


def _bytes(data: Callable[[], bytes]) -> Maker:
    def make(folder: Path) -> Path:
        path = folder / "m.onnx"
        path.write_bytes(data())
        return path
    return make


def _folder(folder: Path) -> Path:
    (folder / "m.onnx").mkdir()
    return folder / "m.onnx"


def _fifo(folder: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(folder / "m.onnx")
    return folder / "m.onnx"


def _double_input(model: onnx.ModelProto) -> None:
    """The input declared float64 and cast to float32 inside: a valid graph of the wrong type."""
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    model.graph.node.insert(0, onnx.helper.make_node("Cast", ["image"], ["image32"], to=onnx.TensorProto.FLOAT))
    model.graph.node[1].input[0] = "image32"


def _fixed_batch(model: onnx.ModelProto) -> None:
    for arg in (model.graph.input[0], model.graph.output[0]):
        arg.type.tensor_type.shape.dim[0].dim_value = 1


def _renamed_input(model: onnx.ModelProto) -> None:
    model.graph.input[0].name = "x"
    model.graph.node[0].input[0] = "x"


def _shipped_bytes() -> bytes:
    return default_model_path().read_bytes()


BROKEN: dict[str, tuple[Maker, str]] = {
    "temperature nan": (_meta(temperature="nan"), "temperature 'nan' is not a finite number"),
    "temperature inf": (_meta(temperature="inf"), "temperature 'inf' is not a finite number"),
    "temperature -infinity": (_meta(temperature="-infinity"), "not a finite number"),
    "temperature 1e999": (_meta(temperature="1e999"), "not a finite number"),
    "temperature 0": (_meta(temperature="0"), "temperature 0.0 is not a positive number"),
    "temperature negative": (_meta(temperature="-1.5"), "temperature -1.5 is not a positive number"),
    "temperature subnormal": (_meta(temperature="5e-324"), "temperature 5e-324 is not a positive number"),
    "norm_mean nan": (_meta(norm_mean="nan"), "norm_mean 'nan' is not a finite number"),
    "norm_mean over float32": (_meta(norm_mean="1e39"), "norm_mean 1e\\+39 does not fit a float32"),
    "norm_std nan": (_meta(norm_std="NaN"), "norm_std 'NaN' is not a finite number"),
    "norm_std -inf": (_meta(norm_std="-inf"), "norm_std '-inf' is not a finite number"),
    "norm_std 0": (_meta(norm_std="0.0"), "norm_std 0.0 is not a positive number"),
    "norm_std under float32": (_meta(norm_std="1e-40"), "norm_std 1e-40 is not a positive number"),
    "norm_std text": (_meta(norm_std="zero"), "malformed metadata: norm_std 'zero' is not a number"),
    "embedding_size 0": (_meta(embedding_size="0"), "embedding size 0 is outside 1..65536"),
    "embedding_size huge": (_meta(embedding_size="100000000"), "embedding size 100000000 is outside"),
    "embedding_size negative": (_meta(embedding_size="-8"), "embedding_size '-8' is not a whole number"),
    "embedding_size float": (_meta(embedding_size="8.0"), "embedding_size '8.0' is not a whole number"),
    "embedding_size underscore": (_meta(embedding_size="0_8"), "embedding_size '0_8' is not a whole number"),
    "embedding_size 5000 digits": (_meta(embedding_size="9" * 5000), "is not a whole number"),
    "input_size 0": (_meta(input_size="0"), "input size 0 does not divide 64"),
    "input_size negative": (_meta(input_size="-32"), "input_size '-32' is not a whole number"),
    "input_size float": (_meta(input_size="32.0"), "input_size '32.0' is not a whole number"),
    "input_size spaces": (_meta(input_size=" 32 "), "input_size ' 32 ' is not a whole number"),
    "input_size full-width digits": (_meta(input_size="３２"), "is not a whole number"),
    "input_size nan": (_meta(input_size="nan"), "input_size 'nan' is not a whole number"),
    "input_size 28": (_meta(input_size="28"), "input size 28 does not divide"),
    "model_name empty": (_meta(model_name=""), "model_name is empty"),
    "format huge": (_meta(format="x" * 1_000_000), "model format 'x+'... \\(1000000 characters\\)"),
    "format missing": (_meta(format=None), "metadata lacks format"),
    "output NaN": (lambda f: make_encoder(f / "m.onnx", nan_output=True), "produces NaN or infinite embeddings"),
    "output infinite": (lambda f: make_encoder(f / "m.onnx", output_scale=float("inf")),
                        "produces NaN or infinite embeddings"),
    "input float64": (_edited(_double_input), "'image' is tensor\\(double\\), not tensor\\(float\\)"),
    "batch size fixed": (_edited(_fixed_batch), "batch size is fixed"),
    "input renamed": (_edited(_renamed_input), "expects an input 'image'"),
    "input size 16 in graph, 32 in metadata": (lambda f: make_encoder(f / "m.onnx", input_size=16,
                                                                      metadata_overrides={"input_size": "32"}),
                                               "input shape .* does not match input_size 32"),
    "a folder": (_folder, "is a folder, not an encoder .onnx file"),
    "a FIFO": (_fifo, "is not a regular file"),
    "an empty file": (_bytes(lambda: b""), "is empty \\(0 bytes\\)"),
    "zero bytes": (_bytes(lambda: b"\x00" * 64), "cannot be loaded as an ONNX model"),
    "random bytes": (_bytes(lambda: np.random.default_rng(0).bytes(100_000)), "cannot be loaded as an ONNX model"),
    "shipped model truncated": (_bytes(lambda: _shipped_bytes()[: len(_shipped_bytes()) * 2 // 3]),
                                "cannot be loaded as an ONNX model"),
    "shipped model, one byte short": (_bytes(lambda: _shipped_bytes()[:-1]), "cannot be loaded as an ONNX model"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_models_give_a_model_error(tmp_path: Path, kind: str) -> None:
    make, message = BROKEN[kind]
    path = make(tmp_path)
    with pytest.raises(ModelError, match=message) as err:
        EncoderSession(path)
    assert err.value.path == path and str(path) in str(err.value)
    assert len(str(err.value)) < len(str(path)) + 400, "the message must stay readable"


def test_a_name_with_a_nul_byte_gives_a_model_error() -> None:
    with pytest.raises(ModelError, match="cannot be read"):
        EncoderSession("model\x00.onnx")


@pytest.mark.parametrize("accuracy", ['{"5w1s": {"mean": "high"}}', '{"5w1s": 0.9}', '[1, 2]', '{"5w1s": {}}',
                                      '{"5w1s": {"mean": NaN, "ci95": 0.1}}', "[" * 100_000, "not json"],
                         ids=["text mean", "number row", "list", "empty row", "NaN mean", "deep nesting", "not json"])
def test_a_malformed_accuracy_table_is_left_out_of_the_summary(tmp_path: Path, accuracy: str) -> None:
    """The table is only displayed: a bad one must not make ``--info`` or the About box crash."""
    session = EncoderSession(make_encoder(tmp_path / "m.onnx", metadata_overrides={"accuracy": accuracy}))
    assert session.info.accuracy == {}
    assert "Accuracy" not in session.info.summary()


def test_a_two_channel_model_gets_its_own_preprocessing(tmp_path: Path) -> None:
    path = make_encoder(tmp_path / "ink.onnx", embedding_size=8, preprocess="skeleton-ink-v1")
    session = EncoderSession(path, threads=1)
    assert session.channels == 2 and session.info.preprocess == "skeleton-ink-v1"
    images = [draw_shape("ring", np.random.default_rng(1)), draw_shape("star", np.random.default_rng(2))]
    inputs = session.preprocess(images)
    assert inputs.shape == (2, 2, session.input_size, session.input_size)
    np.testing.assert_array_equal(session.embed_images(images), session.embed_inputs(inputs))
    with pytest.raises(ValueError, match="expected"):
        session.embed_inputs(inputs[:, 0])  # one channel is not what this model reads
    # a model naming a preprocessing this app does not make is refused with a clear message
    future = make_encoder(tmp_path / "future.onnx", metadata_overrides={"preprocess": "skeleton-v9"})
    with pytest.raises(ModelError, match=r"preprocessing 'skeleton-v9'.*this app makes"):
        EncoderSession(future)
    # and one whose graph has another channel count than its version is refused at load
    mismatch = make_encoder(tmp_path / "mismatch.onnx", metadata_overrides={"preprocess": "skeleton-ink-v1"})
    with pytest.raises(ModelError, match="channel"):
        EncoderSession(mismatch)
