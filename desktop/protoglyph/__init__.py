"""Protoglyph: few-shot labeling of characters and symbols, fully offline."""

import os

# onnxruntime sends usage telemetry and writes under ~/.cache unless this is set before
# it is imported; every entry point imports this package first, so set it here.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
