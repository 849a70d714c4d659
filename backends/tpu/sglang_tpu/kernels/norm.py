"""norm.rms as a Pallas kernel: a grid over blocks of ROWS rows, each program normalising its
rows whole (D in one block), the residual add fused in. Statistics in float32; the float32 sum
h = x + residual is normalised (its rounded copy is the new residual stream), as the spec says.
Rows are padded up to a multiple of ROWS and the padding dropped after.
"""

from __future__ import annotations

import functools

from sglang_tpu.jax_bridge import interpret, jax, jnp, pallas, to_jax, to_torch
from sglang_tpu.kernels.common import register_jax

ROWS = 8  # a TPU vreg holds 8 sublanes


def _kernel(*refs, eps: float, residual: bool):
    f32 = jnp().float32
    if residual:
        x_ref, r_ref, w_ref, o_ref, h_ref = refs
    else:
        x_ref, w_ref, o_ref = refs
    h = x_ref[...].astype(f32)
    if residual:
        h = h + r_ref[...].astype(f32)
        h_ref[...] = h.astype(h_ref.dtype)
    var = jnp().mean(h * h, axis=-1, keepdims=True)
    out = h * jax().lax.rsqrt(var + eps) * w_ref[...].astype(f32)
    o_ref[...] = out.astype(o_ref.dtype)


@functools.cache
def _call(rows: int, d: int, dtype_name: str, eps: float, residual: bool):
    pl = pallas()
    dtype = jnp().dtype(dtype_name)
    row_block = pl.BlockSpec((ROWS, d), lambda i: (i, 0))
    in_specs = (
        [row_block] + ([row_block] if residual else []) + [pl.BlockSpec((1, d), lambda i: (0, 0))]
    )
    out_shape = [jax().ShapeDtypeStruct((rows, d), dtype)] * (2 if residual else 1)
    call = pl.pallas_call(
        functools.partial(_kernel, eps=eps, residual=residual),
        grid=(rows // ROWS,),
        in_specs=in_specs,
        out_specs=[row_block] * len(out_shape),
        out_shape=out_shape,
        interpret=interpret(),
    )
    return jax().jit(call)


def rms_norm(x, weight, eps=1e-6, residual=None):
    shape, d = x.shape, x.shape[-1]
    x2 = x.reshape(-1, d)
    t = x2.shape[0]
    if t == 0 or d == 0:
        out = x.new_empty(shape)
        return out if residual is None else (out, (x + residual).to(x.dtype))
    padded = -(-t // ROWS) * ROWS
    pad = jnp().zeros((padded - t, d), dtype=jnp().dtype(str(x.dtype).split(".")[1]))
    xs = [jnp().concatenate([to_jax(x2), pad])]
    if residual is not None:
        xs.append(jnp().concatenate([to_jax(residual.reshape(-1, d).to(x.dtype)), pad]))
    w = to_jax(weight).reshape(1, d)
    dtype_name = str(x.dtype).split(".")[1]
    outs = _call(padded, d, dtype_name, float(eps), residual is not None)(*xs, w)
    out = to_torch(outs[0][:t], x.device).view(shape)
    if residual is None:
        return out
    return out, to_torch(outs[1][:t], x.device).view(shape)


def register(registry) -> None:
    register_jax(registry, "norm.rms", rms_norm, "pallas_rms_norm")
