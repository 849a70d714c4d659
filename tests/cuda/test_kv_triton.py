"""kv.store: the cuda backend's Triton kernel against the spec's reference (every case,
through the conformance runner; in Triton's interpreter where there is no GPU), plus strided
k/v views of a fused qkv projection and a cast into a cache of another dtype."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.ops import kv as ref
from sglang_triton import kv


@pytest.mark.parametrize("case", kc.params("kv.store"))
def test_kv_store(case):
    kc.check("kv.store", kv.store, case)


@pytest.mark.parametrize("cache_dtype", [torch.bfloat16, torch.float32])
def test_store_views_of_a_fused_qkv(cache_dtype):
    t, h, hkv, d, slots = 5, 4, 2, 64, 16
    gen = torch.Generator().manual_seed(0)
    qkv = torch.randn(t, (h + 2 * hkv) * d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    k = qkv[:, h * d : (h + hkv) * d].view(t, hkv, d)
    v = qkv[:, (h + hkv) * d :].view(t, hkv, d)
    loc = torch.tensor([3, 9, 1, 15, 4], device=kc.DEVICE)
    caches = [torch.randn(slots, hkv, d, generator=gen).to(kc.DEVICE, cache_dtype) for _ in "kv"]
    expected = [c.clone() for c in caches]
    kv.store(caches[0], caches[1], loc, k, v)
    ref.store(expected[0], expected[1], loc, k, v)
    assert torch.equal(caches[0], expected[0]) and torch.equal(caches[1], expected[1])
