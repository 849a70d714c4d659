"""attention.extend and attention.decode through torch_npu.npu_fused_infer_attention_score (FIA).

Documented call (torch-npu 2.x): npu_fused_infer_attention_score(query, key, value, *,
atten_mask, actual_seq_lengths, actual_seq_lengths_kv, block_table, num_heads, scale,
input_layout, num_key_value_heads, sparse_mode, block_size) -> (attention_out, softmax_lse).

- Queries in layout "TND" ([N, H, D], the packed new tokens), actual_seq_lengths the running
  sum of the new tokens per sequence.
- Keys: where the cache is paged in whole, page-aligned pages of 128, 64 or 16 slots (glue.
  page_size), FIA reads it in place as [blocks, page, Hkv * D] with a block table and the
  context lengths; otherwise (token-level slots) each sequence's K/V are gathered into TND
  tensors with the running sum of the context lengths.
- Causality with a cached prefix is FIA's sparse_mode 3 (right-down causal: query i of a
  sequence with n new tokens and context L sees keys up to L - n + i), with the 2048 x 2048
  upper-triangular mask the operator asks for in that mode.
Sliding windows and soft-capping are declined (the reference serves them): FIA's band mode
needs a validation run on hardware first. The length conventions (cumulative or per sequence
for the paged form) are this module's reading of the documentation: tests/ascend checks them.
"""

from __future__ import annotations

import functools

import torch
from sglang.backend.plugin_kit import decode_from_extend

from sglang_ascend.kernels.glue import block_table, page_size
from sglang_ascend.kernels.npu import half_only, npu, register_npu

CAUSAL_MASK = 2048  # the mask size sparse_mode 3 takes


@functools.cache
def _causal_mask(device: torch.device) -> torch.Tensor:
    ones = torch.ones(CAUSAL_MASK, CAUSAL_MASK, dtype=torch.bool, device=device)
    return torch.triu(ones, diagonal=1)


def _running(values: list[int]) -> list[int]:
    out, total = [], 0
    for v in values:
        total += v
        out.append(total)
    return out


def extend(
    q,
    k_cache,
    v_cache,
    qo_indptr,
    kv_indptr,
    kv_indices,
    sm_scale,
    sliding_window=-1,
    logit_softcap=0.0,
):
    if sliding_window > 0 or logit_softcap > 0:
        raise ValueError("ascend FIA path: sliding windows and soft-capping are declined")
    tokens, heads, _ = q.shape
    hkv, dv = k_cache.shape[1], v_cache.shape[2]
    if tokens == 0 or qo_indptr.numel() <= 1:
        return q.new_zeros(tokens, heads, dv)
    qo = qo_indptr.tolist()
    new = [qo[b + 1] - qo[b] for b in range(len(qo) - 1)]
    common = dict(
        atten_mask=_causal_mask(q.device),
        actual_seq_lengths=_running(new),
        num_heads=heads,
        scale=float(sm_scale),
        num_key_value_heads=hkv,
        sparse_mode=3,
    )
    page = page_size(kv_indptr, kv_indices)
    if page is not None:
        table, lengths = block_table(kv_indptr, kv_indices, page)
        blocks = k_cache.shape[0] // page
        out, _ = npu().npu_fused_infer_attention_score(
            q.contiguous(),
            k_cache[: blocks * page].view(blocks, page, -1),
            v_cache[: blocks * page].view(blocks, page, -1),
            block_table=table,
            actual_seq_lengths_kv=lengths,
            block_size=page,
            input_layout="TND",
            **common,
        )
    else:
        kv = kv_indptr.tolist()
        lengths = [kv[b + 1] - kv[b] for b in range(len(kv) - 1)]
        slots = kv_indices.to(torch.int64)
        out, _ = npu().npu_fused_infer_attention_score(
            q.contiguous(),
            k_cache[slots].contiguous(),
            v_cache[slots].contiguous(),
            actual_seq_lengths_kv=_running(lengths),
            input_layout="TND",
            **common,
        )
    return out.view(tokens, heads, dv)


decode = decode_from_extend(extend)


def _unsupported(config) -> str | None:
    if config.get("sliding_window", -1) > 0:
        return "sliding window (FIA's band mode is not validated yet)"
    if config.get("logit_softcap", 0.0) > 0:
        return "logit soft-capping (FIA has none)"
    return half_only(config)


def register(registry) -> None:
    common = dict(priority=10, unsupported=_unsupported)
    register_npu(registry, "attention.extend", extend, "fused_infer_attention", **common)
    register_npu(registry, "attention.decode", decode, "fused_infer_attention_decode", **common)
