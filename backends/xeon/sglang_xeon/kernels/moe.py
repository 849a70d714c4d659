"""moe.route and moe.experts on the CPU.

route: the core's vectorised torch route (sglang.ops.moe_route_vectorized).
experts: the T*k (token, slot) pairs are sorted by expert id once; each active expert then runs
two GEMMs (oneDNN through F.linear, in the input dtype) over its contiguous block of tokens, and
the k partial outputs of each token are combined with the routing weights in float32. FP8
block-scaled (moe:fp8_block), MXFP4 (moe:mxfp4) and int4 (moe:int4) experts stay quantized in
memory: an active
expert's two matrices are dequantized to the input dtype for its GEMMs, so a step touches only
the routed experts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sglang.ops.moe import gated
from sglang.ops.moe_route_vectorized import route
from sglang.ops.quant.experts import dequantize_experts


def _expert(w, scale, zeros, e, block_size, halves, dtype):
    """Expert e's matrix in `dtype` (dequantized when `scale` is given)."""
    if scale is None:
        return w[e]
    z = None if zeros is None else zeros[e : e + 1]
    one = dequantize_experts(w[e : e + 1], scale[e : e + 1], block_size, halves, torch.float32, z)
    return one[0].to(dtype)


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
):
    tokens, hidden = x.shape
    top_k = topk_ids.shape[1]
    inter = w2.shape[-1] * (2 if w2.dtype == torch.uint8 else 1)  # MXFP4, int4: two codes a byte
    act = F.silu if activation == "silu" else F.gelu
    flat_ids = topk_ids.reshape(-1).to(torch.int64)
    order = flat_ids.argsort(stable=True)
    sorted_ids = flat_ids[order]
    counts = torch.bincount(sorted_ids + 1, minlength=w13.shape[0] + 1).tolist()
    partial = torch.zeros(tokens * top_k, hidden, dtype=x.dtype)
    start = counts[0]  # slots with id -1 sort first and stay zero
    for e, n in enumerate(counts[1:]):
        if n == 0:
            continue
        slots = order[start : start + n]
        gate_up = F.linear(
            x[slots // top_k],
            _expert(w13, w13_scale, w13_zeros, e, block_size, 2, x.dtype),
            None if w13_bias is None else w13_bias[e],
        )
        if activation == "swigluoai":
            up_gate = gate_up.float()  # (up + 1) cancels: not in the half type
            h = gated(up_gate[:, :inter], up_gate[:, inter:], activation).to(x.dtype)
        else:
            h = act(gate_up[:, :inter]).mul_(gate_up[:, inter:])
        w2e = _expert(w2, w2_scale, w2_zeros, e, block_size, 1, x.dtype)
        partial[slots] = F.linear(h, w2e, None if w2_bias is None else w2_bias[e])
        start += n
    weights = topk_weights.float().unsqueeze(1)  # [T, 1, k]
    out = torch.bmm(weights, partial.view(tokens, top_k, hidden).float())
    return out.view(tokens, hidden).to(x.dtype)


def register(registry) -> None:
    registry.register("moe.route", route, name="xeon.moe_route")
    registry.register("moe.experts", experts, name="xeon.moe_experts")
