"""Meta-training, ONNX export and evaluation of Protoglyph's encoder (used from the checkout)."""
