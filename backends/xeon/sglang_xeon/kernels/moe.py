"""moe.route and moe.experts on the CPU.

route: the core's vectorised torch route (sglang.ops.moe_route_vectorized).
experts: the T*k (token, slot) pairs are sorted by expert id once; each active expert then runs
two GEMMs (oneDNN through F.linear, in the input dtype) over its contiguous block of tokens, and
the k partial outputs of each token are combined with the routing weights in float32. FP8
block-scaled (moe:fp8_block), MXFP4 (moe:mxfp4) and int4 (moe:int4; act-order ones with their
inputs reordered per expert, moe:act_order) experts stay quantized in memory: an active
expert's two matrices are dequantized to the input dtype for its GEMMs, so a step touches only
the routed experts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from sglang.ops.moe import gated
from sglang.ops.moe_route_vectorized import route
from sglang.ops.quant.experts import dequantize_experts
from sglang.ops.quant.fp4 import unpack_fp4

from sglang_xeon import native
from sglang_xeon.kernels.gemm_int4 import NATIVE_MAX_M, native_form, native_int4_unavailable

INTEGERS, E2M1 = 0, 1  # what the native kernel's codes stand for (csrc/gemm_int4.cpp)


class NativeExperts(NamedTuple):
    """One stacked expert matrix [E, N, K] in the native int4 form, an expert a row."""

    forms: torch.Tensor  # uint8 [E, bytes]: gemm_int4.native_form of each expert
    n: int
    k: int
    group: int
    codes: int  # INTEGERS (int4: (q - z) s) or E2M1 (MXFP4: e2m1(q) s)

    def matmul(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """x [M, K] @ expert e's matrix transposed -> [M, N] in x.dtype: the native GEMV for up
        to NATIVE_MAX_M bf16 rows, else the natively dequantized bf16 matrix (MXFP4's weights
        are exact in bf16: e2m1 times a power of two) in x's dtype."""
        if x.dtype == torch.bfloat16 and x.shape[0] <= NATIVE_MAX_M:
            return native.ops.int4_gemm(x, self.forms[e], self.group, self.n, self.codes)
        dense = native.ops.int4_dequantize(self.forms[e], self.group, self.n, self.k, self.codes)
        return F.linear(x, dense.to(x.dtype))


def _native_experts(w, scale, zeros) -> NativeExperts | None:
    """Int4 experts (uint8 codes [E, N, K/2], scales and zeros [E, N, K/G]) or MXFP4 ones
    (zeros None: e8m0 scales [E, N, K/32]) in the native form, or None where it would not hold
    them exactly (int4 scales or zeros not bfloat16, groups not a multiple of 4)."""
    e, n, half_k = w.shape
    k = 2 * half_k
    group = k // scale.shape[-1]
    if zeros is None:  # MXFP4: 2^(e - 127), exact in bf16 (e = 0: a subnormal), no offset
        codes = E2M1
        scale = torch.exp2(scale.float() - 127).to(torch.bfloat16)
    elif scale.dtype != torch.bfloat16 or zeros.dtype != torch.bfloat16 or group % 4:
        return None
    else:
        codes = INTEGERS
    forms = [
        native_form(unpack_fp4(w[i]), scale[i].t(), None if zeros is None else zeros[i].t(), group)
        for i in range(e)
    ]
    return NativeExperts(torch.stack(forms), n, k, group, codes)


def prepare(args: dict) -> dict:
    """moe.experts' weights -> the native form where it applies (see the module docstring),
    else as they are."""
    weights = {
        name: args[name]
        for name in ("w13", "w2", "w13_scale", "w2_scale", "w13_zeros", "w2_zeros")
        if args.get(name) is not None
    }
    if args.get("w13_perm") is not None:
        weights["w13_perm"] = args["w13_perm"]
    int4 = args.get("w13_zeros") is not None
    mxfp4 = not int4 and args["w13"].dtype == torch.uint8 and args.get("w13_scale") is not None
    if not (int4 or mxfp4):
        return weights
    w13 = _native_experts(args["w13"], args["w13_scale"], args.get("w13_zeros"))
    w2 = _native_experts(args["w2"], args["w2_scale"], args.get("w2_zeros"))
    if w13 is None or w2 is None:
        return weights
    perm = {"w13_perm": weights["w13_perm"]} if "w13_perm" in weights else {}
    return {"w13": w13, "w2": w2, **perm}


