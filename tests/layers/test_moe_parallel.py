"""The MoE layer split over ranks, every rank in one process: each rank of a TP group of 4
builds its FusedMoE (ep 1, 2 or 4: whole experts per EP rank, each cut to its moe_tp slice of
the intermediate features), loads the whole checkpoint matrices (it keeps its part), and runs
the same tokens; the ranks' partial outputs summed (what the all-reduce does across
processes, tests/parallel) equal the unsplit layer's. Float experts, FP8 block-quantized ones
dequantized whole through the format's method, then sliced, FP8 blocks kept in e4m3 (each
rank keeps its slice of the codes and of the block scales: moe.experts with moe:fp8_block),
MXFP4 kept packed (moe:mxfp4), and GPTQ int4 kept as codes, scales and zeros (moe:int4)."""

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


KEPT_BLOCK = (16, 16)  # a moe_tp slice of I (16, 32 or 64 features) is whole blocks


def load(layer: FusedMoE, weights, quantized) -> None:
    if not quantized:
        for (e, s), w in weights.items():
            layer.load_expert(e, s, w)
        return
    from test_fp8 import block_quantize  # tests/layers/quantization

    if quantized == "kept":
        assert layer.fp8_blocks_servable(KEPT_BLOCK) is None
        layer.keep_fp8_blocks(KEPT_BLOCK, "weight_scale_inv")
        for (e, s), w in weights.items():  # every rank is given every whole matrix
            q, scale = block_quantize(w, *KEPT_BLOCK)
            layer.load_expert(e, s, q)
            layer.load_expert_scale(e, s, scale)
        assert layer.w13_weight.dtype == torch.float8_e4m3fn
        return

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


@pytest.mark.parametrize(
    "quantized", [False, True, "kept"], ids=["float", "fp8-block", "fp8-block-kept"]
)
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


