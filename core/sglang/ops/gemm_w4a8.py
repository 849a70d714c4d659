"""gemm.w4a8: gemm.int4's weights (AWQ packing, integer or float zero points: GGUF Q4_0 / Q4_1
as sglang.layers.quantization.gguf serves them) times activations quantized to int8 per row and
group of G input features, the group of the weight's scales. This is llama.cpp's Q4_1 x Q8_1
(and Q4_0 x Q8_0) dot product: per row m and group g, dx = amax |x[m, g]| / 127 and
xq = round_half_even(x / dx) in [-127, 127] (sglang.ops.quant.int8.quantize_int8_groupwise),
both in float32 arithmetic (IEEE division, as llama.cpp's Q8 quantization is float32); then

    out[m, n] = sum_g dx[m, g] s[g, n] (sum_{k in g} xq[m, k] q[k, n] - z[g, n] sum_{k in g} xq[m, k])

with integer sums inside a group (int32 in a kernel, exact in float64 here) and float sums across
groups. It differs from gemm.int4 (W4A16) by the activations' rounding, a relative error of
about 1 / (127 sqrt(12)) ~ 0.2% of a group's largest activation per element: a distinct op, so
that gemm.int4 keeps its tight tolerance and a kernel that quantizes activations cannot pass
there. Against this reference a correct kernel differs only by the float roundings gemm.int4
allows: the quantized activations are defined bit for bit (float32 dx, float32 x / dx, round
half to even), so no activation-quantization floor is granted. (A kernel multiplying by 1 / dx
instead rounds some of bf16's frequent exact ties apart: ~7e-4 relative RMS, and fails.)"""

from __future__ import annotations

import torch

from sglang.ops.gemm import (
    GLOBAL_TOLERANCES,
    gemm_cases,
    linear_weight,
)
from sglang.ops.quant import int4 as q4
from sglang.ops.quant.int8 import quantize_int8_groupwise
from sglang.ops.spec import GLOBAL, Case, OpSpec, compute_dtype, randn
from sglang.ops.specs import register_spec


def w4a8(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor,
    packing: str,
    group_size: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [M, K] float; qweight int32 [K, N/8] (AWQ packing); scales [K/G, N]; qzeros int32
    [K/G, N/8] (AWQ) or float [K/G, N]; bias [N] or None -> [M, N] in x.dtype, with
    w[k, n] = (q[k, n] - z[g(k), n]) * scales[g(k), n] as in gemm.int4 and x quantized to int8
    per row and group of `group_size` (the module docstring)."""
    if packing != "awq":
        raise ValueError(f"gemm.w4a8 takes AWQ packing, got {packing!r}")
    if qzeros.is_floating_point():
        q, z = q4.unpack_qweight(qweight, packing), qzeros
    else:
        q, z = q4.unpack_awq(qweight, qzeros)
    k, n = q.shape
    if group_size <= 0 or k % group_size or x.shape[-1] != k:
        raise ValueError(f"x {tuple(x.shape)} and qweight {(k, n)} in groups of {group_size}")
    acc = compute_dtype(x, scales)
    m, groups = x.shape[0], k // group_size
    # The activations' quantization is float32 arithmetic in every dtype, the oracle's too (x
    # of a case is float32-exact): bf16 activations often sit exactly on a rounding tie of
    # x / dx, where float32 and float64 quotients round apart.
    xq, dx = quantize_int8_groupwise(x.float(), group_size)
    xg = xq.to(torch.float64).view(m, groups, group_size)
    qg = q.to(torch.float64).view(groups, group_size, n)
    dots = torch.einsum("mgk,gkn->mgn", xg, qg)  # exact: integers below 2^53
    xsum = xg.sum(-1)  # [M, G]
    zg = z.to(torch.float64)  # [K/G, N]
    exact = dots - xsum.unsqueeze(-1) * zg.unsqueeze(0)
    scale = dx.to(torch.float64).unsqueeze(-1) * scales.to(torch.float64).unsqueeze(0)
    out = (exact * scale).sum(1).to(acc)
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


# K whole groups of 32 (GGUF's block) or 128, N a multiple of 8 but not of 16 where possible.
SHAPES = (
    (0, 128, 64, False),
    (1, 128, 96, True),
    (3, 576, 136, False),
    (7, 1536, 200, True),
    (33, 1152, 504, True),
)
BF16_SHAPES = ((1, 576, 1536, False), (4, 1536, 576, True))
VARIANTS = {"floatzeros": ("int4:float_zeros",), "awq": ("int4:awq",)}


def _params(m: int, k: int, n: int, bias: bool) -> list:
    out = []
    for v, extra in VARIANTS.items():
        for g in (32, 128) if v == "floatzeros" and k % 128 == 0 else (32,):
            params = {"m": m, "k": k, "n": n, "bias": bias, "variant": v, "group_size": g}
            out.append(((v, f"G{g}"), params, extra))
    return out


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    k, g = p["k"], p["group_size"]
    w = linear_weight(gen, p["n"], k)
    if p["variant"] == "floatzeros":
        quant = q4.quantize_int4(w, g, None, scale_dtype=dt, float_zeros=True)
        qweight, qzeros = q4.pack_qweight(quant.q, "awq"), quant.zeros
    else:
        quant = q4.quantize_int4(w, g, None, scale_dtype=dt)
        qweight, qzeros = q4.pack_awq(quant.q, quant.zeros)
    args = {
        "x": randn(gen, p["m"], k, dtype=dt),
        "qweight": qweight,
        "scales": quant.scales,
        "qzeros": qzeros,
        "packing": "awq",
        "group_size": g,
    }
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.w4a8",
        signature=(
            "(x[M,K], qweight[K,N/8] awq, scales[K/G,N], qzeros, packing, group_size, bias=None) "
            "-> [M,N]; gemm.int4's weight, x quantized to int8 per row and group of G "
            "(dx = amax/127), integer dots per group"
        ),
        reference=w4a8,
        cases=lambda: gemm_cases("gemm.w4a8", _params, shapes=SHAPES, bf16_shapes=BF16_SHAPES),
        make_inputs=_inputs,
        tolerances=GLOBAL_TOLERANCES,
        metric=GLOBAL,
        requires=("int4:w4a8",),
        weight_args=("qweight", "scales", "qzeros"),
    )
)
