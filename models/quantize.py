"""Should the shipped encoder be quantised? Speed and accuracy of int8 and float16 copies, side by side.

    python -m models.quantize [--data DIR] [--model PATH] [--episodes 1000] [--out runs/quantized] [--json]
    python -m models.quantize --ship OUT.onnx --version 2.1.0 [--accuracy results.json] [--model PATH]

Makes, from the float32 encoder, with onnxruntime's own tools:

- ``int8-dynamic``: weights int8, activations quantised on the fly (``quantize_dynamic``);
- ``int8-static``: weights and activations int8 (QDQ, per channel), the activation ranges
  calibrated on 512 drawings of the *training* alphabets (never the validation ones);
- ``float16``: every weight and activation float16, input and output kept float32.

Each copy keeps the model's metadata. Measured for each, in one run:

- speed on 2,048 ready inputs: as a labeling worker runs it (1 thread, batches of 16) and as
  the app's session does (2 threads, one batch), median of 5;
- how far its embeddings move: the largest and the median relative distance to the float32
  embedding of the same drawing;
- few-shot accuracy on the *validation* alphabets (this is a choice, so never the evaluation
  set), the episodes of ``models.evaluate`` (same seed, the same episodes for every copy), with
  the paired difference to float32 and its 95% interval (1.96 standard errors of the
  per-episode differences).

``--ship`` writes the ``int8-static`` copy as a model to ship: the metadata of the float32 model
with ``model_version`` set, ``quantization`` saying how it was made, and with ``--accuracy`` (the
last line of ``python -m models.evaluate --json`` on it) its own evaluation table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

from models.data import VALIDATION_ALPHABETS
from models.evaluate import TASKS, embed_set, episode_accuracies
from models.omniglot import data_dir, list_drawings, read_images, zip_path
from protoglyph.core.encoder import EncoderSession, default_model_path

VARIANTS = ("float32", "int8-dynamic", "int8-static", "float16")
CALIBRATION_DRAWINGS = 512
SPEED_INPUTS = 2048


def calibration_inputs(folder: Path, session: EncoderSession, count: int = CALIBRATION_DRAWINGS) -> np.ndarray:
    """The model's normalised inputs for ``count`` drawings of the training alphabets (seed 0)."""
    path = zip_path(folder, "images_background")
    drawings = [d for d in list_drawings(path) if d.alphabet not in VALIDATION_ALPHABETS]
    chosen = np.random.default_rng(0).choice(len(drawings), count, replace=False)
    inputs = session.preprocess(read_images(path, [drawings[i] for i in sorted(chosen)]))
    return ((inputs - session.info.norm_mean) / session.info.norm_std).astype(np.float32)


def make_variants(model: Path, out: Path, calibration: np.ndarray) -> dict[str, Path]:
    """Write the quantised copies below ``out``; ``{variant: path}`` (float32 is ``model`` itself)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out.mkdir(parents=True, exist_ok=True)
    source = onnx.load(str(model))
    input_name = source.graph.input[0].name
    prepared = out / "prepared.onnx"
    quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: calibration[i : i + 32]} for i in range(0, len(calibration), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    paths = {"float32": model, "int8-dynamic": out / "int8-dynamic.onnx", "int8-static": out / "int8-static.onnx",
             "float16": out / "float16.onnx"}
    quantize_dynamic(str(prepared), str(paths["int8-dynamic"]), weight_type=QuantType.QInt8)
    quantize_static(str(prepared), str(paths["int8-static"]), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    half = convert_float_to_float16(onnx.load(str(model)), keep_io_types=True)
    onnx.save(half, str(paths["float16"]))
    for name in ("int8-dynamic", "int8-static", "float16"):  # the app reads what it needs from the metadata
        copy = onnx.load(str(paths[name]))
        del copy.metadata_props[:]
        copy.metadata_props.extend(source.metadata_props)
        onnx.save(copy, str(paths[name]))
    prepared.unlink()
    return paths


QUANTIZATION_NOTE = ("int8 static (QDQ, weights per channel, activations calibrated on "
                     f"{CALIBRATION_DRAWINGS} drawings of the training alphabets); models/quantize.py")


def ship(model: Path, out: Path, version: str, calibration: np.ndarray, accuracy: dict[str, object] | None) -> Path:
    """The ``int8-static`` copy of ``model`` at ``out``, with its own version (and accuracy)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        made = onnx.load(str(make_variants(model, Path(tmp), calibration)["int8-static"]))
        for prop in made.metadata_props:
            if prop.key == "model_version":
                prop.value = version
            elif prop.key == "accuracy" and accuracy is not None:
                prop.value = json.dumps({k: accuracy[k] for k in sorted(accuracy) if isinstance(accuracy[k], dict)})
        made.metadata_props.add(key="quantization", value=QUANTIZATION_NOTE)
        staged = Path(tmp) / "ship.onnx"
        onnx.save(made, str(staged))
        shutil.move(str(staged), str(out))
    return out