def test_kept_fp8_blocks_equal_the_dequantized_experts():
    """The same FP8 checkpoint through moe.experts' FP8 blocks and dequantized at load."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "quantization"))
    routing, weights = Routing(num_experts=E, top_k=3), checkpoint()
    layers = {}
    for mode in (True, "kept"):
        ops = OpTable(select_platform("reference"))
        ops.parallel = SINGLE
        layers[mode] = FusedMoE(routing, D, I, ops)
    # The float layer gets the kept layer's codes times their block scales (expanded here by
    # hand, not by the op's helper).
    load(layers["kept"], weights, "kept")
    kept, rows_of = layers["kept"], {"gate": slice(0, I), "up": slice(I, 2 * I)}
    for e, s in weights:
        if s == "down":
            code, scale = kept.w2_weight[e], kept.w2_scale[e]
        else:
            rows = rows_of[s]
            code = kept.w13_weight[e, rows]
            scale = kept.w13_scale[e, rows.start // 16 : rows.stop // 16]
        dense = code.float() * scale.repeat_interleave(16, 0).repeat_interleave(16, 1)
        layers[True].load_expert(e, s, dense)
    gen = torch.Generator().manual_seed(2)
    x, logits = torch.randn(7, D, generator=gen), torch.randn(7, E, generator=gen)
    torch.testing.assert_close(layers["kept"](x, logits), layers[True](x, logits))


def test_fp8_blocks_not_kept_when_a_slice_is_not_whole_blocks():
    layer = FusedMoE(Routing(num_experts=E, top_k=2), D, I, rank_ops(0, 1))  # I / 4 = 16
    assert "not whole (32, 32) blocks" in layer.fp8_blocks_servable((32, 32))
    assert layer.fp8_blocks_servable((16, 16)) is None


def _mxfp4_stacked(weights) -> dict[str, torch.Tensor]:
    """The float checkpoint as MXFP4 stacked tensors in the layer's layout (w13: gate rows,
    then up; packed uint8 [E, N, K/2], e8m0 scales [E, N, K/32])."""
    from sglang.ops.quant.experts import quantize_mxfp4_experts

    w13 = torch.stack([torch.cat([weights[(e, "gate")], weights[(e, "up")]]) for e in range(E)])
    w2 = torch.stack([weights[(e, "down")] for e in range(E)])
    (q13, s13), (q2, s2) = quantize_mxfp4_experts(w13), quantize_mxfp4_experts(w2)
    return {"w13_weight": q13, "w13_scale": s13, "w2_weight": q2, "w2_scale": s2}


@pytest.mark.parametrize("ep", [2, 4])
def test_mxfp4_ranks_sum_to_the_unsplit_layer(ep):
    """MXFP4 experts kept packed: each rank keeps its experts and its slice of the codes and
    the scales along I (moe_tp slices of 32 or 64 features: whole groups of 32)."""
    routing, stacked = Routing(num_experts=E, top_k=3), _mxfp4_stacked(checkpoint())
    whole_ops = OpTable(select_platform("reference"))
    whole_ops.parallel = SINGLE
    whole = FusedMoE(routing, D, I, whole_ops)
    layers = [whole] + [FusedMoE(routing, D, I, rank_ops(t, ep)) for t in range(TP)]
    for layer in layers:
        assert layer.mxfp4_servable() is None
        layer.keep_mxfp4()
        for name, tensor in stacked.items():
            layer.load_stacked(name, tensor, what=name)
        assert layer.w13_weight.dtype == torch.uint8 and layer.kept == "mxfp4"
    gen = torch.Generator().manual_seed(1)
    x, logits = torch.randn(9, D, generator=gen), torch.randn(9, E, generator=gen)
    total = sum(layer(x, logits) for layer in layers[1:])
    torch.testing.assert_close(total, whole(x, logits), rtol=1e-5, atol=1e-5)


def test_mxfp4_not_kept_when_a_slice_is_not_whole_groups():
    layer = FusedMoE(Routing(num_experts=E, top_k=2), D, I, rank_ops(0, 1))  # I / 4 = 16
    assert "not whole MXFP4 groups of 32" in layer.mxfp4_servable()


def _gptq_int4_args(w: torch.Tensor, group: int, g_idx: torch.Tensor | None = None) -> dict:
    """One [N, K] matrix as GPTQ (v1, asymmetric) writes it, as gemm.int4's arguments (with
    act-order's g_idx where given)."""
    from sglang.ops.quant import int4 as q4

    quant = q4.quantize_int4(w, group, g_idx, min_zero=1)
    qweight, qzeros = q4.pack_gptq(quant.q, quant.zeros)
    args = {
        "qweight": qweight,
        "scales": quant.scales,
        "qzeros": qzeros,
        "packing": "gptq",
        "group_size": group,
    }
    return args if g_idx is None else {**args, "g_idx": g_idx.to(torch.int32)}


def _int4_layers_against_dense(args, group, ep, act_order=False, order=None):
    """(the dequantized layer, [the whole layer, then TP ranks' layers at expert parallelism
    `ep`]), each kept as int4 and given every whole projection of `args` in `order`."""
    from sglang.layers.quantization.dequant import dequantize
    from sglang.ops.quant.experts import int4_expert_from_gemm

    routing = Routing(num_experts=E, top_k=3)
    whole_ops = OpTable(select_platform("reference"))
    whole_ops.parallel = SINGLE
    dense = FusedMoE(routing, D, I, whole_ops)
    layers = [FusedMoE(routing, D, I, whole_ops)]
    layers += [FusedMoE(routing, D, I, rank_ops(t, ep)) for t in range(TP)]
    for layer in layers:
        assert layer.int4_servable(group, act_order) is None
        layer.keep_int4(group, torch.float32, act_order)
        for e, s in order or args:  # every rank is given every whole projection
            layer.load_expert_int4(e, s, *int4_expert_from_gemm(args[(e, s)]))
        assert layer.w13_weight.dtype == torch.uint8
    for (e, s), a in args.items():
        dense.load_expert(e, s, dequantize("gemm.int4", a))
    return dense, layers


