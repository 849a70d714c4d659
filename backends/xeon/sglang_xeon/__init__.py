"""sglang-xeon: the CPU backend (torch native kernels, oneDNN/AMX, IPEX where installed)."""

__version__ = "0.1.0"
