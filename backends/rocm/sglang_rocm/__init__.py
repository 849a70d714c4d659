"""sglang-rocm: the AMD GPU backend (Triton kernels on HIP, aiter where installed, RCCL)."""

__version__ = "0.1.0"
