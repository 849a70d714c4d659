"""The KV pool's size: the least of what the limits can use, what memory allows and the
backend's cap, with each number in the reason the log prints."""

from __future__ import annotations

from sglang.model_executor.model_runner import kv_pool_size

GIB = 1 << 30
PER_TOKEN = 23040  # SmolLM2-135M in bfloat16: 30 layers x 3 KV heads x 64 x 2 (K, V) x 2 B


def test_limits_bound_a_small_model():
    """135M model, 24 GiB machine: context 8192 x 64 running is what requests can ever use."""
    tokens, why = kv_pool_size(PER_TOKEN, (8192, 64), (24 * GIB, 20 * GIB, 0.6, GIB // 2))
    assert tokens == 8192 * 64
    assert "context 8192 x 64 running = 524288" in why and "memory:" in why


def test_backend_cap_bounds_a_host_shared_pool():
    cap = 4 * GIB
    tokens, why = kv_pool_size(PER_TOKEN, (8192, 64), (24 * GIB, 20 * GIB, 0.6, GIB // 2), cap)
    assert tokens == cap // PER_TOKEN - 1  # one row is the padding slot
    assert tokens * PER_TOKEN <= cap
    assert "backend cap 4.0 GiB" in why


def test_free_memory_bounds_the_pool():
    """Another process holds most of the memory: the pool takes at most 90% of what is free."""
    free = 2 * GIB
    tokens, _ = kv_pool_size(PER_TOKEN, (8192, 256), (24 * GIB, free, 0.6, GIB // 2))
    assert tokens * PER_TOKEN <= free * 0.9
    assert tokens > 0.85 * free * 0.9 / PER_TOKEN


def test_weights_larger_than_the_budget_leave_no_pool():
    tokens, why = kv_pool_size(PER_TOKEN, (8192, 64), (16 * GIB, 15 * GIB, 0.5, 10 * GIB))
    assert tokens == 0 and "10.00 GiB of weights" in why
