"""moe.route and moe.experts on the CPU.

route: float32 throughout; for softmax routing without groups the top-k is taken on the logits
(softmax is monotonic) and only the k chosen weights are normalised, skipping the [T, E] softmax.
experts: the T*k (token, slot) pairs are sorted by expert id once; each active expert then runs
two GEMMs (oneDNN through F.linear, in the input dtype) over its contiguous block of tokens, and
the k partial outputs of each token are combined with the routing weights in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def route(
    router_logits,
    top_k,
    scoring_func="softmax",
    renormalize=True,
    num_expert_group=None,
    topk_group=None,
    correction_bias=None,
    routed_scaling_factor=1.0,
):
    logits = router_logits.float()
    grouped = num_expert_group is not None and num_expert_group > 1
    if scoring_func == "softmax" and correction_bias is None and not grouped:
        top, ids = logits.topk(top_k, dim=-1)
        if renormalize:
            weights = top.softmax(dim=-1)
        else:
            weights = (top - logits.logsumexp(dim=-1, keepdim=True)).exp()
    else:
        scores = logits.softmax(dim=-1) if scoring_func == "softmax" else logits.sigmoid()
        choice = scores if correction_bias is None else scores + correction_bias.float()
        if grouped:
            choice = _mask_groups(choice, num_expert_group, topk_group, correction_bias is not None)
        ids = choice.topk(top_k, dim=-1).indices
        weights = scores.gather(1, ids)
        if renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
    if routed_scaling_factor != 1.0:
        weights = weights * routed_scaling_factor
    return weights, ids.to(torch.int32)


def _mask_groups(choice: torch.Tensor, groups: int, topk_group: int, biased: bool) -> torch.Tensor:
    t, e = choice.shape
    grouped = choice.view(t, groups, e // groups)
    if biased:
        group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
    else:
        group_scores = grouped.amax(dim=-1)
    best = group_scores.topk(topk_group, dim=-1).indices
    drop = torch.ones(t, groups, dtype=torch.bool).scatter_(1, best, False)
    return grouped.masked_fill(drop.unsqueeze(-1), float("-inf")).view(t, e)


def experts(x, w13, w2, topk_weights, topk_ids, activation="silu"):
    tokens, hidden = x.shape
    top_k = topk_ids.shape[1]
    inter = w2.shape[-1]
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
        gate_up = F.linear(x[slots // top_k], w13[e])
        h = act(gate_up[:, :inter]).mul_(gate_up[:, inter:])
        partial[slots] = F.linear(h, w2[e])
        start += n
    weights = topk_weights.float().unsqueeze(1)  # [T, 1, k]
    out = torch.bmm(weights, partial.view(tokens, top_k, hidden).float())
    return out.view(tokens, hidden).to(x.dtype)


def register(registry) -> None:
    registry.register("moe.route", route, name="xeon.moe_route")
    registry.register("moe.experts", experts, name="xeon.moe_experts")
