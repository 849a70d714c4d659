"""gemm.fp4 reference against a dense matmul with weights built element by element from the
e2m1 table and bytes packed by hand (low nibble = even k)."""

import torch
from sglang.ops.gemm_fp4 import fp4

TABLE = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def _pack_loop(codes):
    n, k = codes.shape
    return torch.tensor(
        [
            [int(codes[r, 2 * j]) | (int(codes[r, 2 * j + 1]) << 4) for j in range(k // 2)]
            for r in range(n)
        ],
        dtype=torch.uint8,
    )


def _codes(n, k, seed):
    return torch.randint(0, 16, (n, k), generator=torch.Generator().manual_seed(seed))


def test_nvfp4_matches_dense():
    n, k = 5, 48
    codes = _codes(n, k, 0)
    scale_values = torch.tensor([0.5, 1.0, 2.0, 0.125, 3.0, 448.0]).repeat(3)[: n * 3].view(n, 3)
    scale = scale_values.to(torch.float8_e4m3fn)  # all exact in e4m3
    glob = torch.tensor(0.01, dtype=torch.float64)
    w = torch.tensor(
        [
            [TABLE[int(codes[r, c])] * float(scale_values[r, c // 16]) * 0.01 for c in range(k)]
            for r in range(n)
        ],
        dtype=torch.float64,
    )
    x = torch.randn(4, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = fp4(x=x, weight=_pack_loop(codes), weight_scale=scale, format="nvfp4", global_scale=glob)
    assert torch.allclose(out, x @ w.t(), rtol=1e-12, atol=1e-12)


def test_mxfp4_matches_dense():
    n, k = 3, 64
    codes = _codes(n, k, 2)
    exps = torch.tensor([[127, 128], [120, 130], [0, 254]], dtype=torch.uint8)
    w = torch.tensor(
        [
            [TABLE[int(codes[r, c])] * 2.0 ** (int(exps[r, c // 32]) - 127) for c in range(k)]
            for r in range(n)
        ],
        dtype=torch.float64,
    )
    x = torch.randn(2, k, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = fp4(x=x, weight=_pack_loop(codes), weight_scale=exps, format="mxfp4")
    assert torch.allclose(out, x @ w.t(), rtol=1e-12, atol=0.0)


def test_hand_example_and_bias():
    # One row, K = 32: bytes 0x21 -> (k0, k1) = (0.5, 1.0); the rest zero; e = 128 doubles.
    weight = torch.zeros(1, 16, dtype=torch.uint8)
    weight[0, 0] = 0x21
    x = torch.ones(1, 32)
    out = fp4(
        x=x,
        weight=weight,
        weight_scale=torch.tensor([[128]], dtype=torch.uint8),
        format="mxfp4",
        bias=torch.tensor([0.25]),
    )
    assert out.tolist() == [[(0.5 + 1.0) * 2 + 0.25]]
