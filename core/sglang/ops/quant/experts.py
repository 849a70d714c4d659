"""Quantized MoE expert weights, stacked over experts as moe.experts takes them: FP8 blocks
(float8_e4m3fn with block scales; w13's gate and up halves blocked on their own) and MXFP4
(uint8 e2m1 codes with e8m0 scales per 32 along K, gemm.fp4's layout per expert). Their
dequantization is the reference's; their quantization makes the conformance inputs."""

from __future__ import annotations

import torch

from sglang.ops.quant import fp4 as q4
from sglang.ops.quant import fp8 as q8


def expert_block_rows(rows: int, block_n: int, halves: int) -> int:
    """Scale rows of one expert's [rows, K] matrix made of `halves` stacked matrices (w13: the
    gate's and the up's), each blocked on its own."""
    return halves * -(-(rows // halves) // block_n)


def dequantize_experts(
    w: torch.Tensor,
    scale: torch.Tensor,
    block_size: tuple[int, int],
    halves: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Quantized experts' weights as [E, N, K] in `dtype`: FP8 blocks (float8_e4m3fn, see
    dequantize_expert_blocks) or MXFP4 (uint8 [E, N, K/2] with e8m0 scales [E, N, K/32])."""
    if w.dtype != torch.uint8:
        return dequantize_expert_blocks(w, scale, block_size, halves, dtype)
    e, n, half_k = w.shape
    want = (e, n, 2 * half_k // q4.MXFP4_BLOCK)
    if scale.dtype != torch.uint8 or (2 * half_k) % q4.MXFP4_BLOCK or tuple(scale.shape) != want:
        raise ValueError(
            f"MXFP4 experts: weight {tuple(w.shape)} uint8 with scale {tuple(scale.shape)} "
            f"{scale.dtype}: expected e8m0 uint8 scales {want} (K a multiple of 32)"
        )
    flat = q4.dequantize_mxfp4(w.reshape(e * n, half_k), scale.reshape(e * n, -1), dtype)
    return flat.reshape(e, n, 2 * half_k)


def dequantize_expert_blocks(
    w: torch.Tensor,
    scale: torch.Tensor,
    block_size: tuple[int, int],
    halves: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """w: [E, N, K] e4m3, scale [E, expert_block_rows(N, bn, halves), ceil(K/bk)] -> w * its
    tile's scale, [E, N, K] in `dtype` (see `experts` for the layout)."""
    e, n, k = w.shape
    bn, bk = block_size
    want = (e, expert_block_rows(n, bn, halves), -(-k // bk))
    if w.dtype != q8.FP8 or n % halves or tuple(scale.shape) != want:
        raise ValueError(
            f"FP8 experts: weight {tuple(w.shape)} {w.dtype} with scale {tuple(scale.shape)} "
            f"for blocks {tuple(block_size)}: expected float8_e4m3fn and scale {want}"
        )
    part = n // halves
    scales = scale.to(dtype).chunk(halves, dim=1)  # each half's block rows
    full = torch.cat([q8.expand_groups(s, bn, part, 1) for s in scales], dim=1)
    return w.to(dtype) * q8.expand_groups(full, bk, k, 2)


def quantize_mxfp4_experts(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> (uint8 [E, N, K/2], e8m0 uint8 [E, N, K/32]), expert by expert."""
    parts = [q4.quantize_mxfp4(expert) for expert in w]
    return torch.stack([q for q, _ in parts]), torch.stack([s for _, s in parts])


def quantize_expert_blocks(
    w: torch.Tensor, block_size: tuple[int, int], halves: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> (e4m3 [E, N, K], scale [E, expert_block_rows(N, bn, halves),
    ceil(K/bk)] float32): each expert's halves quantized block-wise on their own."""
    qs, scales = [], []
    for expert in w:
        parts = [q8.quantize_fp8_block(half, block_size) for half in expert.chunk(halves)]
        qs.append(torch.cat([q for q, _ in parts]))
        scales.append(torch.cat([s for _, s in parts]).float())
    return torch.stack(qs), torch.stack(scales)
