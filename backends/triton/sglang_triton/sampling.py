"""sampling.sample on GPUs: the spec's algorithm batched over all rows in torch, with no
host synchronisation (no nonzero, no .item(), no branch on a tensor's value), so a decode step
that samples can be captured in a CUDA graph.

Every row goes through one softmax, one stable descending sort, the three filters as masks on
the sorted probabilities, and the inverse CDF by searchsorted; greedy rows (temperature below
1e-6) take the argmax of the raw logits instead, chosen with torch.where at the end (their
sampled value is computed with temperature 1 and discarded). The full sort over the
vocabulary is the cost; it keeps the result exactly the reference's for any filter setting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GREEDY_TEMPERATURE = 1e-6


def sample(logits, temperatures, top_ks, top_ps, min_ps, uniforms):
    batch, vocab = logits.shape
    greedy_ids = logits.argmax(dim=-1)  # the first maximum on ties, as the spec asks
    if batch == 0:
        return greedy_ids
    greedy = temperatures < GREEDY_TEMPERATURE
    temperature = torch.where(greedy, torch.ones_like(temperatures), temperatures).float()
    probs = (logits.float() / temperature.unsqueeze(1)).softmax(dim=-1)
    values, order = probs.sort(dim=-1, descending=True, stable=True)

    top_k = top_ks.long()
    top_k = torch.where((top_k <= 0) | (top_k > vocab), vocab, top_k).unsqueeze(1)
    top_p = top_ps.float().unsqueeze(1)
    min_p = min_ps.float().unsqueeze(1)
    rank = torch.arange(vocab, device=logits.device).unsqueeze(0)
    before = F.pad(values.cumsum(dim=-1)[:, :-1], (1, 0))  # probability mass before each token
    keep = (rank < top_k) & ((before < top_p) | (top_p >= 1.0))
    keep &= values >= min_p * values[:, :1]
    keep |= rank == 0

    cdf = (values * keep).cumsum(dim=-1)
    target = uniforms.float().unsqueeze(1) * cdf[:, -1:]
    pick = torch.searchsorted(cdf, target, right=True)
    pick = torch.minimum(pick, keep.sum(dim=-1, keepdim=True) - 1)
    sampled = order.gather(1, pick).squeeze(1)
    return torch.where(greedy, greedy_ids, sampled)


def register(registry, target) -> None:
    registry.register("sampling.sample", sample, name=target.name("sample"))
