"""moe.route and moe.experts: the compute half of a mixture-of-experts layer.

moe.route picks each token's experts and their weights from the router logits (SGLang's
select_experts: fused_topk, grouped_topk and DeepSeek-V3's biased_grouped_topk in one op).
moe.experts runs the chosen experts' gated MLPs and sums them with those weights. Dispatch and
combine across expert-parallel ranks are the communicator's business, not these ops'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang.ops.moe_cases import DTYPES, expert_cases, expert_inputs
from sglang.ops.precision import with_error_bounds
from sglang.ops.quant.experts import dequantize_experts
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
    w13_zeros: torch.Tensor | None = None,
    w2_zeros: torch.Tensor | None = None,
    w13_perm: torch.Tensor | None = None,
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
    per expert; block_size unused). Int4 experts (moe:int4, W4A16: AWQ, GPTQ without
    act-order, compressed-tensors pack-quantized): w13 uint8 [E, 2I, D/2] and w2 uint8
    [E, D, I/2] (codes 0..15, two a byte, low nibble first) with float scales and float zero
    points w13_scale, w13_zeros [E, 2I, D/G] and w2_scale, w2_zeros [E, D, I/G'] (G, G': the
    group sizes, D / w13_scale.shape[-1] and I / w2_scale.shape[-1]); w = (q - zero) * scale
    of the code's group. w13_perm [E, D] int32 (moe:act_order; act-order GPTQ experts, whose
    groups are contiguous only with the input features reordered): column j of w13[e]
    multiplies x[:, w13_perm[e, j]]. A slot whose id is -1 (a padded token,
    or an expert living on another expert-parallel rank) contributes nothing. Computed in
    float32 (float64 under the oracle), one expert at a time over the tokens routed to it."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    acc = compute_dtype(x, w13, w2, topk_weights, w13_scale, w2_scale, w13_zeros, w2_zeros)
    if (w13_scale is None) != (w2_scale is None):
        raise ValueError("quantized experts need both w13_scale and w2_scale")
    if (w13_zeros is None) != (w2_zeros is None) or (w13_zeros is not None and w13_scale is None):
        raise ValueError("int4 experts need w13_zeros, w2_zeros and both scales")
    if w13_scale is not None:
        w13 = dequantize_experts(w13, w13_scale, block_size, 2, acc, w13_zeros)
        w2 = dequantize_experts(w2, w2_scale, block_size, 1, acc, w2_zeros)
    if w13_perm is not None and tuple(w13_perm.shape) != (w13.shape[0], x.shape[-1]):
        raise ValueError(
            f"w13_perm {tuple(w13_perm.shape)}: one input order per expert, "
            f"[{w13.shape[0]}, {x.shape[-1]}]"
        )
    inter = w2.shape[-1]
    h = x.to(acc)
    out = torch.zeros(x.shape, dtype=acc, device=x.device)
    for e in topk_ids.unique().tolist():
        if e < 0:
            continue
        tokens, slots = (topk_ids == e).nonzero(as_tuple=True)
        rows = h[tokens] if w13_perm is None else h[tokens][:, w13_perm[e].long()]
        gate_up = rows @ w13[e].to(acc).T
        if w13_bias is not None:
            gate_up = gate_up + w13_bias[e].to(acc)
        y = gated(gate_up[:, :inter], gate_up[:, inter:], activation) @ w2[e].to(acc).T
        if w2_bias is not None:
            y = y + w2_bias[e].to(acc)
        out.index_add_(0, tokens, y * topk_weights[tokens, slots].to(acc).unsqueeze(1))
    return out.to(x.dtype)


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
            "f32=None, block_size=(128,128), w13_zeros=None, w2_zeros=None, w13_perm[E,D] i32="
            "None) -> out[T,D]; with the scales w13 and w2 are e4m3fn (moe:fp8_block), or uint8 "
            "MXFP4 [E,N,K/2] with e8m0 scales [E,N,K/32] (moe:mxfp4), or with the zeros uint8 "
            "int4 codes [E,N,K/2] with float scales and zeros [E,N,K/G] (moe:int4); w13_perm: "
            "each expert's input order of w13's columns (moe:act_order)"
        ),
        reference=experts,
        cases=expert_cases,
        make_inputs=expert_inputs,
        # What a kernel's `prepare` may put in its own layout once (xeon: native int4 forms).
        weight_args=("w13", "w2", "w13_scale", "w2_scale", "w13_zeros", "w2_zeros", "w13_perm"),
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
