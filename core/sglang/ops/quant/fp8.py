"""float8_e4m3fn (max 448, no infinities): q = clamp(x / scale, -448, 448).to(float8_e4m3fn).

Scale layouts (as SGLang / vLLM / DeepSeek-V3 checkpoints store them, `weight_scale_inv` for
blocks):

  per_tensor   one scale, shape [1]
  rowwise      one scale per row: [N] for a weight's output channels, [M] for tokens
  block        weight [N, K] in tiles of (bn, bk): scale [ceil(N/bn), ceil(K/bk)]; edge tiles
               are partial
  token group  activations [M, K] in groups of bk along K: scale [M, ceil(K/bk)]

Dynamic scales are amax / 448 over the scaled unit; an all-zero unit gets scale 0 and
quantizes to zeros. The cast to e4m3 rounds to nearest even; the clamp first makes the cast
saturate, since e4m3fn has no infinity.
"""

from __future__ import annotations

import math

import torch

from sglang.ops.spec import compute_dtype

E4M3_MAX = 448.0
FP8 = torch.float8_e4m3fn


def cast_e4m3(scaled: torch.Tensor) -> torch.Tensor:
    """Saturating round-to-nearest-even cast of already-scaled values to float8_e4m3fn."""
    return scaled.clamp(-E4M3_MAX, E4M3_MAX).to(FP8)


def _safe(scale: torch.Tensor) -> torch.Tensor:
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def quantize_fp8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Quantize x with a given (static) scale broadcastable to x: clamp(x / scale) -> e4m3."""
    acc = compute_dtype(x, scale)
    return cast_e4m3(x.to(acc) / _safe(scale.to(acc)))


def quantize_fp8_per_tensor(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: any shape -> (q, scale [1]) with scale = amax(|x|) / 448."""
    xf = x.to(compute_dtype(x))
    amax = xf.abs().amax() if xf.numel() else xf.new_zeros(())
    scale = (amax / E4M3_MAX).reshape(1)
    return cast_e4m3(xf / _safe(scale)), scale


def quantize_fp8_rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [R, C] -> (q [R, C], scale [R]): per token (activations) or per channel (weights)."""
    xf = x.to(compute_dtype(x))
    amax = xf.abs().amax(dim=-1) if xf.shape[-1] else xf.new_zeros(xf.shape[:-1])
    scale = amax / E4M3_MAX
    return cast_e4m3(xf / _safe(scale).unsqueeze(-1)), scale


def expand_groups(scale: torch.Tensor, group: int, size: int, dim: int) -> torch.Tensor:
    """Repeat each scale `group` times along `dim` and crop to `size` (partial last group)."""
    return scale.repeat_interleave(group, dim=dim).narrow(dim, 0, size)


def quantize_fp8_token_group(x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [M, K] -> (q [M, K], scale [M, ceil(K/group)]), one scale per token per K-group
    (SGLang `per_token_group_quant_fp8`, DeepSeek-V3 activations with group 128)."""
    xf = x.to(compute_dtype(x))
    m, k = xf.shape
    groups = math.ceil(k / group)
    padded = torch.nn.functional.pad(xf, (0, groups * group - k))
    amax = padded.abs().reshape(m, groups, group).amax(dim=-1)
    scale = amax / E4M3_MAX
    return cast_e4m3(xf / expand_groups(_safe(scale), group, k, 1)), scale


def quantize_fp8_block(
    w: torch.Tensor, block: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """w: [N, K] -> (q [N, K], scale [ceil(N/bn), ceil(K/bk)]), one scale per (bn, bk) tile."""
    wf = w.to(compute_dtype(w))
    (n, k), (bn, bk) = wf.shape, block
    gn, gk = math.ceil(n / bn), math.ceil(k / bk)
    padded = torch.nn.functional.pad(wf, (0, gk * bk - k, 0, gn * bn - n))
    amax = padded.abs().reshape(gn, bn, gk, bk).amax(dim=(1, 3))
    scale = amax / E4M3_MAX
    return cast_e4m3(wf / expand_block_scale(_safe(scale), block, (n, k))), scale


def expand_block_scale(scale: torch.Tensor, block: tuple[int, int], shape: tuple[int, int]):
    """scale [ceil(N/bn), ceil(K/bk)] -> [N, K], each tile's scale over its elements."""
    rows = expand_groups(scale, block[0], shape[0], 0)
    return expand_groups(rows, block[1], shape[1], 1)


def dequantize_fp8(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """q * scale in `dtype`, scale already broadcastable to q (see expand_* for layouts)."""
    return q.to(dtype) * scale.to(dtype)
