"""moe.experts' conformance cases and inputs: float experts (Mixtral-, DeepSeek- and
gpt-oss-like shapes, padded slots, biases), FP8 block-scaled, MXFP4 and int4 (W4A16) experts."""

from __future__ import annotations

import torch

from sglang.ops.quant.experts import (
    quantize_expert_blocks,
    quantize_int4_experts,
    quantize_mxfp4_experts,
)
from sglang.ops.spec import Case, case_name, randn

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# (tokens, hidden, inter, experts, top_k, activation, pad, bias): empty, idle experts,
# Mixtral-like, DeepSeek-like, a realistic-ish one, padded slots (-1); gpt-oss's clamped
# SwiGLU and expert biases, together and each alone.
EXPERT_SHAPES = (
    (0, 64, 32, 8, 2, "silu", False, False),
    (3, 64, 32, 8, 2, "silu", False, False),
    (17, 96, 40, 8, 2, "silu", False, False),
    (9, 64, 24, 64, 6, "silu", False, False),
    (11, 72, 20, 16, 4, "gelu", False, False),
    (7, 48, 16, 8, 2, "silu", True, False),
    (32, 1024, 256, 8, 2, "silu", False, False),
    (13, 64, 32, 8, 4, "swigluoai", False, True),
    (7, 48, 16, 8, 2, "swigluoai", True, True),
    (9, 40, 24, 8, 2, "swigluoai", False, False),
    (11, 72, 20, 16, 4, "silu", False, True),
)


# FP8 block-scaled experts (tokens, hidden, inter, experts, top_k, activation, pad, block):
# halves of w13 and I not multiples of the block (ragged last blocks), padded slots, blocks
# taller than wide, DeepSeek-V3's 128x128 on a ragged I, and no token at all.
FP8_EXPERT_SHAPES = (
    (0, 64, 32, 8, 2, "silu", False, (32, 32)),
    (5, 64, 48, 8, 2, "silu", False, (32, 32)),
    (9, 96, 40, 16, 4, "silu", True, (32, 16)),
    (7, 72, 24, 8, 2, "gelu", False, (16, 32)),
    (6, 256, 192, 8, 2, "silu", False, (128, 128)),
)


def _expert_params(t, d, i, e, k, act, pad, bias, block=None) -> dict:
    params = {"tokens": t, "hidden": d, "inter": i, "experts": e, "top_k": k}
    params.update(activation=act, pad=pad, bias=bias)
    return params if block is None else {**params, "block": block}


def _fp8_expert_cases() -> list[Case]:
    cases = []
    for dt in DTYPES:
        for t, d, i, e, k, act, pad, block in FP8_EXPERT_SHAPES:
            name = case_name(
                dt, "fp8", f"T{t}", f"D{d}", f"I{i}", f"E{e}", f"k{k}", act,
                f"b{block[0]}x{block[1]}", "pad" if pad else "",
            )  # fmt: skip
            params = _expert_params(t, d, i, e, k, act, pad, False, block=block)
            cases.append(Case("moe.experts", name, dt, params, ("moe:fp8_block", "fp8:e4m3fn")))
    return cases


# MXFP4 experts (tokens, hidden, inter, experts, top_k, activation, pad, bias): gpt-oss's
# clamped SwiGLU with biases, silu with padded slots, I of three groups of 32, no token.
MXFP4_EXPERT_SHAPES = (
    (0, 64, 32, 8, 2, "silu", False, False),
    (5, 64, 32, 8, 2, "swigluoai", False, True),
    (9, 96, 64, 16, 4, "silu", True, False),
    (7, 64, 96, 8, 2, "swigluoai", True, True),
)


def _mxfp4_expert_cases() -> list[Case]:
    cases = []
    for dt in DTYPES:
        for t, d, i, e, k, act, pad, bias in MXFP4_EXPERT_SHAPES:
            name = case_name(
                dt, "mxfp4", f"T{t}", f"D{d}", f"I{i}", f"E{e}", f"k{k}", act,
                "pad" if pad else "", "bias" if bias else "",
            )  # fmt: skip
            params = _expert_params(t, d, i, e, k, act, pad, bias, block="mxfp4")
            needs = ("moe:mxfp4", "fp4:mxfp4") + (("moe:swigluoai",) if act == "swigluoai" else ())
            cases.append(
                Case("moe.experts", name, dt, params, needs + (("moe:bias",) if bias else ()))
            )
    return cases


# Int4 experts (tokens, hidden, inter, experts, top_k, activation, pad, group, float zeros):
# groups of 32, 64 and 128 (AWQ / GPTQ's usual), one group a row of w2 (I = G), padded slots,
# fractional zero points, gpt-oss's activation, and no token.
INT4_EXPERT_SHAPES = (
    (0, 64, 32, 8, 2, "silu", False, 32, False),
    (5, 64, 64, 8, 2, "silu", False, 32, False),
    (9, 128, 64, 16, 4, "silu", True, 64, False),
    (7, 256, 128, 8, 2, "gelu", False, 128, True),
    (6, 96, 32, 8, 2, "swigluoai", True, 32, False),
)


