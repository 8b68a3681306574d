"""Tiny, valid Protoglyph encoders built in code, for tests that need a model other than the
shipped one (different weights, broken metadata, NaN or huge outputs) without torch.

The graph is ``embedding = (Flatten(image) @ W) * output_scale`` (plus a NaN on request): input ``image``
``(N, 1, S, S)`` float32, output ``embedding`` ``(N, D)`` float32, both with a dynamic batch
dimension, and the ``metadata_props`` that :func:`models.export.metadata` writes (every key of
:data:`protoglyph.core.encoder.REQUIRED_KEYS`, with the shipped model's ``input_size``,
``norm_mean`` and ``norm_std``). Loading it with ``EncoderSession`` takes milliseconds.

    from tests.model_factory import make_encoder
    path = make_encoder(tmp_path / "m.onnx", weights_seed=3, metadata_overrides={"temperature": "nan"})

Use :func:`build_encoder` to get the ``onnx.ModelProto`` and change it before saving (for
example to add a duplicated metadata key).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from protoglyph.core import encoder as enc
from protoglyph.core import preprocess as pp

#: Opset and IR version of the shipped model (what ``models/export.py`` writes).
OPSET = 17
IR_VERSION = 8


@cache
def shipped_metadata() -> dict[str, str]:
    """The shipped encoder's ``metadata_props`` (read once per test session)."""
    model = onnx.load(str(enc.default_model_path()), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def default_metadata(embedding_size: int = 8) -> dict[str, str]:
    """Metadata as ``models/export.py`` writes it, for a test encoder of ``embedding_size``."""
    shipped = shipped_metadata()
    return {
        "format": enc.MODEL_FORMAT,
        "model_name": "protoglyph-test-encoder",
        "model_version": "0.0.1-test",
        "input_size": shipped.get("input_size", str(pp.INPUT_SIZE)),
        "preprocess": pp.PREPROCESS_VERSION,
        "norm_mean": shipped.get("norm_mean", "0.1"),
        "norm_std": shipped.get("norm_std", "0.25"),
        "embedding_size": str(embedding_size),
        "distance": "squared_euclidean",
        "temperature": "1.0",
        "training_data": "none: built by tests/model_factory.py",
        "ensemble_members": "1",
    }


def build_encoder(*, weights_seed: int = 0, embedding_size: int = 8, nan_output: bool = False,
                  nan_above_ink: float | None = None, output_scale: float = 1.0, input_size: int | None = None,
                  metadata_overrides: Mapping[str, str | None] | None = None,
                  preprocess: str = pp.PREPROCESS_VERSION) -> onnx.ModelProto:
    """A checked ``onnx.ModelProto`` of a tiny encoder (see the module docstring).

    Args:
        weights_seed: seed of the random ``(S*S, D)`` weights; different seeds give different
            weights (and file bytes) under the same metadata.
        embedding_size: ``D``, in the graph and in the ``embedding_size`` metadata.
        nan_output: add a constant NaN to the output, so every embedding is NaN.
        nan_above_ink: make the embedding NaN for inputs whose mean ink (the fraction of the
            ``S x S`` input that is ink, before normalisation) exceeds this, and finite otherwise:
            a model that passes a load-time probe (a blank and a thin line, under 2% ink) and
            fails on real images. Uses the ``norm_mean``/``norm_std`` in the metadata.
        output_scale: multiply the output by this constant (e.g. ``1e20`` for finite
            embeddings whose squared distances overflow float32).
        input_size: ``S`` of the graph; default the shipped model's ``input_size``. The
            metadata's ``input_size`` follows it unless overridden.
        metadata_overrides: metadata values to set (any string, e.g. ``"nan"``), or ``None``
            to leave a key out.
        preprocess: the preprocessing version, in the metadata and in the graph's channels
            (``(N, C, S, S)`` input).
    """
    size = int(input_size if input_size is not None else shipped_metadata().get("input_size", pp.INPUT_SIZE))
    rng = np.random.default_rng(weights_seed)
    channels = len(pp.channels(preprocess))
    weights = (rng.standard_normal((channels * size * size, embedding_size)) / size).astype(np.float32)
    initializers = [numpy_helper.from_array(weights, "W"),
                    numpy_helper.from_array(np.array([output_scale], np.float32), "scale")]
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["projected"]),
             helper.make_node("Mul", ["projected", "scale"], ["scaled" if nan_output else enc.OUTPUT_NAME])]
    if nan_output:
        initializers.append(numpy_helper.from_array(np.array([np.nan], np.float32), "nan"))
        nodes.append(helper.make_node("Add", ["scaled", "nan"], [enc.OUTPUT_NAME]))
    meta = default_metadata(embedding_size)
    meta["input_size"] = str(size)
    meta["preprocess"] = preprocess
    for key, value in (metadata_overrides or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    if nan_above_ink is not None:
        if nan_output:
            raise ValueError("nan_output and nan_above_ink are exclusive")
        # embedding = scaled + 0 * sqrt(threshold - mean(normalised image)): 0 * NaN is NaN.
        threshold = (nan_above_ink - float(meta["norm_mean"])) / float(meta["norm_std"])
        initializers += [numpy_helper.from_array(np.array([threshold], np.float32), "threshold"),
                         numpy_helper.from_array(np.array([0.0], np.float32), "zero")]
        nodes[-1].output[0] = "scaled"
        nodes += [helper.make_node("ReduceMean", ["flat"], ["ink"], axes=[1], keepdims=1),
                  helper.make_node("Sub", ["threshold", "ink"], ["margin"]),
                  helper.make_node("Sqrt", ["margin"], ["root"]),
                  helper.make_node("Mul", ["root", "zero"], ["nothing_or_nan"]),
                  helper.make_node("Add", ["scaled", "nothing_or_nan"], [enc.OUTPUT_NAME])]
    graph = helper.make_graph(
        nodes, "protoglyph_test_encoder",
        [helper.make_tensor_value_info(enc.INPUT_NAME, TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info(enc.OUTPUT_NAME, TensorProto.FLOAT, ["batch", embedding_size])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="tests/model_factory.py")
    model.doc_string = "Protoglyph test encoder"
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model


def make_encoder(path: Path, *, weights_seed: int = 0, embedding_size: int = 8, nan_output: bool = False,
                 nan_above_ink: float | None = None, output_scale: float = 1.0, input_size: int | None = None,
                 metadata_overrides: Mapping[str, str | None] | None = None,
                 preprocess: str = pp.PREPROCESS_VERSION) -> Path:
    """Write a tiny Protoglyph encoder to ``path`` and return ``path``.

    The arguments are those of :func:`build_encoder`; the parent folder must exist.
    """
    model = build_encoder(weights_seed=weights_seed, embedding_size=embedding_size, nan_output=nan_output,
                          nan_above_ink=nan_above_ink, output_scale=output_scale, input_size=input_size,
                          metadata_overrides=metadata_overrides, preprocess=preprocess)
    path = Path(path)
    path.write_bytes(model.SerializeToString())
    return path
