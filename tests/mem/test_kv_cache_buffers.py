import torch
from sglang.mem import KVCache, KVSlotAllocator, tokens_that_fit

CPU = torch.device("cpu")


def test_shapes_and_bytes():
    cache = KVCache(3, 10, 2, 8, 4, torch.float16, CPU)
    assert cache.k_buffer(0).shape == (11, 2, 8)
    assert cache.v_buffer(2).shape == (11, 2, 4)
    per_token = KVCache.bytes_per_token(3, 2, 8, 4, torch.float16)
    assert per_token == 3 * 2 * (8 + 4) * 2
    assert cache.nbytes() == per_token * 11


def test_tokens_that_fit_sizes_a_pool_within_budget():
    per_token = KVCache.bytes_per_token(2, 4, 16, 16, torch.bfloat16)
    for budget in (0, per_token, per_token * 2 - 1, per_token * 100 + 5):
        n = tokens_that_fit(budget, per_token)
        assert n >= 0
        if n > 0:
            assert KVCache(2, n, 4, 16, 16, torch.bfloat16, CPU).nbytes() <= budget
        assert (n + 2) * per_token > budget


def test_store_writes_allocated_slots():
    cache = KVCache(1, 6, 2, 4, 4, torch.float32, CPU)
    slots = KVSlotAllocator(6, CPU).alloc(3)
    k = torch.randn(3, 2, 4)
    v = torch.randn(3, 2, 4)
    cache.store(0, slots, k, v)
    assert torch.equal(cache.k_buffer(0)[slots], k)
    assert torch.equal(cache.v_buffer(0)[slots], v)
    assert cache.k_buffer(0)[0].abs().sum() == 0