# Act-order int4 experts (w13_perm: each expert's own input order): two of the shapes above.
INT4_ACT_ORDER_SHAPES = (INT4_EXPERT_SHAPES[1], INT4_EXPERT_SHAPES[2])


def _int4_expert_cases() -> list[Case]:
    cases = []
    shapes = [(s, False) for s in INT4_EXPERT_SHAPES] + [(s, True) for s in INT4_ACT_ORDER_SHAPES]
    for dt in DTYPES:
        for (t, d, i, e, k, act, pad, group, float_zeros), act_order in shapes:
            name = case_name(
                dt, "int4", f"T{t}", f"D{d}", f"I{i}", f"E{e}", f"k{k}", act, f"G{group}",
                "fz" if float_zeros else "", "pad" if pad else "", "actorder" if act_order else "",
            )  # fmt: skip
            params = _expert_params(t, d, i, e, k, act, pad, False, block="int4")
            params.update(group=group, float_zeros=float_zeros, act_order=act_order)
            needs = ("moe:int4",) + (("moe:swigluoai",) if act == "swigluoai" else ())
            needs += ("moe:act_order",) if act_order else ()
            cases.append(Case("moe.experts", name, dt, params, needs))
    return cases


def expert_cases() -> list[Case]:
    cases = []
    for dt in DTYPES:
        for t, d, i, e, k, act, pad, bias in EXPERT_SHAPES:
            name = case_name(
                dt,
                f"T{t}",
                f"D{d}",
                f"I{i}",
                f"E{e}",
                f"k{k}",
                act,
                "pad" if pad else "",
                "bias" if bias else "",
            )
            params = _expert_params(t, d, i, e, k, act, pad, bias)
            needs = (("moe:swigluoai",) if act == "swigluoai" else ()) + (
                ("moe:bias",) if bias else ()
            )
            cases.append(Case("moe.experts", name, dt, params, needs))
    return cases + _fp8_expert_cases() + _mxfp4_expert_cases() + _int4_expert_cases()


def expert_inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    t, d, i, e, k = p["tokens"], p["hidden"], p["inter"], p["experts"], p["top_k"]
    # The first half of the tokens crowd onto a few experts; many experts get no token.
    crowd = max(e // 4, k)
    ids = torch.zeros(t, k, dtype=torch.int64)
    for j in range(t):
        ids[j] = torch.randperm(crowd if j < t // 2 else e, generator=gen)[:k]
    weights = torch.rand(t, k, generator=gen).softmax(dim=-1)
    if p["pad"]:
        ids[-2:] = -1
        ids[0, -1] = -1
    swiglu = p["activation"] == "swigluoai"
    # swigluoai: gate/up products wide enough (std 3, or biases of std 3) that some clamp; the
    # clamped activation reaches ~56 (8 x 7), so a smaller w2 keeps outputs near 1, the scale
    # the element-wise tolerance is written for.
    w13_scale = d**-0.5 * (3.0 if swiglu and not p["bias"] else 1.0)
    args = {
        "x": randn(gen, t, d, dtype=dt),
        "w13": randn(gen, e, 2 * i, d, dtype=dt, scale=w13_scale),
        "w2": randn(gen, e, d, i, dtype=dt, scale=i**-0.5 / (8 if swiglu else 1)),
        "topk_weights": weights.to(torch.float32),
        "topk_ids": ids.to(torch.int32),
        "activation": p["activation"],
    }
    if p["bias"]:
        args["w13_bias"] = randn(gen, e, 2 * i, dtype=dt, scale=3.0 if swiglu else 0.5)
        args["w2_bias"] = randn(gen, e, d, dtype=dt, scale=0.5)
    if p.get("block") == "int4":  # scales and zeros in the input dtype, as checkpoints
        quant = (p["group"], dt, p["float_zeros"])
        args["w13"], args["w13_scale"], args["w13_zeros"] = quantize_int4_experts(
            args["w13"], *quant
        )
        args["w2"], args["w2_scale"], args["w2_zeros"] = quantize_int4_experts(args["w2"], *quant)
        if p.get("act_order"):
            perms = [torch.randperm(d, generator=gen) for _ in range(e)]
            args["w13_perm"] = torch.stack(perms).to(torch.int32)
    elif p.get("block") == "mxfp4":
        args["w13"], args["w13_scale"] = quantize_mxfp4_experts(args["w13"])
        args["w2"], args["w2_scale"] = quantize_mxfp4_experts(args["w2"])
    elif p.get("block"):
        block = tuple(p["block"])
        args["w13"], args["w13_scale"] = quantize_expert_blocks(args["w13"], block, 2)
        args["w2"], args["w2_scale"] = quantize_expert_blocks(args["w2"], block, 1)
        args["block_size"] = block
    return args
