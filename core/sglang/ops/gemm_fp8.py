"""gemm.fp8: W8A8 with float8_e4m3fn weights and activations (per-tensor, per-channel, or
DeepSeek-V3 style 128x128 blocks). Formats and scale layouts: sglang.ops.quant.fp8."""

from __future__ import annotations

import torch

from sglang.ops.gemm import (
    ACTIVATION_QUANTIZATION_FLOOR,
    gemm_cases,
    global_tolerances,
    linear_weight,
)
from sglang.ops.quant import fp8 as q8
from sglang.ops.spec import GLOBAL, Case, OpSpec, compute_dtype, randn
from sglang.ops.specs import register_spec

SCHEMES = ("per_tensor", "per_channel", "block")


def fp8(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    scheme: str,
    input_scale: torch.Tensor | None = None,
    block_size: tuple[int, int] = (128, 128),
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """x: [M, K] float; weight: [N, K] float8_e4m3fn; bias: [N] or None -> [M, N] in x.dtype.

    scheme "per_tensor": weight_scale [1]; x quantized per tensor with input_scale [1] (static)
      when given, else dynamically with amax(|x|) / 448.
    scheme "per_channel": weight_scale [N]; x quantized dynamically per token.
    scheme "block": weight_scale [ceil(N/bn), ceil(K/bk)] for block_size (bn, bk); x quantized
      dynamically per token per group of bk along K (scales [M, ceil(K/bk)]), as SGLang's
      w8a8_block_fp8_matmul with per_token_group_quant_fp8.
    Quantization is q = clamp(x / scale, -448, 448) cast to e4m3 (round to nearest even). The
    product is of the dequantized operands, q_x * s_x and q_w * s_w, in float32 (float64 under
    the oracle); the e4m3 products themselves are exact there."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if input_scale is not None and scheme != "per_tensor":
        raise ValueError(f"a static input_scale belongs to scheme 'per_tensor', not {scheme!r}")
    acc = compute_dtype(x, weight_scale)
    xf, ws = x.to(acc), weight_scale.to(acc)
    n, k = weight.shape
    if scheme == "per_tensor":
        if input_scale is not None:
            xs = input_scale.to(acc).reshape(1)
            xq = q8.quantize_fp8(xf, xs)
        else:
            xq, xs = q8.quantize_fp8_per_tensor(xf)
        x_deq, w_deq = xq.to(acc) * xs, weight.to(acc) * ws.reshape(1)
    elif scheme == "per_channel":
        xq, xs = q8.quantize_fp8_rowwise(xf)
        x_deq, w_deq = xq.to(acc) * xs.unsqueeze(1), weight.to(acc) * ws.unsqueeze(1)
    else:
        bk = block_size[1]
        xq, xs = q8.quantize_fp8_token_group(xf, bk)
        x_deq = xq.to(acc) * q8.expand_groups(xs, bk, k, 1)
        w_deq = weight.to(acc) * q8.expand_block_scale(ws, tuple(block_size), (n, k))
    out = x_deq @ w_deq.t()
    if bias is not None:
        out = out + bias.to(acc)
    return out.to(x.dtype)


# (scheme, static input scale); the static scale 3/448 saturates the |x| > 3 tail of N(0, 1)
# inputs, as a calibrated scale does for outliers.
VARIANTS = (("per_tensor", False), ("per_tensor", True), ("per_channel", False), ("block", False))
STATIC_INPUT_SCALE = 3.0 / q8.E4M3_MAX
BLOCK = (128, 128)
# One full-size projection (Llama-3-8B k/v: 4096 -> 1024) per variant; more would exceed the
# oracle's time budget (e4m3 casts are scalar loops on the CPU).
BF16_SHAPES = ((16, 4096, 1024, True),)


def _params(m: int, k: int, n: int, bias: bool) -> list:
    return [
        (
            (scheme + ("-static" if static else ""),),
            {"m": m, "k": k, "n": n, "bias": bias, "scheme": scheme, "static": static},
            (),
        )
        for scheme, static in VARIANTS
    ]


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    w = linear_weight(gen, p["n"], p["k"])
    if p["scheme"] == "per_tensor":
        weight, weight_scale = q8.quantize_fp8_per_tensor(w)
    elif p["scheme"] == "per_channel":
        weight, weight_scale = q8.quantize_fp8_rowwise(w)
    else:
        weight, weight_scale = q8.quantize_fp8_block(w, BLOCK)
    args = {
        "x": randn(gen, p["m"], p["k"], dtype=dt),
        "weight": weight,
        "weight_scale": weight_scale.to(torch.float32),
        "scheme": p["scheme"],
    }
    if p["static"]:
        args["input_scale"] = torch.tensor([STATIC_INPUT_SCALE], dtype=torch.float32)
    if p["scheme"] == "block":
        args["block_size"] = BLOCK
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.fp8",
        signature=(
            "(x[M,K], weight[N,K] e4m3fn, weight_scale, scheme, input_scale=None, "
            "block_size=(128,128), bias=None) -> [M,N]; scheme per_tensor|per_channel|block"
        ),
        reference=fp8,
        cases=lambda: gemm_cases("gemm.fp8", _params, bf16_shapes=BF16_SHAPES),
        make_inputs=_inputs,
        # Dynamic and static activation scales quantize x to e4m3: the floor applies.
        tolerances=global_tolerances(floor=ACTIVATION_QUANTIZATION_FLOOR),
        metric=GLOBAL,
        requires=("fp8:e4m3fn",),
    )
)
