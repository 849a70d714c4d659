"""Symmetric int8: q = round_half_even(x / scale) clamped to [-127, 127], scale = amax / 127.

Used for W8A8 (weights per output channel, activations per token); -128 is never produced, so
the format is symmetric, as in SGLang / vLLM `per_token_quant_int8`.
"""

from __future__ import annotations

import torch

from sglang.ops.spec import compute_dtype

INT8_MAX = 127


def quantize_int8_rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [R, C] float -> (q [R, C] int8, scale [R] in the compute dtype).

    One scale per row (a token of an activation, an output channel of a weight). A row of
    zeros gets scale 0 and quantizes to zeros."""
    xf = x.to(compute_dtype(x))
    scale = xf.abs().amax(dim=-1) / INT8_MAX if xf.shape[-1] else xf.new_zeros(xf.shape[:-1])
    divisor = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(xf / divisor.unsqueeze(-1)).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return q, scale


def dequantize_int8_rowwise(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """q: [R, C] int8, scale: [R] -> q * scale[:, None] in scale's compute dtype."""
    acc = compute_dtype(scale)
    return q.to(acc) * scale.to(acc).unsqueeze(-1)


def quantize_int8_groupwise(x: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [R, C] float, C a multiple of group_size -> (q [R, C] int8, scale [R, C / G] in the
    compute dtype): `quantize_int8_rowwise` over each group of G consecutive columns of a row
    (GGUF's Q8_0 / Q8_1 activation blocks, llama.cpp's dot-product operand)."""
    r, c = x.shape
    q, scale = quantize_int8_rowwise(x.reshape(r * (c // group_size), group_size))
    return q.view(r, c), scale.view(r, c // group_size)
