"""Pure-torch preparation for the torch-npu operators (runs on any device, tested on the CPU).

- block_table: the token-slot paged cache (sequence b's tokens at slots
  kv_indices[kv_indptr[b]:kv_indptr[b+1]], pages of `page` consecutive, page-aligned slots) as
  the block table npu_fused_infer_attention_score reads: block ids [B, max blocks] (slot // page
  of each page's first token; padding 0, never read past the sequence length).
- expert_groups: the (token, slot) pairs of a top-k routing sorted by expert, the per-expert
  counts' running sum (npu_grouped_matmul's group_list, group_list_type 0) and the source rows.
- int4_for_npu: AWQ/GPTQ int4 weights as npu_weight_quant_batchmatmul takes them: signed
  values q - 8 in [-8, 7] ([K, N] int32, packed by npu_convert_weight_to_int4pack), with the
  antiquant offset 8 - z and scale per group ([K/G, N]), so (q' + offset) * scale = (q - z) * s.
"""

from __future__ import annotations

import torch
from sglang.ops.quant import int4 as q4


def block_table(
    kv_indptr: torch.Tensor, kv_indices: torch.Tensor, page: int
) -> tuple[torch.Tensor, list[int]]:
    """-> (block ids int32 [B, max blocks], context lengths). Raises if a page is not whole."""
    bounds = kv_indptr.tolist()
    lengths = [bounds[b + 1] - bounds[b] for b in range(len(bounds) - 1)]
    most = max([-(-n // page) for n in lengths], default=0)
    table = torch.zeros((len(lengths), max(most, 1)), dtype=torch.int32)
    for b, n in enumerate(lengths):
        slots = kv_indices[bounds[b] : bounds[b + 1]].to(torch.int64).cpu()
        firsts = slots[::page]
        if n and bool((firsts % page).any()):
            raise ValueError(f"sequence {b}: a page does not start at a multiple of {page}")
        table[b, : firsts.numel()] = (firsts // page).to(torch.int32)
    return table.to(kv_indices.device), lengths


def page_size(kv_indptr: torch.Tensor, kv_indices: torch.Tensor, sizes=(128, 64, 16)) -> int | None:
    """The largest of `sizes` whose pages every sequence's slots fill whole, in order (slot j of
    a sequence = its page's first slot + j % page, first slots page-aligned); None when the
    cache is not paged that way (token-level allocation)."""
    bounds = kv_indptr.tolist()
    slots = kv_indices.to(torch.int64).cpu()
    for page in sizes:
        ok = True
        for b in range(len(bounds) - 1):
            s = slots[bounds[b] : bounds[b + 1]]
            if s.numel() == 0:
                continue
            firsts = s[::page]
            expect = firsts.repeat_interleave(page)[: s.numel()] + torch.arange(s.numel()) % page
            if bool((firsts % page).any()) or not torch.equal(s, expect):
                ok = False
                break
        if ok:
            return page
    return None


def expert_groups(
    topk_ids: torch.Tensor, num_experts: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """-> (pair order [T*k] sorted by expert, dropped ids (-1) last; cumulative counts [E] int64;
    the number of routed pairs)."""
    flat = topk_ids.reshape(-1).to(torch.int64)
    key = torch.where(flat >= 0, flat, num_experts)
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(key, minlength=num_experts + 1)[:num_experts]
    cumulative = torch.cumsum(counts, 0)
    return order, cumulative, int(cumulative[-1]) if num_experts else 0


def int4_for_npu(
    qweight: torch.Tensor, scales: torch.Tensor, qzeros: torch.Tensor, packing: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (signed values int32 [K, N] in [-8, 7], offset [K/G, N], scale [K/G, N]) in the
    scales' dtype. Integer zero points only (float zeros and act-order are declined)."""
    if packing == "awq":
        q, z = q4.unpack_awq(qweight, qzeros)
    else:
        q, z = q4.unpack_gptq(qweight, qzeros)
    signed = (q - 8).to(torch.int32)
    offset = (8 - z).to(scales.dtype)
    return signed, offset, scales
