"""attention.mla_extend / attention.mla_decode built from a backend's own attention.extend /
attention.decode kernels, for any backend to register (the xeon backend does).

decode: the cache rows are both the keys (R + P wide) and, through their first R columns, the
values, so absorbed MLA decode is multi-query attention with one KV head of width R + P: the
attention kernel runs with v_cache = kv_cache and the output keeps its first R columns.
extend: the latents of every sequence's tokens (kv_indices) are gathered once and up-projected
with two GEMMs into per-head keys [k_nope | k_pe] and values, laid out as a temporary cache in
kv_indices order, which the attention kernel then reads with indices 0..L-1. No host sync, no
device named: these run wherever the tensors live.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def composed(
    attention_decode: Callable[..., torch.Tensor], attention_extend: Callable[..., torch.Tensor]
) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """(mla_decode, mla_extend) calling the given attention kernels (keyword arguments)."""

    def mla_decode(q, kv_cache, kv_indptr, kv_indices, sm_scale, kv_lora_rank):
        out = attention_decode(
            q=q,
            k_cache=kv_cache,
            v_cache=kv_cache,
            kv_indptr=kv_indptr,
            kv_indices=kv_indices,
            sm_scale=sm_scale,
        )
        return out[..., :kv_lora_rank]

    def mla_extend(q, kv_cache, qo_indptr, kv_indptr, kv_indices, w_kc, w_vc, sm_scale):
        heads, nope, rank = w_kc.shape
        rows = kv_cache[kv_indices, 0]  # [L, R + P]
        latent, pe = rows[:, :rank], rows[:, rank:]
        k_nope = (latent @ w_kc.reshape(heads * nope, rank).T).view(-1, heads, nope)
        k = torch.cat([k_nope, pe.unsqueeze(1).expand(-1, heads, -1)], dim=-1)
        v = (latent @ w_vc.reshape(-1, rank).T).view(rows.shape[0], heads, w_vc.shape[1])
        local = torch.arange(rows.shape[0], dtype=kv_indices.dtype, device=kv_indices.device)
        return attention_extend(
            q=q,
            k_cache=k,
            v_cache=v,
            qo_indptr=qo_indptr,
            kv_indptr=kv_indptr,
            kv_indices=local,
            sm_scale=sm_scale,
        )

    return mla_decode, mla_extend
