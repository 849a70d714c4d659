"""moe.experts: the cuda backend's fused Triton MoE (sorted, block-aligned pairs) against the
spec's reference, through the conformance runner (in Triton's interpreter where there is no
GPU), and the alignment's invariants. The few-pair decode path is switched off here (it is
tested in test_moe_decode_triton.py), so these cases run the aligned kernels."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang_triton import moe


@pytest.fixture(autouse=True)
def aligned_kernels(monkeypatch):
    monkeypatch.setattr(moe, "USE_DECODE", False)


def small(case):
    p = case.params
    if p["hidden"] > 96:
        return False
    if case.dtype == torch.float32:  # 64 experts (the interpreter's bfloat16 is slow there)
        return p["experts"] == 64 or p["tokens"] == 0 or bool(case.requires)
    if case.dtype == torch.float16:
        return p["pad"] or bool(case.requires)  # (requires: gpt-oss's swigluoai, expert biases)
    return p["experts"] != 64


@pytest.mark.parametrize("case", kc.params("moe.experts", small))
def test_fused_moe(case):
    kc.check("moe.experts", moe.experts, case)


def _prefill_case(c) -> bool:
    """One float case, DeepSeek-V3's 128x128 FP8 blocks (tiles of 32 within a block) and int4
    groups of 64 and 128 (tiles of 32 within a group)."""
    block = c.params.get("block") == (128, 128) and c.dtype == torch.bfloat16
    int4 = c.params.get("block") == "int4" and c.params["group"] >= 64
    return c.name == "bf16-T17-D96-I40-E8-k2-silu" or block or (int4 and c.dtype != torch.float32)


def _int4_groups(c) -> bool:
    return c.params.get("block") == "int4" and c.params["group"] >= 64 and c.dtype != torch.float32


@pytest.mark.parametrize("case", kc.params("moe.experts", _int4_groups))
def test_fused_moe_int4_groups(case):
    """Int4 experts in groups of 64 and 128 (AWQ / GPTQ's), on the default tiles: a tile's K
    spans one group or part of one."""
    kc.check("moe.experts", moe.experts, case)


PREFILL = kc.params("moe.experts", _prefill_case)


@pytest.mark.parametrize("case", PREFILL)
def test_fused_moe_prefill_tiles(case, monkeypatch):
    tiles = {"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 32}
    monkeypatch.setattr(moe, "_config", lambda n, e: tiles)
    kc.check("moe.experts", moe.experts, case)


def test_align_puts_each_block_on_one_expert():
    ids = torch.tensor([[3, 0], [3, -1], [1, 3], [0, 3]], dtype=torch.int32)
    sorted_pairs, block_expert = moe.align(ids, num_experts=4, block_m=4)
    n = ids.numel()
    assert sorted_pairs.numel() == block_expert.numel() * 4
    flat = ids.flatten().tolist()
    seen = []
    for b, e in enumerate(block_expert.tolist()):
        block = [p for p in sorted_pairs[4 * b : 4 * b + 4].tolist() if p < n]
        if e >= 4:
            assert block == []
        assert all(flat[p] == e for p in block)
        seen += block
    assert sorted(seen) == [i for i, e in enumerate(flat) if e >= 0]
