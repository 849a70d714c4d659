"""The visible GPUs' compute capability, for the capabilities hook.

Read through NVML (libnvidia-ml, which the driver ships) by ctypes: no CUDA context and no
torch.cuda initialisation, so discovery stays cheap and a process that forks workers later is
not poisoned. Only where NVML cannot answer does it ask torch (which initialises CUDA in this
process). CUDA_VISIBLE_DEVICES given as indices is honoured; with UUIDs or MIG names every GPU
on the machine counts. The lowest capability wins: every rank must run every kernel.
"""

from __future__ import annotations

import ctypes
import os

import torch

NVML_SUCCESS = 0


def _visible(count: int) -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    parts = [p.strip() for p in env.split(",") if p.strip()]
    if not all(p.lstrip("-").isdigit() for p in parts):
        return list(range(count))
    indices = []
    for p in parts:  # CUDA stops at the first invalid index
        i = int(p)
        if not 0 <= i < count:
            break
        indices.append(i)
    return indices


def _nvml_capabilities() -> list[tuple[int, int]] | None:
    try:
        lib = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if lib.nvmlInit_v2() != NVML_SUCCESS:
        return None
    try:
        count = ctypes.c_uint()
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != NVML_SUCCESS:
            return None
        found = []
        for i in _visible(count.value):
            handle = ctypes.c_void_p()
            if lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) != NVML_SUCCESS:
                return None
            major, minor = ctypes.c_int(), ctypes.c_int()
            status = lib.nvmlDeviceGetCudaComputeCapability(
                handle, ctypes.byref(major), ctypes.byref(minor)
            )
            if status != NVML_SUCCESS:
                return None
            found.append((major.value, minor.value))
        return found
    finally:
        lib.nvmlShutdown()


def compute_capability() -> tuple[int, int] | None:
    """The lowest (major, minor) among the visible GPUs, or None when none can be read."""
    caps = _nvml_capabilities()
    if not caps:
        try:
            caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
        except Exception:  # noqa: BLE001 - no usable CUDA: the probe says why
            return None
    return min(caps) if caps else None
