"""Quantized checkpoints: one QuantizationConfig per format, a LinearMethod per layer.

`registry` (no torch) names the methods and resolves a checkpoint's; `base` holds the contract;
`model` applies a config to a built model. One module per format family.
"""
