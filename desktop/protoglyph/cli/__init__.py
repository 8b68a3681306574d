"""The ``protoglyph`` command: starts the desktop app, or checks the installation.

    protoglyph [PROJECT]        open the app (on PROJECT, the last project, or the starter)
    protoglyph --self-test      load the encoder and classify a built-in drawing, no window
    protoglyph --info           print the model card summary
    protoglyph label FOLDER ... label a folder of images, no window (``protoglyph label --help``)
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np

import protoglyph
from protoglyph.core.encoder import EncoderSession, ModelError


def _self_test(session: EncoderSession) -> str:
    """Classify a ring drawn here against the starter project, built in a temporary folder.

    The offline installer trusts this check, so it passes only on numbers that mean something:
    a finite embedding, a finite distance and a probability in [0, 1]. Embeddings that are
    finite but so large that distances overflow give ``p=nan`` otherwise, and a NaN compares
    false with everything, so no ordinary check downstream would notice.
    """
    from protoglyph.core.shapes import draw_shape
    from protoglyph.core.starter import create_starter_project

    with tempfile.TemporaryDirectory(prefix="protoglyph-self-test-") as folder:
        workspace = create_starter_project(Path(folder) / "starter.protoglyph", session)
        try:
            query = session.embed_images([draw_shape("ring", np.random.default_rng(1), size=300)])
            if not np.isfinite(query).all():
                raise RuntimeError("self-test failed: the encoder gave a NaN or infinite embedding for a drawn ring")
            best = workspace.classify_embedding(query[0], 1)[0]
            name = workspace.class_record(int(best.class_key)).name  # type: ignore[call-overload]
        finally:
            workspace.project.close()
    if not (math.isfinite(best.probability) and 0.0 <= best.probability <= 1.0 and math.isfinite(best.distance)):
        raise RuntimeError(f"self-test failed: a drawn ring got probability {best.probability} at distance "
                           f"{best.distance}, not finite numbers (the model's embeddings or temperature overflow)")
    if name != "Ring":
        raise RuntimeError(f"self-test failed: a drawn ring was classified as {name!r}")
    formats = _image_formats()
    return (f"self-test passed: a drawn ring is 'Ring' with p={best.probability:.3f} (starter project, 8 classes); "
            f"reads {', '.join(formats)}")


def _image_formats() -> list[str]:
    """Write and read back a glyph in every format OpenCV can write here, through the app's own
    reader; and compute distances as folder labeling does (float16 embeddings)."""
    import cv2

    from protoglyph.core.imagefile import decode_image
    from protoglyph.core.labeling.results import distances_to
    from protoglyph.core.shapes import draw_shape

    glyph = draw_shape("cross", np.random.default_rng(2), size=64)
    read = []
    for name, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("TIFF", ".tiff"), ("WebP", ".webp")):
        ok, data = cv2.imencode(suffix, glyph)
        if not ok or decode_image(data.tobytes(), f"self-test{suffix}").shape != glyph.shape:
            raise RuntimeError(f"self-test failed: a {name} image could not be written and read back")
        read.append(name)
    d = distances_to(np.ones((3, 4), np.float16), np.zeros((1, 4), np.float32))
    if not np.allclose(d, 4.0):
        raise RuntimeError("self-test failed: distances of float16 embeddings are wrong")
    return read


def window_platform_problem() -> str | None:
    """Why the window cannot open (X11 libraries that Qt's xcb plugin needs are missing), or ``None``.

    Checked before Qt is imported: Qt itself would abort with a message that names none of the
    libraries. ``None`` too whenever the check cannot tell (see :mod:`protoglyph.cli.platform_check`),
    so that it never stops a start that could work.
    """
    from protoglyph.cli.platform_check import check_xcb, message

    verdict = check_xcb()
    return message(verdict) if verdict is not None and verdict.missing else None


def main(argv: list[str] | None = None) -> int:
    # A worker process of a frozen (installed) app starts here too: let it do its work instead.
    multiprocessing.freeze_support()
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["label"]:
        from protoglyph.cli.label import main as label_main

        return label_main(args_in[1:])
    parser = argparse.ArgumentParser(prog="protoglyph", description="Few-shot labeling of characters and symbols.")
    parser.add_argument("project", nargs="?", type=Path, help="project file to open (.protoglyph)")
    parser.add_argument("--version", action="version", version=f"protoglyph {protoglyph.__version__}")
    parser.add_argument("--model", type=Path, help="encoder .onnx file (default: the shipped one)")
    parser.add_argument("--self-test", action="store_true",
                        help="load the encoder, classify a built-in drawing against the starter project; no window")
    parser.add_argument("--info", action="store_true", help="print the encoder's model card summary and exit")
    parser.add_argument("--exit-when-ready", action="store_true", help=argparse.SUPPRESS)  # start-up benchmark
    parser.epilog = "protoglyph label --help: label a folder of images from the command line"
    args = parser.parse_args(args_in)
    if not (args.self_test or args.info):
        problem = window_platform_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 2
        from protoglyph.gui.app import run

        return run(args.project, args.model, args.exit_when_ready)
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
