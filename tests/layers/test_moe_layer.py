"""The MoE layers against a per-token loop written from the routing rules and the MLP formula
(on the reference and xeon backends), and config checks that name the offending field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sglang.backend.selection import select_platform
from sglang.layers.mlp import GatedMLP
from sglang.layers.moe import MoEConfigError, Routing, SparseMoE
from sglang.layers.ops_table import OpTable


@pytest.fixture(scope="module", params=["reference", "xeon"])
def ops(request):
    try:
        return OpTable(select_platform(request.param))
    except Exception as e:  # the backend is not available here
        pytest.skip(f"{request.param}: {e}")


def _fill(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _, p in module.named_parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def _loop(block: SparseMoE, x: torch.Tensor, r: Routing) -> torch.Tensor:
    """One token at a time, in float64, from the weights as plain tensors."""
    x = x.double()
    logits = x @ block.gate.weight.double().T
    w13, w2 = block.experts.w13_weight.double(), block.experts.w2_weight.double()
    inter = w2.shape[-1]
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        scores = logits[t].softmax(-1) if r.scoring_func == "softmax" else logits[t].sigmoid()
        choice = scores.clone()
        if r.correction_bias:
            choice += block.experts.correction_bias.double()
        if r.num_expert_group:
            size = r.num_experts // r.num_expert_group
            groups = choice.view(r.num_expert_group, size)
            gscore = groups.topk(2).values.sum(-1) if r.correction_bias else groups.max(-1).values
            keep = torch.zeros(r.num_expert_group, dtype=torch.bool)
            keep[gscore.topk(r.topk_group).indices] = True
            choice = choice.masked_fill(~keep.repeat_interleave(size), float("-inf"))
        ids = choice.topk(r.top_k).indices
        weights = scores[ids]
        if r.renormalize:
            weights = weights / weights.sum()
        for e, w in zip(ids.tolist(), weights * r.routed_scaling_factor):
            gate_up = w13[e] @ x[t]
            out[t] += w * (w2[e] @ (F.silu(gate_up[:inter]) * gate_up[inter:]))
    shared = block._modules.get(block.shared_name)
    if shared is not None:
        gate_up = x @ shared.gate_up_proj.weight.double().T
        s = F.silu(gate_up[:, : gate_up.shape[1] // 2]) * gate_up[:, gate_up.shape[1] // 2 :]
        s = s @ shared.down_proj.weight.double().T
        if block.shared_expert_gate is not None:
            s = s * torch.sigmoid(x @ block.shared_expert_gate.weight.double().T)
        out += s
    return out


ROUTINGS = {
    "mixtral": Routing(8, 2),
    "qwen2-shared": Routing(8, 4, renormalize=False),
    "dsv2-groups": Routing(
        16, 3, renormalize=False, num_expert_group=4, topk_group=2, routed_scaling_factor=16.0
    ),
    "dsv3-noaux_tc": Routing(
        16,
        4,
        scoring_func="sigmoid",
        num_expert_group=4,
        topk_group=2,
        routed_scaling_factor=2.5,
        correction_bias=True,
    ),
}


@pytest.mark.parametrize("name", list(ROUTINGS))
def test_sparse_moe_matches_per_token_loop(ops, name):
    r = ROUTINGS[name]
    d, inter = 32, 24
    shared = GatedMLP(d, 40, ops) if name.startswith(("qwen2", "dsv")) else None
    block = SparseMoE(r, d, inter, ops, shared=shared, shared_gate=name.startswith("qwen2"))
    _fill(block, seed=len(name))
    x = torch.randn(11, d, generator=torch.Generator().manual_seed(1))
    got = block(x)
    want = _loop(block, x, r)
    err = (got.double() - want).abs().max()
    assert torch.allclose(got.double(), want, atol=1e-4, rtol=1e-4), err


def test_load_expert_fills_gate_up_and_down_rows(ops):
    block = SparseMoE(Routing(4, 2), 8, 6, ops)
    gate, up, down = torch.randn(6, 8), torch.randn(6, 8), torch.randn(8, 6)
    assert block.experts.load_expert(2, "gate", gate) == "w13_weight"
    block.experts.load_expert(2, "up", up)
    assert block.experts.load_expert(2, "down", down) == "w2_weight"
    assert torch.equal(block.experts.w13_weight[2], torch.cat([gate, up]))
    assert torch.equal(block.experts.w2_weight[2], down)
    with pytest.raises(ValueError, match="expert 4 out of range"):
        block.experts.load_expert(4, "gate", gate)
    with pytest.raises(ValueError, match="checkpoint shape"):
        block.experts.load_expert(0, "down", gate)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(num_experts=0, top_k=2), "n_routed_experts"),
        (dict(num_experts=8, top_k=9), "num_experts_per_tok"),
        (dict(num_experts=8, top_k=2, scoring_func="sqrtsoftplus"), "scoring_func"),
        (dict(num_experts=8, top_k=2, num_expert_group=3, topk_group=1), "n_group"),
        (dict(num_experts=8, top_k=2, num_expert_group=4, topk_group=5), "topk_group"),
    ],
)
def test_bad_routing_config_names_the_field(kwargs, field):
    names = {
        "num_experts": "n_routed_experts",
        "top_k": "num_experts_per_tok",
        "num_expert_group": "n_group",
    }
    with pytest.raises(MoEConfigError, match=field):
        Routing(**kwargs, fields=names)
