"""sglang-tpu: the Google TPU backend (JAX/Pallas or torch-xla kernels, ICI collectives)."""

__version__ = "0.1.0"
