"""act.silu_mul / act.gelu_mul references against the activations written out from their
textbook formulas, element by element in Python floats."""

from __future__ import annotations

import math

import pytest
import torch
from sglang.ops.activation import gelu_mul, silu_mul


def _silu(g: float) -> float:
    return g / (1.0 + math.exp(-g))


def _gelu_erf(g: float) -> float:
    return 0.5 * g * (1.0 + math.erf(g / math.sqrt(2.0)))


def _gelu_tanh(g: float) -> float:
    return 0.5 * g * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g**3)))


def _gated(fn, x: torch.Tensor) -> torch.Tensor:
    half = x.shape[1] // 2
    rows = [[fn(float(r[i])) * float(r[half + i]) for i in range(half)] for r in x]
    return torch.tensor(rows, dtype=torch.float64).reshape(x.shape[0], half)


@pytest.mark.parametrize("inter", [1, 7, 64])
def test_silu_mul_matches_formula(inter):
    x = torch.randn(5, 2 * inter, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(silu_mul(x=x), _gated(_silu, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("approximate,fn", [("none", _gelu_erf), ("tanh", _gelu_tanh)])
def test_gelu_mul_matches_formula(approximate, fn):
    x = torch.randn(4, 26, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    torch.testing.assert_close(
        gelu_mul(x=x, approximate=approximate), _gated(fn, x), rtol=1e-12, atol=1e-12
    )


def test_known_values():
    x = torch.tensor([[0.0, 1.0, -30.0, 2.0, 3.0, 5.0]], dtype=torch.float64)
    # silu(0) = 0, silu(1) = 1 / (1 + e^-1), silu(-30) ~ -30 e^-30
    tiny = -30 * math.exp(-30) / (1 + math.exp(-30))
    expected = torch.tensor([[0.0, 3.0 / (1 + math.exp(-1)), tiny * 5]], dtype=torch.float64)
    torch.testing.assert_close(silu_mul(x=x), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtype_and_empty(dtype):
    assert silu_mul(x=torch.zeros(0, 8, dtype=dtype)).shape == (0, 4)
    out = gelu_mul(x=torch.ones(3, 10, dtype=dtype))
    assert out.dtype == dtype and out.shape == (3, 5)


def test_unknown_approximation_is_an_error():
    with pytest.raises(ValueError):
        gelu_mul(x=torch.zeros(1, 2), approximate="erf")
