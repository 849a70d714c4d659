"""kv.store's reference checked against a slot-by-slot loop and a round trip."""

from __future__ import annotations

import torch
from sglang.ops import kv
from sglang.ops.specs import get_spec


def _caches(slots=12, heads=2, dim=4, v_dim=3, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(slots, heads, dim, generator=gen).to(dtype),
        torch.randn(slots, heads, v_dim, generator=gen).to(dtype),
    )


def test_store_writes_exactly_the_given_slots():
    k_cache, v_cache = _caches()
    loc = torch.tensor([7, 2, 11, 5])
    k, v = torch.randn(4, 2, 4), torch.randn(4, 2, 3)
    want_k, want_v = k_cache.clone(), v_cache.clone()
    for i, slot in enumerate(loc.tolist()):
        for h in range(2):
            for d in range(4):
                want_k[slot, h, d] = k[i, h, d]
            for d in range(3):
                want_v[slot, h, d] = v[i, h, d]
    assert kv.store(k_cache, v_cache, loc, k, v) is None
    assert torch.equal(k_cache, want_k) and torch.equal(v_cache, want_v)
    assert torch.equal(k_cache[loc], k) and torch.equal(v_cache[loc], v)  # round trip


def test_store_of_nothing_changes_nothing():
    k_cache, v_cache = _caches()
    before = (k_cache.clone(), v_cache.clone())
    kv.store(
        k_cache,
        v_cache,
        torch.empty(0, dtype=torch.int64),
        torch.empty(0, 2, 4),
        torch.empty(0, 2, 3),
    )
    assert torch.equal(k_cache, before[0]) and torch.equal(v_cache, before[1])


def test_store_casts_to_the_cache_dtype():
    k_cache, v_cache = _caches(dtype=torch.bfloat16)
    k, v = torch.randn(1, 2, 4), torch.randn(1, 2, 3)
    kv.store(k_cache, v_cache, torch.tensor([3]), k, v)
    assert torch.equal(k_cache[3], k[0].to(torch.bfloat16))
    assert torch.equal(v_cache[3], v[0].to(torch.bfloat16))


def test_generated_locations_are_distinct_and_skip_slot_zero():
    spec = get_spec("kv.store")
    for case in spec.cases():
        loc = spec.make_inputs(case, torch.Generator().manual_seed(case.seed))["loc"]
        assert loc.dtype == torch.int64 and len(set(loc.tolist())) == loc.numel()
        assert 0 not in loc.tolist()
