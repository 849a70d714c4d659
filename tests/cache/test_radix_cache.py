import random

import pytest
import torch
from sglang.cache import NoPrefixCache, PrefixCache, RadixCache
from sglang.mem import KVSlotAllocator

CPU = torch.device("cpu")


def make(size: int = 64) -> tuple[RadixCache, KVSlotAllocator]:
    alloc = KVSlotAllocator(size, CPU, debug=True)
    return RadixCache(alloc), alloc


def put(cache: RadixCache, alloc: KVSlotAllocator, key: list[int]) -> tuple[torch.Tensor, int]:
    """What a request does: fresh slots for every token, insert, free its duplicates."""
    slots = alloc.alloc(len(key))
    assert slots is not None
    prefix = cache.insert(key, slots)
    alloc.free(slots[:prefix])
    return slots, prefix


def contents(cache: RadixCache) -> dict[tuple[int, ...], int]:
    """Every stored prefix -> the KV slot of its last token, read off the tree structure."""
    out = {}

    def walk(node, prefix):
        for child in node.children.values():
            seq = prefix
            for tok, slot in zip(child.key, child.value.tolist()):
                seq = seq + (tok,)
                out[seq] = slot
            walk(child, seq)

    walk(cache.root, ())
    return out


def test_implements_the_interface():
    cache, alloc = make()
    assert isinstance(cache, PrefixCache) and isinstance(NoPrefixCache(alloc), PrefixCache)


def test_split_in_the_middle_of_an_edge():
    cache, alloc = make()
    slots, _ = put(cache, alloc, [1, 2, 3, 4, 5])
    res = cache.match_prefix([1, 2, 3, 9])
    assert res.indices.tolist() == slots[:3].tolist()
    mid = res.last_node
    assert mid.key == [1, 2, 3] and mid.value.tolist() == slots[:3].tolist()
    assert mid.parent is cache.root and cache.root.children[1] is mid
    (child,) = mid.children.values()
    assert child.key == [4, 5] and child.value.tolist() == slots[3:].tolist()
    assert child.parent is mid
    assert cache.total_size() == 5
    assert cache.match_prefix([1, 2, 3, 4, 5, 6]).indices.tolist() == slots.tolist()
    cache.check()


def test_split_keeps_locks():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3, 4])
    leaf = cache.match_prefix([1, 2, 3, 4]).last_node
    cache.inc_lock_ref(leaf)
    mid = cache.match_prefix([1, 2, 7]).last_node
    assert mid.lock_ref == 1 and cache.protected_size() == 4
    cache.check()
    cache.dec_lock_ref(leaf)
    assert cache.evictable_size() == 4 and cache.protected_size() == 0
    cache.check()


def test_insert_existing_prefix_returns_its_length():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3, 4, 5])
    _, prefix = put(cache, alloc, [1, 2, 3])
    assert prefix == 3
    _, prefix = put(cache, alloc, [1, 2, 3, 4, 5])
    assert prefix == 5
    assert cache.total_size() == 5
    assert alloc.available_size() + cache.total_size() == alloc.total_size
    cache.check()


def test_insert_extending_a_prefix():
    cache, alloc = make()
    first, _ = put(cache, alloc, [1, 2, 3])
    second, prefix = put(cache, alloc, [1, 2, 3, 4, 5, 6])
    assert prefix == 3
    expect = first.tolist() + second[3:].tolist()
    assert cache.match_prefix([1, 2, 3, 4, 5, 6]).indices.tolist() == expect
    _, prefix = put(cache, alloc, [1, 2, 8, 9])
    assert prefix == 2 and cache.total_size() == 8
    cache.check()


def test_insert_copies_value():
    cache, alloc = make()
    slots = alloc.alloc(3)
    row = slots.clone()
    cache.insert([4, 5, 6], row)
    row.zero_()
    assert cache.match_prefix([4, 5, 6]).indices.tolist() == slots.tolist()


def test_lock_unlock_sizes():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3, 4])
    put(cache, alloc, [1, 2, 5])
    node = cache.match_prefix([1, 2, 3, 4]).last_node
    assert cache.evictable_size() == 5 and cache.protected_size() == 0
    assert cache.inc_lock_ref(node) == 4
    assert cache.evictable_size() == 1 and cache.protected_size() == 4
    other = cache.match_prefix([1, 2, 5]).last_node
    assert cache.inc_lock_ref(other) == 1
    assert cache.protected_size() == 5
    assert cache.dec_lock_ref(node) == 2
    assert cache.evictable_size() == 2 and cache.protected_size() == 3
    assert cache.dec_lock_ref(other) == 3
    assert cache.evictable_size() == 5 and cache.protected_size() == 0
    with pytest.raises(RuntimeError):
        cache.dec_lock_ref(other)


def test_root_is_always_locked():
    cache, _ = make()
    assert cache.match_prefix([1, 2]).last_node is cache.root
    assert cache.inc_lock_ref(cache.root) == 0
    assert cache.dec_lock_ref(cache.root) == 0
    assert cache.root.lock_ref == 1
    assert cache.evict(100) == 0
    cache.check()


