"""The one owner of the encoder's ``onnxruntime.InferenceSession``.

It finds the shipped model, reads and checks the model's ``metadata_props`` (what the
runtime needs to know: input size, normalisation, embedding size, distance, temperature)
and turns images or preprocessed inputs into embeddings, in batches. Every problem with the
model file surfaces as one exception type, :class:`ModelError`, naming the file: a missing,
empty or damaged file, hostile metadata (non-finite or out-of-range numbers),
and a graph that computes NaN or infinite embeddings, at load (a two-input probe) or on any
batch later. A model is identified by :attr:`EncoderSession.model_key`, which includes a hash of
the file's bytes, so two models with the same metadata never share cached embeddings.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
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
#: Largest embedding accepted: far above any real encoder (the shipped one has 512), low enough
#: that a hostile ``embedding_size`` cannot make the app allocate gigabytes per batch.
MAX_EMBEDDING_SIZE = 65536
#: Protobuf cannot serialise a message over 2 GiB, so no single-file ONNX model is larger;
#: anything bigger is refused before it is read into memory.
MAX_MODEL_BYTES = 2**31
#: Hex digits of the file's SHA-256 in :attr:`EncoderSession.model_key` (64 bits: no two
#: models a user meets will collide).
KEY_HASH_DIGITS = 16
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


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
        """The evaluation table recorded at export (``{}`` if none), e.g. ``{"5w1s": {"mean": .99, "ci95": .01}}``.

        The table is only shown, never computed with, so a malformed one does not make the model
        unusable: rows without a finite ``mean`` and ``ci95`` are left out (an About box or
        ``--info`` must not crash on a hand-edited file).
        """
        try:
            table = json.loads(self.extra.get("accuracy", "{}"))
        except (json.JSONDecodeError, RecursionError):
            return {}
        if not isinstance(table, dict):
            return {}
        return {str(key): row for key, row in table.items()
                if isinstance(row, dict) and all(_is_finite_number(row.get(k)) for k in ("mean", "ci95"))}

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
    """Check a model's ``metadata_props`` and turn them into a :class:`ModelInfo`.

    Every number must be finite and in range, because each one feeds arithmetic that would
    otherwise turn NaN or infinity into silently wrong probabilities (``1/std`` and the mean in
    float32 normalisation, ``1/temperature`` in the softmax) or into huge allocations.
    """
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise ModelError(path, f"not a Protoglyph encoder: metadata lacks {', '.join(missing)}")
    if metadata["format"] != MODEL_FORMAT:
        raise ModelError(path, f"model format {_shown(metadata['format'])} is not {MODEL_FORMAT!r}; "
                               "install the Protoglyph version that made it")
    for key in ("model_name", "model_version"):
        if not metadata[key].strip():
            raise ModelError(path, f"malformed metadata: {key} is empty")
    info = ModelInfo(
        model_name=metadata["model_name"],
        model_version=metadata["model_version"],
        input_size=_whole_number(metadata, "input_size", path),
        preprocess=metadata["preprocess"],
        norm_mean=_finite_number(metadata, "norm_mean", path),
        norm_std=_finite_number(metadata, "norm_std", path),
        embedding_size=_whole_number(metadata, "embedding_size", path),
        distance=metadata["distance"],
        temperature=_finite_number(metadata, "temperature", path),
        extra={k: v for k, v in metadata.items() if k not in REQUIRED_KEYS},
    )
    if info.preprocess not in pp.PREPROCESS_CHANNELS:
        raise ModelError(path, f"model expects preprocessing {_shown(info.preprocess)}, this app makes "
                               f"{', '.join(map(repr, sorted(pp.PREPROCESS_CHANNELS)))}; "
                               "install the Protoglyph version that made it")
    if info.distance != "squared_euclidean":
        raise ModelError(path, f"unsupported distance {_shown(info.distance)}")
    if info.input_size < 1 or pp.WORK_SIZE % info.input_size:
        raise ModelError(path, f"input size {info.input_size} does not divide {pp.WORK_SIZE} "
                               "(the preprocessing's working raster)")
    if not 1 <= info.embedding_size <= MAX_EMBEDDING_SIZE:
        raise ModelError(path, f"embedding size {info.embedding_size} is outside 1..{MAX_EMBEDDING_SIZE}")
    # Inputs are normalised in float32 as (x - mean) * (1 / std): both must fit a float32.
    if abs(info.norm_mean) > _FLOAT32_MAX:
        raise ModelError(path, f"norm_mean {info.norm_mean!r} does not fit a float32")
    if not info.norm_std > 0 or 1.0 / info.norm_std > _FLOAT32_MAX:
        raise ModelError(path, f"norm_std {info.norm_std!r} is not a positive number a float32 can divide by")
    if not info.temperature > 0 or not math.isfinite(1.0 / info.temperature):
        raise ModelError(path, f"temperature {info.temperature!r} is not a positive number one can divide by")
    return info


def _shown(value: str, limit: int = 40) -> str:
    """``repr`` of a metadata value, shortened: a hostile file can hold megabytes in one value."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"


