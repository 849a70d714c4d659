"""Tensor-parallel sharding of quantized linear layers: a layer split over 2 ranks, each rank
loading the whole checkpoint tensors (its slice is cut at load), gives the unsplit layer's
output: column-parallel by concatenating the ranks' outputs (per merged shard), row-parallel
by summing their partial products (the all-reduce; the bias comes once, from rank 0).

Formats: FP8 block scales (the scale grid splits with the weight), AWQ (int4 packed along the
output features, zeros and scales per input group), GPTQ (packed along the input features;
with act-order the row-parallel ranks keep every group's scales and split g_idx). The real
all-reduce across processes is tested in tests/parallel; here the ranks run in one process
and the test does the reduction, so a wrong slice shows as a wrong sum.
"""

from __future__ import annotations

import pytest
import torch
from int_writers import pack_awq, pack_gptq, quantize_groups
from sglang.backend.selection import select_platform
from sglang.layers.linear import Linear
from sglang.layers.merged_linear import MergedLinear
from sglang.layers.ops_table import OpTable
from sglang.layers.quantization.awq import AwqLinearMethod
from sglang.layers.quantization.fp8 import Fp8LinearMethod
from sglang.layers.quantization.gptq import GptqConfig, GptqLinearMethod
from sglang.parallel.sharding import ShardingError
from sglang.parallel.state import GroupInfo, ParallelState
from test_fp8 import block_quantize

K, N, GROUP, TP = 128, 64, 32, 2


class PartialSums:
    """The all-reduce of one rank seen alone: it returns the rank's partial product, and the
    test adds the ranks' (what the collective does across processes)."""

    def all_reduce(self, tensor, op="sum"):
        return tensor


@pytest.fixture(scope="module")
def ops():
    return OpTable(select_platform("reference"))


def _weights(seed: int, n: int = N, k: int = K) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=gen) * k**-0.5


def awq_tensors(w):
    intweight, zeros, scales, _ = quantize_groups(w, GROUP, 4, sym=False)
    qweight, qzeros = pack_awq(intweight, zeros)
    return {"qweight": qweight, "qzeros": qzeros, "scales": scales}


def gptq_tensors(w, desc_act=False):
    g_idx = None
    if desc_act:
        perm = torch.randperm(w.shape[1], generator=torch.Generator().manual_seed(5))
        g_idx = torch.empty(w.shape[1], dtype=torch.long)
        g_idx[perm] = torch.arange(w.shape[1]) // GROUP
    intweight, zeros, scales, g_idx = quantize_groups(w, GROUP, 4, sym=True, g_idx=g_idx)
    qweight, qzeros = pack_gptq(intweight, zeros, 4)
    return {"qweight": qweight, "qzeros": qzeros, "scales": scales, "g_idx": g_idx}


def fp8_block_tensors(w, block=(32, 32)):
    q, s = block_quantize(w, *block)
    return {"weight": q, "weight_scale_inv": s}


FORMATS = {
    "fp8-block": (lambda: Fp8LinearMethod("block", (32, 32), False, "fp8"), fp8_block_tensors),
    "awq": (lambda: AwqLinearMethod(GROUP, "awq"), awq_tensors),
    "gptq": (
        lambda: GptqLinearMethod(GptqConfig(4, GROUP, False, False, []), "gptq"),
        gptq_tensors,
    ),
    "gptq-act-order": (
        lambda: GptqLinearMethod(GptqConfig(4, GROUP, True, False, []), "gptq"),
        lambda w: gptq_tensors(w, desc_act=True),
    ),
}


def _build(ops, rank, size, kind, method, checkpoint, bias):
    ops.parallel = ParallelState(tp=GroupInfo(rank, size, PartialSums() if size > 1 else None))
    try:
        if kind == "merged":
            layer = MergedLinear(K, {"gate": N, "up": N}, ops, parallel="column", bias=bias)
        else:
            layer = Linear(K, N, ops, bias=bias, parallel=kind)
    finally:
        ops.parallel = ParallelState()
    layer.prefix = "layer"
    layer.set_quant_method(method())
    for shard, tensors in checkpoint.items():
        for name, tensor in tensors.items():
            layer.load(name, tensor, shard)
    return layer


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("kind", ["column", "merged", "row"])
def test_sharded_layer_equals_whole(ops, fmt, kind):
    method, write = FORMATS[fmt]
    if kind == "merged":
        checkpoint = {s: write(_weights(i)) for i, s in enumerate(("gate", "up"))}
    else:
        checkpoint = {None: write(_weights(0))}
    bias = torch.randn(2 * N if kind == "merged" else N, generator=torch.Generator().manual_seed(3))
    if kind == "merged":
        for i, shard in enumerate(("gate", "up")):
            checkpoint[shard]["bias"] = bias[i * N : (i + 1) * N]
    else:
        checkpoint[None]["bias"] = bias
    whole = _build(ops, 0, 1, kind, method, checkpoint, True)
    ranks = [_build(ops, r, TP, kind, method, checkpoint, True) for r in range(TP)]
    for layer in (whole, *ranks):
        layer.prepare()
    x = torch.randn(5, K, generator=torch.Generator().manual_seed(4))
    want = whole(x)
    if kind == "row":
        got = sum(layer(x.chunk(TP, dim=-1)[r]) for r, layer in enumerate(ranks))
    elif kind == "column":
        got = torch.cat([layer(x) for layer in ranks], dim=-1)
    else:  # each rank holds its slice of gate and of up: [gate_r, up_r]
        outs = [layer(x).split(N // TP, dim=-1) for layer in ranks]
        got = torch.cat([o[0] for o in outs] + [o[1] for o in outs], dim=-1)
    err = float((got - want).norm() / want.norm())
    assert err < 1e-5, f"{fmt} {kind}: relative error {err:.2e}"


def test_block_that_straddles_ranks_is_refused(ops):
    """A 64-row block scale cannot split 32 output rows per rank: the error names the tensor."""
    checkpoint = {None: fp8_block_tensors(_weights(0), block=(64, 64))}

    def method():
        return Fp8LinearMethod("block", (64, 64), False, "fp8")

    with pytest.raises(ShardingError, match="layer.weight_scale_inv.*64-feature tiles"):
        _build(ops, 0, TP, "column", method, checkpoint, False)