def _expert(w, scale, zeros, e, block_size, halves, dtype):
    """Expert e's matrix in `dtype` (dequantized when `scale` is given)."""
    if scale is None:
        return w[e]
    z = None if zeros is None else zeros[e : e + 1]
    one = dequantize_experts(w[e : e + 1], scale[e : e + 1], block_size, halves, torch.float32, z)
    return one[0].to(dtype)


def _by_expert(x, topk_weights, topk_ids, num_experts, inter, activation, gate_up, down):
    """The (token, slot) pairs sorted by expert id once; per active expert e, its tokens' rows
    through gate_up(rows, e) -> [n, 2I] (bias included), the activation, and down(h, e) -> [n, D]
    (bias included); the k partial outputs of each token combined with the routing weights in
    float32."""
    tokens, hidden = x.shape
    top_k = topk_ids.shape[1]
    flat_ids = topk_ids.reshape(-1).to(torch.int64)
    order = flat_ids.argsort(stable=True)
    counts = torch.bincount(flat_ids[order] + 1, minlength=num_experts + 1).tolist()
    partial = torch.zeros(tokens * top_k, hidden, dtype=x.dtype)
    start = counts[0]  # slots with id -1 sort first and stay zero
    for e, n in enumerate(counts[1:]):
        if n == 0:
            continue
        slots = order[start : start + n]
        up_gate = gate_up(x[slots // top_k], e)
        if activation == "swigluoai":
            wide = up_gate.float()  # (up + 1) cancels: not in the half type
            h = gated(wide[:, :inter], wide[:, inter:], activation).to(x.dtype)
        else:
            act = F.silu if activation == "silu" else F.gelu
            h = act(up_gate[:, :inter]).mul_(up_gate[:, inter:])
        partial[slots] = down(h, e)
        start += n
    weights = topk_weights.float().unsqueeze(1)  # [T, 1, k]
    out = torch.bmm(weights, partial.view(tokens, top_k, hidden).float())
    return out.view(tokens, hidden).to(x.dtype)


def _with_bias(y: torch.Tensor, bias, e: int) -> torch.Tensor:
    return y if bias is None else y + bias[e].to(y.dtype)


def experts(
    x,
    w13,
    w2,
    topk_weights,
    topk_ids,
    activation="silu",
    w13_bias=None,
    w2_bias=None,
    w13_scale=None,
    w2_scale=None,
    block_size=(128, 128),
    w13_zeros=None,
    w2_zeros=None,
    w13_perm=None,
):
    routing = (x, topk_weights, topk_ids)

    def ordered(rows, e):  # act-order experts: expert e's input order (w13_perm)
        return rows if w13_perm is None else rows[:, w13_perm[e].long()]

    if isinstance(w13, NativeExperts):  # prepared: the native form (the GEMV for bf16)
        return _by_expert(
            *routing, w13.forms.shape[0], w2.k, activation,
            lambda rows, e: _with_bias(w13.matmul(ordered(rows, e), e), w13_bias, e),
            lambda h, e: _with_bias(w2.matmul(h, e), w2_bias, e),
        )  # fmt: skip
    inter = w2.shape[-1] * (2 if w2.dtype == torch.uint8 else 1)  # MXFP4, int4: two codes a byte

    def gate_up(rows, e):
        w = _expert(w13, w13_scale, w13_zeros, e, block_size, 2, x.dtype)
        return F.linear(ordered(rows, e), w, None if w13_bias is None else w13_bias[e])

    def down(h, e):
        w = _expert(w2, w2_scale, w2_zeros, e, block_size, 1, x.dtype)
        return F.linear(h, w, None if w2_bias is None else w2_bias[e])

    return _by_expert(*routing, w13.shape[0], inter, activation, gate_up, down)


def register(registry) -> None:
    registry.register("moe.route", route, name="xeon.moe_route")
    registry.register("moe.experts", experts, name="xeon.moe_experts")
    registry.register(
        "moe.experts",
        experts,
        name="xeon.native_moe_experts",
        priority=1,
        available=native_int4_unavailable,
        prepare=prepare,
    )