def _whole_number(metadata: dict[str, str], key: str, path: Path) -> int:
    """A metadata value written as ASCII digits only, as ``models/export.py`` writes it.

    Stricter than ``int()``, which also takes ``"3_2"``, ``" 32 "``, full-width digits and
    thousands of digits: a value in any other form was not written by the exporter.
    """
    value = metadata[key]
    if not _WHOLE_NUMBER.fullmatch(value):
        raise ModelError(path, f"malformed metadata: {key} {_shown(value)} is not a whole number")
    return int(value)


def _finite_number(metadata: dict[str, str], key: str, path: Path) -> float:
    """A metadata value that parses as a finite float (``float()`` also accepts nan and inf)."""
    value = metadata[key]
    try:
        number = float(value)
    except ValueError:
        raise ModelError(path, f"malformed metadata: {key} {_shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise ModelError(path, f"metadata {key} {_shown(value)} is not a finite number")
    return number


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_model_file(path: Path) -> bytes:
    """The model file's bytes, read once, or a :class:`ModelError` saying what is wrong with the path.

    Checked before reading: a folder, a FIFO or a device is refused instead of being read
    (a FIFO would block forever), and so is a file too big to be one ONNX message.
    """
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ModelError(path, "model file not found; reinstall Protoglyph or set "
                               f"{MODEL_ENV_VAR} to an encoder .onnx file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise ModelError(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if stat.S_ISDIR(status.st_mode):
        raise ModelError(path, "is a folder, not an encoder .onnx file")
    if not stat.S_ISREG(status.st_mode):
        raise ModelError(path, "is not a regular file, so not an encoder .onnx file")
    if status.st_size > MAX_MODEL_BYTES:
        raise ModelError(path, f"is {status.st_size / 2**30:.1f} GiB, larger than any ONNX model can be")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(path, f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})") from exc
    if not data:
        raise ModelError(path, "is empty (0 bytes); reinstall Protoglyph or copy the model again")
    return data


class EncoderSession:
    """Embeds glyph images with the encoder; one instance owns one ``InferenceSession``.

    The file is read once: the same bytes are hashed (:attr:`model_key`) and given to
    onnxruntime, so the key names exactly the weights that compute the embeddings. Loading ends
    with a probe (a blank and a one-line input) so that a model computing NaN, infinity or the
    wrong shape is refused here, with a clear message, instead of corrupting a project later.

    Args:
        path: the ``.onnx`` file; default :func:`default_model_path`. It must hold the whole
            model (weights in external data files are not supported).
        threads: intra-op threads (explicit, never taken from the environment).
        batch_size: most images per ``session.run`` call.
    Raises:
        ModelError: the file is missing, damaged, not a compatible encoder, or computes
            non-finite or wrongly shaped embeddings.
    """

    def __init__(self, path: Path | str | None = None, threads: int = 2, batch_size: int = 256) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self.batch_size = batch_size
        data = _read_model_file(self.path)
        #: SHA-256 of the model file's bytes (hex), the ones onnxruntime loaded.
        self.sha256 = hashlib.sha256(data).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            raise ModelError(self.path, f"cannot be loaded as an ONNX model ({type(exc).__name__}: "
                                        f"{str(exc).strip()[:300]})") from exc
        del data  # the session holds its own copy of the graph
        meta = self._session.get_modelmeta()
        self.info = read_info(dict(meta.custom_metadata_map), self.path)
        self._check_signature()
        self._probe()

    @property
    def model_key(self) -> str:
        """What identifies this model's embeddings: ``name:version:preprocess:<16 hex of the file's SHA-256>``.

        Cached embeddings are reused only under an equal key. The metadata alone is not enough:
        two models (retrained, or hand-edited) can carry the same name and version and still
        map images into different spaces. The same file copied elsewhere keeps its key.
        """
        info = self.info
        return f"{info.model_name}:{info.model_version}:{info.preprocess}:{self.sha256[:KEY_HASH_DIGITS]}"

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def embedding_size(self) -> int:
        return self.info.embedding_size

    @property
    def channels(self) -> int:
        """Input channels of the model's preprocessing (1 for ``skeleton-v2``)."""
        return len(pp.channels(self.info.preprocess))

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The model's own preprocessing of images of any size, colour and polarity.

        Returns:
            ``(N, C, S, S)`` ``float32`` in [0, 1] for :meth:`embed_inputs`; a blank image is all zeros.
        """
        return pp.encoder_inputs(images, self.info.input_size, self.info.preprocess)

    def _check_signature(self) -> None:
        """The graph's declared input and output: names, float32, any batch size, sizes as the metadata says."""
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(self.path, f"expects an input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, "
                                        f"has {sorted(inputs)} and {sorted(outputs)}")
        for name, arg in ((INPUT_NAME, inputs[INPUT_NAME]), (OUTPUT_NAME, outputs[OUTPUT_NAME])):
            if arg.type != "tensor(float)":
                raise ModelError(self.path, f"{name!r} is {arg.type}, not tensor(float)")
        shape = inputs[INPUT_NAME].shape
        size = self.info.input_size
        if len(shape) != 4 or list(shape[1:]) != [self.channels, size, size]:
            raise ModelError(self.path, f"input shape {shape} does not match input_size {size} and the "
                                        f"{self.channels} channel(s) of preprocessing {self.info.preprocess!r}")
        out_shape = outputs[OUTPUT_NAME].shape
        if len(out_shape) != 2 or out_shape[1] != self.info.embedding_size:
            raise ModelError(self.path, f"output shape {out_shape} does not match embedding_size "
                                        f"{self.info.embedding_size}")
        if isinstance(shape[0], int) or isinstance(out_shape[0], int):
            raise ModelError(self.path, f"batch size is fixed (input {shape}, output {out_shape}); "
                                        "an encoder must accept any number of images")

    def _probe(self) -> None:
        """Embed a blank input and a one-line one: cheap (two images), and it catches a graph that
        computes NaN or infinity (a broken export, a hand-edited constant) or another shape."""
        size = self.info.input_size
        probe = np.zeros((2, self.channels, size, size), np.float32)
        probe[1, :, size // 2, size // 4 : size - size // 4] = 1.0
        out = self.run_graph(self._normalised(probe))
        if not np.isfinite(out).all():
            raise ModelError(self.path, "produces NaN or infinite embeddings (for a blank and a one-line test "
                                        "input); the model is broken")

    def _normalised(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, C, S, S)`` inputs in [0, 1] normalised with the model's mean and std."""
        scale = np.float32(1.0 / self.info.norm_std)
        shift = np.float32(self.info.norm_mean)
        out: np.ndarray = (inputs - shift) * scale
        return out

    def embed_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Embeddings of preprocessed inputs.

        Every batch's output is checked to be finite (a few microseconds against milliseconds
        of inference): a NaN that reached a prototype would make every probability NaN.

        Args:
            inputs: ``(N, C, S, S)`` ``float32`` in [0, 1] from :meth:`preprocess` (``S`` =
                ``input_size``, ``C`` = :attr:`channels`; ``(N, S, S)`` for one channel); ``N`` may be 0.
        Returns:
            ``(N, D)`` ``float32``, all finite.
        Raises:
            ModelError: the model computed a NaN or infinite embedding.
        """
        x = np.asarray(inputs, dtype=np.float32)
        size, c = self.info.input_size, self.channels
        if c == 1 and x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (c, size, size):
            raise ValueError(f"expected (N, {c}, {size}, {size}) inputs, got shape {x.shape}")
        out = np.empty((x.shape[0], self.info.embedding_size), dtype=np.float32)
        for start in range(0, x.shape[0], self.batch_size):
            batch = self.run_graph(self._normalised(x[start : start + self.batch_size]))
            if not np.isfinite(batch).all():
                bad = int(np.count_nonzero(~np.isfinite(batch).all(axis=1)))
                raise ModelError(self.path, f"produced NaN or infinite embeddings for {bad} of {len(batch)} images "
                                            f"(images {start + 1}-{start + len(batch)} of {x.shape[0]}); "
                                            "the model is broken")
            out[start : start + len(batch)] = batch
        return out

    def run_graph(self, batch: np.ndarray) -> np.ndarray:
        """The raw graph: ``(N, C, S, S)`` already-normalised ``float32`` to ``(N, D)``, unchecked values.

        For checks of the exported graph; the app uses :meth:`embed_inputs`.

        Raises:
            ValueError: ``batch`` is not ``(N, C, S, S)``.
            ModelError: the graph failed to run, or returned another shape or type than declared.
        """
        x = np.asarray(batch, np.float32)
        size, c = self.info.input_size, self.channels
        if x.ndim != 4 or x.shape[1:] != (c, size, size):
            raise ValueError(f"expected (N, {c}, {size}, {size}) inputs, got shape {x.shape}")
        try:
            out = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        except Exception as exc:  # onnxruntime's error types share no base class but Exception
            raise ModelError(self.path, f"failed to run on {len(x)} images ({type(exc).__name__}: "
                                        f"{str(exc).strip()[:300]})") from exc
        expected = (len(x), self.info.embedding_size)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != expected:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise ModelError(self.path, f"returned {got} for {len(x)} images, expected float32 {expected}")
        return out

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of images of any size, colour and polarity (see :mod:`preprocess`).

        Returns:
            ``(N, D)`` ``float32``.
        """
        return self.embed_inputs(self.preprocess(images))
