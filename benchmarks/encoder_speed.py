"""Speed of the shipped encoder on this machine: onnxruntime on the CPU with 2 threads.

    python -m benchmarks.encoder_speed [--model PATH] [--runs N] [--json]

Prints, each as the median of ``--runs`` repetitions:
- single-image embedding latency (one preprocessed input, one ``session.run``): median, p95;
- the same including preprocessing of one 105x105 drawing;
- batch embedding throughput (images/s) for batches of preprocessed inputs;
- end-to-end throughput (decode-free: preprocessing + embedding of 105x105 images).
Inputs are the built-in shapes, so no data set is needed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from protoglyph.core.encoder import EncoderSession
from protoglyph.core.shapes import SHAPES, draw_shape


def _latencies(fn: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def measure(session: EncoderSession, images: list[np.ndarray], runs: int, single: int = 1000) -> dict[str, float]:
    """One model's figures (see the module docstring) on ``images`` (105x105 drawings, at least 1,024)."""
    inputs = session.preprocess(images)
    one = inputs[:1]
    for _ in range(50):
        session.embed_inputs(one)
    alone = _latencies(lambda: session.embed_inputs(one), single)
    with_pre = _latencies(lambda: session.embed_images(images[:1]), max(1, single * 3 // 10))
    batch_rates, e2e_rates = [], []
    for _ in range(runs):
        t = time.perf_counter()
        session.embed_inputs(inputs)
        batch_rates.append(len(inputs) / (time.perf_counter() - t))
        t = time.perf_counter()
        session.embed_images(images[:1024])
        e2e_rates.append(1024 / (time.perf_counter() - t))
    return {
        "single_ms_median": round(statistics.median(alone), 3),
        "single_ms_p95": round(float(np.percentile(alone, 95)), 3),
        "single_with_preprocess_ms_median": round(statistics.median(with_pre), 3),
        "batch_images_per_s": round(statistics.median(batch_rates)),
        "end_to_end_images_per_s": round(statistics.median(e2e_rates)),
    }


def shapes(count: int = 2048) -> list[np.ndarray]:
    """``count`` 105x105 drawings of the built-in shapes (fixed seed)."""
    rng = np.random.default_rng(0)
    names = sorted(SHAPES)
    return [draw_shape(names[i % len(names)], rng) for i in range(count)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    session = EncoderSession(args.model, threads=args.threads, batch_size=512)
    result: dict[str, object] = dict(measure(session, shapes(), args.runs))
    result.update(threads=args.threads, machine=f"{platform.machine()}, {platform.processor() or 'cpu'}")
    print(f"{session.info.model_name} {session.info.model_version}, onnxruntime, {args.threads} threads")
    print(f"  one image, embedding only:       median {result['single_ms_median']:.3f} ms, "
          f"p95 {result['single_ms_p95']:.3f} ms")
    print(f"  one image, with preprocessing:   median {result['single_with_preprocess_ms_median']:.3f} ms")
    print(f"  batch embedding throughput:      {result['batch_images_per_s']} images/s")
    print(f"  preprocessing + embedding:       {result['end_to_end_images_per_s']} images/s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