def test_eviction_is_lru():
    cache, alloc = make()
    put(cache, alloc, [1, 1])
    put(cache, alloc, [2, 2])
    put(cache, alloc, [3, 3])
    cache.match_prefix([1, 1])
    assert cache.evict(2) == 2
    assert set(contents(cache)) == {(1,), (1, 1), (3,), (3, 3)}
    assert cache.evict(1) == 2
    assert set(contents(cache)) == {(1,), (1, 1)}
    cache.check()


def test_parent_becoming_a_leaf_is_evicted_in_turn():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3])
    put(cache, alloc, [1, 2, 4])
    put(cache, alloc, [9])
    cache.match_prefix([9])
    assert cache.evict(4) == 4
    assert set(contents(cache)) == {(9,)}
    cache.check()


def test_locked_path_is_never_evicted():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3])
    put(cache, alloc, [1, 2, 4, 5])
    put(cache, alloc, [7, 8])
    node = cache.match_prefix([1, 2, 3]).last_node
    cache.inc_lock_ref(node)
    assert cache.evict(100) == 4
    assert set(contents(cache)) == {(1,), (1, 2), (1, 2, 3)}
    assert cache.evictable_size() == 0 and cache.protected_size() == 3
    cache.dec_lock_ref(node)
    assert cache.evict(100) == 3 and cache.total_size() == 0
    cache.check()


def test_evicted_slots_return_to_the_allocator():
    cache, alloc = make(8)
    slots, _ = put(cache, alloc, [1, 2, 3, 4, 5, 6])
    assert alloc.available_size() == 2
    assert alloc.alloc(3) is None
    assert cache.evict(3) == 6
    assert alloc.available_size() == 8
    again = alloc.alloc(8)
    assert sorted(again.tolist()) == list(range(1, 9))
    assert set(slots.tolist()) <= set(again.tolist())
    alloc.check()


def test_check_detects_corruption():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3])
    cache.check()
    cache._evictable += 1
    with pytest.raises(RuntimeError, match="sizes"):
        cache.check()
    cache._evictable -= 1
    cache.root.children[1].value = cache.root.children[1].value[:2]
    with pytest.raises(RuntimeError, match="lengths"):
        cache.check()


def test_reset():
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3])
    cache.reset()
    assert cache.total_size() == 0 and cache.match_prefix([1, 2, 3]).indices.numel() == 0
    cache.check()


def test_pretty_print(capsys):
    cache, alloc = make()
    put(cache, alloc, [1, 2, 3])
    put(cache, alloc, [1, 2, 4])
    text = cache.pretty_print()
    assert "[1, 2] len=2" in text and "evictable=4" in text
    assert text in capsys.readouterr().out


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_against_a_model(seed):
    """Model: every stored prefix -> the slot of its last token (first insert wins)."""
    rng = random.Random(seed)
    size = 48
    cache, alloc = make(size)
    model: dict[tuple[int, ...], int] = {}
    locks: list[tuple[tuple[int, ...], object]] = []

    def evict(want: int) -> dict[tuple[int, ...], int]:
        """Evicts, checks what went against the model, and returns the new model."""
        evictable_before = cache.evictable_size()
        available_before = alloc.available_size()
        freed = cache.evict(want)
        after = contents(cache)
        assert freed >= min(want, evictable_before)
        assert all(model[p] == s for p, s in after.items())
        removed = [s for p, s in model.items() if p not in after]
        assert len(removed) == freed
        assert bool(alloc._is_free[torch.tensor(removed, dtype=torch.int64)].all())
        assert alloc.available_size() == available_before + freed
        for locked, _ in locks:
            assert all(locked[: i + 1] in after for i in range(len(locked)))
        return after

    def rand_key():
        return [rng.randrange(3) for _ in range(rng.randint(0, 9))]

    for _ in range(400):
        op = rng.random()
        if op < 0.35:
            key = rand_key()
            slots = alloc.alloc(len(key))
            if slots is None:
                model = evict(len(key))
                slots = alloc.alloc(len(key))
            if slots is None:
                continue
            prefix = cache.insert(key, slots)
            expect_prefix = 0
            while expect_prefix < len(key) and tuple(key[: expect_prefix + 1]) in model:
                expect_prefix += 1
            assert prefix == expect_prefix
            for i in range(prefix, len(key)):
                model[tuple(key[: i + 1])] = int(slots[i])
            alloc.free(slots[:prefix])
        elif op < 0.65:
            key = rand_key()
            res = cache.match_prefix(key)
            n = 0
            while n < len(key) and tuple(key[: n + 1]) in model:
                n += 1
            assert res.indices.tolist() == [model[tuple(key[: i + 1])] for i in range(n)]
            if rng.random() < 0.5:
                cache.inc_lock_ref(res.last_node)
                locks.append((tuple(key[:n]), res.last_node))
        elif op < 0.8 and locks:
            _, node = locks.pop(rng.randrange(len(locks)))
            cache.dec_lock_ref(node)
        else:
            model = evict(rng.randint(0, 12))
        assert contents(cache) == model
        protected = {key[: i + 1] for key, _ in locks for i in range(len(key))}
        assert cache.protected_size() == len(protected)
        assert cache.evictable_size() == len(model) - len(protected)
        assert alloc.available_size() + cache.total_size() == size
        cache.check()
    alloc.check()
