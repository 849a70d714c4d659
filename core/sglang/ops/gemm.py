"""gemm.dense and gemm.int8: the linear layers' matrix multiplies, out = x @ weight.T + bias.

Weights use torch.nn.Linear's layout [N, K] (N output features, K input features); outputs are
[M, N] in x's dtype. The low-bit variants live beside this module (gemm_fp8, gemm_int4,
gemm_fp4) and share GLOBAL_TOLERANCES; their formats are defined in sglang.ops.quant.
"""

from __future__ import annotations

import torch

from sglang.ops.precision import with_error_bounds
from sglang.ops.quant.int8 import quantize_int8_rowwise
from sglang.ops.spec import GLOBAL, Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec

DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# For low-bit GEMMs (GLOBAL metric: no element-wise check). A correct kernel differs
# from the float64 oracle only by the rounding of its output to x.dtype, the rounding of
# dequantized weights (or of partial products) to x.dtype, accumulation order, and rare ties
# in activation quantization. Each rounding to a dtype with unit roundoff u adds about u^2/4:
# bf16 (u = 2^-8) ~4e-6, fp16 (u = 2^-11) ~6e-8, fp32 ~1e-15. The bounds sit 10-100x above two
# such roundings: a wrong nibble order, scale layout or zero convention gives errors of order 1.
# The bounds are set as a relative RMS error (NMSE is its square) and a peak error, derived in
# sglang.ops.precision: three roundings (dequantized weights, partial products, output) and
# float32 sums over K <= 4096.
# Activation-quantizing formats (fp8 and int8 activations) add a floor: the kernel's per-token
# scale and the oracle's differ in their last bits, so a few activations land on the
# neighbouring code; measured 6e-5 (relative RMS) in float32, below every 16-bit bound.
ACTIVATION_QUANTIZATION_FLOOR = 2.5e-4


def global_tolerances(roundings: int = 3, floor: float = 0.0) -> dict[torch.dtype, Tolerance]:
    return with_error_bounds(
        {dt: Tolerance() for dt in DTYPES},
        roundings=roundings,
        accumulation=4096,
        floor=floor,
        peak=True,
    )


GLOBAL_TOLERANCES = global_tolerances()


def linear_weight(gen: torch.Generator, n: int, k: int) -> torch.Tensor:
    """A float32 weight [N, K] with N(0, 1/K) entries, so outputs of unit-variance inputs are
    O(1) (which the absolute tolerances assume)."""
    return randn(gen, n, k, dtype=torch.float32, scale=k**-0.5)


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x: [M, K], weight: [N, K], bias: [N] or None -> x @ weight.T + bias, [M, N] in x.dtype.
    Products and sums in float32 (float64 under the oracle), rounded once at the end."""
    acc = compute_dtype(x, weight)
    out = x.to(acc) @ weight.to(acc).t()
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


def int8(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """W8A8. x: [M, K] float; weight: [N, K] int8 (symmetric, per output channel); weight_scale:
    [N] float32; bias: [N] or None -> [M, N] in x.dtype.

    x is quantized per token: x_scale = amax(|x[m]|) / 127, x_q = clamp(round_half_even(x /
    x_scale), -127, 127) (sglang.ops.quant.int8). The integer products accumulate exactly (as
    int32 would; float64 holds them exactly), then out = acc * x_scale[:, None] *
    weight_scale[None, :] + bias."""
    acc = compute_dtype(x, weight_scale)
    xq, x_scale = quantize_int8_rowwise(x.to(acc))
    exact = (xq.to(torch.float64) @ weight.to(torch.float64).t()).to(acc)
    out = exact * x_scale.unsqueeze(1) * weight_scale.to(acc).unsqueeze(0)
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


# (M, K, N, bias) for every dtype: empty batch, decode, odd sizes, ragged, a K=4096 prefill
# chunk; bfloat16 (the serving dtype) adds full-size projections (Llama-3-8B: 4096 -> 4096,
# 4096 -> 1024 for GQA's k/v). Kept small enough for the float64 oracle on two CPU cores.
SHAPES = (
    (0, 64, 48, False),
    (1, 128, 96, True),
    (7, 257, 129, False),
    (33, 1000, 511, True),
    (128, 4096, 256, True),
)
BF16_SHAPES = ((1, 4096, 4096, False), (16, 4096, 1024, True))


def gemm_cases(
    op: str,
    make_params,
    requires: tuple[str, ...] = (),
    shapes: tuple = SHAPES,
    bf16_shapes: tuple = BF16_SHAPES,
) -> list[Case]:
    """Cases over `shapes` for every dtype plus `bf16_shapes` for bfloat16. make_params(m, k,
    n, bias) -> list of (name parts, params, extra requires) lets a format add its variants."""
    cases = []
    for dt in DTYPES:
        shapes_dt = shapes + (bf16_shapes if dt == torch.bfloat16 else ())
        for m, k, n, bias in shapes_dt:
            for parts, params, extra in make_params(m, k, n, bias):
                name = case_name(dt, f"M{m}", f"K{k}", f"N{n}", *parts, "bias" if bias else "")
                cases.append(Case(op, name, dt, params, (*requires, *extra)))
    return cases


def _plain(m: int, k: int, n: int, bias: bool) -> list:
    return [((), {"m": m, "k": k, "n": n, "bias": bias}, ())]


def _dense_inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    args = {
        "x": randn(gen, p["m"], p["k"], dtype=dt),
        "weight": linear_weight(gen, p["n"], p["k"]).to(dt),
    }
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


def _int8_inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    weight, weight_scale = quantize_int8_rowwise(linear_weight(gen, p["n"], p["k"]))
    args = {
        "x": randn(gen, p["m"], p["k"], dtype=dt),
        "weight": weight,
        "weight_scale": weight_scale.to(torch.float32),
    }
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


DENSE_SPEC = register_spec(
    OpSpec(
        name="gemm.dense",
        signature="(x[M,K], weight[N,K], bias[N]=None) -> x @ weight.T + bias [M,N]",
        reference=dense,
        cases=lambda: gemm_cases("gemm.dense", _plain),
        make_inputs=_dense_inputs,
        # Outputs are O(1) (see linear_weight). rtol: one rounding of the output to the dtype
        # (relative error <= u: bf16 2^-8, fp16 2^-11) with 2-3x room for a second rounding
        # (bias added after a rounded product, reduced-precision split-K reductions); atol: the
        # float32 accumulation error over K <= 4096 (~1e-5) and, for 16-bit types, partial
        # sums rounded to the dtype. TF32 (errors ~1e-3) fails float32 on purpose.
        # rel_rms: two roundings (a split-K partial sum, the output) and float32 sums over
        # K <= 4096.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-4, rtol=1e-4),
                torch.float16: Tolerance(atol=1e-3, rtol=1e-3),
                torch.bfloat16: Tolerance(atol=1e-2, rtol=1e-2),
            },
            roundings=2,
            accumulation=4096,
        ),
        weight_args=("weight",),
    )
)

INT8_SPEC = register_spec(
    OpSpec(
        name="gemm.int8",
        signature=(
            "(x[M,K], weight[N,K] int8, weight_scale[N] f32, bias[N]=None) -> [M,N]; "
            "x quantized per token (symmetric int8), int32 accumulation"
        ),
        reference=int8,
        cases=lambda: gemm_cases("gemm.int8", _plain),
        make_inputs=_int8_inputs,
        tolerances=global_tolerances(floor=ACTIVATION_QUANTIZATION_FLOOR),
        metric=GLOBAL,
        requires=("int8:w8a8",),
    )
)
