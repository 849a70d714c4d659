"""Torch tensors into JAX and back, by DLPack, and the JAX platform the kernels run on.

On the JAX route the engine's tensors are torch tensors in host memory (the runtime is the host
runtime). A kernel takes its operands into JAX with `to_jax` (zero-copy on the CPU platform; on a
TPU host, a transfer to the TPU), runs its JAX/Pallas computation, and hands the result back
with `to_torch`. Index tensors are narrowed to int32 first: JAX runs without 64-bit types by
default. Pallas kernels run compiled (Mosaic) on a TPU and in Pallas's interpreter on the CPU
platform (the emulation mode, emulation.py).
"""

from __future__ import annotations

import functools
import importlib

import torch


@functools.cache
def jax():
    return importlib.import_module("jax")


@functools.cache
def jnp():
    return importlib.import_module("jax.numpy")


@functools.cache
def pallas():
    return importlib.import_module("jax.experimental.pallas")


@functools.cache
def interpret() -> bool:
    """Pallas in its interpreter: whenever JAX's default backend is not a TPU."""
    return jax().default_backend() != "tpu"


def to_jax(t: torch.Tensor):
    if t.dtype == torch.int64:
        t = t.to(torch.int32)
    t = t.contiguous()
    if t.device.type != "cpu":
        t = t.cpu()
    x = jax().dlpack.from_dlpack(t)
    if not interpret():
        x = jax().device_put(x, jax().devices()[0])
    return x


def to_torch(x, device: torch.device | None = None) -> torch.Tensor:
    if not interpret():
        x = jax().device_get(x)
    t = torch.from_dlpack(x)
    return t if device is None or t.device == device else t.to(device)


def precision(dtype: torch.dtype):
    """float32 dots in full float32 (the TPU default multiplies float32 in bfloat16 passes)."""
    lax = jax().lax
    return lax.Precision.HIGHEST if dtype == torch.float32 else lax.Precision.DEFAULT
