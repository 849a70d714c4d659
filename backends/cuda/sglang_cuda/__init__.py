"""sglang-cuda: the NVIDIA backend (Triton kernels, NCCL communicator, CUDA graphs)."""

__version__ = "0.1.0"
