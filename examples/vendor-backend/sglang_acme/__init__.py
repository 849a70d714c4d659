"""sglang-acme: the example vendor backend, for the ACME NPU (emulated on the CPU)."""

__version__ = "0.1.0"
