"""The one owner of the encoder's ``onnxruntime.InferenceSession``.

It finds the shipped model, reads and checks the model's ``metadata_props`` (what the
runtime needs to know: input size, normalisation, embedding size, distance, temperature)
and turns images or preprocessed inputs into embeddings, in batches. Every problem with the
model file surfaces as one exception type, :class:`ModelError`, naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from protoglyph.core import preprocess as pp

# Set again here (the package __init__ sets it first) so that importing this module alone
# can never let onnxruntime phone home or write under ~/.cache.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort

#: Format of the metadata this code understands; bump when keys change meaning.
MODEL_FORMAT = "protoglyph-encoder/1"
INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
MODEL_ENV_VAR = "PROTOGLYPH_MODEL"
REQUIRED_KEYS = ("format", "model_name", "model_version", "input_size", "preprocess", "norm_mean",
                 "norm_std", "embedding_size", "distance", "temperature")


class ModelError(RuntimeError):
    """The encoder model file is missing, unreadable, damaged or not a Protoglyph encoder."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class ModelInfo:
    """What the model's metadata says about it."""

    model_name: str
    model_version: str
    input_size: int
    preprocess: str
    norm_mean: float
    norm_std: float
    embedding_size: int
    distance: str
    temperature: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def accuracy(self) -> dict[str, dict[str, float]]:
        """The evaluation table recorded at export (``{}`` if none), e.g. ``{"5w1s": {"mean": .99}}``."""
        try:
            table = json.loads(self.extra.get("accuracy", "{}"))
        except json.JSONDecodeError:
            return {}
        return table if isinstance(table, dict) else {}

    def summary(self) -> str:
        """A few lines for an About box or ``protoglyph --version``."""
        lines = [
            f"{self.model_name} {self.model_version}",
            f"Prototypical Network encoder, {self.input_size}x{self.input_size} input, "
            f"{self.embedding_size}-d embedding, {self.distance} distance",
        ]
        if "training_data" in self.extra:
            lines.append(f"Trained on: {self.extra['training_data']}")
        names = {"5w1s": "5-way 1-shot", "5w5s": "5-way 5-shot", "20w1s": "20-way 1-shot",
                 "20w5s": "20-way 5-shot", "20w1s_within": "20-way 1-shot within one alphabet"}
        table = self.accuracy
        if table:
            lines.append("Accuracy on Omniglot's evaluation alphabets (never trained on):")
            for key, label in names.items():
                if key in table:
                    row = table[key]
                    lines.append(f"  {label}: {100 * row['mean']:.1f}% ± {100 * row['ci95']:.1f}")
        return "\n".join(lines)


def default_model_path() -> Path:
    """The shipped encoder: ``$PROTOGLYPH_MODEL`` if set, else the package's own copy.

    ``importlib.resources`` finds it in a checkout (editable install), an installed wheel
    and a PyInstaller bundle alike.
    """
    override = os.environ.get(MODEL_ENV_VAR)
    if override:
        return Path(override)
    return Path(str(resources.files("protoglyph") / "assets" / "encoder.onnx"))


def read_info(metadata: dict[str, str], path: Path) -> ModelInfo:
    """Check a model's ``metadata_props`` and turn them into a :class:`ModelInfo`."""
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ModelError(path, f"not a Protoglyph encoder: metadata lacks {', '.join(missing)}")
    if metadata["format"] != MODEL_FORMAT:
        raise ModelError(path, f"model format {metadata['format']!r} is not {MODEL_FORMAT!r}; "
                               "install the Protoglyph version that made it")
    try:
        info = ModelInfo(
            model_name=metadata["model_name"],
            model_version=metadata["model_version"],
            input_size=int(metadata["input_size"]),
            preprocess=metadata["preprocess"],
            norm_mean=float(metadata["norm_mean"]),
            norm_std=float(metadata["norm_std"]),
            embedding_size=int(metadata["embedding_size"]),
            distance=metadata["distance"],
            temperature=float(metadata["temperature"]),
            extra={k: v for k, v in metadata.items() if k not in REQUIRED_KEYS},
        )
    except ValueError as exc:
        raise ModelError(path, f"malformed metadata: {exc}") from exc
    if info.preprocess != pp.PREPROCESS_VERSION:
        raise ModelError(path, f"model expects preprocessing {info.preprocess!r}, this app does "
                               f"{pp.PREPROCESS_VERSION!r}")
    if info.distance != "squared_euclidean":
        raise ModelError(path, f"unsupported distance {info.distance!r}")
    if info.input_size < 1 or pp.WORK_SIZE % info.input_size:
        raise ModelError(path, f"input size {info.input_size} does not divide {pp.WORK_SIZE}")
    if info.norm_std <= 0 or info.temperature <= 0 or info.embedding_size < 1:
        raise ModelError(path, "metadata holds a non-positive std, temperature or embedding size")
    return info


