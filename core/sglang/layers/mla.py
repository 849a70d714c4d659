"""Multi-head latent attention (DeepSeek-V2/V3) over `attention.mla_extend` /
`attention.mla_decode`, with a paged cache that holds per token only the normalised latent and
the roped key part: one row [c (R) | k_pe (P)] of the layer's K buffer (its V buffer is empty;
see `kv_cache_geometry`), written with kv.store through two column views of that buffer.

Prefill runs un-absorbed (keys and values up-projected from the cached latents with kv_b_proj,
then attention of width Dn + P); decode runs absorbed: w_kc folded into the query, attention
over the latent rows, w_vc applied to the [H, R] output (sglang.ops.mla has both forms)."""

from __future__ import annotations

import torch
from torch import nn

from sglang.forward_batch import ForwardBatch, ForwardMode
from sglang.layers.base import Layer
from sglang.layers.ops_table import OpTable


def kv_cache_geometry(kv_lora_rank: int, qk_rope_head_dim: int) -> tuple[int, int, int]:
    """(kv heads, K width, V width) of an MLA layer's cache: one row of R + P, no V."""
    return 1, kv_lora_rank + qk_rope_head_dim, 0


class UpProjection(Layer):
    """kv_b_proj's weight [H * (Dn + Dv), R] (the checkpoint's), never run as a linear layer:
    MLA reads it as per-head w_kc [H, Dn, R] and w_vc [H, Dv, R] (`split`, once loaded). A
    quantized checkpoint's kv_b_proj is dequantized into it at load (`dequantize_on_load`)."""

    dequantize_on_load = True

    def __init__(self, rank: int, heads: int, nope: int, v_dim: int, dtype, device) -> None:
        super().__init__()
        self.heads, self.nope, self.v_dim = heads, nope, v_dim
        self.weight = nn.Parameter(
            torch.empty(heads * (nope + v_dim), rank, dtype=dtype, device=device),
            requires_grad=False,
        )

    def split(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight.detach().view(self.heads, self.nope + self.v_dim, -1)
        return w[:, : self.nope].contiguous(), w[:, self.nope :].contiguous()


class MLAttention(Layer):
    def __init__(
        self,
        num_heads: int,
        kv_lora_rank: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        layer_id: int,
        ops: OpTable,
        scale: float,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.ops, self.layer_id, self.scale = ops, layer_id, scale
        self.heads, self.rank = num_heads, kv_lora_rank
        self.nope, self.rope, self.v_dim = qk_nope_head_dim, qk_rope_head_dim, v_head_dim
        self.kv_b_proj = UpProjection(
            kv_lora_rank, num_heads, qk_nope_head_dim, v_head_dim, dtype, device
        )
        self._w_kc: torch.Tensor | None = None  # [H, Dn, R], split from kv_b_proj once loaded
        self._w_vc: torch.Tensor | None = None  # [H, Dv, R]

    def forward(
        self,
        q: torch.Tensor,
        latent: torch.Tensor,
        k_pe: torch.Tensor,
        batch: ForwardBatch,
    ) -> torch.Tensor:
        """q [T, H, Dn + P] (rope applied to its last P), latent [T, R] (normalised), k_pe
        [T, P] (roped) -> [T, H * Dv]."""
        if self._w_kc is None:
            self._w_kc, self._w_vc = self.kv_b_proj.split()
        ops, rank = self.ops, self.rank
        cache = batch.kv_cache.k_buffer(self.layer_id)  # [S, 1, R + P]
        ops.kv_store(
            k_cache=cache[..., :rank],
            v_cache=cache[..., rank:],
            loc=batch.out_cache_loc,
            k=latent.unsqueeze(1),
            v=k_pe.unsqueeze(1),
        )
        tokens = q.shape[0]
        if batch.mode == ForwardMode.DECODE:
            q_nope, q_pe = q.split([self.nope, self.rope], dim=-1)
            q_lat = torch.bmm(q_nope.transpose(0, 1), self._w_kc).transpose(0, 1)  # [T, H, R]
            o = ops.mla_decode(
                q=torch.cat([q_lat, q_pe], dim=-1),
                kv_cache=cache,
                kv_indptr=batch.kv_indptr,
                kv_indices=batch.kv_indices,
                sm_scale=self.scale,
                kv_lora_rank=rank,
            )
            # [H, T, R] @ [H, R, Dv] -> [T, H, Dv]
            out = torch.bmm(o.transpose(0, 1), self._w_vc.transpose(1, 2)).transpose(0, 1)
        else:
            out = ops.mla_extend(
                q=q,
                kv_cache=cache,
                qo_indptr=batch.qo_indptr,
                kv_indptr=batch.kv_indptr,
                kv_indices=batch.kv_indices,
                w_kc=self._w_kc,
                w_vc=self._w_vc,
                sm_scale=self.scale,
            )
        return out.reshape(tokens, self.heads * self.v_dim)
