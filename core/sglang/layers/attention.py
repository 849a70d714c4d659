"""Paged attention over the KV cache: store this step's K/V, then attend (`kv.store`,
`attention.extend` / `attention.decode`)."""

from __future__ import annotations

import torch
from torch import nn

from sglang.forward_batch import ForwardBatch, ForwardMode
from sglang.layers.base import Layer
from sglang.layers.linear import tp_group
from sglang.layers.ops_table import OpTable


class Attention(Layer):
    def __init__(
        self,
        num_heads: int,
        num_kv_heads: int,
        head_dim: int,
        layer_id: int,
        ops: OpTable,
        scale: float | None = None,
        sliding_window: int = -1,
        logit_softcap: float = 0.0,
        v_head_dim: int | None = None,
        sinks: bool = False,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.ops, self.layer_id = ops, layer_id
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = head_dim
        self.v_head_dim = v_head_dim or head_dim
        self.scale = scale if scale is not None else head_dim**-0.5
        self.sliding_window = sliding_window if sliding_window and sliding_window > 0 else -1
        self.logit_softcap = logit_softcap or 0.0
        # fp8 KV cache scales (k_cache = k / k_scale); a checkpoint may set them per layer
        # (sglang.layers.quantization.kv_scales).
        self.k_scale = self.v_scale = 1.0
        self.kv_scales_loaded = False
        # {"k_scale": ..., "v_scale": ...} once the runner has made an fp8 cache, else empty:
        # 16/32-bit caches call the kernels without them (a kernel need not take them).
        self.kv_kwargs: dict[str, float] = {}
        # Attention sinks (gpt-oss): a learned logit per head in the softmax's denominator,
        # served by the backend's kernels where it declares "attention:sinks", else the
        # reference kernels (OpTable.kernel_needing).
        self.sinks = None
        self._decode = self._extend = None  # None: the table's kernels
        if sinks:
            # on the model's device: a backend's kernel reads it in place (no copy per call)
            self.sinks = nn.Parameter(torch.zeros(num_heads, device=device), requires_grad=False)
            need = ("attention:sinks",)
            self._decode = ops.kernel_needing("attention.decode", need, {"sinks": True})
            self._extend = ops.kernel_needing("attention.extend", need, {"sinks": True})

    def load_sinks(self, tensor: torch.Tensor) -> None:
        """The checkpoint's sinks, one per query head of the whole layer: this rank's heads
        (tensor parallel splits the query heads in order)."""
        tp, local = tp_group(self.ops), self.num_heads
        if tuple(tensor.shape) != (local * tp.size,):
            raise ValueError(
                f"attention sinks: shape {tuple(tensor.shape)} != ({local * tp.size},)"
            )
        self.sinks.data.copy_(tensor.narrow(0, tp.rank * local, local))

    def plain_caches(self, batch: ForwardBatch, dtype: torch.dtype):
        """This layer's (k_cache, v_cache) when a fused op may write them as the keys' own dtype
        (rope.kv_store): no fp8 scales and the caches in `dtype`; else None."""
        if self.kv_kwargs:
            return None
        kv = batch.kv_cache
        k_cache, v_cache = kv.k_buffer(self.layer_id), kv.v_buffer(self.layer_id)
        return (k_cache, v_cache) if k_cache.dtype == v_cache.dtype == dtype else None

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor | None,
        v: torch.Tensor | None,
        batch: ForwardBatch,
        stored: bool = False,
    ) -> torch.Tensor:
        """q [T, H, D], k [T, Hkv, D], v [T, Hkv, Dv] -> [T, H * Dv]. stored: this step's keys
        and values are already in the cache (rope.kv_store); k and v are not read."""
        ops, kv = self.ops, batch.kv_cache
        k_cache, v_cache = kv.k_buffer(self.layer_id), kv.v_buffer(self.layer_id)
        scales = self.kv_kwargs
        if not stored:
            ops.kv_store(
                k_cache=k_cache, v_cache=v_cache, loc=batch.out_cache_loc, k=k, v=v, **scales
            )
        if self.sinks is not None:
            scales = {**scales, "sinks": self.sinks}
        if batch.mode == ForwardMode.DECODE:
            out = (self._decode or ops.attention_decode)(
                q=q,
                k_cache=k_cache,
                v_cache=v_cache,
                kv_indptr=batch.kv_indptr,
                kv_indices=batch.kv_indices,
                sm_scale=self.scale,
                sliding_window=self.sliding_window,
                logit_softcap=self.logit_softcap,
                **scales,
            )
        else:
            out = (self._extend or ops.attention_extend)(
                q=q,
                k_cache=k_cache,
                v_cache=v_cache,
                qo_indptr=batch.qo_indptr,
                kv_indptr=batch.kv_indptr,
                kv_indices=batch.kv_indices,
                sm_scale=self.scale,
                sliding_window=self.sliding_window,
                logit_softcap=self.logit_softcap,
                **scales,
            )
        return out.reshape(q.shape[0], self.num_heads * self.v_head_dim)
