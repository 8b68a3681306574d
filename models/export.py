"""Export training checkpoints to the ONNX encoder the app ships.

    python -m models.export --checkpoint runs/A/best.pt [--checkpoint runs/B/best.pt ...]
                            [--out PATH] [--accuracy results.json] [--calibration FILE.json]

One checkpoint exports that encoder; several export their ensemble (see :class:`Ensemble`).
Writes the graph (input ``image`` ``(N, C, S, S)``, normalised; output ``embedding`` ``(N, D)``)
with the ``metadata_props`` that :class:`protoglyph.core.encoder.EncoderSession` reads, checks it
with ``onnx.checker``, and verifies that onnxruntime reproduces PyTorch's embeddings within 1e-4.
``--accuracy`` records the evaluation table (from ``python -m models.evaluate --json``);
``--calibration`` the calibrated temperature and open-set term (from ``python -m
models.calibration --out FILE.json``, fitted on the validation alphabets for this very model).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from models.calibration import read_calibration_json
from models.network import Encoder
from protoglyph.core import encoder as enc
from protoglyph.core import preprocess as pp
from protoglyph.core.classifier import Calibration

SHIPPED = Path(__file__).resolve().parent.parent / "desktop" / "protoglyph" / "assets" / "encoder.onnx"
MODEL_NAME = "protoglyph-omniglot-protonet"
TOLERANCE = 1e-4


def preprocess_of(state: dict[str, Any]) -> str:
    """The preprocessing a checkpoint was trained with (checkpoints before versions were chosen: skeleton-v2)."""
    return str(state["config"].get("preprocess", "skeleton-v2"))


def load_encoder(checkpoint: Path) -> tuple[Encoder, dict[str, Any]]:
    """The trained encoder (in eval mode) and the checkpoint's state."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = state["config"]
    encoder = Encoder(config["width"], config.get("blocks", 4), len(pp.channels(preprocess_of(state))))
    encoder.load_state_dict(state["encoder"])
    return encoder.eval(), state


class Ensemble(nn.Module):
    """Several trained encoders as one: their embeddings side by side, each scaled by ``1/sqrt(k T_i)``.

    The squared distance between two such embeddings is then the mean over the ``k`` members
    of ``distance_i / T_i``, so the ensemble's temperature is 1 and its probabilities are
    those of the members' averaged logits.
    """

    def __init__(self, members: list[Encoder], temperatures: list[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.scales = [1.0 / math.sqrt(len(members) * t) for t in temperatures]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) * s for m, s in zip(self.members, self.scales, strict=True)], dim=1)


def load_model(checkpoints: list[Path]) -> tuple[nn.Module, list[dict[str, Any]], float]:
    """The module to export (one encoder or an :class:`Ensemble`), the states, and its temperature."""
    loaded = [load_encoder(c) for c in checkpoints]
    states = [state for _, state in loaded]
    first = states[0]["config"]
    for state in states[1:]:
        for key in ("size", "mean", "std", "validation_alphabets"):
            if state["config"][key] != first[key]:
                raise SystemExit(f"checkpoints disagree on {key}: they cannot form one ensemble")
        if preprocess_of(state) != preprocess_of(states[0]):
            raise SystemExit("checkpoints disagree on preprocess: they cannot form one ensemble")
    if len(loaded) == 1:
        return loaded[0][0], states, float(states[0]["temperature"])
    return Ensemble([m for m, _ in loaded], [float(s["temperature"]) for s in states]).eval(), states, 1.0