class EncoderSession:
    """Embeds glyph images with the encoder; one instance owns one ``InferenceSession``.

    Args:
        path: the ``.onnx`` file; default :func:`default_model_path`.
        threads: intra-op threads (explicit, never taken from the environment).
        batch_size: most images per ``session.run`` call.
    Raises:
        ModelError: the file is missing, damaged or not a compatible encoder.
    """

    def __init__(self, path: Path | str | None = None, threads: int = 2, batch_size: int = 256) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self.batch_size = batch_size
        if not self.path.is_file():
            raise ModelError(self.path, "model file not found; reinstall Protoglyph or set "
                                        f"{MODEL_ENV_VAR} to an encoder .onnx file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            raise ModelError(self.path, f"cannot be loaded as an ONNX model ({type(exc).__name__}: "
                                        f"{str(exc).strip()[:300]})") from exc
        meta = self._session.get_modelmeta()
        self.info = read_info(dict(meta.custom_metadata_map), self.path)
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(self.path, f"expects an input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, "
                                        f"has {sorted(inputs)} and {sorted(outputs)}")
        shape = inputs[INPUT_NAME].shape
        size = self.info.input_size
        if len(shape) != 4 or list(shape[1:]) != [1, size, size]:
            raise ModelError(self.path, f"input shape {shape} does not match input_size {size}")
        out_shape = outputs[OUTPUT_NAME].shape
        if len(out_shape) != 2 or out_shape[1] != self.info.embedding_size:
            raise ModelError(self.path, f"output shape {out_shape} does not match embedding_size "
                                        f"{self.info.embedding_size}")

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def embedding_size(self) -> int:
        return self.info.embedding_size

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Embeddings of preprocessed inputs.

        Args:
            inputs: ``(N, S, S)`` ``float32`` in [0, 1] from :func:`preprocess_batch`
                (``S`` = ``input_size``); ``N`` may be 0.
        Returns:
            ``(N, D)`` ``float32``.
        """
        x = np.asarray(inputs, dtype=np.float32)
        size = self.info.input_size
        if x.ndim != 3 or x.shape[1:] != (size, size):
            raise ValueError(f"expected (N, {size}, {size}) inputs, got shape {x.shape}")
        out = np.empty((x.shape[0], self.info.embedding_size), dtype=np.float32)
        scale = np.float32(1.0 / self.info.norm_std)
        shift = np.float32(self.info.norm_mean)
        for start in range(0, x.shape[0], self.batch_size):
            batch = ((x[start : start + self.batch_size] - shift) * scale)[:, None]
            out[start : start + len(batch)] = self.run_graph(batch)
        return out

    def run_graph(self, batch: np.ndarray) -> np.ndarray:
        """The raw graph: ``(N, 1, S, S)`` already-normalised ``float32`` to ``(N, D)``.

        For checks of the exported graph; the app uses :meth:`embed_inputs`.
        """
        out: np.ndarray = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(batch, np.float32)})[0]
        return out

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of images of any size, colour and polarity (see :mod:`preprocess`).

        Returns:
            ``(N, D)`` ``float32``.
        """
        return self.embed_inputs(pp.preprocess_batch(images, self.info.input_size))