def speed(path: Path, inputs: np.ndarray, threads: int, batch: int | None, runs: int = 5) -> float:
    """Images/s embedding ready inputs (median of ``runs``, after a warm-up)."""
    session = EncoderSession(path, threads=threads, **({"batch_size": batch} if batch else {}))
    session.embed_inputs(inputs[:64])
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        session.embed_inputs(inputs)
        rates.append(len(inputs) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="Omniglot folder (default: $PROTOGLYPH_OMNIGLOT or ../shared/omniglot)")
    p.add_argument("--model", type=Path, default=None, help="the float32 encoder (default: the shipped one)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/quantized"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--ship", type=Path, metavar="OUT.onnx", help="write the int8-static copy as a model to ship")
    p.add_argument("--version", help="with --ship: its model_version")
    p.add_argument("--accuracy", type=Path, help="with --ship: JSON from `python -m models.evaluate --json` on it")
    args = p.parse_args(argv)
    folder, model = data_dir(args.data), args.model or default_model_path()
    base = EncoderSession(model)
    calibration = calibration_inputs(folder, base)
    if args.ship:
        if not args.version:
            raise SystemExit("--ship needs --version")
        accuracy = json.loads(args.accuracy.read_text().strip().splitlines()[-1]) if args.accuracy else None
        print(f"wrote {ship(model, args.ship, args.version, calibration, accuracy)}")
        return {}
    paths = make_variants(model, args.out, calibration)
    ready = base.preprocess(read_images(zip_path(folder, "images_background"),
                                        list_drawings(zip_path(folder, "images_background"))[:SPEED_INPUTS]))
    result: dict[str, dict[str, object]] = {}
    reference = None
    for name in VARIANTS:
        session = EncoderSession(paths[name])
        embeddings, labels, groups = embed_set(folder, "images_background", session, VALIDATION_ALPHABETS)
        row: dict[str, object] = {"size_kb": round(paths[name].stat().st_size / 1024),
                                  "worker_rate": speed(paths[name], ready, 1, 16),
                                  "session_rate": speed(paths[name], ready, 2, None)}
        accs = episode_accuracies(embeddings, labels, groups, args.episodes, args.seed, session.info.temperature)
        if reference is None:
            reference = (embeddings, accs)
        moved = np.linalg.norm(embeddings - reference[0], axis=1) / np.linalg.norm(reference[0], axis=1)
        row["moved_median"], row["moved_max"] = float(np.median(moved)), float(moved.max())
        for key, values in accs.items():
            diff = values - reference[1][key]
            row[key] = {"mean": float(values.mean()), "diff": float(diff.mean()),
                        "diff_ci95": float(1.96 * diff.std(ddof=1) / np.sqrt(len(diff)))}
        result[name] = row
    print(f"{base.info.model_name} {base.info.model_version}: validation alphabets, {args.episodes} episodes per "
          f"task (seed {args.seed}); speed on {len(ready):,} ready inputs, median of 5")
    tasks = [key for key, *_ in TASKS]
    print(f"{'variant':<13} {'KB':>5} {'worker img/s':>12} {'2-thread img/s':>14} {'moved (med/max)':>16}  "
          + "  ".join(f"{k:>20}" for k in tasks))
    for name, row in result.items():
        cells = "  ".join(f"{100 * row[k]['mean']:6.2f} ({100 * row[k]['diff']:+.2f}±{100 * row[k]['diff_ci95']:.2f})"  # type: ignore[index]
                          for k in tasks)
        print(f"{name:<13} {row['size_kb']:>5} {row['worker_rate']:>12,.0f} {row['session_rate']:>14,.0f} "
              f"{row['moved_median']:>7.4f}/{row['moved_max']:<8.4f}  {cells}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
