"""moe.route as vectorised torch, for any backend to register: float32 throughout, no host
sync and no tensor made on a fixed device, so it runs wherever its input lives (the xeon and
cuda backends both use it). For softmax routing without groups the top-k is taken on the logits
(softmax is monotonic) and only the k chosen weights are normalised, skipping the [T, E]
softmax; otherwise scores, optional correction bias and group masking, top-k, renormalisation
and scaling, as the reference (sglang.ops.moe) defines them."""

from __future__ import annotations

import torch


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
    if scoring_func not in ("softmax", "sigmoid"):
        raise ValueError(f"scoring_func must be softmax or sigmoid, got {scoring_func!r}")
    logits = router_logits.float()
    grouped = num_expert_group is not None and num_expert_group > 1
    if scoring_func == "softmax" and correction_bias is None and not grouped:
        # softmax is monotonic: choose on the logits, normalise only the k chosen.
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
    """choice [T, E] with the experts outside each row's topk_group best groups at -inf."""
    t, e = choice.shape
    grouped = choice.view(t, groups, e // groups)
    if biased:
        group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
    else:
        group_scores = grouped.amax(dim=-1)
    best = group_scores.topk(topk_group, dim=-1).indices
    drop = torch.ones_like(group_scores, dtype=torch.bool).scatter_(1, best, False)
    return grouped.masked_fill(drop.unsqueeze(-1), float("-inf")).view(t, e)
