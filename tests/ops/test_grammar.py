"""grammar.apply_bitmask reference against a bit-by-bit Python loop, and the packing helper
against words written out by hand."""

from __future__ import annotations

import pytest
import torch
from sglang.ops.grammar import apply_bitmask, pack_bitmask


def _loop(logits: torch.Tensor, bitmask: torch.Tensor) -> torch.Tensor:
    out = logits.clone()
    for b in range(logits.shape[0]):
        for j in range(logits.shape[1]):
            word = int(bitmask[b, j // 32])  # a Python int: >> is arithmetic on negatives too
            if (word >> (j % 32)) & 1 == 0:
                out[b, j] = float("-inf")
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("vocab", [1, 31, 32, 100])
def test_matches_bit_loop(dtype, vocab):
    gen = torch.Generator().manual_seed(vocab)
    words = -(-vocab // 32)
    bitmask = torch.randint(-(2**31), 2**31, (3, words), generator=gen, dtype=torch.int64)
    bitmask = bitmask.to(torch.int32)
    logits = torch.randn(3, vocab, generator=gen).to(dtype)
    expected = _loop(logits, bitmask)
    apply_bitmask(logits=logits, bitmask=bitmask)
    assert logits.dtype == dtype
    assert torch.equal(logits, expected)


def test_pack_bitmask_by_hand():
    allowed = torch.zeros(2, 40, dtype=torch.bool)
    allowed[0, [0, 31, 32]] = True
    allowed[1, [1, 39]] = True
    # Row 0: word 0 = bit 0 | bit 31 = 1 - 2^31 as int32; word 1 = bit 0 = 1.
    # Row 1: word 0 = bit 1 = 2; word 1 = bit 7 = 128.
    expected = torch.tensor([[1 - 2**31, 1], [2, 128]], dtype=torch.int32)
    assert torch.equal(pack_bitmask(allowed), expected)
    logits = torch.zeros(2, 40)
    apply_bitmask(logits=logits, bitmask=expected)
    assert torch.equal(torch.isfinite(logits), allowed)


def test_all_allowed_leaves_logits_bit_identical():
    logits = torch.tensor([[-0.0, 1.5, float("-inf"), 3.0]])
    before = logits.clone()
    apply_bitmask(logits=logits, bitmask=torch.tensor([[-1]], dtype=torch.int32))
    assert torch.equal(logits, before) and bool(torch.signbit(logits[0, 0]))


def test_empty_batch():
    logits = torch.zeros(0, 64)
    apply_bitmask(logits=logits, bitmask=torch.zeros(0, 2, dtype=torch.int32))
    assert logits.shape == (0, 64)
