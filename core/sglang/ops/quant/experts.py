"""Quantized MoE expert weights, stacked over experts as moe.experts takes them: FP8 blocks
(float8_e4m3fn with block scales; w13's gate and up halves blocked on their own), MXFP4
(uint8 e2m1 codes with e8m0 scales per 32 along K, gemm.fp4's layout per expert) and int4
groups (W4A16: uint8 codes 0..15, two a byte, with float scales and float zero points per G
along K). Their dequantization is the reference's; their quantization makes the conformance
inputs; int4_expert_from_gemm turns one projection of an AWQ / GPTQ / pack-quantized
checkpoint (gemm.int4's arguments) into the int4 experts' layout."""

from __future__ import annotations

import torch

from sglang.ops.quant import fp4 as q4
from sglang.ops.quant import fp8 as q8
from sglang.ops.quant import int4 as qint4


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
    zeros: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quantized experts' weights as [E, N, K] in `dtype`: FP8 blocks (float8_e4m3fn, see
    dequantize_expert_blocks), int4 groups (with `zeros`, see dequantize_int4_experts) or MXFP4
    (uint8 [E, N, K/2] with e8m0 scales [E, N, K/32])."""
    if zeros is not None:
        return dequantize_int4_experts(w, scale, zeros, dtype)
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


def dequantize_int4_experts(
    w: torch.Tensor, scale: torch.Tensor, zeros: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """w: uint8 [E, N, K/2] (codes 0..15, two a byte, the low nibble the even k), scale and
    zeros [E, N, K/G] floats -> (q - zeros) * scale of each k's group k // G, [E, N, K]."""
    e, n, half_k = w.shape
    groups = scale.shape[-1] if scale.dim() == 3 else 0
    if (
        w.dtype != torch.uint8
        or tuple(scale.shape) != tuple(zeros.shape)
        or tuple(scale.shape[:2]) != (e, n)
        or groups == 0
        or (2 * half_k) % groups
        or not (scale.is_floating_point() and zeros.is_floating_point())
    ):
        raise ValueError(
            f"int4 experts: weight {tuple(w.shape)} {w.dtype} with scale {tuple(scale.shape)} "
            f"{scale.dtype} and zeros {tuple(zeros.shape)} {zeros.dtype}: expected uint8 codes "
            "[E, N, K/2] and float scales and zeros [E, N, K/G], G dividing K"
        )
    g = 2 * half_k // groups
    q = q4.unpack_fp4(w).to(dtype)
    return (q - zeros.to(dtype).repeat_interleave(g, -1)) * scale.to(dtype).repeat_interleave(g, -1)


def quantize_int4_experts(
    w: torch.Tensor, group: int, scale_dtype: torch.dtype, float_zeros: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[E, N, K] float -> (uint8 codes [E, N, K/2], scales [E, N, K/G] and zeros [E, N, K/G] in
    scale_dtype): gemm.int4's min-max quantization (sglang.ops.quant.int4.quantize_int4),
    integer zero points unless float_zeros."""
    parts = [qint4.quantize_int4(expert, group, None, scale_dtype, 0, float_zeros) for expert in w]
    codes = torch.stack([q4.pack_fp4(p.q.t()) for p in parts])
    scales = torch.stack([p.scales.t() for p in parts])
    zeros = torch.stack([p.zeros.t().to(scale_dtype) for p in parts])
    return codes, scales, zeros


def int4_expert_from_gemm(
    args: dict,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One [N, K] projection's gemm.int4 weight arguments (qweight, scales [K/G, N], qzeros
    packed or float, packing, group_size, act-order's g_idx; a LinearMethod's process result)
    -> (codes uint8 [N, K/2], scales [N, K/G], zeros [N, K/G] in the scales' dtype, order):
    the int4 experts' layout. Exact: integer zero points 0..16 are exact in any float dtype.
    Act-order (g_idx [K], each group's G input features anywhere): the codes' columns sorted
    by group, `order` int64 [K] the input feature of each column (None without g_idx); a g_idx
    whose groups are not G features each: ValueError."""
    q, z = qint4.unpack_int4(args["qweight"], args["qzeros"], args["packing"])
    scales = args["scales"]
    k, groups = q.shape[0], scales.shape[0]
    if k % groups or k // groups != min(int(args["group_size"]), k):
        raise ValueError(
            f"int4 weight of {k} input features with {groups} scale groups: not groups of "
            f"{args['group_size']}"
        )
    order = None
    g_idx = args.get("g_idx")
    if g_idx is not None:
        g_idx = g_idx.long()
        order = g_idx.argsort(stable=True)
        sequential = torch.arange(k, device=g_idx.device) // (k // groups)
        if g_idx.numel() != k or not torch.equal(g_idx[order], sequential):
            raise ValueError(
                f"act-order g_idx of {g_idx.numel()} input features: not {groups} groups of "
                f"{k // groups} each"
            )
        q = q[order]
    codes = q4.pack_fp4(q.t().contiguous())
    return codes, scales.t().contiguous(), z.t().to(scales.dtype).contiguous(), order


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
