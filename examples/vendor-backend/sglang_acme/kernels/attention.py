"""attention.decode on ACME's attention unit, emulated: the whole batch at once.

Every sequence's keys and values are gathered into a [B, Lmax] grid (padding points at slot 0,
the reserved slot, and is masked out), then one batched score, softmax and weighted sum in
float32. The unit streams K and V through the same buffers, so it needs Dv == D; it has no
sliding window and no logit soft-capping (the backend's capabilities say so, and
`unsupported` refuses such configurations when the engine asks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def decode(
    q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window=-1, logit_softcap=0.0
):
    batch, heads, dim = q.shape
    kv_heads, v_dim = k_cache.shape[1], v_cache.shape[2]
    if batch == 0:
        return q.new_zeros(0, heads, v_dim)
    starts, lengths = kv_indptr[:-1].long(), (kv_indptr[1:] - kv_indptr[:-1]).long()
    pos = torch.arange(int(lengths.max()))
    valid = pos[None, :] < lengths[:, None]  # [B, Lmax]
    flat = (starts[:, None] + pos[None, :]).clamp(max=max(kv_indices.numel() - 1, 0))
    slots = torch.where(valid, kv_indices[flat], torch.zeros_like(flat))
    k = k_cache[slots].float()  # [B, Lmax, Hkv, D]
    v = v_cache[slots].float()  # [B, Lmax, Hkv, Dv]
    qg = q.float().view(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.einsum("bkgd,blkd->bkgl", qg, k) * sm_scale
    scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    out = torch.einsum("bkgl,blkd->bkgd", torch.softmax(scores, dim=-1), v)
    return out.reshape(batch, heads, v_dim).to(q.dtype)


def unsupported(config: Mapping[str, Any]) -> str | None:
    """Why the unit cannot serve `config` (keys as the op spec's cases name them), or None."""
    v_dim = config.get("v_head_dim")
    if v_dim is not None and v_dim != config.get("head_dim"):
        return f"ACME attention needs v_head_dim == head_dim (got {v_dim} and {config['head_dim']})"
    if config.get("sliding_window", -1) > 0:
        return "ACME attention has no sliding window"
    if config.get("logit_softcap", 0.0) > 0:
        return "ACME attention has no logit soft-capping"
    return None


def register(registry) -> None:
    registry.register(
        "attention.decode", decode, name="acme.attention_decode", unsupported=unsupported
    )
