"""Few-shot accuracy of the ONNX encoder on Omniglot's evaluation alphabets, through the app's path.

    python -m models.evaluate [--data DIR] [--episodes N] [--model PATH] [--json]

Every drawing of ``images_evaluation.zip`` goes through the app's own preprocessing and
:class:`EncoderSession` (onnxruntime, no PyTorch); each episode is classified by the app's
:class:`FewShotClassifier`. Episodes: N-way K-shot with 15 queries per class, classes drawn
from all evaluation alphabets (cross-alphabet), plus 20-way 1-shot with all classes from one
alphabet (within-alphabet, as in Lake et al.'s task). Each figure is the mean accuracy over
the episodes with a 95% confidence interval (1.96 standard errors); the seed is fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from models.data import VALIDATION_ALPHABETS
from models.omniglot import character_labels, data_dir, list_drawings, read_images, zip_path
from models.sampler import EpisodeSampler
from protoglyph.core.classifier import episode_accuracy
from protoglyph.core.encoder import EncoderSession

#: (key, ways, shots, within one alphabet)
TASKS = (
    ("5w1s", 5, 1, False),
    ("5w5s", 5, 5, False),
    ("20w1s", 20, 1, False),
    ("20w5s", 20, 5, False),
    ("20w1s_within", 20, 1, True),
)
QUERIES = 15
LABELS = {"5w1s": "5-way 1-shot", "5w5s": "5-way 5-shot", "20w1s": "20-way 1-shot",
          "20w5s": "20-way 5-shot", "20w1s_within": "20-way 1-shot, within one alphabet"}


def embed_set(folder: Path, set_name: str, session: EncoderSession,
              alphabets: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)``, character labels ``(N,)`` and each character's alphabet index.

    ``alphabets`` keeps only those alphabets (the validation split of the background set).
    """
    path = zip_path(folder, set_name)
    drawings = [d for d in list_drawings(path) if alphabets is None or d.alphabet in alphabets]
    characters, labels = character_labels(drawings)
    alphabet_index = {a: i for i, a in enumerate(sorted({d.alphabet for d in drawings}))}
    groups = np.array([alphabet_index[c.split("/")[0]] for c in characters])
    chunks = []
    for start in range(0, len(drawings), 1024):
        chunks.append(session.embed_images(read_images(path, drawings[start : start + 1024])))
    return np.concatenate(chunks), labels, groups


def evaluate(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, episodes: int,
             seed: int, temperature: float) -> dict[str, dict[str, float]]:
    """Mean accuracy and 95% CI half-width of every task in :data:`TASKS`."""
    accuracies = episode_accuracies(embeddings, labels, groups, episodes, seed, temperature)
    return {key: mean_and_ci(values) for key, values in accuracies.items()}


def episode_accuracies(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, episodes: int,
                       seed: int, temperature: float) -> dict[str, np.ndarray]:
    """Per-episode accuracy of every task in :data:`TASKS` (the same episodes for the same seed,
    whatever the embeddings: two encoders can be compared episode by episode)."""
    out = {}
    for key, ways, shots, within in TASKS:
        rng = np.random.default_rng(seed)
        sampler = EpisodeSampler(labels, ways, shots, QUERIES, groups if within else None)
        truth = np.repeat(np.arange(ways), QUERIES)
        accs = np.empty(episodes)
        for i in range(episodes):
            support, query = sampler.sample(rng)
            per_class = list(embeddings[support].reshape(ways, shots, -1))
            accs[i] = episode_accuracy(per_class, embeddings[query], truth, temperature)
        out[key] = accs
    return out


def mean_and_ci(accuracies: np.ndarray | list[float]) -> dict[str, float]:
    """Mean of per-episode accuracies and the half-width of its 95% confidence interval."""
    accs = np.asarray(accuracies, dtype=np.float64)
    ci = 1.96 * accs.std(ddof=1) / np.sqrt(len(accs)) if len(accs) > 1 else float("nan")
    return {"mean": round(float(accs.mean()), 5), "ci95": round(float(ci), 5)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder with images_evaluation.zip (default: $PROTOGLYPH_OMNIGLOT)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, help="encoder .onnx (default: the shipped one)")
    p.add_argument("--split", choices=("evaluation", "validation"), default="evaluation",
                   help="validation: the background alphabets held out of training (for choosing things)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = p.parse_args(argv)
    session = EncoderSession(args.model)
    t0 = time.perf_counter()
    set_name, alphabets = (("images_evaluation", None) if args.split == "evaluation"
                           else ("images_background", VALIDATION_ALPHABETS))
    embeddings, labels, groups = embed_set(data_dir(args.data), set_name, session, alphabets)
    t1 = time.perf_counter()
    results = evaluate(embeddings, labels, groups, args.episodes, args.seed, session.info.temperature)
    print(f"{session.info.model_name} {session.info.model_version} on {args.split} alphabets: {len(labels)} drawings, "
          f"{len(set(labels.tolist()))} characters, {groups.max() + 1} alphabets; embedded in {t1 - t0:.1f} s; "
          f"{args.episodes} episodes per task, {QUERIES} queries per class, seed {args.seed}")
    print_results(results, LABELS, args.json)


def print_results(results: dict[str, dict[str, float]], labels: dict[str, str], as_json: bool) -> None:
    """One line per figure (mean ± 95% CI, in percent); with ``as_json`` a last line of JSON."""
    for key, row in results.items():
        print(f"  {labels.get(key, key):<36} {100 * row['mean']:6.2f}% ± {100 * row['ci95']:.2f}")
    if as_json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
