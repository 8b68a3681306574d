"""Does the shown confidence depend on where the characters of no class come from?

    python -m models.unknown_composition [--model PATH] [--data DIR] [--episodes N] [--seed S]

The calibration (``models/calibration.py``) is fitted on open-set episodes of the validation
alphabets, whose 2N characters are drawn from 5 alphabets. A person's unknown items may be
other characters of the classes' own script (the hard case) or something else entirely. Here,
on the validation alphabets only: the N classes come from one alphabet, and the N characters of
no class come either from *the same* alphabet or from *the other* alphabets; 15 known and 15
unknown queries per class, the model's own calibration and threshold rule. Printed: ECE, mean
shown confidence and accuracy of the nearest class, per task and composition.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from models import calibration as cal
from models.omniglot import data_dir
from protoglyph.core.classifier import Calibration, FewShotClassifier
from protoglyph.core.encoder import EncoderSession

TASKS = (("5w1s", 5, 1), ("5w5s", 5, 5), ("10w1s", 10, 1), ("10w5s", 10, 5))
MODES = ("same", "other")


def episode(emb: np.ndarray, labels: np.ndarray, alphabets: np.ndarray, calibration: Calibration,
            ways: int, shots: int, mode: str, rng: np.random.Generator) -> cal.Episode:
    """One episode: ``ways`` classes of one alphabet, ``ways`` characters of no class from the
    same alphabet (``mode`` "same") or from the others ("other")."""
    per_item = alphabets[labels]
    chars = {a: np.unique(labels[per_item == a]) for a in np.unique(per_item)}
    big = [a for a, c in chars.items() if len(c) >= 2 * ways]
    if not big:
        raise ValueError(f"no alphabet has the {2 * ways} characters a {ways}-way episode needs")
    alphabet = rng.choice(big)
    if mode == "same":
        chosen = rng.choice(chars[alphabet], 2 * ways, replace=False)
    else:
        others = np.concatenate([c for a, c in chars.items() if a != alphabet])
        chosen = np.concatenate([rng.choice(chars[alphabet], ways, replace=False),
                                 rng.choice(others, ways, replace=False)])
    clf = FewShotClassifier(emb.shape[1], calibration=calibration)
    queries, truth = [], []
    for j, character in enumerate(chosen):
        items = rng.permutation(np.flatnonzero(labels == character))
        if j < ways:
            clf.add_examples(j, emb[items[:shots]])
            queries.append(items[shots : shots + cal.QUERIES])
        else:
            queries.append(items[: cal.QUERIES])
        truth += [j if j < ways else -1] * cal.QUERIES
    reference = clf.open_set_reference()
    assert reference is not None
    _, d = clf.distances(emb[np.concatenate(queries)])
    return cal.Episode(d, np.array(truth), reference)


def figures(emb: np.ndarray, labels: np.ndarray, alphabets: np.ndarray, calibration: Calibration,
            temperature: float, episodes: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per task and composition: ECE (with its 95% interval), mean confidence and accuracy."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Any]] = {}
    for key, ways, shots in TASKS:
        for mode in MODES:
            rows = [episode(emb, labels, alphabets, calibration, ways, shots, mode, rng) for _ in range(episodes)]
            f = cal.calibration_figures(rows, calibration, temperature)
            out.setdefault(key, {})[mode] = {k: f[k] for k in ("ece", "ci95", "mean_confidence", "accuracy")}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    session = EncoderSession(args.model)
    calibration = Calibration.from_model(session.info)
    emb, labels, alphabets = cal.split_embeddings_and_alphabets("validation", session, data_dir(args.data),
                                                                cal.CACHE_DIR)
    results = figures(emb, labels, alphabets, calibration, session.info.temperature, args.episodes, args.seed)
    print(f"{session.info.model_name} {session.info.model_version}, validation alphabets, {args.episodes} "
          "episodes per cell: the classes from one alphabet, the characters of no class from ...")
    print(f"  {'task':<7}{'composition':<17}{'ECE %':>16}{'confidence':>12}{'accuracy':>10}")
    for key, row in results.items():
        for mode, f in row.items():
            print(f"  {key:<7}{mode + ' alphabet' + ('s' if mode == 'other' else ''):<17}"
                  f"{100 * f['ece']:6.2f} [{100 * f['ci95'][0]:4.2f}, {100 * f['ci95'][1]:4.2f}]"
                  f"{100 * f['mean_confidence']:10.1f}{100 * f['accuracy']:10.1f}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
