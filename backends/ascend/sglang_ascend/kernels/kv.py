"""kv.store: torch_npu.npu_scatter_nd_update_(cache, indices [N, 1], updates [N, Hkv, D]) writes
each new token's K and V rows into their slots in place (one scatter per cache, no gather)."""

from __future__ import annotations

from sglang_ascend.kernels.npu import npu, register_npu


def store(k_cache, v_cache, loc, k, v) -> None:
    if loc.numel() == 0:
        return
    index = loc.to(k_cache.device).view(-1, 1)
    npu().npu_scatter_nd_update_(k_cache, index, k.to(k_cache.dtype))
    npu().npu_scatter_nd_update_(v_cache, index, v.to(v_cache.dtype))


def register(registry) -> None:
    register_npu(registry, "kv.store", store, "npu_scatter_nd_update")
