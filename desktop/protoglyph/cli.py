"""The ``protoglyph`` command.

Until the desktop window lands it prints the encoder's model card summary and checks that
the encoder loads and embeds; ``--self-test`` also classifies a built-in drawing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import protoglyph
from protoglyph.core.encoder import EncoderSession, ModelError


def _self_test(session: EncoderSession) -> str:
    """Classify a drawn ring against a ring and a cross, made here with no external data."""
    from protoglyph.core.classifier import FewShotClassifier
    from protoglyph.core.shapes import draw_shape

    rng = np.random.default_rng(0)
    clf = FewShotClassifier(session.embedding_size, session.info.temperature)
    for name in ("ring", "cross", "triangle"):
        clf.add_examples(name, session.embed_images([draw_shape(name, rng) for _ in range(3)]))
    query = session.embed_images([draw_shape("ring", rng, size=300)])
    best = clf.top_k(query[0], 1)[0]
    if best.class_key != "ring":
        raise RuntimeError(f"self-test: a ring was classified as {best.class_key!r}")
    return f"self-test passed: a drawn ring is 'ring' with p={best.probability:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="protoglyph", description="Few-shot labeling of characters and symbols.")
    parser.add_argument("--version", action="version", version=f"protoglyph {protoglyph.__version__}")
    parser.add_argument("--model", type=Path, help="encoder .onnx file (default: the shipped one)")
    parser.add_argument("--self-test", action="store_true", help="load the encoder, classify a built-in drawing")
    args = parser.parse_args(argv)
    try:
        session = EncoderSession(args.model)
        print(f"Protoglyph {protoglyph.__version__}")
        print(session.info.summary())
        if args.self_test:
            print(_self_test(session))
    except ModelError as exc:
        print(f"protoglyph: the encoder model cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}",
              file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"protoglyph: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
