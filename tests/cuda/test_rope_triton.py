"""rope: the cuda backend's Triton kernel against the spec's reference (neox and gpt-j pairs,
partial rotary dims, scaled caches), through the conformance runner (in Triton's interpreter
where there is no GPU), plus strided q/k views of a fused qkv projection."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.ops import rope as ref
from sglang_triton import rope


def small(case):
    return case.params["tokens"] <= 17 and case.params["heads"] <= 16


@pytest.mark.parametrize("case", kc.params("rope", small))
def test_rope(case):
    kc.check("rope", rope.rope, case)


@pytest.mark.parametrize("is_neox", [True, False])
def test_rope_on_views_of_a_fused_qkv(is_neox):
    t, h, hkv, d = 5, 4, 2, 64
    gen = torch.Generator().manual_seed(0)
    qkv = torch.randn(t, (h + 2 * hkv) * d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    q = qkv[:, : h * d].view(t, h, d)
    k = qkv[:, h * d : (h + hkv) * d].view(t, hkv, d)
    cache = ref.rope_cos_sin_cache(32, 64, 10000.0, None).to(kc.DEVICE)  # 32 of 64 dims rotate
    positions = torch.tensor([0, 3, 63, 7, 1], device=kc.DEVICE)
    before = qkv.clone()
    q_out, k_out = rope.rope(positions, q, k, cache, is_neox)
    q_ref, k_ref = ref.rope(positions, q, k, cache, is_neox)
    torch.testing.assert_close(q_out, q_ref, atol=1.6e-2, rtol=1.6e-2)
    torch.testing.assert_close(k_out, k_ref, atol=1.6e-2, rtol=1.6e-2)
    assert torch.equal(qkv, before)


def small_qk_norm(case):
    return case.params["tokens"] <= 13 and case.params["heads"] <= 32


@pytest.mark.parametrize("case", kc.params("rope.qk_norm", small_qk_norm))
def test_rope_qk_norm(case):
    """Qwen3's q/k RMSNorm fused into the rope kernel, against norm.rms then rope."""
    kc.check("rope.qk_norm", rope.rope_qk_norm, case)


@pytest.mark.parametrize("rotary", [64, 32])
def test_rope_qk_norm_on_views_of_a_fused_qkv(rotary):
    """Strided q/k views (as the model passes them), full and partial rotary dims, against the
    separate norm.rms and rope references; the input is not modified."""
    from sglang.ops.norm import rms_norm

    t, h, hkv, d = 5, 4, 2, 64
    gen = torch.Generator().manual_seed(1)
    qkv = torch.randn(t, (h + 2 * hkv) * d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    q = qkv[:, : h * d].view(t, h, d)
    k = qkv[:, h * d : (h + hkv) * d].view(t, hkv, d)
    qw = (1 + 0.1 * torch.randn(d, generator=gen)).to(kc.DEVICE, torch.bfloat16)
    kw = (1 + 0.1 * torch.randn(d, generator=gen)).to(kc.DEVICE, torch.bfloat16)
    cache = ref.rope_cos_sin_cache(rotary, 64, 10000.0, None).to(kc.DEVICE)
    positions = torch.tensor([0, 3, 63, 7, 1], device=kc.DEVICE)
    before = qkv.clone()
    q_out, k_out = rope.rope_qk_norm(positions, q, k, cache, True, qw, kw, 1e-6)
    qn = rms_norm(q.reshape(-1, d), qw, 1e-6).reshape(q.shape)
    kn = rms_norm(k.reshape(-1, d), kw, 1e-6).reshape(k.shape)
    q_ref, k_ref = ref.rope(positions, qn, kn, cache, True)
    torch.testing.assert_close(q_out, q_ref, atol=1.6e-2, rtol=1.6e-2)
    torch.testing.assert_close(k_out, k_ref, atol=1.6e-2, rtol=1.6e-2)
    assert torch.equal(qkv, before)


def small_kv_store(case):
    return case.params["tokens"] <= 13 and case.params["heads"] <= 32


@pytest.mark.parametrize("case", kc.params("rope.kv_store", small_kv_store))
def test_rope_kv_store(case):
    """rope (and rope.qk_norm) writing the rotated keys and the values straight into their
    cache slots, against rope then kv.store; the other slots untouched."""
    kc.check("rope.kv_store", rope.rope_kv_store, case)


@pytest.mark.parametrize("norm", [False, True])
def test_rope_kv_store_on_views_of_a_fused_qkv(norm):
    """q, k and v as strided views of one qkv row (as the model passes them), partial rotary,
    against the references; the input is not modified."""
    t, h, hkv, d, slots = 5, 4, 2, 64, 16
    gen = torch.Generator().manual_seed(2)
    qkv = torch.randn(t, (h + 2 * hkv) * d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    q = qkv[:, : h * d].view(t, h, d)
    k = qkv[:, h * d : (h + hkv) * d].view(t, hkv, d)
    v = qkv[:, (h + hkv) * d :].view(t, hkv, d)
    cache = ref.rope_cos_sin_cache(32, 64, 10000.0, None).to(kc.DEVICE)
    positions = torch.tensor([0, 3, 63, 7, 1], device=kc.DEVICE)
    loc = torch.tensor([9, 2, 15, 4, 11], device=kc.DEVICE)
    weights = {}
    if norm:
        weights = {
            "q_weight": (torch.rand(d, generator=gen) + 0.5).to(kc.DEVICE, torch.bfloat16),
            "k_weight": (torch.rand(d, generator=gen) + 0.5).to(kc.DEVICE, torch.bfloat16),
        }
    k_cache = torch.randn(slots, hkv, d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    v_cache = torch.randn(slots, hkv, d, generator=gen).to(kc.DEVICE, torch.bfloat16)
    expect = [torch.empty_like(q), k_cache.clone(), v_cache.clone()]
    before = qkv.clone()
    ref.rope_kv_store(
        positions, q, k, v, cache, True, expect[1], expect[2], loc, expect[0], **weights
    )
    out = [torch.empty_like(q), k_cache.clone(), v_cache.clone()]
    rope.rope_kv_store(positions, q, k, v, cache, True, out[1], out[2], loc, out[0], **weights)
    for got, want in zip(out, expect):
        torch.testing.assert_close(got, want, atol=1.6e-2, rtol=1.6e-2)
    assert torch.equal(out[2], expect[2])  # the values are copied, not computed
    assert torch.equal(qkv, before)
