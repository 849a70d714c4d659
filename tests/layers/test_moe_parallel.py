"""The MoE layer split over ranks, every rank in one process: each rank of a TP group of 4
builds its FusedMoE (ep 1, 2 or 4: whole experts per EP rank, each cut to its moe_tp slice of
the intermediate features), loads the whole checkpoint matrices (it keeps its part), and runs
the same tokens; the ranks' partial outputs summed (what the all-reduce does across
processes, tests/parallel) equal the unsplit layer's. Float experts, and FP8 block-quantized
ones (dequantized whole through the format's method, then sliced)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from sglang.backend.selection import select_platform
from sglang.layers.moe import FusedMoE, Routing
from sglang.layers.ops_table import OpTable
from sglang.layers.quantization.experts import ExpertLoader
from sglang.layers.quantization.fp8 import Fp8Config
from sglang.parallel.state import SINGLE, GroupInfo, ParallelState, expert_groups

E, D, I, TP = 8, 64, 64, 4  # noqa: E741
SHARDS = ("gate", "up", "down")


class PartialSums:
    def all_reduce(self, tensor, op="sum"):
        return tensor


def rank_ops(tp_rank: int, ep: int) -> OpTable:
    ops = OpTable(select_platform("reference"))
    tp = GroupInfo(tp_rank, TP, PartialSums())
    ep_group, moe_tp = expert_groups(tp, ep)
    ops.parallel = dataclasses.replace(ParallelState(), tp=tp, ep=ep_group, moe_tp=moe_tp)
    return ops


def checkpoint(seed: int = 0) -> dict[tuple[int, str], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        (e, s): torch.randn((D, I) if s == "down" else (I, D), generator=gen) * 0.3
        for e in range(E)
        for s in SHARDS
    }


def load(layer: FusedMoE, weights, quantized: bool) -> None:
    if not quantized:
        for (e, s), w in weights.items():
            layer.load_expert(e, s, w)
        return
    from test_fp8 import block_quantize  # tests/layers/quantization

    loader = ExpertLoader(Fp8Config("block", (32, 32), False, []), torch.float32)
    for (e, s), w in weights.items():
        if not layer.holds(e):
            continue
        q, scale = block_quantize(w, 32, 32)
        prefix = f"experts.{e}.{s}_proj"
        store = lambda dense, e=e, s=s: layer.load_expert(e, s, dense)  # noqa: E731
        loader.add(prefix, "weight", q, layer.expert_shape(s), store)
        loader.add(prefix, "weight_scale_inv", scale, layer.expert_shape(s), store)
    loader.finish()


@pytest.mark.parametrize("quantized", [False, True], ids=["float", "fp8-block"])
@pytest.mark.parametrize("ep", [1, 2, 4])
def test_ranks_sum_to_the_unsplit_layer(ep, quantized):
    if quantized:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent / "quantization"))
    routing = Routing(num_experts=E, top_k=3)
    weights = checkpoint()
    whole_ops = OpTable(select_platform("reference"))
    whole_ops.parallel = SINGLE
    whole = FusedMoE(routing, D, I, whole_ops)
    load(whole, weights, quantized)
    gen = torch.Generator().manual_seed(1)
    x, logits = torch.randn(9, D, generator=gen), torch.randn(9, E, generator=gen)
    want = whole(x, logits)
    total, held = torch.zeros_like(want), []
    for t in range(TP):
        layer = FusedMoE(routing, D, I, rank_ops(t, ep))
        assert layer.w13_weight.shape == (E // ep, 2 * I * ep // TP, D)
        load(layer, weights, quantized)
        total += layer(x, logits)
        held.append((layer.expert_start, layer.num_local))
    assert held == [(t // (TP // ep) * (E // ep), E // ep) for t in range(TP)]
    torch.testing.assert_close(total, want, rtol=1e-5, atol=1e-5)
