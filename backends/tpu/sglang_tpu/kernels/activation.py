"""act.silu_mul and act.gelu_mul in jax.numpy (XLA fuses the elementwise work), float32 inside."""

from __future__ import annotations

import functools

from sglang_tpu.jax_bridge import jax, jnp, to_jax, to_torch
from sglang_tpu.kernels.common import register_jax


@functools.cache
def _fn(kind: str):
    def f(x):
        half = x.shape[-1] // 2
        h = x.astype(jnp().float32)
        gate, up = h[..., :half], h[..., half:]
        if kind == "silu":
            act = gate * jax().nn.sigmoid(gate)
        else:
            act = jax().nn.gelu(gate, approximate=kind == "tanh")
        return (act * up).astype(x.dtype)

    return jax().jit(f)


def _run(x, kind: str):
    if x.numel() == 0:
        return x.new_empty(*x.shape[:-1], x.shape[-1] // 2)
    return to_torch(_fn(kind)(to_jax(x)), x.device)


def silu_mul(x):
    return _run(x, "silu")


def gelu_mul(x, approximate="tanh"):
    if approximate not in ("tanh", "none"):
        raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")
    return _run(x, approximate)


def register(registry) -> None:
    register_jax(registry, "act.silu_mul", silu_mul, "silu_mul")
    register_jax(registry, "act.gelu_mul", gelu_mul, "gelu_mul")
