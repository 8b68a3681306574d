"""Protoglyph: few-shot labeling of characters and symbols, fully offline."""

import os

# onnxruntime sends usage telemetry and writes under ~/.cache unless this is set before
# it is imported; every entry point imports this package first, so set it here.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# numpy's OpenBLAS threads spin after every matrix product; in a process that feeds worker
# processes (folder labeling) they steal a core from the workers (measured: 2,300 instead of
# 3,500 images/s on 2 cores). The products here are small or memory-bound: one thread is enough.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
