"""act.silu_mul and act.gelu_mul on GPUs: one Triton kernel, the activation a constexpr.
(`act_mul` also serves the fused MoE kernels, with gpt-oss's clamped SwiGLU, SWIGLUOAI.)

x = [gate | up] of shape [T, 2I]; programs cover (row, block of I columns); math in float32,
one rounding of the output to x.dtype. gelu's tanh form is written with exp, as
0.5 g (1 + tanh(u)) = g * sigmoid(2u): no libdevice call, no cancellation for negative u.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from sglang.ops.moe import SWIGLU_ALPHA, SWIGLU_LIMIT

from sglang_triton import pdl
from sglang_triton.common import next_pow2, rows_2d
from sglang_triton.target import warps

SILU, GELU_TANH, GELU_ERF, SWIGLUOAI = 0, 1, 2, 3
BLOCK = 1024
ACTIVATIONS = {"silu": SILU, "gelu": GELU_ERF, "swigluoai": SWIGLUOAI}
"""moe.experts' activations (its gelu is the exact, erf one) -> act_mul's ACT."""
_ALPHA = tl.constexpr(SWIGLU_ALPHA)
_LIMIT = tl.constexpr(SWIGLU_LIMIT)


@triton.jit
def act_mul(gate, up, ACT: tl.constexpr):
    """act(gate) * up in float32 (shared with the fused MoE kernels); SWIGLUOAI (moe.experts'
    "swigluoai"): (clamp(up, -L, L) + 1) * g * sigmoid(alpha g), g = min(gate, L)."""
    if ACT == 3:
        gate = tl.minimum(gate, _LIMIT)
        up = tl.minimum(tl.maximum(up, -_LIMIT), _LIMIT) + 1.0
        y = gate / (1.0 + tl.exp(-(gate * _ALPHA)))
    elif ACT == 0:
        y = gate / (1.0 + tl.exp(-gate))
    elif ACT == 1:
        u = 0.7978845608028654 * (gate + 0.044715 * gate * gate * gate)
        y = gate / (1.0 + tl.exp(-2.0 * u))  # 0.5 g (1 + tanh u) = g sigmoid(2u)
    else:
        y = 0.5 * gate * (1.0 + tl.erf(gate * 0.7071067811865476))
    return y * up


@triton.jit
def _act_mul_kernel(
    x_ptr,
    out_ptr,
    inter,
    stride_x,
    stride_o,
    ACT: tl.constexpr,
    PDL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pdl.enter(PDL)
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < inter
    x_row = x_ptr + row * stride_x
    gate = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(x_row + inter + cols, mask=mask, other=0.0).to(tl.float32)
    y = act_mul(gate, up, ACT)
    tl.store(out_ptr + row * stride_o + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def _launch(x: torch.Tensor, act: int, launch=None) -> torch.Tensor:
    half = x.shape[-1] // 2
    x2 = rows_2d(x)
    out = torch.empty((x2.shape[0], half), dtype=x.dtype, device=x.device)
    if out.numel():
        block = min(BLOCK, next_pow2(half))
        grid = (x2.shape[0], triton.cdiv(half, block))
        _act_mul_kernel[grid](
            x2,
            out,
            half,
            x2.stride(0),
            out.stride(0),
            ACT=act,
            BLOCK=block,
            num_warps=warps(4 if block >= 512 else 2, launch),
            **pdl.args(x.device),
        )
    return out.view(*x.shape[:-1], half)


def silu_mul(x, launch=None):
    return _launch(x, SILU, launch)


def gelu_mul(x, approximate="tanh", launch=None):
    if approximate not in ("tanh", "none"):
        raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")
    return _launch(x, GELU_TANH if approximate == "tanh" else GELU_ERF, launch)


def register(registry, target) -> None:
    silu, gelu = target.bind(silu_mul, "activation"), target.bind(gelu_mul, "activation")
    registry.register("act.silu_mul", silu, name=target.name("triton_silu_mul"))
    registry.register("act.gelu_mul", gelu, name=target.name("triton_gelu_mul"))
