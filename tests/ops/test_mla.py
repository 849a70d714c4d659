"""MLA references against plain attention (sglang.ops.attention) on explicitly up-projected
per-head keys and values, and the absorbed decode against the un-absorbed extend."""

from __future__ import annotations

import torch
from sglang.ops import attention, mla
from sglang.ops.paged_kv import allocate_slots, indptr

H, R, P, DN, DV = 4, 24, 8, 16, 12


def _setup(seqs, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = allocate_slots(gen, [p + n for p, n in seqs])
    cache = torch.randn(batch.num_slots, 1, R + P, generator=gen, dtype=torch.float64)
    w_kc = torch.randn(H, DN, R, generator=gen, dtype=torch.float64) * R**-0.5
    w_vc = torch.randn(H, DV, R, generator=gen, dtype=torch.float64) * R**-0.5
    return batch, cache, w_kc, w_vc


def test_extend_equals_attention_on_up_projected_kv():
    seqs = ((0, 5), (7, 3), (2, 1))
    batch, cache, w_kc, w_vc = _setup(seqs)
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(sum(n for _, n in seqs), H, DN + P, generator=gen, dtype=torch.float64)
    c, pe = cache[:, 0, :R], cache[:, 0, R:]
    k = torch.cat([torch.einsum("sr,hnr->shn", c, w_kc), pe[:, None].expand(-1, H, -1)], -1)
    v = torch.einsum("sr,hvr->shv", c, w_vc)
    qo = indptr([n for _, n in seqs])
    want = attention.extend(q, k, v, qo, batch.kv_indptr, batch.kv_indices, sm_scale=0.2)
    got = mla.extend(q, cache, qo, batch.kv_indptr, batch.kv_indices, w_kc, w_vc, sm_scale=0.2)
    assert torch.allclose(got, want, atol=1e-12)


def test_absorbed_decode_equals_unabsorbed_attention():
    seqs = ((6, 1), (0, 1), (12, 1))
    batch, cache, w_kc, w_vc = _setup(seqs, seed=2)
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(len(seqs), H, DN + P, generator=gen, dtype=torch.float64)
    qo = indptr([1] * len(seqs))
    want = mla.extend(q, cache, qo, batch.kv_indptr, batch.kv_indices, w_kc, w_vc, sm_scale=0.3)
    q_lat = torch.einsum("bhn,hnr->bhr", q[..., :DN], w_kc)
    o = mla.decode(
        torch.cat([q_lat, q[..., DN:]], -1),
        cache,
        batch.kv_indptr,
        batch.kv_indices,
        sm_scale=0.3,
        kv_lora_rank=R,
    )
    got = torch.einsum("bhr,hvr->bhv", o, w_vc)
    assert torch.allclose(got, want, atol=1e-12)
