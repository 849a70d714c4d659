"""moe.route and moe.experts references against per-token Python loops written from the
routing rules (SGLang's fused_topk / grouped_topk / biased_grouped_topk) and from the MLP
formula, and the route comparison's order-insensitivity."""

from __future__ import annotations

import math

import pytest
import torch
from sglang.ops.moe import compare_routes, experts, route
from sglang.ops.spec import Case, Tolerance


def _loop_route(logits, top_k, scoring, renormalize, groups, topk_group, bias, scaling):
    out_w, out_ids = [], []
    for row in logits.tolist():
        if scoring == "softmax":
            total = sum(math.exp(v) for v in row)
            scores = [math.exp(v) / total for v in row]
        else:
            scores = [1 / (1 + math.exp(-v)) for v in row]
        choice = [s + (bias[e] if bias is not None else 0.0) for e, s in enumerate(scores)]
        eligible = list(range(len(row)))
        if groups:
            size = len(row) // groups
            members = [list(range(g * size, (g + 1) * size)) for g in range(groups)]

            def group_score(g):
                best = sorted((choice[e] for e in members[g]), reverse=True)
                return best[0] + best[1] if bias is not None else best[0]

            chosen = sorted(range(groups), key=group_score, reverse=True)[:topk_group]
            eligible = [e for g in chosen for e in members[g]]
        ids = sorted(eligible, key=lambda e: choice[e], reverse=True)[:top_k]
        weights = [scores[e] for e in ids]
        if renormalize:
            weights = [w / sum(weights) for w in weights]
        out_w.append([w * scaling for w in weights])
        out_ids.append(ids)
    return out_w, out_ids


def _check_route(
    logits,
    top_k,
    scoring="softmax",
    renormalize=True,
    groups=None,
    topk_group=None,
    bias=None,
    scaling=1.0,
):
    w, ids = route(
        router_logits=logits,
        top_k=top_k,
        scoring_func=scoring,
        renormalize=renormalize,
        num_expert_group=groups,
        topk_group=topk_group,
        correction_bias=bias,
        routed_scaling_factor=scaling,
    )
    assert w.dtype == torch.float32 and ids.dtype == torch.int32
    exp_w, exp_ids = _loop_route(
        logits.double(),
        top_k,
        scoring,
        renormalize,
        groups,
        topk_group,
        None if bias is None else bias.tolist(),
        scaling,
    )
    for t in range(logits.shape[0]):
        got = dict(zip(ids[t].tolist(), w[t].tolist()))
        want = dict(zip(exp_ids[t], exp_w[t]))
        assert set(got) == set(want), t
        for e in want:
            assert got[e] == pytest.approx(want[e], rel=1e-5)


def _distinct_logits(tokens, experts, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(experts, generator=gen) for _ in range(tokens)]) / 16.0


@pytest.mark.parametrize("renormalize", [True, False])
def test_softmax_top_k(renormalize):
    _check_route(_distinct_logits(6, 8, 0), 2, renormalize=renormalize)


def test_sigmoid_with_bias_and_scaling():
    bias = torch.randn(16, generator=torch.Generator().manual_seed(1)) * 0.2
    _check_route(_distinct_logits(5, 16, 2), 3, "sigmoid", True, bias=bias, scaling=2.5)


def test_grouped_softmax():
    _check_route(
        _distinct_logits(7, 32, 3), 4, "softmax", False, groups=8, topk_group=3, scaling=16.0
    )


def test_biased_grouped_deepseek_v3():
    bias = torch.randn(64, generator=torch.Generator().manual_seed(4)) * 0.1
    _check_route(
        _distinct_logits(9, 64, 5),
        8,
        "sigmoid",
        True,
        groups=8,
        topk_group=4,
        bias=bias,
        scaling=2.5,
    )


def test_bias_selects_but_does_not_weigh():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    bias = torch.tensor([0.0, 0.0, 0.0, 5.0])
    w, ids = route(
        router_logits=logits,
        top_k=1,
        scoring_func="sigmoid",
        renormalize=False,
        correction_bias=bias,
    )
    assert ids.tolist() == [[3]]
    assert float(w[0, 0]) == pytest.approx(1 / (1 + math.exp(1.0)))


def _loop_experts(x, w13, w2, weights, ids, act):
    inter = w2.shape[-1]
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(ids.shape[1]):
            e = int(ids[t, j])
            if e < 0:
                continue
            gate = w13[e, :inter] @ x[t]
            up = w13[e, inter:] @ x[t]
            out[t] += float(weights[t, j]) * (w2[e] @ (act(gate) * up))
    return out


