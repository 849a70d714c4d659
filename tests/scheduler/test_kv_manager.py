"""KVManager.cache_unfinished: a running request's computed KV goes into the prefix cache, its
lock moves to the deepest node, duplicates of what another request cached are freed, and after
every release the pool is whole again (no model needed)."""

from __future__ import annotations

import torch
from sglang.cache.no_cache import NoPrefixCache
from sglang.cache.radix_cache import RadixCache
from sglang.mem.req_to_token import ReqToTokenPool
from sglang.mem.slot_allocator import KVSlotAllocator
from sglang.sampling.params import SamplingParams
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.req import Req

CPU = torch.device("cpu")


def manager(radix: bool = True) -> KVManager:
    allocator = KVSlotAllocator(256, CPU, debug=True)
    cache = RadixCache(allocator) if radix else NoPrefixCache(allocator)
    return KVManager(ReqToTokenPool(8, 128, CPU), allocator, cache)


def request(rid: str, ids: list[int]) -> Req:
    return Req(rid, ids, SamplingParams.from_dict({"max_new_tokens": 4}))


def prefill(kv: KVManager, req: Req, n: int | None = None) -> None:
    """Admit (or continue) and pretend the forward of n tokens ran."""
    if req.row is None:
        prefix, node = kv.match(req, len(req.fill_ids) - 1)
        n = len(req.fill_ids) - prefix.numel() if n is None else n
        assert kv.admit(req, prefix, node, n)
    else:
        n = len(req.fill_ids) - req.kv_len if n is None else n
        assert kv.grow(req, n) is not None
    req.kv_len += n
    kv.cache_unfinished(req)


def test_running_request_is_matched_and_locked():
    kv = manager()
    a = request("a", list(range(1, 41)))
    prefill(kv, a)
    assert a.prefix_len == a.kv_len == 40
    assert kv.cache.protected_size() == 40 and kv.cache.evictable_size() == 0
    b = request("b", list(range(1, 31)) + [99, 98])
    prefix, _ = kv.match(b, len(b.fill_ids) - 1)
    assert torch.equal(prefix, kv.slots_of(a, 30))  # shared while a still runs
    kv.cache.evict(1000)  # locked: nothing goes
    assert kv.cache.total_size() == 40
    prefill(kv, b)
    assert b.kv_len == 32 and torch.equal(kv.slots_of(b, 30), kv.slots_of(a, 30))
    for req in (a, b):
        kv.release(req)
    kv.check_idle()
    assert kv.cache.total_size() == 42


def test_same_prefix_computed_twice_in_one_batch_is_deduplicated():
    kv = manager()
    shared = list(range(1, 21))
    a, b = request("a", shared + [50, 51]), request("b", shared + [60, 61])
    prefill(kv, a)
    # b was admitted in the same batch: it computed `shared` itself.
    b_prefix, b_node = kv.cache.match_prefix([]).indices, kv.cache.root
    assert kv.admit(b, b_prefix, b_node, len(b.fill_ids))
    own = kv.slots_of(b, 20).clone()
    free_before = kv.allocator.available_size()
    b.kv_len = len(b.fill_ids)
    kv.cache_unfinished(b)
    assert kv.allocator.available_size() == free_before + 20  # its duplicates went back
    assert torch.equal(kv.slots_of(b, 20), kv.slots_of(a, 20))
    assert not torch.equal(own, kv.slots_of(b, 20))
    assert b.prefix_len == 22 and kv.cache.protected_size() == 24
    kv.cache.check()
    for req in (b, a):
        kv.release(req)
    kv.check_idle()
    assert kv.cache.total_size() == 24


def test_chunks_are_cached_as_they_run_and_output_on_release():
    kv = manager()
    a = request("a", list(range(1, 51)))
    prefill(kv, a, 16)
    assert kv.cache.protected_size() == 16
    first_node = a.last_node
    prefill(kv, a, 16)
    prefill(kv, a)
    assert a.kv_len == a.prefix_len == 50 and a.last_node is not first_node
    assert kv.cache.protected_size() == 50 and kv.cache.evictable_size() == 0
    kv.cache.check()
    a.output_ids += [7, 8]  # decode wrote one of them
    assert kv.grow(a, 1) is not None
    a.kv_len += 1
    kv.release(a)
    kv.check_idle()
    assert kv.cache.evictable_size() == 51


def test_without_a_prefix_cache_nothing_moves():
    kv = manager(radix=False)
    a = request("a", list(range(1, 41)))
    prefill(kv, a)
    assert a.prefix_len == 0 and a.last_node is kv.cache.root
    kv.release(a)
    kv.check_idle()
    assert kv.allocator.available_size() == 256
