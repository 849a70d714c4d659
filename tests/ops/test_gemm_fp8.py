"""gemm.fp8 reference against hand-computed products and a tile-by-tile block GEMM written the
way DeepGEMM / SGLang's w8a8_block_fp8_matmul accumulate (scales outside each K-block sum)."""

import math

import torch
from sglang.ops.gemm_fp8 import fp8
from sglang.ops.quant import fp8 as q8

FP8 = torch.float8_e4m3fn


def test_per_tensor_dynamic_static_and_saturating():
    x = torch.tensor([[2.0, -1.0, 0.5]])
    w = torch.tensor([[1.0, 2.0, 4.0]]).to(FP8)
    one = torch.tensor([1.0])
    # Dynamic: scale 2/448, x/scale = 448, -224, 112 are exact: out = 2 - 2 + 2.
    assert math.isclose(
        float(fp8(x=x, weight=w, weight_scale=one, scheme="per_tensor")), 2.0, rel_tol=1e-6
    )
    static = torch.tensor([1 / 64])
    out = fp8(x=x, weight=w, weight_scale=one, scheme="per_tensor", input_scale=static)
    assert float(out) == 2.0
    # Static 1/256: 2.0 / (1/256) = 512 saturates to 448 -> 1.75; out = 1.75 - 2 + 2.
    out = fp8(
        x=x,
        weight=w,
        weight_scale=torch.tensor([0.5]),
        scheme="per_tensor",
        input_scale=torch.tensor([1 / 256]),
    )
    assert float(out) == 0.5 * 1.75


def test_per_channel_rounds_activations_per_token():
    x = torch.tensor([[1.0, 0.3], [4.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[1.0, 1.0], [2.0, -1.0]]).to(FP8)
    ws = torch.tensor([1.0, 0.25], dtype=torch.float64)
    out = fp8(x=x, weight=w, weight_scale=ws, scheme="per_channel")
    # Token 0: scale 1/448, 0.3 * 448 = 134.4 -> e4m3 128 (step 16 in [128, 256)) -> 2/7.
    t0 = [1.0, 128 / 448]
    expect = [[t0[0] + t0[1], (2 * t0[0] - t0[1]) * 0.25], [4.0, 2.0]]
    assert torch.allclose(out, torch.tensor(expect, dtype=torch.float64), rtol=1e-12)


def _block_gemm_loop(x, wq, ws, block):
    bn, bk = block
    m, k = x.shape
    n = wq.shape[0]
    out = torch.zeros(m, n, dtype=torch.float64)
    for kb in range(math.ceil(k / bk)):
        xs_blk = x[:, kb * bk : (kb + 1) * bk]
        xs = xs_blk.abs().amax(dim=1, keepdim=True) / 448
        xq = (xs_blk / xs).clamp(-448, 448).to(FP8).double()
        for nb in range(math.ceil(n / bn)):
            wq_blk = wq[nb * bn : (nb + 1) * bn, kb * bk : (kb + 1) * bk].double()
            partial = xq @ wq_blk.t()  # exact e4m3 products, summed per K-block
            out[:, nb * bn : (nb + 1) * bn] += partial * xs * float(ws[nb, kb])
    return out


def test_block_matches_a_tile_by_tile_gemm():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 300, generator=gen, dtype=torch.float64)
    wq, ws = q8.quantize_fp8_block(torch.randn(70, 300, generator=gen), (32, 128))
    expect = _block_gemm_loop(x, wq, ws.double(), (32, 128))
    out = fp8(x=x, weight=wq, weight_scale=ws.double(), scheme="block", block_size=(32, 128))
    assert torch.allclose(out, expect, rtol=1e-10, atol=1e-10)


def test_schemes_agree_where_they_coincide():
    # One token, a per-channel weight scale, and a block as wide as K: per_channel and block
    # quantize x identically (one group = the token), so the results match exactly.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 96, generator=gen)
    wq, ws = q8.quantize_fp8_rowwise(torch.randn(24, 96, generator=gen))
    per_channel = fp8(x=x, weight=wq, weight_scale=ws, scheme="per_channel")
    block = fp8(x=x, weight=wq, weight_scale=ws.unsqueeze(1), scheme="block", block_size=(1, 96))
    assert torch.allclose(per_channel, block, rtol=1e-6, atol=1e-6)
