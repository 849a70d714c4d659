"""The attention reference checked against independent constructions: torch's dense
scaled_dot_product_attention over per-sequence K/V with masks built by tril/triu, hand-made
examples whose answers are known in closed form, and decode replayed token by token."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sglang.ops import attention
from sglang.ops.paged_kv import allocate_slots, indptr
from sglang.ops.specs import get_spec

F64 = torch.float64


def _batch(seqs, heads, kv_heads, dim, v_dim=None, page_size=1, seed=0):
    """Random float64 inputs for sequences given as (prefix, new)."""
    gen = torch.Generator().manual_seed(seed)
    paged = allocate_slots(gen, [p + n for p, n in seqs], page_size=page_size)
    new = sum(n for _, n in seqs)
    return {
        "q": torch.randn(new, heads, dim, generator=gen, dtype=F64),
        "k_cache": torch.randn(paged.num_slots, kv_heads, dim, generator=gen, dtype=F64),
        "v_cache": torch.randn(paged.num_slots, kv_heads, v_dim or dim, generator=gen, dtype=F64),
        "qo_indptr": indptr([n for _, n in seqs]),
        "kv_indptr": paged.kv_indptr,
        "kv_indices": paged.kv_indices,
    }


def _dense(args, seqs, scale, window=-1):
    """Per sequence: dense K/V in position order, K/V heads repeated for GQA, a bottom-right
    causal mask from tril (and the window from triu), torch's SDPA in float64."""
    heads, kv_heads = args["q"].shape[1], args["k_cache"].shape[1]
    outs, q0, k0 = [], 0, 0
    for prefix, new in seqs:
        length = prefix + new
        slots = args["kv_indices"][k0 : k0 + length]
        k = args["k_cache"][slots].repeat_interleave(heads // kv_heads, dim=1).transpose(0, 1)
        v = args["v_cache"][slots].repeat_interleave(heads // kv_heads, dim=1).transpose(0, 1)
        q = args["q"][q0 : q0 + new].transpose(0, 1)
        mask = torch.ones(new, length, dtype=torch.bool).tril(diagonal=prefix)
        if window > 0:
            mask &= torch.ones(new, length, dtype=torch.bool).triu(diagonal=prefix - window + 1)
        outs.append(
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).transpose(0, 1)
        )
        q0, k0 = q0 + new, k0 + length
    return torch.cat(outs) if outs else args["q"].new_zeros(0, heads, args["v_cache"].shape[2])


@pytest.mark.parametrize(
    "seqs,heads,kv_heads,dim,v_dim,page,window",
    [
        (((0, 5),), 2, 2, 16, None, 1, -1),
        (((0, 1), (4, 3), (9, 1), (0, 6), (2, 11)), 8, 2, 32, None, 1, -1),
        (((7, 9), (30, 4)), 8, 1, 64, 16, 16, -1),
        (((0, 12), (20, 3), (5, 5)), 4, 4, 16, None, 1, 4),
        (((40, 30),), 4, 2, 16, None, 16, 17),
    ],
)
def test_extend_matches_dense_sdpa(seqs, heads, kv_heads, dim, v_dim, page, window):
    args = _batch(seqs, heads, kv_heads, dim, v_dim, page)
    scale = 0.7 / math.sqrt(dim)
    got = attention.extend(**args, sm_scale=scale, sliding_window=window)
    torch.testing.assert_close(got, _dense(args, seqs, scale, window), rtol=1e-12, atol=1e-12)


def test_decode_matches_dense_sdpa():
    seqs = ((0, 1), (16, 1), (4, 1), (63, 1))
    args = _batch(seqs, 8, 2, 32, page_size=16)
    args.pop("qo_indptr")
    got = attention.decode(**args, sm_scale=0.2, sliding_window=10)
    torch.testing.assert_close(got, _dense(args, seqs, 0.2, window=10), rtol=1e-12, atol=1e-12)


def _uniform_scores_batch(length, new):
    """q = 0 makes every score 0, and v_cache holds one-hot rows, so each output row is the
    uniform distribution over the keys its query can see: the visibility mask made visible."""
    k_cache = torch.randn(length + 1, 1, 4, dtype=F64)
    one_hot = torch.eye(length, dtype=F64)[:, None]  # slot 1 + j holds e_j
    v_cache = torch.cat([torch.zeros(1, 1, length, dtype=F64), one_hot])
    return {
        "q": torch.zeros(new, 1, 4, dtype=F64),
        "k_cache": k_cache,
        "v_cache": v_cache,
        "qo_indptr": torch.tensor([0, new], dtype=torch.int32),
        "kv_indptr": torch.tensor([0, length], dtype=torch.int32),
        "kv_indices": torch.arange(1, length + 1),
    }


def test_causal_mask_with_prefix_by_hand():
    out = attention.extend(**_uniform_scores_batch(5, 2), sm_scale=1.0)[:, 0]
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=F64)
    torch.testing.assert_close(out, expected / expected.sum(1, keepdim=True))


