"""rope and its cos/sin cache against independent formulations: rotation as multiplication by
a unit complex number, the relative-position property, and inverse frequencies of small
llama3 / yarn configs worked out by hand from the Hugging Face formulas
(transformers/modeling_rope_utils.py)."""

from __future__ import annotations

import math

import pytest
import torch
from sglang.ops.rope import rope, rope_cos_sin_cache, rope_inv_freq

BASE = 10000.0


def _complex_rope(x: torch.Tensor, positions: torch.Tensor, rotary_dim: int, is_neox: bool):
    """Each rotated pair (a, b) is the complex a + ib times exp(i * p * base^(-2j / r))."""
    half = rotary_dim // 2
    theta = BASE ** (-2.0 * torch.arange(half, dtype=torch.float64) / rotary_dim)
    turn = torch.polar(
        torch.ones(len(positions), half, dtype=torch.float64),
        positions.to(torch.float64)[:, None] * theta[None, :],
    )[:, None, :]
    rot = x[..., :rotary_dim]
    if is_neox:
        z = torch.complex(rot[..., :half], rot[..., half:]) * turn
        rot = torch.cat((z.real, z.imag), dim=-1)
    else:
        z = torch.view_as_complex(rot.reshape(*rot.shape[:-1], half, 2).contiguous()) * turn
        rot = torch.view_as_real(z).flatten(-2)
    return torch.cat((rot, x[..., rotary_dim:]), dim=-1)


@pytest.mark.parametrize("is_neox", [True, False])
@pytest.mark.parametrize("head_dim,rotary_dim", [(64, 64), (128, 64), (96, 32)])
def test_rope_is_complex_rotation(is_neox, head_dim, rotary_dim):
    gen = torch.Generator().manual_seed(head_dim + rotary_dim)
    positions = torch.tensor([0, 1, 7, 100, 4095])
    q = torch.randn(5, 4, head_dim, dtype=torch.float64, generator=gen)
    k = torch.randn(5, 2, head_dim, dtype=torch.float64, generator=gen)
    cache = rope_cos_sin_cache(rotary_dim, 4096, BASE, dtype=torch.float64)
    q_out, k_out = rope(positions=positions, q=q, k=k, cos_sin_cache=cache, is_neox=is_neox)
    torch.testing.assert_close(q_out, _complex_rope(q, positions, rotary_dim, is_neox))
    torch.testing.assert_close(k_out, _complex_rope(k, positions, rotary_dim, is_neox))
    assert torch.equal(q_out[..., rotary_dim:], q[..., rotary_dim:])


def test_scores_depend_only_on_relative_position():
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(1, 1, 64, dtype=torch.float64, generator=gen)
    k = torch.randn(1, 1, 64, dtype=torch.float64, generator=gen)
    cache = rope_cos_sin_cache(64, 2048, BASE, dtype=torch.float64)

    def score(m: int, n: int) -> float:
        qm, _ = rope(positions=torch.tensor([m]), q=q, k=k, cos_sin_cache=cache, is_neox=True)
        _, kn = rope(positions=torch.tensor([n]), q=q, k=k, cos_sin_cache=cache, is_neox=True)
        return float((qm * kn).sum())

    assert score(10, 3) == pytest.approx(score(1007, 1000), rel=1e-9)
    assert score(0, 0) == pytest.approx(float((q * k).sum()), rel=1e-12)


def test_cache_layout_and_empty_batch():
    cache = rope_cos_sin_cache(8, 16, BASE)
    assert cache.shape == (16, 8) and cache.dtype == torch.float32
    p, j = 5, 2
    assert float(cache[p, j]) == pytest.approx(math.cos(p * BASE ** (-2 * j / 8)), abs=1e-7)
    assert float(cache[p, 4 + j]) == pytest.approx(math.sin(p * BASE ** (-2 * j / 8)), abs=1e-7)
    q, k = torch.zeros(0, 2, 8, dtype=torch.bfloat16), torch.zeros(0, 1, 8, dtype=torch.bfloat16)
    q_out, k_out = rope(
        positions=torch.zeros(0, dtype=torch.int64), q=q, k=k, cos_sin_cache=cache, is_neox=False
    )
    assert q_out.shape == q.shape and k_out.dtype == torch.bfloat16


