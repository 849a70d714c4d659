"""greedy_argmax (the sampler's two-pass argmax) against torch.argmax: random rows, ties
inside and across chunks, rows of -inf, NaN, vocabularies with and without a chunk size."""

from __future__ import annotations

import pytest
import torch
from sglang.sampling.sampler import _argmax_chunk, greedy_argmax


@pytest.mark.parametrize("vocab", [128256, 151936, 49152, 32000, 50257, 7])
@pytest.mark.parametrize("rows", [1, 5])
def test_matches_torch_argmax(vocab, rows):
    gen = torch.Generator().manual_seed(vocab + rows)
    logits = torch.randn(rows, vocab, generator=gen)
    assert torch.equal(greedy_argmax(logits), torch.argmax(logits, dim=-1))


def test_chunk_sizes():
    assert _argmax_chunk(128256) == 501  # 256 chunks
    assert _argmax_chunk(151936) == 128
    assert _argmax_chunk(50257) == 0  # 29 x 1733: one pass
    assert _argmax_chunk(7) == 0


def test_ties_go_to_the_first_maximum():
    vocab = 4096
    chunk = _argmax_chunk(vocab)
    logits = torch.zeros(4, vocab)
    logits[0, [5, 6, chunk + 1]] = 3.0  # inside the first chunk and in a later one
    logits[1, [chunk * 3 + 7, chunk * 2 + 9]] = 2.0  # across chunks only
    logits[2] = 1.0  # the whole row tied
    logits[3, [vocab - 1, vocab - 2]] = 9.0  # at the end
    expect = torch.tensor([5, chunk * 2 + 9, 0, vocab - 2])
    assert torch.equal(greedy_argmax(logits), expect)
    assert torch.equal(torch.argmax(logits, dim=-1), expect)


def test_masked_rows_and_nan():
    vocab = 32000
    logits = torch.full((3, vocab), float("-inf"))
    logits[1, 12345] = 0.0  # one allowed token (a grammar's mask)
    logits[2, 777] = float("nan")
    assert torch.equal(greedy_argmax(logits), torch.argmax(logits, dim=-1))
    assert greedy_argmax(logits).tolist() == [0, 12345, 777]


def test_non_contiguous_and_empty():
    logits = torch.randn(3, 4100)[:, :4096]  # a padded vocabulary cut to the real one
    assert torch.equal(greedy_argmax(logits), torch.argmax(logits, dim=-1))
    assert greedy_argmax(torch.empty(0, 4096)).shape == (0,)