def test_sliding_window_by_hand():
    # Window 2 (Hugging Face's convention): position p sees p-1 and p, nothing older.
    out = attention.extend(**_uniform_scores_batch(5, 3), sm_scale=1.0, sliding_window=2)[:, 0]
    expected = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]], dtype=F64) / 2
    torch.testing.assert_close(out, expected)
    args = _uniform_scores_batch(5, 1)
    args.pop("qo_indptr")
    decoded = attention.decode(**args, sm_scale=1.0, sliding_window=3)[0, 0]
    torch.testing.assert_close(decoded, torch.tensor([0, 0, 1, 1, 1], dtype=F64) / 3)


def test_logit_softcap_by_hand():
    # Two keys, one query, D = 1: o = softmax(s) . v with s_j = c * tanh(q k_j scale / c).
    q, keys, values, scale, cap = 2.0, (3.0, -1.0), (1.0, -2.0), 0.5, 1.5
    args = {
        "q": torch.tensor([[[q]]], dtype=F64),
        "k_cache": torch.tensor([[[9.0]], [[keys[0]]], [[keys[1]]]], dtype=F64),
        "v_cache": torch.tensor([[[9.0]], [[values[0]]], [[values[1]]]], dtype=F64),
        "kv_indptr": torch.tensor([0, 2], dtype=torch.int32),
        "kv_indices": torch.tensor([1, 2]),
    }
    s = [cap * math.tanh(q * k * scale / cap) for k in keys]
    w0 = 1.0 / (1.0 + math.exp(s[1] - s[0]))
    expected = w0 * values[0] + (1 - w0) * values[1]
    got = attention.decode(**args, sm_scale=scale, logit_softcap=cap)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    plain = 1.0 / (1.0 + math.exp((keys[1] - keys[0]) * q * scale))
    uncapped = attention.decode(**args, sm_scale=scale)
    assert uncapped.item() == pytest.approx(plain * values[0] + (1 - plain) * values[1], abs=1e-12)


def test_extend_rows_equal_decode_step_by_step():
    """Prefill of 9 tokens after a 4-token prefix: row i must equal a decode whose context is
    the first 4 + i + 1 tokens of the same sequence."""
    args = _batch(((4, 9),), 8, 2, 16, page_size=1, seed=3)
    for window, cap in ((-1, 0.0), (5, 0.0), (-1, 2.0)):
        ext = attention.extend(**args, sm_scale=0.3, sliding_window=window, logit_softcap=cap)
        for i in range(9):
            ctx = 4 + i + 1
            step = attention.decode(
                q=args["q"][i : i + 1],
                k_cache=args["k_cache"],
                v_cache=args["v_cache"],
                kv_indptr=torch.tensor([0, ctx], dtype=torch.int32),
                kv_indices=args["kv_indices"][:ctx],
                sm_scale=0.3,
                sliding_window=window,
                logit_softcap=cap,
            )
            torch.testing.assert_close(ext[i : i + 1], step, rtol=1e-12, atol=1e-12)


def test_gqa_equals_duplicated_kv_heads():
    args = _batch(((3, 4), (0, 2)), 6, 2, 8, seed=5)
    dup = dict(
        args,
        k_cache=args["k_cache"].repeat_interleave(3, dim=1),
        v_cache=args["v_cache"].repeat_interleave(3, dim=1),
    )
    torch.testing.assert_close(
        attention.extend(**args, sm_scale=0.4),
        attention.extend(**dup, sm_scale=0.4),
        rtol=0,
        atol=1e-14,
    )


