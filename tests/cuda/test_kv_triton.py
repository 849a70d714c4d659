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


def _count_compiles():
    """A list that grows by one for each Triton kernel compiled while the hook is installed, and
    a function that removes the hook."""
    import triton

    compiled: list[str] = []

    def hook(*args, **kw):
        compiled.append(str(kw.get("repr", "")))
        return None  # a true value would skip the compile

    knobs = getattr(triton, "knobs", None)
    if knobs is not None and hasattr(knobs.runtime, "jit_cache_hook"):
        before = knobs.runtime.jit_cache_hook
        knobs.runtime.jit_cache_hook = hook
        return compiled, lambda: setattr(knobs.runtime, "jit_cache_hook", before)
    from triton.runtime.jit import JITFunction

    before = JITFunction.cache_hook
    JITFunction.cache_hook = hook
    return compiled, lambda: setattr(JITFunction, "cache_hook", before)


@pytest.mark.skipif(kc.DEVICE.type != "cuda", reason="compiled variants exist only on a GPU")
def test_unaligned_table_views_reuse_the_compiled_kernels():
    """The scheduler hands the kernels views of the request-to-token table (rows of context + 1
    slots; one request's slots from its cached length), whose addresses are 16-byte aligned or
    not by row and prefix. Neither the KV store nor extend attention compiles a variant for an
    unaligned one (a compile mid-serving held every request ~1.5 s)."""
    from sglang_triton import attention

    dev, gen = kc.DEVICE, torch.Generator().manual_seed(0)
    t, h, hkv, d, slots = 5, 4, 2, 64, 64
    table = torch.randperm(slots, generator=gen)[: 3 * 17].view(3, 17).to(dev)  # odd rows
    k, v, q = (torch.randn(t, n, d, generator=gen).to(dev, torch.bfloat16) for n in (hkv, hkv, h))
    caches = [torch.zeros(slots, hkv, d, device=dev, dtype=torch.bfloat16) for _ in "kv"]
    indptr = torch.tensor([0, t], dtype=torch.int32, device=dev)

    def run(loc, kv_indices):
        kv.store(caches[0], caches[1], loc, k, v)
        return attention.extend(q, caches[0], caches[1], indptr, indptr, kv_indices, d**-0.5)

    aligned = table[0, :t].clone()
    expected = run(aligned, aligned)
    unaligned = table[1, :t]  # row 1 starts 17 x 8 bytes in
    assert unaligned.data_ptr() % 16 != 0
    compiled, remove = _count_compiles()
    try:
        got = run(unaligned, table[1, :t])
    finally:
        remove()
    assert compiled == []
    ref_caches = [torch.zeros_like(c) for c in caches]
    ref.store(ref_caches[0], ref_caches[1], unaligned, k, v)
    assert torch.equal(caches[0][unaligned], ref_caches[0][unaligned])
    # the same keys and values at other slots (rows 0 and 1 share none): the same attention
    assert torch.equal(got, expected)