def test_act_order_int4_experts_on_expert_parallel_ranks():
    """Act-order int4 experts (each expert's gate/up share one input order, its down another)
    kept as codes: the whole layer and four expert-parallel ranks (moe_tp 1) equal the
    checkpoint dequantized at load, whichever of an expert's projections arrives first (down
    before gate and up for half the experts: its order then reorders their stored rows); under
    tensor parallelism of I they are not kept."""

    group = 16
    gen = torch.Generator().manual_seed(5)
    g_idx = {}
    for e in range(E):
        inputs = {
            "gate": torch.randperm(D, generator=gen),
            "down": torch.randperm(I, generator=gen),
        }
        inputs["up"] = inputs["gate"]
        for s, order in inputs.items():
            g = torch.empty(order.numel(), dtype=torch.long)
            g[order] = torch.arange(order.numel()) // group
            g_idx[(e, s)] = g
    args = {key: _gptq_int4_args(w, group, g_idx[key]) for key, w in checkpoint().items()}
    # odd experts: down first (its order applied to gate's and up's rows as they come);
    # even experts: down last (applied to the rows already stored)
    order = sorted(args, key=lambda es: (es[0], (es[1] == "down") != bool(es[0] % 2)))
    dense, layers = _int4_layers_against_dense(args, group, TP, act_order=True, order=order)
    assert all(layer.kept == "int4 group 16 act-order" for layer in layers)
    x, logits = torch.randn(9, D, generator=gen), torch.randn(9, E, generator=gen)
    want = dense(x, logits)
    torch.testing.assert_close(layers[0](x, logits), want, rtol=1e-5, atol=1e-5)
    total = sum(layer(x, logits) for layer in layers[1:])
    torch.testing.assert_close(total, want, rtol=1e-5, atol=1e-5)
    split = FusedMoE(Routing(num_experts=E, top_k=3), D, I, rank_ops(0, 1))  # moe_tp 4: I split
    assert "tensor-parallel" in split.int4_servable(group, act_order=True)


@pytest.mark.parametrize("ep", [1, 2, 4])
def test_int4_ranks_sum_to_the_unsplit_layer(ep):
    """Int4 experts kept as codes: each rank keeps its experts and its slice of the codes,
    scales and zeros along I (moe_tp slices of 16, 32 or 64 features: whole groups of 16); the
    unsplit layer equals the same checkpoint dequantized at load (ExpertLoader's dense path)."""

    group = 16
    args = {key: _gptq_int4_args(w, group) for key, w in checkpoint().items()}
    dense, layers = _int4_layers_against_dense(args, group, ep)
    assert all(layer.kept == "int4 group 16" for layer in layers)
    gen = torch.Generator().manual_seed(1)
    x, logits = torch.randn(9, D, generator=gen), torch.randn(9, E, generator=gen)
    want = dense(x, logits)
    torch.testing.assert_close(layers[0](x, logits), want, rtol=1e-5, atol=1e-5)
    total = sum(layer(x, logits) for layer in layers[1:])
    torch.testing.assert_close(total, want, rtol=1e-5, atol=1e-5)


def test_int4_not_kept_when_a_slice_is_not_whole_groups():
    layer = FusedMoE(Routing(num_experts=E, top_k=2), D, I, rank_ops(0, 1))  # I / 4 = 16
    assert "not whole int4 groups of 32" in layer.int4_servable(32)
    assert layer.int4_servable(16) is None
    assert "tensor-parallel" in layer.int4_servable(-1)


def test_act_order_g_idx_must_be_whole_groups():
    """int4_expert_from_gemm sorts an act-order projection's columns by group; a g_idx whose
    groups are not G features each (no GPTQ writes one) is refused, naming the counts."""
    from sglang.ops.quant.experts import int4_expert_from_gemm

    w = torch.randn(I, D, generator=torch.Generator().manual_seed(2))
    g_idx = torch.arange(D) // 16
    args = _gptq_int4_args(w, 16, g_idx)
    codes, _, _, order = int4_expert_from_gemm(args)
    assert torch.equal(order, torch.arange(D)) and codes.shape == (I, D // 2)
    bad = g_idx.clone()
    bad[0] = 1  # group 0 one short, group 1 one over
    with pytest.raises(ValueError, match="not 4 groups of 16 each"):
        int4_expert_from_gemm({**args, "g_idx": bad.to(torch.int32)})
