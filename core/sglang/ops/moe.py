"""moe.route and moe.experts: the compute half of a mixture-of-experts layer.

moe.route picks each token's experts and their weights from the router logits (SGLang's
select_experts: fused_topk, grouped_topk and DeepSeek-V3's biased_grouped_topk in one op).
moe.experts runs the chosen experts' gated MLPs and sums them with those weights. Dispatch and
combine across expert-parallel ranks are the communicator's business, not these ops'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang.ops.precision import with_error_bounds
from sglang.ops.quant import fp4 as q4
from sglang.ops.quant import fp8 as q8
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec

SCORING_FUNCS = ("softmax", "sigmoid")
ACTIVATIONS = ("silu", "gelu", "swigluoai")
# gpt-oss's clamped gate: (clamp(up, -L, L) + 1) * g * sigmoid(ALPHA * g), g = min(gate, L).
SWIGLU_ALPHA, SWIGLU_LIMIT = 1.702, 7.0


def gated(gate: torch.Tensor, up: torch.Tensor, activation: str) -> torch.Tensor:
    """act(gate) * up for moe.experts' activations (see `experts`)."""
    if activation == "swigluoai":
        gate = gate.clamp(max=SWIGLU_LIMIT)
        up = up.clamp(-SWIGLU_LIMIT, SWIGLU_LIMIT)
        return (up + 1) * gate * torch.sigmoid(gate * SWIGLU_ALPHA)
    return (F.silu(gate) if activation == "silu" else F.gelu(gate)) * up


DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def route(
    router_logits: torch.Tensor,
    top_k: int,
    scoring_func: str = "softmax",
    renormalize: bool = True,
    num_expert_group: int | None = None,
    topk_group: int | None = None,
    correction_bias: torch.Tensor | None = None,
    routed_scaling_factor: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """router_logits: [T, E] -> (topk_weights [T, k] float32, topk_ids [T, k] int32).

    scores = softmax(logits) or sigmoid(logits), in float32 (float64 under the oracle).
    Selection uses choice = scores + correction_bias (bias [E] float32, optional; DeepSeek-V3's
    load-balancing bias), else choice = scores. With num_expert_group = G, the E experts form
    G contiguous groups of E/G; a group's score is the sum of its two best choice values when a
    bias is given, else its best choice value; only experts of the topk_group best groups stay
    eligible. The k eligible experts with the highest choice values are taken. Weights are
    the unbiased scores of those experts, divided by their sum when renormalize, then times
    routed_scaling_factor (SGLang may apply that factor to the layer output instead: the same,
    as moe.experts is linear in the weights). The order of the k slots carries no meaning.
    """
    if scoring_func not in SCORING_FUNCS:
        raise ValueError(f"scoring_func must be one of {SCORING_FUNCS}, got {scoring_func!r}")
    acc = compute_dtype(router_logits, correction_bias)
    logits = router_logits.to(acc)
    scores = logits.softmax(dim=-1) if scoring_func == "softmax" else logits.sigmoid()
    choice = scores if correction_bias is None else scores + correction_bias.to(acc)
    if num_expert_group is not None and num_expert_group > 1:
        tokens, experts = choice.shape
        grouped = choice.view(tokens, num_expert_group, experts // num_expert_group)
        if correction_bias is not None:
            group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
        else:
            group_scores = grouped.max(dim=-1).values
        best_groups = group_scores.topk(topk_group, dim=-1).indices
        keep = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, best_groups, True)
        keep = keep.repeat_interleave(experts // num_expert_group, dim=1)
        choice = choice.masked_fill(~keep, float("-inf"))
    ids = choice.topk(top_k, dim=-1).indices
    weights = scores.gather(1, ids)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    weights = weights * routed_scaling_factor
    return weights.to(torch.float32), ids.to(torch.int32)


def experts(
    x: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    activation: str = "silu",
    w13_bias: torch.Tensor | None = None,
    w2_bias: torch.Tensor | None = None,
    w13_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    block_size: tuple[int, int] = (128, 128),
) -> torch.Tensor:
    """x: [T, D]; w13: [E, 2I, D] (w1 = gate = w13[:, :I], w3 = up = w13[:, I:]); w2: [E, D, I];
    topk_weights: [T, k] float32; topk_ids: [T, k] int32 -> out [T, D] in x.dtype:

        out[t] = sum_j topk_weights[t, j] * w2[e] @ (act(w1[e] @ x[t]) * (w3[e] @ x[t])),
        e = topk_ids[t, j]

    act is silu, or exact (erf) gelu; "swigluoai" (gpt-oss) is instead
        (clamp(w3 x, -7, 7) + 1) * g * sigmoid(1.702 g),  g = min(w1 x, 7).
    Optional biases w13_bias [E, 2I] (added to the gate/up product) and w2_bias [E, D] (added
    to the down product, before the routing weight). FP8 block-scaled experts (capability
    moe:fp8_block; DeepSeek-V3 and Qwen3 FP8 releases): w13 and w2 float8_e4m3fn with w13_scale
    [E, 2 * ceil(I/bn), ceil(D/bk)] (the gate's block rows, then the up's: each half is blocked
    on its own) and w2_scale [E, ceil(D/bn), ceil(I/bk)] float32 for block_size (bn, bk); the
    weights are q * scale of their tile and x is not quantized (weight-only, as those
    checkpoints' experts dequantized). MXFP4 experts (moe:mxfp4, gpt-oss): w13 uint8
    [E, 2I, D/2] and w2 uint8 [E, D, I/2] (two e2m1 codes a byte, low nibble first) with e8m0
    scales w13_scale uint8 [E, 2I, D/32] and w2_scale [E, D, I/32] (gemm.fp4's mxfp4 layout
    per expert; block_size unused). A slot whose id is -1 (a padded token,
    or an expert living on another expert-parallel rank) contributes nothing. Computed in
    float32 (float64 under the oracle), one expert at a time over the tokens routed to it."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    acc = compute_dtype(x, w13, w2, topk_weights, w13_scale, w2_scale)
    if (w13_scale is None) != (w2_scale is None):
        raise ValueError("quantized experts need both w13_scale and w2_scale")
    if w13_scale is not None:
        w13 = dequantize_experts(w13, w13_scale, block_size, halves=2, dtype=acc)
        w2 = dequantize_experts(w2, w2_scale, block_size, halves=1, dtype=acc)
    inter = w2.shape[-1]
    h = x.to(acc)
    out = torch.zeros(x.shape, dtype=acc, device=x.device)
    for e in topk_ids.unique().tolist():
        if e < 0:
            continue
        tokens, slots = (topk_ids == e).nonzero(as_tuple=True)
        gate_up = h[tokens] @ w13[e].to(acc).T
        if w13_bias is not None:
            gate_up = gate_up + w13_bias[e].to(acc)
        y = gated(gate_up[:, :inter], gate_up[:, inter:], activation) @ w2[e].to(acc).T
        if w2_bias is not None:
            y = y + w2_bias[e].to(acc)
        out.index_add_(0, tokens, y * topk_weights[tokens, slots].to(acc).unsqueeze(1))
    return out.to(x.dtype)


def expert_block_rows(rows: int, block_n: int, halves: int) -> int:
    """Scale rows of one expert's [rows, K] matrix made of `halves` stacked matrices (w13: the
    gate's and the up's), each blocked on its own."""
    return halves * -(-(rows // halves) // block_n)


def dequantize_experts(
    w: torch.Tensor,
    scale: torch.Tensor,
    block_size: tuple[int, int],
    halves: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Quantized experts' weights as [E, N, K] in `dtype`: FP8 blocks (float8_e4m3fn, see
    dequantize_expert_blocks) or MXFP4 (uint8 [E, N, K/2] with e8m0 scales [E, N, K/32])."""
    if w.dtype != torch.uint8:
        return dequantize_expert_blocks(w, scale, block_size, halves, dtype)
    e, n, half_k = w.shape
    want = (e, n, 2 * half_k // q4.MXFP4_BLOCK)
    if scale.dtype != torch.uint8 or (2 * half_k) % q4.MXFP4_BLOCK or tuple(scale.shape) != want:
        raise ValueError(
            f"MXFP4 experts: weight {tuple(w.shape)} uint8 with scale {tuple(scale.shape)} "
            f"{scale.dtype}: expected e8m0 uint8 scales {want} (K a multiple of 32)"
        )
    flat = q4.dequantize_mxfp4(w.reshape(e * n, half_k), scale.reshape(e * n, -1), dtype)
    return flat.reshape(e, n, 2 * half_k)


def dequantize_expert_blocks(
    w: torch.Tensor,
    scale: torch.Tensor,
    block_size: tuple[int, int],
    halves: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """w: [E, N, K] e4m3, scale [E, expert_block_rows(N, bn, halves), ceil(K/bk)] -> w * its
    tile's scale, [E, N, K] in `dtype` (see `experts` for the layout)."""
    e, n, k = w.shape
    bn, bk = block_size
    want = (e, expert_block_rows(n, bn, halves), -(-k // bk))
    if w.dtype != q8.FP8 or n % halves or tuple(scale.shape) != want:
        raise ValueError(
            f"FP8 experts: weight {tuple(w.shape)} {w.dtype} with scale {tuple(scale.shape)} "
            f"for blocks {tuple(block_size)}: expected float8_e4m3fn and scale {want}"
        )
    part = n // halves
    scales = scale.to(dtype).chunk(halves, dim=1)  # each half's block rows
    full = torch.cat([q8.expand_groups(s, bn, part, 1) for s in scales], dim=1)
    return w.to(dtype) * q8.expand_groups(full, bk, k, 2)


def compare_routes(
    case: Case, ref: list[torch.Tensor], out: list[torch.Tensor], tol: Tolerance
) -> tuple[bool, float, str]:
    """moe.route outputs: ids must match as per-row sets, exactly; weights are compared after
    both rows are put in id order, with allclose."""
    if len(out) != 2:
        return False, float("inf"), f"expected (topk_weights, topk_ids), got {len(out)} outputs"
    (ref_w, ref_ids), (w, ids) = ref, out
    if not isinstance(w, torch.Tensor) or not isinstance(ids, torch.Tensor):
        return False, float("inf"), "outputs must be tensors"
    if w.shape != ref_w.shape or ids.shape != ref_ids.shape:
        return False, float("inf"), f"shapes {tuple(w.shape)}, {tuple(ids.shape)} != reference"
    if w.dtype != torch.float32 or ids.dtype != torch.int32:
        return False, float("inf"), f"dtypes {w.dtype}, {ids.dtype}; want float32, int32"
    ref_sorted, ref_order = ref_ids.sort(dim=-1)
    got_sorted, got_order = ids.sort(dim=-1)
    rows = (ref_sorted != got_sorted).any(dim=-1)
    if bool(rows.any()):
        t = int(rows.nonzero()[0])
        return (
            False,
            float(int(rows.sum())),
            (
                f"{int(rows.sum())}/{ids.shape[0]} rows choose other experts; first row {t}: "
                f"{got_sorted[t].tolist()} != {ref_sorted[t].tolist()}"
            ),
        )
    r = ref_w.gather(1, ref_order).to(torch.float64)
    o = w.gather(1, got_order).to(torch.float64)
    if r.numel() == 0:
        return True, 0.0, "empty"
    diff = (o - r).abs()
    bad = diff > tol.atol + tol.rtol * r.abs()
    err = float(diff.max())
    if bool(bad.any()):
        return False, err, f"ids match; {int(bad.sum())} weights off, max |diff| {err:.3g}"
    rel_rms = float((o - r).norm()) / float(r.norm()) if float(r.norm()) > 0 else 0.0
    if tol.rel_rms and rel_rms > tol.rel_rms:
        why = f"weights' relative RMS error {rel_rms:.3g} > {tol.rel_rms:.3g}"
        return False, err, f"ids match; {why}"
    return True, err, f"ids match; weights max |diff| {err:.3g}, rel_rms {rel_rms:.3g}"


# name: (experts, top_k, scoring, renormalize, groups, topk_group, bias, scaling)
ROUTERS = {
    "mixtral": (8, 2, "softmax", True, None, None, False, 1.0),
    "qwen2moe": (60, 4, "softmax", False, None, None, False, 1.0),
    "dsv2lite": (64, 6, "softmax", False, None, None, False, 1.0),
    "dsv2": (160, 6, "softmax", False, 8, 3, False, 16.0),
    "dsv3": (256, 8, "sigmoid", True, 8, 4, True, 2.5),
    "kimi": (96, 6, "sigmoid", True, None, None, True, 2.827),
    "sigmoid": (16, 3, "sigmoid", True, None, None, False, 1.0),
}
ROUTE_TOKENS = {"mixtral": (0, 1, 7), "dsv3": (1, 33), "dsv2": (5,)}


def _route_cases() -> list[Case]:
    cases = []
    for dt in DTYPES:
        for router in ROUTERS:
            for t in ROUTE_TOKENS.get(router, (13,)):
                name = case_name(dt, f"T{t}", router)
                cases.append(Case("moe.route", name, dt, {"tokens": t, "router": router}))
    return cases


def _route_inputs(case: Case, gen: torch.Generator) -> dict:
    """Logits are distinct multiples of 1/32 or 1/16 (exact in every float dtype); rows whose
    decisions (the topk_group-th against the next group score, the k-th against the next
    eligible choice value) are closer than 1e-4 in float64 are drawn again, so the experts
    chosen are the same in any precision."""
    experts_n, top_k, scoring, renorm, groups, topk_group, bias, scaling = ROUTERS[
        case.params["router"]
    ]
    t = case.params["tokens"]
    args = {
        "top_k": top_k,
        "scoring_func": scoring,
        "renormalize": renorm,
        "num_expert_group": groups,
        "topk_group": topk_group,
        "routed_scaling_factor": scaling,
    }
    if bias:
        args["correction_bias"] = randn(gen, experts_n, dtype=torch.float32, scale=0.1)
    logits = torch.empty(t, experts_n, dtype=case.dtype)
    todo = torch.ones(t, dtype=torch.bool)
    for _ in range(100):
        n = int(todo.sum())
        if n == 0:
            break
        ranks = torch.stack([torch.randperm(experts_n, generator=gen) for _ in range(n)])
        step = torch.where(torch.rand(n, 1, generator=gen) < 0.5, 1 / 32, 1 / 16)
        logits[todo] = ((ranks.reshape(n, experts_n) - experts_n // 2) * step).to(case.dtype)
        todo &= _route_margin(logits, args) < 1e-4
    if bool(todo.any()):
        raise RuntimeError("could not draw router logits with separated decisions")
    return {"router_logits": logits, **args}


def _route_margin(logits: torch.Tensor, args: dict) -> torch.Tensor:
    """Per row, the smallest float64 gap at a decision boundary of `route`."""
    scores = logits.to(torch.float64)
    scores = scores.softmax(-1) if args["scoring_func"] == "softmax" else scores.sigmoid()
    choice = scores
    if args.get("correction_bias") is not None:
        choice = scores + args["correction_bias"].to(torch.float64)
    t, e = choice.shape
    margin = torch.full((t,), float("inf"), dtype=torch.float64)
    groups, topk_group = args["num_expert_group"], args["topk_group"]
    if groups is not None and groups > 1:
        grouped = choice.view(t, groups, e // groups)
        if args.get("correction_bias") is not None:
            group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
        else:
            group_scores = grouped.max(dim=-1).values
        ordered = group_scores.sort(dim=-1, descending=True).values
        margin = ordered[:, topk_group - 1] - ordered[:, topk_group]
        best = ordered[:, topk_group - 1 : topk_group]
        keep = (group_scores >= best).repeat_interleave(e // groups, dim=1)
        choice = choice.masked_fill(~keep, float("-inf"))
    k = args["top_k"]
    ordered = choice.sort(dim=-1, descending=True).values
    return torch.minimum(margin, ordered[:, k - 1] - ordered[:, k])


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


def quantize_mxfp4_experts(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> (uint8 [E, N, K/2], e8m0 uint8 [E, N, K/32]), expert by expert."""
    parts = [q4.quantize_mxfp4(expert) for expert in w]
    return torch.stack([q for q, _ in parts]), torch.stack([s for _, s in parts])


def quantize_expert_blocks(
    w: torch.Tensor, block_size: tuple[int, int], halves: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> (e4m3 [E, N, K], scale [E, expert_block_rows(N, bn, halves),
    ceil(K/bk)] float32): each expert's halves quantized block-wise on their own."""
    qs, scales = [], []
    for expert in w:
        parts = [q8.quantize_fp8_block(half, block_size) for half in expert.chunk(halves)]
        qs.append(torch.cat([q for q, _ in parts]))
        scales.append(torch.cat([s for _, s in parts]).float())
    return torch.stack(qs), torch.stack(scales)


def _expert_cases() -> list[Case]:
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
    return cases + _fp8_expert_cases() + _mxfp4_expert_cases()


def _expert_inputs(case: Case, gen: torch.Generator) -> dict:
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
    if p.get("block") == "mxfp4":
        args["w13"], args["w13_scale"] = quantize_mxfp4_experts(args["w13"])
        args["w2"], args["w2_scale"] = quantize_mxfp4_experts(args["w2"])
    elif p.get("block"):
        block = tuple(p["block"])
        args["w13"], args["w13_scale"] = quantize_expert_blocks(args["w13"], block, 2)
        args["w2"], args["w2_scale"] = quantize_expert_blocks(args["w2"], block, 1)
        args["block_size"] = block
    return args


ROUTE_SPEC = register_spec(
    OpSpec(
        name="moe.route",
        signature=(
            '(router_logits[T,E], top_k, scoring_func="softmax"|"sigmoid", renormalize, '
            "num_expert_group=None, topk_group=None, correction_bias[E] f32=None, "
            "routed_scaling_factor=1.0) -> (topk_weights[T,k] f32, topk_ids[T,k] i32)"
        ),
        reference=route,
        cases=_route_cases,
        make_inputs=_route_inputs,
        # Scores are float32 math on the same logits whatever their dtype.
        # rel_rms: float32 outputs whatever the logits' dtype, two roundings (exp, division)
        # and sums over at most 256 experts.
        tolerances=with_error_bounds(
            {dt: Tolerance(atol=1e-6, rtol=1e-5) for dt in DTYPES},
            roundings=2,
            accumulation=256,
            output_dtype=torch.float32,
        ),
        compare=compare_routes,
    )
)

EXPERTS_SPEC = register_spec(
    OpSpec(
        name="moe.experts",
        signature=(
            "(x[T,D], w13[E,2I,D], w2[E,D,I], topk_weights[T,k] f32, topk_ids[T,k] i32, "
            'activation="silu"|"gelu"|"swigluoai", w13_bias[E,2I]=None, w2_bias[E,D]=None, '
            "w13_scale[E,2*ceil(I/bn),ceil(D/bk)] f32=None, w2_scale[E,ceil(D/bn),ceil(I/bk)] "
            "f32=None, block_size=(128,128)) -> out[T,D]; with the scales w13 and w2 are e4m3fn "
            "(moe:fp8_block), or uint8 MXFP4 [E,N,K/2] with e8m0 scales [E,N,K/32] (moe:mxfp4)"
        ),
        reference=experts,
        cases=_expert_cases,
        make_inputs=_expert_inputs,
        # Two GEMMs with the gated activation rounded to the input dtype between them.
        # rel_rms: four roundings (the gate/up product, the gated activation, the down product,
        # the weighted sum) and float32 sums over D or I <= 1024.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-4, rtol=1e-4),
                torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
                torch.bfloat16: Tolerance(atol=2e-2, rtol=2e-2),
            },
            roundings=4,
            accumulation=1024,
        ),
    )
)
