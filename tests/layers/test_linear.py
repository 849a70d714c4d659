"""Linear layers after `prepare`: the int4 layer equals a dense layer applied to its own
dequantized weight (the quantization is the only approximation), on the reference and xeon
backends; prepared dense layers equal unprepared ones; a tied LM head leaves the embedding's
float weight alone."""

import pytest
import torch
from sglang.backend.selection import select_platform
from sglang.layers.embedding import LMHead, VocabEmbedding
from sglang.layers.linear import Linear, int4_weight_args, prepare_linear_layers
from sglang.layers.ops_table import OpTable
from sglang.layers.weight_memory import weight_bytes
from sglang.ops.quant import int4 as q4

BACKENDS = ["reference", "xeon"]


@pytest.fixture(scope="module", params=BACKENDS)
def ops(request):
    try:
        return OpTable(select_platform(request.param))
    except Exception as e:  # the backend is not available here
        pytest.skip(f"{request.param}: {e}")


def _layer(ops, n, k, dtype, bias=False, seed=0):
    layer = Linear(k, n, ops, bias=bias, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    layer.weight.data.copy_(torch.randn(n, k, generator=gen) * k**-0.5)
    if bias:
        layer.bias.data.copy_(torch.randn(n, generator=gen))
    return layer


def _dequantized(args) -> torch.Tensor:
    """[N, K] float64 from gemm.int4 weight arguments (AWQ packing)."""
    q = q4.unpack_qweight(args["qweight"], "awq")
    zeros = args["qzeros"]
    if not zeros.is_floating_point():
        zeros = q4.unpack_nibbles(zeros, q4.AWQ_ORDER)
    g_idx = q4.default_g_idx(q.shape[0], args["group_size"])
    return q4.dequantize_int4(q, args["scales"].double(), zeros, g_idx, torch.float64).t()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("float_zeros", [True, False])
def test_int4_layer_equals_dense_on_dequantized_weight(ops, dtype, float_zeros):
    # M = 1 and 3 take the xeon int4 kernel, 16 and 40 its dense copy.
    layer = _layer(ops, 200, 96, dtype, bias=True)
    args = int4_weight_args(layer.weight, float_zeros=float_zeros)
    expect_w = _dequantized(args)
    if float_zeros and "int4:float_zeros" not in ops.features:
        pytest.skip("backend without float zero points")
    layer.prepare("int4")
    assert layer.gemm_op == "gemm.int4" and layer.weight is None
    if not float_zeros:  # the layer picked float zeros; rebuild it with integer ones
        layer.set_prepared(*ops.prepared("gemm.int4", args))
    bound = 1e-5 if dtype == torch.bfloat16 else 1e-12  # one rounding of the output (bf16)
    gen = torch.Generator().manual_seed(1)
    for m in (1, 3, 16, 40):
        x = torch.randn(m, 96, generator=gen).to(dtype)
        out = layer(x)
        ref = x.double() @ expect_w.t() + layer.bias.double()
        nmse = float(((out.double() - ref) ** 2).sum() / (ref**2).sum())
        assert out.dtype == dtype and out.shape == (m, 200)
        assert nmse < bound, (m, nmse)


def test_prepared_dense_equals_unprepared(ops):
    layer = _layer(ops, 72, 64, torch.bfloat16)
    x = torch.randn(5, 64).to(torch.bfloat16)
    before = layer(x)
    layer.prepare()
    assert torch.allclose(layer(x).float(), before.float(), atol=1e-2, rtol=1e-2)
    assert layer(x[:0]).shape == (0, 72)


def test_tied_lm_head_quantizes_a_copy(ops):
    embedding = VocabEmbedding(64, 32, dtype=torch.float32)
    embedding.weight.data.copy_(torch.randn(64, 32))
    original = embedding.weight.detach().clone()
    head = LMHead(64, 32, ops)
    head.tie(embedding)
    model = torch.nn.ModuleDict({"embed": embedding, "head": head})
    prepare_linear_layers(model, "int4")
    assert head.gemm_op == "gemm.int4" and head.weight is None
    assert torch.equal(embedding.weight, original)
    logits = head(torch.randn(2, 32))
    assert logits.dtype == torch.float32 and logits.shape == (2, 64)
    # Embedding (float32) plus the head's int4 weight (and, on xeon, its dense copy).
    assert weight_bytes(model) >= 64 * 32 * 4 + 64 * 32 // 2


def test_weight_bytes_counts_shared_memory_once():
    """A prepared weight that is the parameter detached (the dense path) is not counted twice."""
    from torch import nn

    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(8, 4))
            self.alias = self.w.detach()

    model = One()
    assert weight_bytes(model) == 8 * 4 * 4
