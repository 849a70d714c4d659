"""sglang.ops.quant.int8 against hand-computed values and round-trip bounds."""

import torch
from sglang.ops.quant.int8 import dequantize_int8_rowwise, quantize_int8_rowwise


def test_rowwise_hand_values_round_half_to_even():
    # amax 127 gives scale exactly 1, so x / scale is x and the rounding rule shows directly.
    x = torch.tensor([[127.0, 2.5, -3.5, 0.5, 1.5, -127.0]])
    q, scale = quantize_int8_rowwise(x)
    assert scale.tolist() == [1.0]
    assert q.dtype == torch.int8
    assert q.tolist() == [[127, 2, -4, 0, 2, -127]]


def test_rowwise_scale_is_amax_over_127_and_never_minus_128():
    x = torch.tensor([[0.5, -2.0, 1.0], [0.0, 0.0, 0.0]])
    q, scale = quantize_int8_rowwise(x)
    assert torch.allclose(scale, torch.tensor([2.0 / 127, 0.0]))
    assert q[0].tolist() == [32, -127, 64]  # 31.75 -> 32, 63.5 -> 64 (even)
    assert q[1].tolist() == [0, 0, 0]
    assert int(q.min()) >= -127


def test_round_trip_error_is_at_most_half_a_step():
    x = torch.randn(9, 300, generator=torch.Generator().manual_seed(0))
    q, scale = quantize_int8_rowwise(x)
    err = (dequantize_int8_rowwise(q, scale) - x).abs()
    assert bool((err <= scale.unsqueeze(1) / 2 + 1e-7).all())


def test_empty_rows():
    q, scale = quantize_int8_rowwise(torch.zeros(0, 16))
    assert q.shape == (0, 16) and scale.shape == (0,)
