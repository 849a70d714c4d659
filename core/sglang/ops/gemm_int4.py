"""gemm.int4: W4A16 with group-wise asymmetric int4 weights in the AutoAWQ GEMM or AutoGPTQ v1
(exllama) packing, GPTQ optionally with act-order (desc_act), with integer zero points as those
checkpoints store them or float zero points (the "int4:float_zeros" scheme: GGUF Q4_1's
minimum, HQQ's and torchao's tinygemm zero points; a 4-bit grid that does not contain 0).
Layouts and the public code they were checked against: sglang.ops.quant.int4."""

from __future__ import annotations

import torch

from sglang.ops.gemm import GLOBAL_TOLERANCES, gemm_cases, linear_weight
from sglang.ops.quant import int4 as q4
from sglang.ops.spec import GLOBAL, Case, OpSpec, compute_dtype, randn
from sglang.ops.specs import register_spec

PACKINGS = ("awq", "gptq")


def int4(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor,
    packing: str,
    group_size: int,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [M, K] float; scales: [K/G, N]; bias: [N] or None -> x @ w + bias, [M, N] in x.dtype,
    with w[k, n] = (q[k, n] - z[g(k), n]) * scales[g(k), n].

    packing "awq": qweight int32 [K, N/8], qzeros int32 [K/G, N/8], both packed along N in
      AWQ's nibble order (0, 2, 4, 6, 1, 3, 5, 7); z is the stored zero; g(k) = k // G.
    packing "gptq": qweight int32 [K/8, N] packed along K, qzeros int32 [K/G, N/8] packed
      along N, both in sequential nibble order; z = stored zero + 1 (GPTQ v1); g(k) = g_idx[k]
      when g_idx (int32 [K]) is given (act-order makes it non-monotone), else k // G.
    Float zero points: qzeros a floating tensor [K/G, N], not packed, z = qzeros as it is
      (fractional: Q4_1's w = d * q + m is z = -m / d), with either packing of qweight.
    Dequantized in float32 (float64 under the oracle), then one matmul."""
    if packing not in PACKINGS:
        raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}")
    if packing == "awq" and g_idx is not None:
        raise ValueError("AWQ has no g_idx (act-order is a GPTQ feature)")
    q, z = q4.unpack_int4(qweight, qzeros, packing)
    acc = compute_dtype(x, scales)
    gi = g_idx if g_idx is not None else q4.default_g_idx(q.shape[0], group_size, q.device)
    out = x.to(acc) @ q4.dequantize_int4(q, scales, z, gi, acc)
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


# N a multiple of 8 (one int32 of zeros per 8 columns) but not of 16 where possible (136,
# 504), K a multiple of the group size (and of 8 for GPTQ's qweight).
SHAPES = (
    (0, 128, 64, False),
    (1, 128, 96, True),
    (7, 224, 136, False),
    (33, 1152, 504, True),
    (128, 4096, 256, True),
)
BF16_SHAPES = ((16, 4096, 1024, True),)
# variant -> (packing, g_idx kind, capability)
VARIANTS = {
    "awq": ("awq", None, "int4:awq"),
    "gptq": ("gptq", None, "int4:gptq"),
    "gptq-gidx": ("gptq", "trivial", "int4:gptq"),
    "gptq-actorder": ("gptq", "act_order", "int4:gptq_act_order"),
    "awq-floatzeros": ("awq", None, "int4:float_zeros"),
    "gptq-actorder-floatzeros": ("gptq", "act_order", "int4:float_zeros"),
}
FLOAT_ZEROS = ("awq-floatzeros", "gptq-actorder-floatzeros")


def group_size_for(k: int) -> int:
    return 128 if k >= 1024 else 32


def _params(m: int, k: int, n: int, bias: bool) -> list:
    names = ["awq", "gptq", "gptq-actorder"] + (["gptq-gidx"] if m in (7, 33) else [])
    names += ["awq-floatzeros"] if m in (1, 7, 33) else []
    names += ["gptq-actorder-floatzeros"] if m == 7 else []
    g = group_size_for(k)
    return [
        (
            (v, f"G{g}"),
            {"m": m, "k": k, "n": n, "bias": bias, "variant": v, "group_size": g},
            tuple(sorted({VARIANTS[v][2], *_scheme_of(VARIANTS[v])})),
        )
        for v in names
    ]


def _scheme_of(variant: tuple) -> tuple[str, ...]:
    """The integer-zero scheme a float-zero variant also needs (its packing, act-order)."""
    packing, gidx_kind, _ = variant
    if gidx_kind == "act_order":
        return ("int4:gptq_act_order",)
    return (f"int4:{packing}",)


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    packing, gidx_kind, _ = VARIANTS[p["variant"]]
    k, g = p["k"], p["group_size"]
    w = linear_weight(gen, p["n"], k)
    g_idx = None
    if gidx_kind == "trivial":
        g_idx = q4.default_g_idx(k, g)
    elif gidx_kind == "act_order":
        g_idx = q4.act_order_g_idx(torch.randperm(k, generator=gen), g)
    if p["variant"] in FLOAT_ZEROS:
        quant = q4.quantize_int4(w, g, g_idx, scale_dtype=dt, float_zeros=True)
        qweight, qzeros = q4.pack_qweight(quant.q, packing), quant.zeros
    else:
        min_zero = 1 if packing == "gptq" else 0
        quant = q4.quantize_int4(w, g, g_idx, scale_dtype=dt, min_zero=min_zero)
        pack = q4.pack_awq if packing == "awq" else q4.pack_gptq
        qweight, qzeros = pack(quant.q, quant.zeros)
    args = {
        "x": randn(gen, p["m"], k, dtype=dt),
        "qweight": qweight,
        "scales": quant.scales,
        "qzeros": qzeros,
        "packing": packing,
        "group_size": g,
    }
    if g_idx is not None:
        args["g_idx"] = g_idx
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.int4",
        signature=(
            "(x[M,K], qweight, scales[K/G,N], qzeros, packing, group_size, g_idx=None, "
            "bias=None) -> [M,N]; packing awq (qweight [K,N/8]) | gptq (qweight [K/8,N]); "
            "qzeros int32 packed [K/G,N/8] or float [K/G,N]"
        ),
        reference=int4,
        cases=lambda: gemm_cases("gemm.int4", _params, shapes=SHAPES, bf16_shapes=BF16_SHAPES),
        make_inputs=_inputs,
        tolerances=GLOBAL_TOLERANCES,
        metric=GLOBAL,
        weight_args=("qweight", "scales", "qzeros", "g_idx"),
    )
)
