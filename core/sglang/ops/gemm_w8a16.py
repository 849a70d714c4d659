"""gemm.w8a16: weight-only int8, group-wise scales and optional float zero points; activations
stay in their float type.

w[n, k] = (q[n, k] - z[n, k // G]) * s[n, k // G], q int8. This is the serving form of GGUF's
8-bit and 5/6-bit block types, whose codes it holds exactly: Q8_0 (G 32, no zero), Q6_K (G 16,
s = d * scale, codes - 32), Q5_0 (G 32, codes - 16), Q5_1 / Q5_K (G 32, 0..31 with a float
zero -m / s), and of 4-bit layers merged with such shards (see sglang.model_loader.gguf_blocks).
Scales and zeros are float32: a GGUF block's float16 scale, or the product of two, is exact
there (it is not in bfloat16).
"""

from __future__ import annotations

import torch

from sglang.ops.gemm import GLOBAL_TOLERANCES, gemm_cases, linear_weight
from sglang.ops.spec import GLOBAL, Case, OpSpec, compute_dtype, randn
from sglang.ops.specs import register_spec


def dequantize_w8(
    qweight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    group_size: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """qweight int8 [N, K], scales / zeros [N, K/G] -> w [N, K] in `dtype`."""
    n, k = qweight.shape
    q = qweight.to(dtype).view(n, k // group_size, group_size)
    if zeros is not None:
        q = q - zeros.to(dtype).unsqueeze(-1)
    return (q * scales.to(dtype).unsqueeze(-1)).view(n, k)


def w8a16(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    group_size: int,
    zeros: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [M, K] float; qweight: int8 [N, K]; scales, zeros: float32 [N, K/G] (zeros None:
    symmetric); bias: [N] or None -> x @ w.T + bias, [M, N] in x.dtype. Dequantized in float32
    (float64 under the oracle), then one matmul."""
    if qweight.dtype != torch.int8:
        raise ValueError(f"qweight must be int8, got {qweight.dtype}")
    n, k = qweight.shape
    if group_size <= 0 or k % group_size or scales.shape != (n, k // group_size):
        raise ValueError(
            f"scales {tuple(scales.shape)} do not tile qweight {(n, k)} in groups of {group_size}"
        )
    acc = compute_dtype(x, scales)
    out = x.to(acc) @ dequantize_w8(qweight, scales, zeros, group_size, acc).t()
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


def quantize_w8(
    w: torch.Tensor, group_size: int, zero_points: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A float weight [N, K] -> (q int8, scales, zeros or None), float32 [N, K/G]: symmetric
    (amax / 127) or, with zero_points, 5-bit codes 0..31 with a float zero (GGUF Q5_1's grid)."""
    n, k = w.shape
    g = w.float().view(n, k // group_size, group_size)
    if zero_points:
        lo, hi = g.amin(-1), g.amax(-1)
        scales = ((hi - lo) / 31).clamp_min(1e-12)
        zeros = -lo / scales
        q = torch.round(g / scales.unsqueeze(-1) + zeros.unsqueeze(-1)).clamp(0, 31)
        return q.to(torch.int8).view(n, k), scales, zeros
    scales = (g.abs().amax(-1) / 127).clamp_min(1e-12)
    q = torch.round(g / scales.unsqueeze(-1)).clamp(-127, 127)
    return q.to(torch.int8).view(n, k), scales, None


SHAPES = (
    (0, 64, 48, False),
    (1, 128, 96, True),
    (7, 224, 136, False),
    (16, 576, 200, True),
    (33, 1152, 504, True),
)
BF16_SHAPES = ((1, 4096, 1024, False),)


def _params(m: int, k: int, n: int, bias: bool) -> list:
    variants = [("G32", 32, False), ("G16", 16, False), ("G32-zeros", 32, True)]
    return [
        ((name,), {"m": m, "k": k, "n": n, "bias": bias, "group_size": g, "zeros": z}, ())
        for name, g, z in variants
    ]


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    q, scales, zeros = quantize_w8(linear_weight(gen, p["n"], p["k"]), p["group_size"], p["zeros"])
    args = {
        "x": randn(gen, p["m"], p["k"], dtype=dt),
        "qweight": q,
        "scales": scales,
        "group_size": p["group_size"],
    }
    if zeros is not None:
        args["zeros"] = zeros
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.w8a16",
        signature=(
            "(x[M,K], qweight[N,K] int8, scales[N,K/G] f32, group_size, zeros[N,K/G] f32=None, "
            "bias[N]=None) -> x @ ((q - z) * s).T + bias [M,N]"
        ),
        reference=w8a16,
        cases=lambda: gemm_cases("gemm.w8a16", _params, shapes=SHAPES, bf16_shapes=BF16_SHAPES),
        make_inputs=_inputs,
        tolerances=GLOBAL_TOLERANCES,
        metric=GLOBAL,
        weight_args=("qweight", "scales", "zeros"),
    )
)
