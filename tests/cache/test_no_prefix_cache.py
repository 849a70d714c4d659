import torch
from sglang.cache import NoPrefixCache
from sglang.mem import KVSlotAllocator

CPU = torch.device("cpu")


def test_stores_nothing():
    alloc = KVSlotAllocator(8, CPU)
    cache = NoPrefixCache(alloc)
    assert not cache.stores_prefixes
    slots = alloc.alloc(3)
    assert cache.insert([1, 2, 3], slots) == 0
    res = cache.match_prefix([1, 2, 3])
    assert res.indices.numel() == 0 and res.indices.dtype == torch.int64
    assert res.last_node is cache.root
    assert cache.inc_lock_ref(res.last_node) == 0 and cache.dec_lock_ref(res.last_node) == 0
    assert cache.evict(10) == 0
    assert cache.total_size() == cache.evictable_size() == cache.protected_size() == 0
    assert alloc.available_size() == 5
    cache.reset()
    cache.check()
