"""sglang.ops.quant.fp8 against hand-computed e4m3 values and tile-by-tile loops."""

import math

import torch
from sglang.ops.quant import fp8 as q8


def test_cast_saturates_and_rounds_to_nearest_even():
    x = torch.tensor([1000.0, -1000.0, 448.0, 1.0625, 1.1875, 2.0**-9, 0.3])
    got = q8.cast_e4m3(x).float().tolist()
    # 1.0625 sits between 1.0 and 1.125 (mantissa step 1/8): tie -> even mantissa 1.0;
    # 1.1875 between 1.125 and 1.25 -> 1.25; 2^-9 is the smallest subnormal; 0.3 -> 0.3125.
    assert got == [448.0, -448.0, 448.0, 1.0, 1.25, 2.0**-9, 0.3125]


def test_per_tensor_and_rowwise_scales():
    x = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    q, s = q8.quantize_fp8_per_tensor(x)
    assert s.shape == (1,) and math.isclose(float(s), 2.0 / 448, rel_tol=1e-6)
    assert q[0].float().tolist() == [448.0, -224.0, 112.0]  # exact in e4m3
    q, s = q8.quantize_fp8_rowwise(x)
    assert torch.allclose(s, torch.tensor([2.0 / 448, 0.0]))
    assert q[1].float().tolist() == [0.0, 0.0, 0.0]


def test_token_group_scales_with_partial_last_group():
    x = torch.tensor([[1.0, -4.0, 2.0, 3.0, -8.0], [0.5, 0.25, 0.0, 0.0, 1.0]])
    q, s = q8.quantize_fp8_token_group(x, 2)
    assert s.shape == (2, 3)
    expected = torch.tensor([[4.0, 3.0, 8.0], [0.5, 0.0, 1.0]]) / 448
    assert torch.allclose(s, expected)
    deq = q.float() * q8.expand_groups(s, 2, 5, 1)
    assert torch.allclose(deq, x, rtol=2**-4)


def test_block_scales_match_a_loop_over_tiles():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(5, 7, generator=gen)
    q, s = q8.quantize_fp8_block(w, (2, 3))
    assert s.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            tile = w[2 * i : 2 * i + 2, 3 * j : 3 * j + 3]
            assert math.isclose(float(s[i, j]), float(tile.abs().max()) / 448, rel_tol=1e-6)
    full = q8.expand_block_scale(s, (2, 3), (5, 7))
    for n in range(5):
        for k in range(7):
            assert full[n, k] == s[n // 2, k // 3]
    # e4m3 keeps 3 mantissa bits: relative error <= 2^-4 for normal values.
    assert torch.allclose(q.float() * full, w, rtol=2**-4, atol=float(s.max()) * 2**-9)


def test_static_scale_clamps():
    q = q8.quantize_fp8(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1 / 256]))
    assert q.float().tolist() == [448.0, -256.0, 128.0]
