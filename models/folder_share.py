"""The shown confidence at the folder's own share of unknowns, against one half (issue 11).

    python -m models.folder_share [--model PATH] [--data DIR] [--episodes N] [--seed S]
                                  [--evaluation] [--json]

The open-set term is fitted with as many unknown as known queries (``models/calibration.py``),
so it assumes that half of what it sees is of none of the classes. A labeled folder estimates
its own share (``core.unknown_share``, what ``BatchResults`` shows) instead. Here each episode
is a folder: N classes, their 15 known queries each, and as many characters of no class as
make a share of 0, 1/4, 1/2 or 3/4 of the queries. Printed: the expected calibration error
(15 bins, 95% bootstrap interval) at one half (the canvas) and at the folder's estimated share,
per task and share, and the estimated share's mean. On the validation alphabets also the
composition check of ``models/unknown_composition.py`` (classes of one alphabet, the characters
of no class of the same or of other alphabets), and the ordering figure of
``models/calibration.py``. ``--evaluation`` adds the evaluation alphabets, for reporting only.
The model's own calibration and threshold rule; nothing is fitted here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from models import calibration as cal
from models import unknown_composition as uc
from models.omniglot import data_dir
from protoglyph.core import unknown_share
from protoglyph.core.classifier import Calibration
from protoglyph.core.encoder import EncoderSession

SHARES = (0.0, 0.25, 0.5, 0.75)
HALF, FOLDER = "at one half", "folder's share"
FORMS = {HALF: False, FOLDER: True}


def _ece(episodes: list[cal.Episode], calibration: Calibration, temperature: float, folder: bool) -> dict[str, Any]:
    f = cal.calibration_figures(episodes, calibration, temperature, folder_share=folder)
    return {k: f[k] for k in ("ece", "ci95", "mean_confidence", "accuracy")}


def _mean_share(episodes: list[cal.Episode], calibration: Calibration) -> float:
    assert calibration.open_set is not None
    return float(np.mean([unknown_share.estimate(calibration.open_set.log_odds(e.distances, e.reference))
                          for e in episodes]))


def share_figures(emb: np.ndarray, labels: np.ndarray, calibration: Calibration, temperature: float,
                  episodes: int, seed: int) -> dict[str, Any]:
    """Per task and share of unknowns: ECE at one half and at the folder's share."""
    out: dict[str, Any] = {}
    for i, (key, ways, shots) in enumerate(cal.TASKS):
        for j, share in enumerate(SHARES):
            eps = cal.sample_episodes(emb, labels, ways, shots, episodes, seed + 10 * i + j, calibration, share)
            row = {form: _ece(eps, calibration, temperature, folder) for form, folder in FORMS.items()}
            row["estimated share"] = round(_mean_share(eps, calibration), 4)
            out.setdefault(key, {})[f"{share:g}"] = row
    return out


def composition_figures(emb: np.ndarray, labels: np.ndarray, alphabets: np.ndarray, calibration: Calibration,
                        temperature: float, episodes: int, seed: int) -> dict[str, Any]:
    """``unknown_composition``'s episodes (half unknown), in both forms."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for key, ways, shots in uc.TASKS:
        for mode in uc.MODES:
            eps = [uc.episode(emb, labels, alphabets, calibration, ways, shots, mode, rng) for _ in range(episodes)]
            out.setdefault(key, {})[mode] = {form: _ece(eps, calibration, temperature, folder)
                                             for form, folder in FORMS.items()}
    return out


def _cell(f: dict[str, Any]) -> str:
    return f"{100 * f['ece']:5.2f} [{100 * f['ci95'][0]:4.2f}, {100 * f['ci95'][1]:5.2f}]"


def print_shares(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: ECE % [95% CI] by share of unknown queries")
    print(f"  {'task':<7}{'share':>6}{'at one half':>22}{'at the folder share':>22}{'estimated':>11}")
    for key, row in figures.items():
        for share, f in row.items():
            print(f"  {key:<7}{share:>6}{_cell(f[HALF]):>22}{_cell(f[FOLDER]):>22}{f['estimated share']:>11.3f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--data", help="folder of the Omniglot zips (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--episodes", type=int, default=500, help="episodes per task and share")
    p.add_argument("--folders", type=int, default=300, help="folders for the ordering figure")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--evaluation", action="store_true", help="also the evaluation alphabets (reporting only)")
    p.add_argument("--cache", type=Path, default=cal.CACHE_DIR, help="folder for cached embeddings")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = p.parse_args(argv)
    session = EncoderSession(args.model)
    calibration = Calibration.from_model(session.info)
    if calibration.open_set is None:
        raise SystemExit(f"{session.path}: the model's metadata has no open-set term; nothing to adapt")
    temperature = session.info.temperature
    folder = data_dir(args.data)
    emb, labels, alphabets = cal.split_embeddings_and_alphabets("validation", session, folder, args.cache)
    print(f"{session.info.model_name} {session.info.model_version}, {args.episodes} episodes per task and share")
    results: dict[str, Any] = {"validation": share_figures(emb, labels, calibration, temperature, args.episodes,
                                                           args.seed)}
    print_shares("validation alphabets", results["validation"])
    results["composition"] = composition_figures(emb, labels, alphabets, calibration, temperature,
                                                 args.episodes, args.seed + 1)
    print("\nvalidation alphabets, classes of one alphabet, half the queries of no class from ...: ECE %")
    for key, row in results["composition"].items():
        for mode, f in row.items():
            print(f"  {key:<7}{mode + ' alphabet' + ('s' if mode == 'other' else ''):<17}"
                  + "".join(f"{_cell(f[form]):>22}" for form in FORMS))
    splits = [("validation", emb, labels)]
    if args.evaluation:
        e_emb, e_labels = cal.split_embeddings("evaluation", session, folder, args.cache)
        results["evaluation"] = share_figures(e_emb, e_labels, calibration, temperature, args.episodes, args.seed)
        print_shares("evaluation alphabets", results["evaluation"])
        splits.append(("evaluation", e_emb, e_labels))
    for name, x, y in splits:
        for form, folder_form in FORMS.items():
            f = cal.ordering_figures(x, y, calibration, temperature, args.folders, args.seed + 7,
                                     folder_share=folder_form)
            results.setdefault("ordering", {}).setdefault(name, {})[form] = f
            a, b = f["after_nearest"], f["after_label"]
            print(f"{name}, {form}: least certain first puts {100 * a['share']:.1f}% "
                  f"[{100 * a['ci95'][0]:.1f}, {100 * a['ci95'][1]:.1f}] of the wrong nearest classes and "
                  f"{100 * b['share']:.1f}% of the wrong labels in the first {cal.FRONT:.0%} "
                  f"({f['folders']} folders of {f['items_per_folder']} items)")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
