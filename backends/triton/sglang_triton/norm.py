"""norm.rms on GPUs: one Triton program per row, the residual add fused in.

Each program loads its row of x (and of residual) once, forms h = x + residual in float32,
writes h rounded to x.dtype as the new residual stream, and normalises the float32 h (not its
rounded copy, as the spec's reference does). Outputs are new tensors: the inputs are left as
they are. Rows longer than MAX_BLOCK are walked in chunks (two passes over the row).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton import pdl
from sglang_triton.common import next_pow2, row_warps, rows_2d
from sglang_triton.target import warps

MAX_BLOCK = 16384  # one register tile per row up to this width


@triton.jit
def _rms_norm_kernel(
    x_ptr,
    res_ptr,
    w_ptr,
    out_ptr,
    res_out_ptr,
    D,
    stride_x,
    stride_r,
    stride_o,
    stride_ro,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK: tl.constexpr,
    ONE_PASS: tl.constexpr,
    PDL: tl.constexpr,
):
    pdl.enter(PDL)
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    r_row = res_ptr + row * stride_r
    o_row = out_ptr + row * stride_o
    ro_row = res_out_ptr + row * stride_ro
    cols = tl.arange(0, BLOCK)
    if ONE_PASS:
        mask = cols < D
        h = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            h += tl.load(r_row + cols, mask=mask, other=0.0).to(tl.float32)
            tl.store(ro_row + cols, h.to(res_out_ptr.dtype.element_ty), mask=mask)
        # float32 even where eps comes as a float64 scalar (torch.compile passes it so)
        inv = tl.rsqrt((tl.sum(h * h, axis=0) / D + eps).to(tl.float32))
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(o_row + cols, (h * inv * w).to(out_ptr.dtype.element_ty), mask=mask)
    else:
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
        for start in range(0, D, BLOCK):
            c = start + cols
            mask = c < D
            h = tl.load(x_row + c, mask=mask, other=0.0).to(tl.float32)
            if HAS_RESIDUAL:
                h += tl.load(r_row + c, mask=mask, other=0.0).to(tl.float32)
                tl.store(ro_row + c, h.to(res_out_ptr.dtype.element_ty), mask=mask)
            acc += h * h
        inv = tl.rsqrt((tl.sum(acc, axis=0) / D + eps).to(tl.float32))
        for start in range(0, D, BLOCK):
            c = start + cols
            mask = c < D
            # The float32 h again, from x and residual (not the rounded residual stream).
            h = tl.load(x_row + c, mask=mask, other=0.0).to(tl.float32)
            if HAS_RESIDUAL:
                h += tl.load(r_row + c, mask=mask, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + c, mask=mask, other=0.0).to(tl.float32)
            tl.store(o_row + c, (h * inv * w).to(out_ptr.dtype.element_ty), mask=mask)


def rms_norm(x, weight, eps=1e-6, residual=None, launch=None):
    """The spec's norm.rms: x [..., D] -> out, or (out, x + residual) with a residual."""
    shape, d = x.shape, x.shape[-1]
    x2 = rows_2d(x)
    out = torch.empty(x2.shape, dtype=x.dtype, device=x.device)
    res2 = rows_2d(residual) if residual is not None else x2
    res_out = torch.empty_like(out) if residual is not None else out
    rows = x2.shape[0]
    if rows and d:
        block = min(next_pow2(d), MAX_BLOCK)
        _rms_norm_kernel[(rows,)](
            x2,
            res2,
            weight,
            out,
            res_out,
            d,
            x2.stride(0),
            res2.stride(0),
            out.stride(0),
            res_out.stride(0),
            float(eps),
            HAS_RESIDUAL=residual is not None,
            BLOCK=block,
            ONE_PASS=block >= d,
            num_warps=warps(row_warps(block), launch),
            **pdl.args(x.device),
        )
    if residual is None:
        return out.view(shape)
    return out.view(shape), res_out.view(shape)


def register(registry, target) -> None:
    fn = target.bind(rms_norm, "norm")
    registry.register("norm.rms", fn, name=target.name("triton_rms_norm"))
