"""The rotary cos/sin cache, with the context-extension schemes of Hugging Face configs.

Semantics follow Hugging Face transformers' `src/transformers/modeling_rope_utils.py`
(`_compute_default_rope_parameters`, `_compute_linear_scaling_rope_parameters`,
`_compute_llama3_parameters`, `_compute_yarn_parameters`) and its `RotaryEmbedding.forward`,
which multiplies cos and sin by the returned attention factor. Two deliberate differences:
the frequencies are computed in float64 and cast at the end (HF computes them in float32,
which at positions near 1e5 costs ~1e-2 rad of phase), and there is no `config`: the caller
passes rotary_dim (HF's head_dim * partial_rotary_factor) and max_position (the cache length,
which stands in for `config.max_position_embeddings` where HF reads it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

SCALING_TYPES = ("default", "linear", "llama3", "yarn")


def rope_inv_freq(
    rotary_dim: int, max_position: int, base: float, scaling: Mapping[str, Any] | None = None
) -> tuple[torch.Tensor, float]:
    """(inv_freq [rotary_dim // 2] float64, attention_factor) for a scaling config.

    scaling is a Hugging Face `rope_scaling` dict: its "rope_type" (or legacy "type") is one
    of "default", "linear" (factor), "llama3" (factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings) or "yarn" (factor, original_max_position_embeddings,
    beta_fast=32, beta_slow=1, attention_factor, mscale, mscale_all_dim, truncate=True).
    """
    if rotary_dim % 2:
        raise ValueError(f"rotary_dim must be even, got {rotary_dim}")
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim))
    kind = "default" if not scaling else scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / scaling["factor"], 1.0
    if kind == "llama3":
        return _llama3(inv_freq, scaling), 1.0
    if kind == "yarn":
        return _yarn(inv_freq, rotary_dim, max_position, base, scaling)
    raise ValueError(f"unsupported rope scaling {kind!r}; supported: {', '.join(SCALING_TYPES)}")


def rope_cos_sin_cache(
    rotary_dim: int,
    max_position: int,
    base: float,
    scaling: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """[max_position, rotary_dim]: row p = cat(cos(p * inv_freq), sin(p * inv_freq)) * factor,
    the layout the `rope` op reads (SGLang's). factor is YaRN's attention factor, else 1."""
    inv_freq, attention_factor = rope_inv_freq(rotary_dim, max_position, base, scaling)
    freqs = torch.outer(torch.arange(max_position, dtype=torch.float64), inv_freq)
    cache = torch.cat((freqs.cos(), freqs.sin()), dim=-1) * attention_factor
    return cache.to(dtype)


def _llama3(inv_freq: torch.Tensor, scaling: Mapping[str, Any]) -> torch.Tensor:
    """Llama 3.1: long wavelengths divided by factor, short ones kept, a smooth blend between."""
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(
    inv_freq: torch.Tensor, dim: int, max_position: int, base: float, scaling: Mapping[str, Any]
) -> tuple[torch.Tensor, float]:
    """YaRN: interpolate (divide by factor) the low frequencies, extrapolate (keep) the high
    ones, with a linear ramp over the dimensions whose rotation count at the original context
    lies between beta_slow and beta_fast; cos/sin are multiplied by the attention factor."""
    original = scaling.get("original_max_position_embeddings") or max_position
    factor = scaling.get("factor")
    if factor is None:
        factor = max_position / original
    attention_factor = scaling.get("attention_factor")
    if attention_factor is None:
        mscale, mscale_all_dim = scaling.get("mscale"), scaling.get("mscale_all_dim")
        if mscale and mscale_all_dim:
            attention_factor = _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim)
        else:
            attention_factor = _yarn_mscale(factor)
    beta_fast = scaling.get("beta_fast") or 32
    beta_slow = scaling.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    extrapolation = 1 - ramp
    interpolated = inv_freq / factor
    return interpolated * (1 - extrapolation) + inv_freq * extrapolation, float(attention_factor)