def test_low_precision_output_dtype_and_empty_batch():
    args = _batch(((2, 3),), 4, 4, 8)
    bf16 = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in args.items()}
    assert attention.extend(**bf16, sm_scale=0.3).dtype == torch.bfloat16
    empty = _batch((), 4, 2, 8, v_dim=6)
    assert attention.extend(**empty, sm_scale=0.3).shape == (0, 4, 6)
    empty.pop("qo_indptr")
    assert attention.decode(**empty, sm_scale=0.3).shape == (0, 4, 6)


def test_allocate_slots_layout():
    gen = torch.Generator().manual_seed(0)
    lengths = [33, 1, 0, 16, 40]
    paged = allocate_slots(gen, lengths, page_size=16)
    slots = paged.kv_indices.tolist()
    assert paged.kv_indptr.tolist() == [0, 33, 34, 34, 50, 90]
    assert len(set(slots)) == len(slots) and 0 not in slots
    assert min(slots) >= 16 and max(slots) < paged.num_slots  # page 0 is reserved
    for b in range(len(lengths)):
        seq = slots[paged.kv_indptr[b] : paged.kv_indptr[b + 1]]
        for start in range(0, len(seq), 16):
            page = seq[start : start + 16]
            assert page[0] % 16 == 0 and page == list(range(page[0], page[0] + len(page)))
    flat = allocate_slots(gen, [50], page_size=1).kv_indices
    assert not torch.equal(flat, torch.arange(int(flat.min()), int(flat.min()) + 50))


@pytest.mark.parametrize("op", ["attention.extend", "attention.decode"])
def test_cases_declare_their_capabilities(op):
    spec = get_spec(op)
    cases = spec.cases()
    assert len({c.id for c in cases}) == len(cases)
    assert {c.dtype for c in cases} == {torch.float32, torch.bfloat16, torch.float16}
    for case in cases:
        p = case.params
        assert ("attention:gqa" in case.requires) == (p["heads"] != p["kv_heads"])
        assert ("attention:sliding_window" in case.requires) == (p["sliding_window"] > 0)
        assert ("attention:logit_softcap" in case.requires) == (p["logit_softcap"] > 0)
        if p["page_size"] > 1:
            assert f"page_size:{p['page_size']}" in case.requires
    assert any(c.params["page_size"] == 64 for c in cases)
    assert any(len(c.params["seqs"]) == 0 for c in cases)


def test_sinks_by_hand():
    # q = 0: every visible key scores 0, so with a sink s each weighs 1 / (visible + e^s).
    args = _uniform_scores_batch(5, 2)
    out = attention.extend(**args, sm_scale=1.0, sinks=torch.tensor([math.log(3.0)]))[:, 0]
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=F64)
    torch.testing.assert_close(out, expected / (expected.sum(1, keepdim=True) + 3))


@pytest.mark.parametrize("window", [-1, 4])
def test_sinks_match_transformers_gpt_oss_attention(window):
    """Our extend against transformers' gpt-oss eager attention (sinks concatenated as one more
    logit column, dropped after the softmax) on a sequence with a cached prefix, GQA 4:2."""
    gpt_oss = pytest.importorskip("transformers.models.gpt_oss.modeling_gpt_oss")
    from types import SimpleNamespace

    prefix, new, heads, kv_heads, dim = 6, 5, 4, 2, 16
    args = _batch(((prefix, new),), heads, kv_heads, dim, seed=3)
    sinks = torch.randn(heads, generator=torch.Generator().manual_seed(4), dtype=F64) * 2
    got = attention.extend(**args, sm_scale=0.25, sliding_window=window, sinks=sinks)
    slots = args["kv_indices"]
    length = prefix + new
    visible = torch.ones(new, length, dtype=torch.bool).tril(diagonal=prefix)
    if window > 0:
        visible &= torch.ones(new, length, dtype=torch.bool).triu(diagonal=prefix - window + 1)
    mask = torch.zeros(new, length, dtype=F64).masked_fill(~visible, float("-inf"))
    module = SimpleNamespace(num_key_value_groups=heads // kv_heads, sinks=sinks, training=False)
    want, _ = gpt_oss.eager_attention_forward(
        module,
        args["q"].transpose(0, 1)[None],
        args["k_cache"][slots].transpose(0, 1)[None],
        args["v_cache"][slots].transpose(0, 1)[None],
        mask[None, None],
        scaling=0.25,
    )
    torch.testing.assert_close(got, want[0], rtol=1e-12, atol=1e-12)
