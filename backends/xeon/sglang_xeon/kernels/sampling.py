"""sampling.sample on the CPU, batched over the sampled rows: one softmax, the tokens in
descending-probability order, the three filters as prefix masks, the inverse CDF by
searchsorted. Greedy rows take the argmax of the raw logits.

Ordering all V tokens is the cost, so when every row's kept set provably ends early (a finite
top_k, or a top-p / min-p cut) only the first W + 1 candidates are ordered, by topk; the exact
order (ties by ascending index) is restored by two small stable sorts. Proof of "ends early":
candidate W, the first left out, is dropped by the filters (then every later one is too), and
candidate W - 1 is strictly more probable than candidate W (so topk's choice among ties cannot
change the kept set). Otherwise all tokens are sorted.
"""

from __future__ import annotations

import torch

GREEDY_TEMPERATURE = 1e-6
MIN_WIDTH = 1024


def sample(logits, temperatures, top_ks, top_ps, min_ps, uniforms):
    out = logits.argmax(dim=-1)
    rows = (temperatures >= GREEDY_TEMPERATURE).nonzero().squeeze(1)
    if rows.numel() == 0:
        return out
    vocab = logits.shape[1]
    scaled = logits.index_select(0, rows).float() / temperatures[rows].float().unsqueeze(1)
    probs = scaled.softmax(dim=-1)
    top_k = top_ks[rows].long()
    top_k = torch.where((top_k <= 0) | (top_k > vocab), vocab, top_k).unsqueeze(1)
    top_p = top_ps[rows].float().unsqueeze(1)
    min_p = min_ps[rows].float().unsqueeze(1)
    ordered = _ordered_prefix(probs, top_k, top_p, min_p)
    if ordered is None:
        values, order = probs.sort(dim=-1, descending=True, stable=True)
        keep = _kept(values, top_k, top_p, min_p)
    else:
        values, order, keep = ordered
    cdf = (values * keep).cumsum(dim=-1)
    target = uniforms[rows].float().unsqueeze(1) * cdf[:, -1:]
    pick = torch.searchsorted(cdf, target, right=True)
    pick = torch.minimum(pick, keep.sum(dim=-1, keepdim=True) - 1)
    out[rows] = order.gather(1, pick).squeeze(1)
    return out


def _kept(values, top_k, top_p, min_p):
    """values: [n, W] descending -> bool [n, W], the kept prefix (see sglang.ops.sampling)."""
    keep = torch.arange(values.shape[1]).unsqueeze(0) < top_k
    cum = values.cumsum(dim=-1)
    before = torch.cat((torch.zeros_like(cum[:, :1]), cum[:, :-1]), dim=1)
    keep &= (before < top_p) | (top_p >= 1.0)
    keep &= values >= min_p * values[:, :1]
    keep[:, 0] = True
    return keep


def _ordered_prefix(probs, top_k, top_p, min_p):
    """(values, order, keep) over the first W candidates, or None when all must be sorted."""
    vocab = probs.shape[1]
    unbounded = (top_k >= vocab) & (top_p >= 1.0) & (min_p <= 0.0)
    if bool(unbounded.any()):
        return None
    bounded = top_k[top_k < vocab]
    width = max(MIN_WIDTH, int(bounded.max()) if bounded.numel() else 0)
    if width + 1 >= vocab:
        return None
    values, order = probs.topk(width + 1, dim=-1, sorted=True)
    order, by_index = order.sort(dim=-1)
    values = values.gather(1, by_index)
    values, by_value = values.sort(dim=-1, descending=True, stable=True)
    order = order.gather(1, by_value)
    keep = _kept(values, top_k, top_p, min_p)
    if bool(keep[:, width].any()) or bool((values[:, width - 1] <= values[:, width]).any()):
        return None
    return values[:, :width], order[:, :width], keep[:, :width]


def register(registry) -> None:
    registry.register("sampling.sample", sample, name="xeon.sample")