def metadata(states: list[dict[str, Any]], embedding_size: int, temperature: float, version: str,
             accuracy: dict[str, Any] | None, calibration: dict[str, str] | None = None) -> dict[str, str]:
    """The ``metadata_props``; ``calibration`` adds the keys of ``models.calibration.read_calibration_json``."""
    config = states[0]["config"]
    recipe_keys = ("ways", "shots", "queries", "size", "width", "blocks", "preprocess", "lr", "lr_step",
                   "rotations", "jitter", "seed", "fonts")
    meta = {
        "format": enc.MODEL_FORMAT,
        "model_name": MODEL_NAME,
        "model_version": version,
        "input_size": str(config["size"]),
        "preprocess": preprocess_of(states[0]),
        "norm_mean": repr(float(config["mean"])),
        "norm_std": repr(float(config["std"])),
        "embedding_size": str(embedding_size),
        "distance": "squared_euclidean",
        "temperature": repr(temperature),
        "training_data": "Omniglot background set (Lake et al. 2015), "
                         f"{len(config['validation_alphabets'])} alphabets held out for validation"
                         + ("; glyphs of the font corpus's training families (models/fonts.py; model card)"
                            if config.get("fonts") else ""),
        "ensemble_members": str(len(states)),
        "training_episodes": ",".join(str(s["episode"]) for s in states),
        "training_recipe": json.dumps([{k: s["config"].get(k) for k in recipe_keys} for s in states]),
        "validation": json.dumps([s["val"] for s in states]),
    }
    if accuracy is not None:
        meta["accuracy"] = json.dumps({k: accuracy[k] for k in sorted(accuracy) if isinstance(accuracy[k], dict)})
    if calibration is not None:
        meta.update(calibration)
    return meta


def export(checkpoints: list[Path], out: Path, version: str, accuracy: dict[str, Any] | None = None,
           calibration: dict[str, str] | None = None) -> float:
    """Write the ONNX encoder to ``out`` atomically; return the largest |torch - onnxruntime| seen.

    ``calibration``: metadata keys from ``models.calibration.read_calibration_json`` (a fit is
    only valid for the weights it was measured on: refit after retraining).
    """
    model, states, temperature = load_model(checkpoints)
    size = int(states[0]["config"]["size"])
    rng = np.random.default_rng(0)
    channels = len(pp.channels(preprocess_of(states[0])))
    probe = torch.from_numpy(rng.random((8, channels, size, size), dtype=np.float32) * 3 - 0.5)
    with torch.no_grad():
        expected = model(probe).numpy()
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but needs no onnxscript, and a plain
            # conv net is exactly what it handles well.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (probe,), str(tmp), input_names=[enc.INPUT_NAME],
                              output_names=[enc.OUTPUT_NAME], opset_version=17, dynamo=False,
                              dynamic_axes={enc.INPUT_NAME: {0: "batch"}, enc.OUTPUT_NAME: {0: "batch"}})
        graph = onnx.load(str(tmp))
        graph.doc_string = "Protoglyph glyph encoder (Prototypical Network, Omniglot)"
        del graph.metadata_props[:]
        for key, value in metadata(states, expected.shape[1], temperature, version, accuracy, calibration).items():
            graph.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(graph, full_check=True)
        onnx.save(graph, str(tmp))
        session = enc.EncoderSession(tmp, threads=1)
        if calibration is not None and Calibration.from_model(session.info).ignored:
            raise SystemExit(f"the exported model ignores calibration values: "
                             f"{Calibration.from_model(session.info).ignored}")
        got = session.run_graph(probe.numpy())
        error = float(np.abs(got - expected).max())
        if error > TOLERANCE:
            raise SystemExit(f"onnxruntime differs from PyTorch by {error:.2e} (> {TOLERANCE})")
        tmp.chmod(0o644)  # mkstemp makes files private; the model is for every user
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return error


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, action="append",
                   help="a training checkpoint; give several to export their ensemble")
    p.add_argument("--out", type=Path, default=SHIPPED)
    p.add_argument("--version", default="2.0.0")
    p.add_argument("--accuracy", type=Path, help="JSON from `python -m models.evaluate --json`")
    p.add_argument("--calibration", type=Path, metavar="FILE.json",
                   help="JSON from `python -m models.calibration --out FILE.json` (for these weights)")
    args = p.parse_args(argv)
    accuracy = json.loads(args.accuracy.read_text().strip().splitlines()[-1]) if args.accuracy else None
    try:
        calibration = read_calibration_json(args.calibration) if args.calibration else None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--calibration: {exc}") from exc
    error = export(args.checkpoint, args.out, args.version, accuracy, calibration)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); onnxruntime vs PyTorch max |diff| {error:.1e}")


if __name__ == "__main__":
    main()