@pytest.mark.parametrize("activation", ["silu", "gelu"])
def test_experts_match_dense_per_token_loop(activation):
    gen = torch.Generator().manual_seed(6)
    tokens, hidden, inter, n_experts, top_k = 9, 12, 5, 6, 2
    x = torch.randn(tokens, hidden, dtype=torch.float64, generator=gen)
    w13 = torch.randn(n_experts, 2 * inter, hidden, dtype=torch.float64, generator=gen)
    w2 = torch.randn(n_experts, hidden, inter, dtype=torch.float64, generator=gen)
    ids = torch.stack([torch.randperm(n_experts, generator=gen)[:top_k] for _ in range(tokens)])
    ids[0, 1] = -1
    weights = torch.rand(tokens, top_k, dtype=torch.float64, generator=gen)
    got = experts(
        x=x,
        w13=w13,
        w2=w2,
        topk_weights=weights,
        topk_ids=ids.to(torch.int32),
        activation=activation,
    )
    act = torch.nn.functional.silu if activation == "silu" else torch.nn.functional.gelu
    torch.testing.assert_close(got, _loop_experts(x, w13, w2, weights, ids, act))


def test_experts_empty_and_dtype():
    out = experts(
        x=torch.zeros(0, 8, dtype=torch.bfloat16),
        w13=torch.zeros(4, 6, 8, dtype=torch.bfloat16),
        w2=torch.zeros(4, 8, 3, dtype=torch.bfloat16),
        topk_weights=torch.zeros(0, 2),
        topk_ids=torch.zeros(0, 2, dtype=torch.int32),
    )
    assert out.shape == (0, 8) and out.dtype == torch.bfloat16


def test_compare_routes_ignores_slot_order():
    case = Case("moe.route", "t", torch.float32)
    tol = Tolerance(atol=1e-6, rtol=1e-5)
    ref = [torch.tensor([[0.7, 0.3]]), torch.tensor([[4, 1]], dtype=torch.int32)]
    swapped = [torch.tensor([[0.3, 0.7]]), torch.tensor([[1, 4]], dtype=torch.int32)]
    assert compare_routes(case, ref, swapped, tol)[0]
    other = [torch.tensor([[0.3, 0.7]]), torch.tensor([[2, 4]], dtype=torch.int32)]
    assert not compare_routes(case, ref, other, tol)[0]
    wrong = [torch.tensor([[0.7, 0.3]]), torch.tensor([[1, 4]], dtype=torch.int32)]
    assert not compare_routes(case, ref, wrong, tol)[0]


def test_swigluoai_with_biases_matches_transformers_gpt_oss_experts():
    """moe.experts' "swigluoai" with expert biases against transformers' GptOssExperts (gate and
    up interleaved in its gate_up_proj [E, D, 2I]; x @ w), gates and ups pushed past the clamp."""
    tf = pytest.importorskip("transformers")
    from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts

    gen = torch.Generator().manual_seed(7)
    tokens, hidden, inter, n_experts, top_k = 11, 16, 6, 5, 2
    config = tf.GptOssConfig(
        hidden_size=hidden,
        intermediate_size=inter,
        num_local_experts=n_experts,
        num_experts_per_tok=top_k,
    )
    theirs = GptOssExperts(config).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 3)
    x = torch.randn(tokens, hidden, dtype=torch.float64, generator=gen)
    ids = torch.stack([torch.randperm(n_experts, generator=gen)[:top_k] for _ in range(tokens)])
    weights = torch.rand(tokens, top_k, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        want = theirs(x, ids, weights)
        gate_up = x @ theirs.gate_up_proj[0] + theirs.gate_up_proj_bias[0]
        assert (gate_up[:, ::2] > 7).any() and (gate_up[:, 1::2].abs() > 7).any()

    def gate_first(t):  # interleaved gate, up on the last axis -> gate rows, then up rows
        return torch.cat([t[..., 0::2], t[..., 1::2]], dim=-1)

    got = experts(
        x=x,
        w13=gate_first(theirs.gate_up_proj.detach()).transpose(1, 2),
        w2=theirs.down_proj.detach().transpose(1, 2),
        topk_weights=weights,
        topk_ids=ids.to(torch.int32),
        activation="swigluoai",
        w13_bias=gate_first(theirs.gate_up_proj_bias.detach()),
        w2_bias=theirs.down_proj_bias.detach(),
    )
    torch.testing.assert_close(got, want)