def test_linear_divides_frequencies():
    plain, _ = rope_inv_freq(8, 64, BASE)
    scaled, factor = rope_inv_freq(8, 64, BASE, {"rope_type": "linear", "factor": 4.0})
    torch.testing.assert_close(scaled, plain / 4)
    assert factor == 1.0
    assert torch.equal(rope_inv_freq(8, 64, BASE, {"type": "linear", "factor": 4.0})[0], scaled)


def test_llama3_by_hand():
    # r = 8: inv_freq = 1, 0.1, 0.01, 0.001, wavelengths 2*pi / inv_freq = 6.28, 62.8, 628, 6283.
    # original context 64, low/high freq factors 1/4: wavelengths below 16 are kept, above 64
    # divided by the factor 8, and 62.8 blended with smooth = (64 / 62.83 - 1) / (4 - 1).
    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    inv_freq, factor = rope_inv_freq(8, 512, BASE, scaling)
    smooth = (64 / (2 * math.pi / 0.1) - 1) / 3
    expected = [1.0, (1 - smooth) * 0.1 / 8 + smooth * 0.1, 0.01 / 8, 0.001 / 8]
    torch.testing.assert_close(inv_freq, torch.tensor(expected, dtype=torch.float64))
    assert factor == 1.0


def test_yarn_by_hand():
    # r = 8, original context 64: the dims turning beta_fast = 32 and beta_slow = 1 times
    # over it are 8 ln(64 / (32 * 2 pi)) / (2 ln 1e4) = -0.497 and 8 ln(64 / 2 pi) / (2 ln 1e4)
    # = 1.008, truncated to [0, 2]: ramp = 0, .5, 1, 1 over the 4 frequencies; extrapolated
    # (kept) share 1 - ramp; interpolated ones are divided by factor 4.
    scaling = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
    inv_freq, factor = rope_inv_freq(8, 256, BASE, scaling)
    expected = [1.0, 0.5 * 0.1 / 4 + 0.5 * 0.1, 0.01 / 4, 0.001 / 4]
    torch.testing.assert_close(inv_freq, torch.tensor(expected, dtype=torch.float64))
    assert factor == pytest.approx(0.1 * math.log(4) + 1)

    untruncated, _ = rope_inv_freq(8, 256, BASE, {**scaling, "truncate": False})
    high = 8 * math.log(64 / (2 * math.pi)) / (2 * math.log(BASE))
    ramp = [min(i / high, 1.0) for i in range(4)]
    expected = [f / 4 * r + f * (1 - r) for f, r in zip([1.0, 0.1, 0.01, 0.001], ramp)]
    torch.testing.assert_close(untruncated, torch.tensor(expected, dtype=torch.float64))


def test_yarn_attention_factor_from_mscale_folds_into_cache():
    scaling = {
        "rope_type": "yarn",
        "factor": 40.0,
        "original_max_position_embeddings": 64,
        "mscale": 1.0,
        "mscale_all_dim": 0.707,
    }
    _, factor = rope_inv_freq(8, 256, BASE, scaling)
    expected = (0.1 * math.log(40) + 1) / (0.1 * 0.707 * math.log(40) + 1)
    assert factor == pytest.approx(expected)
    cache = rope_cos_sin_cache(8, 256, BASE, scaling, dtype=torch.float64)
    assert float(cache[0, 0]) == pytest.approx(expected)  # cos(0) * factor
    radius = cache[:, :4] ** 2 + cache[:, 4:] ** 2
    torch.testing.assert_close(radius, torch.full_like(radius, expected**2))
    given = rope_inv_freq(8, 256, BASE, {**scaling, "attention_factor": 0.5})[1]
    assert given == 0.5


def test_unknown_scaling_is_an_error():
    with pytest.raises(ValueError):
        rope_inv_freq(8, 64, BASE, {"rope_type": "longrope"})
