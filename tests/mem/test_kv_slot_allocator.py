import random

import pytest
import torch
from sglang.mem import KVSlotAllocator

CPU = torch.device("cpu")


def test_never_hands_out_slot_zero_and_exhausts_cleanly():
    alloc = KVSlotAllocator(10, CPU)
    assert alloc.total_size == 10
    a = alloc.alloc(4)
    b = alloc.alloc(6)
    assert a.dtype == torch.int64
    got = torch.cat([a, b]).tolist()
    assert sorted(got) == list(range(1, 11))
    assert alloc.available_size() == 0
    assert alloc.alloc(1) is None
    assert alloc.alloc(0).numel() == 0


def test_no_partial_allocation():
    alloc = KVSlotAllocator(5, CPU)
    alloc.alloc(3)
    assert alloc.alloc(3) is None
    assert alloc.available_size() == 2


def test_freed_slots_are_reused():
    alloc = KVSlotAllocator(4, CPU)
    a = alloc.alloc(4)
    alloc.free(a[1:3])
    assert alloc.available_size() == 2
    b = alloc.alloc(2)
    assert sorted(b.tolist()) == sorted(a[1:3].tolist())
    alloc.check()


def test_free_copies_its_argument():
    alloc = KVSlotAllocator(4, CPU)
    table = torch.zeros(4, dtype=torch.int64)
    table[:] = alloc.alloc(4)
    alloc.free(table[:2])
    table[:2] = 0
    assert sorted(alloc.alloc(2).tolist()) == [1, 2]


def test_free_group():
    alloc = KVSlotAllocator(6, CPU)
    a = alloc.alloc(6)
    alloc.free_group_begin()
    alloc.free_group_begin()
    for i in range(3):
        alloc.free(a[i : i + 1])
    alloc.free_group_end()
    assert alloc.available_size() == 0
    alloc.free_group_end()
    assert alloc.available_size() == 3
    with pytest.raises(RuntimeError):
        alloc.free_group_end()
    alloc.check()


def test_check_detects_double_free():
    alloc = KVSlotAllocator(8, CPU)
    a = alloc.alloc(3)
    alloc.free(a)
    alloc.check()
    alloc.free(a[:1])
    with pytest.raises(RuntimeError, match="twice"):
        alloc.check()


def test_debug_mode_raises_at_free():
    alloc = KVSlotAllocator(8, CPU, debug=True)
    a = alloc.alloc(3)
    alloc.free(a[:2])
    with pytest.raises(ValueError, match="double free"):
        alloc.free(a[1:])
    with pytest.raises(ValueError, match="double free"):
        alloc.free(torch.tensor([a[2].item(), a[2].item()]))
    with pytest.raises(ValueError, match="outside"):
        alloc.free(torch.tensor([0]))
    alloc.free(a[2:])
    alloc.check()
    assert alloc.available_size() == 8


def test_page_size_not_implemented():
    with pytest.raises(NotImplementedError, match="page_size"):
        KVSlotAllocator(16, CPU, page_size=16)


def test_random_alloc_free_keeps_a_partition():
    rng = random.Random(0)
    alloc = KVSlotAllocator(64, CPU, debug=True)
    held: list[torch.Tensor] = []
    for _ in range(300):
        if held and rng.random() < 0.5:
            alloc.free(held.pop(rng.randrange(len(held))))
        else:
            got = alloc.alloc(rng.randint(0, 9))
            if got is not None:
                held.append(got)
        in_use = torch.cat(held).tolist() if held else []
        assert len(set(in_use)) == len(in_use) and 0 not in in_use
        assert alloc.available_size() + len(in_use) == 64
    alloc.check()
