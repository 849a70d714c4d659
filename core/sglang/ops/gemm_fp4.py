"""gemm.fp4: W4A16 with e2m1 weights and NVFP4 or MXFP4 block scales. Codes, packing and
scale conventions (and the public code they were checked against): sglang.ops.quant.fp4."""

from __future__ import annotations

import torch

from sglang.ops.gemm import GLOBAL_TOLERANCES, gemm_cases, linear_weight
from sglang.ops.quant import fp4 as q4
from sglang.ops.spec import GLOBAL, Case, OpSpec, compute_dtype, randn
from sglang.ops.specs import register_spec

FORMATS = ("nvfp4", "mxfp4")


def fp4(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    format: str,
    global_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [M, K] float; weight: uint8 [N, K/2], two e2m1 codes per byte (low nibble = even k);
    bias: [N] or None -> x @ w.T + bias, [M, N] in x.dtype.

    format "nvfp4": weight_scale float8_e4m3fn [N, K/16]; global_scale float32 scalar (ModelOpt
      weight_scale_2; None means 1); w = e2m1 * weight_scale * global_scale.
    format "mxfp4": weight_scale uint8 e8m0 [N, K/32]; w = e2m1 * 2 ** (weight_scale - 127).
    Dequantized in float32 (float64 under the oracle), then one matmul."""
    acc = compute_dtype(x)
    if format == "nvfp4":
        g = global_scale if global_scale is not None else torch.ones((), device=weight.device)
        w = q4.dequantize_nvfp4(weight, weight_scale, g, acc)
    elif format == "mxfp4":
        w = q4.dequantize_mxfp4(weight, weight_scale, acc)
    else:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    out = x.to(acc) @ w.t()
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


# K a multiple of 32 (MXFP4's block; NVFP4's is 16), N free (odd where possible).
SHAPES = (
    (0, 64, 48, False),
    (1, 128, 96, True),
    (7, 224, 129, False),
    (33, 1056, 511, True),
    (128, 4096, 256, True),
)
BF16_SHAPES = ((16, 4096, 1024, True),)


def _params(m: int, k: int, n: int, bias: bool) -> list:
    return [
        ((f,), {"m": m, "k": k, "n": n, "bias": bias, "format": f}, (f"fp4:{f}",)) for f in FORMATS
    ]


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    w = linear_weight(gen, p["n"], p["k"])
    args = {"x": randn(gen, p["m"], p["k"], dtype=dt), "format": p["format"]}
    if p["format"] == "nvfp4":
        args["weight"], args["weight_scale"], args["global_scale"] = q4.quantize_nvfp4(w)
    else:
        args["weight"], args["weight_scale"] = q4.quantize_mxfp4(w)
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.fp4",
        signature=(
            "(x[M,K], weight[N,K/2] uint8, weight_scale, format, global_scale=None, "
            "bias=None) -> [M,N]; format nvfp4 (e4m3 scales per 16) | mxfp4 (e8m0 per 32)"
        ),
        reference=fp4,
        cases=lambda: gemm_cases("gemm.fp4", _params, shapes=SHAPES, bf16_shapes=BF16_SHAPES),
        make_inputs=_inputs,
        tolerances=GLOBAL_TOLERANCES,
        metric=GLOBAL,
    )
)
