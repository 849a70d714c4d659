"""The ascend kernels' pure-torch preparation (sglang_ascend.kernels.glue), on the CPU: block
tables of a paged cache, expert grouping for npu_grouped_matmul, int4 repacking for
npu_weight_quant_batchmatmul, each against a direct computation."""

from __future__ import annotations

import pytest
import torch
from sglang.ops.quant import int4 as q4
from sglang_ascend.kernels import glue


def paged(lengths, page, first_pages):
    slots, indptr = [], [0]
    for n, first in zip(lengths, first_pages):
        pages = -(-n // page)
        for p in range(pages):
            base = (first + p) * page
            slots += list(range(base, base + min(page, n - p * page)))
        indptr.append(len(slots))
    return torch.tensor(indptr, dtype=torch.int32), torch.tensor(slots, dtype=torch.int64)


def test_block_table_of_a_paged_cache():
    indptr, indices = paged([5, 16, 0, 33], 16, [3, 0, 9, 5])
    table, lengths = glue.block_table(indptr, indices, 16)
    assert lengths == [5, 16, 0, 33]
    assert table.dtype == torch.int32 and table.shape == (4, 3)
    assert table[0, 0] == 3 and table[1, 0] == 0 and table[3].tolist() == [5, 6, 7]
    for b, n in enumerate(lengths):  # every token's slot is found through the table
        for j in range(n):
            slot = int(indices[indptr[b] + j])
            assert int(table[b, j // 16]) * 16 + j % 16 == slot


def test_page_size_detection():
    indptr, indices = paged([5, 40, 1], 16, [3, 0, 9])
    assert glue.page_size(indptr, indices) == 16
    indptr, indices = paged([70, 3], 64, [1, 4])
    assert glue.page_size(indptr, indices) == 64
    scattered = torch.tensor([7, 3, 11, 12, 40], dtype=torch.int64)
    assert glue.page_size(torch.tensor([0, 2, 5], dtype=torch.int32), scattered) is None
    with pytest.raises(ValueError, match="multiple of 16"):
        glue.block_table(torch.tensor([0, 3]), torch.tensor([5, 6, 7]), 16)


def test_expert_groups_sort_pairs_and_count():
    ids = torch.tensor([[2, 0], [1, -1], [2, 2]], dtype=torch.int32)
    order, cumulative, routed = glue.expert_groups(ids, 4)
    flat = ids.reshape(-1)
    assert routed == 5 and cumulative.tolist() == [1, 2, 5, 5]
    assert flat[order[:routed]].tolist() == [0, 1, 2, 2, 2]
    assert flat[order[routed:]].tolist() == [-1]


@pytest.mark.parametrize("packing", ["awq", "gptq"])
def test_int4_for_npu_keeps_the_dequantized_weight(packing):
    gen = torch.Generator().manual_seed(0)
    k, n, g = 64, 16, 32
    q = torch.randint(0, 16, (k, n), generator=gen, dtype=torch.int32)
    lo = 1 if packing == "gptq" else 0
    z = torch.randint(lo, 16, (k // g, n), generator=gen, dtype=torch.int32)
    scales = torch.rand(k // g, n, generator=gen) + 0.5
    qweight, qzeros = (q4.pack_awq if packing == "awq" else q4.pack_gptq)(q, z)
    signed, offset, scale = glue.int4_for_npu(qweight, scales, qzeros, packing)
    assert signed.min() >= -8 and signed.max() <= 7
    groups = torch.arange(k) // g
    npu_w = (signed.float() + offset[groups]) * scale[groups]  # what the operator computes
    assert torch.equal(npu_w, (q - z[groups]).float() * scales[groups])
