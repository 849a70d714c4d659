"""gemm.dense in jax.numpy: x @ weight.T on the MXU with float32 accumulation (full float32
precision for float32 inputs), the bias added in float32, one rounding to x.dtype."""

from __future__ import annotations

import functools

import torch

from sglang_tpu.jax_bridge import jax, jnp, precision, to_jax, to_torch
from sglang_tpu.kernels.common import register_jax


@functools.cache
def _fn(has_bias: bool, full_f32: bool):
    prec = precision(torch.float32 if full_f32 else torch.bfloat16)

    def f(x, w, *bias):
        acc = jnp().dot(x, w.T, precision=prec, preferred_element_type=jnp().float32)
        if has_bias:
            acc = acc + bias[0].astype(jnp().float32)
        return acc.astype(x.dtype)

    return jax().jit(f)


def dense(x, weight, bias=None):
    m, n = x.shape[0], weight.shape[0]
    if m == 0 or n == 0 or x.shape[1] == 0:
        out = torch.zeros(m, n, dtype=x.dtype, device=x.device)
        return out if bias is None else out + bias.to(x.dtype)
    args = [to_jax(x), to_jax(weight.to(x.dtype))] + ([to_jax(bias)] if bias is not None else [])
    return to_torch(_fn(bias is not None, x.dtype == torch.float32)(*args), x.device)


def register(registry) -> None:
    register_jax(registry, "gemm.dense", dense, "dense")
