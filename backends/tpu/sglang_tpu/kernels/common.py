"""What every tpu kernel module shares: its availability check and the capability it needs."""

from __future__ import annotations

import functools
import importlib.util


@functools.cache
def jax_missing() -> str | None:
    """None when JAX can be imported here, else why not (the kernels then decline)."""
    if importlib.util.find_spec("jax") is None:
        return "jax is not installed (pip install sglang-tpu[jax])"
    return None


def register_jax(registry, op: str, fn, name: str, **options) -> None:
    registry.register(op, fn, name=f"tpu.{name}", available=jax_missing, **options)
