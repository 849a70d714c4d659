"""kv.store on the CPU: one vectorised index_put_ per cache. This is the reference's own
formulation: timed against index_copy_ on 2-D row views (Xeon, 16 threads, 4096 tokens into
200k slots) it was the fastest of the two, and there is no gather left to remove."""

from __future__ import annotations

from sglang_xeon import native


def store(k_cache, v_cache, loc, k, v) -> None:
    k_cache.index_put_((loc,), k if k.dtype == k_cache.dtype else k.to(k_cache.dtype))
    v_cache.index_put_((loc,), v if v.dtype == v_cache.dtype else v.to(v_cache.dtype))


def native_store(k_cache, v_cache, loc, k, v) -> None:
    """csrc/bindings.cpp: one row copy per (token, kv head), slots checked against the cache."""
    native.ops.kv_store(k_cache, v_cache, loc, k, v)


def register(registry) -> None:
    registry.register("kv.store", store, name="xeon.kv_store")
    registry.register(
        "kv.store",
        native_store,
        name="xeon.native_kv_store",
        priority=1,
        available=native.why_unavailable,
    )
