"""Rotary position embedding over the `rope` op, with its cos/sin cache built once and shared
by the layers."""

from __future__ import annotations

import json
import weakref

import torch

from sglang.layers.base import Layer
from sglang.layers.ops_table import OpTable
from sglang.ops.rope import rope_cos_sin_cache

_CACHES: weakref.WeakValueDictionary[tuple, torch.Tensor] = weakref.WeakValueDictionary()


def shared_cos_sin_cache(
    rotary_dim: int, max_position: int, base: float, scaling: dict | None, device
) -> torch.Tensor:
    """One cos/sin cache per distinct configuration, shared by the layers that use it (all of a
    model's, usually): one copy in memory, and one tensor a kernel sees again in every layer of
    a step. Kept while some module holds it."""
    key = (rotary_dim, max_position, base, json.dumps(scaling, sort_keys=True), str(device))
    cache = _CACHES.get(key)
    if cache is None:
        cache = rope_cos_sin_cache(rotary_dim, max_position, base, scaling, dtype=torch.float32)
        cache = cache.to(device)
        _CACHES[key] = cache
    return cache


class RotaryEmbedding(Layer):
    def __init__(
        self,
        head_dim: int,
        rotary_dim: int,
        max_position: int,
        base: float,
        ops: OpTable,
        scaling: dict | None = None,
        is_neox: bool = True,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.ops, self.is_neox = ops, is_neox
        self.head_dim, self.rotary_dim = head_dim, rotary_dim
        cache = shared_cos_sin_cache(rotary_dim, max_position, base, scaling, device)
        self.register_buffer("cos_sin_cache", cache, persistent=False)

    def forward(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [T]; q [T, H, D]; k [T, Hkv, D]."""
        cache = self._buffers["cos_sin_cache"]  # not self.cos_sin_cache: the slow __getattr__
        return self.ops.rope(
            positions=positions, q=q, k=k, cos_sin_cache=cache, is_neox=self.is_neox
        )

    def forward_and_store(
        self,
        positions: torch.Tensor,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        caches: tuple[torch.Tensor, torch.Tensor],
        loc: torch.Tensor,
        norms=None,
    ) -> torch.Tensor:
        """rope (after the RMSNorm layers `norms` = (q_norm, k_norm), if given) with the keys
        and values written into their KV cache slots `loc` in the same op (rope.kv_store):
        returns the rotated q."""
        q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        weights = {}
        if norms is not None:
            weights = {
                "q_weight": norms[0]._parameters["weight"],
                "k_weight": norms[1]._parameters["weight"],
                "eps": norms[0].eps,
            }
        self.ops.rope_kv_store(
            positions=positions,
            q=q,
            k=k,
            v=v,
            cos_sin_cache=self._buffers["cos_sin_cache"],
            is_neox=self.is_neox,
            k_cache=caches[0],
            v_cache=caches[1],
            loc=loc,
            q_out=q_out,
            **weights,
        )
        return q_out

    def forward_qk_norm(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor, q_norm, k_norm
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """rope after RMSNorm layers q_norm and k_norm (one eps) on each head: one op."""
        return self.ops.rope_qk_norm(
            positions=positions,
            q=q,
            k=k,
            cos_sin_cache=self._buffers["cos_sin_cache"],
            is_neox=self.is_neox,
            q_weight=q_norm._parameters["weight"],
            k_weight=k_norm._parameters["weight"],
            eps=q_norm.eps,
        )
