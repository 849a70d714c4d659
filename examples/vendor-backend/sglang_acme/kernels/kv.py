"""kv.store with ACME's scatter engine: one indexed copy per cache along the slot axis."""

from __future__ import annotations


def store(k_cache, v_cache, loc, k, v):
    k_cache.index_copy_(0, loc, k.to(k_cache.dtype))
    v_cache.index_copy_(0, loc, v.to(v_cache.dtype))


def register(registry) -> None:
    registry.register("kv.store", store, name="acme.kv_store")
