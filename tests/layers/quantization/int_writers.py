"""Integer weight-only writers written from the publishers' own packing code (not from the
engine's sglang.ops.quant.int4), so a layout mistake on either side shows.

- AutoAWQ awq/modules/linear/gemm.py, WQLinear_GEMM.from_linear: intweight [K, N];
  `order_map = [0, 2, 4, 6, 1, 3, 5, 7]`; `qweight[:, col] |= intweight[:, col * 8 +
  order_map[i]] << (i * 4)`; qzeros the same over zeros [K/G, N]; scales [K/G, N] float16.
- AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack: qweight rows
  `qweight[row] |= intweight[j] << (bits * (j - i))` for j in i .. i + 32/bits; `zeros -= 1`;
  `qzeros[:, col] |= zeros[:, j] << (bits * (j - i))`; g_idx [K].
Quantization: min-max per group (GPTQ's Quantizer without the Hessian update: the packing,
not the rounding choice, is what a reader must get right); symmetric zero = (maxq + 1) / 2.
"""

from __future__ import annotations

import torch


def quantize_groups(w: torch.Tensor, group: int, bits: int, sym: bool, g_idx=None):
    """w [N, K] -> (intweight [K, N], zeros [K/G, N] int, scales [K/G, N] float16, g_idx [K])."""
    n, k = w.shape
    maxq = 2**bits - 1
    g_idx = torch.arange(k) // group if g_idx is None else g_idx
    groups = k // group
    scales = torch.empty(groups, n)
    zeros = torch.empty(groups, n)
    for gi in range(groups):
        cols = w[:, g_idx == gi]
        lo, hi = cols.min(1).values.clamp(max=0), cols.max(1).values.clamp(min=0)
        if sym:
            amax = torch.maximum(lo.abs(), hi)
            s = (2 * amax / maxq).half().float()
            z = torch.full_like(s, (maxq + 1) // 2)
        else:
            s = ((hi - lo) / maxq).half().float()
            z = torch.round(-lo / s)
        scales[gi], zeros[gi] = s, z
    intweight = torch.round(w.t() / scales[g_idx] + zeros[g_idx]).clamp(0, maxq).long()
    return intweight, zeros.long(), scales.half(), g_idx.int()


def _wrap(words: torch.Tensor) -> torch.Tensor:
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def pack_awq(intweight: torch.Tensor, zeros: torch.Tensor):
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    qweight = torch.zeros(intweight.shape[0], intweight.shape[1] // 8, dtype=torch.int64)
    for col in range(intweight.shape[1] // 8):
        for i in range(8):
            qweight[:, col] |= intweight[:, col * 8 + order_map[i]] << (i * 4)
    qzeros = torch.zeros(zeros.shape[0], zeros.shape[1] // 8, dtype=torch.int64)
    for col in range(zeros.shape[1] // 8):
        for i in range(8):
            qzeros[:, col] |= zeros[:, col * 8 + order_map[i]] << (i * 4)
    return _wrap(qweight), _wrap(qzeros)


def pack_gptq(intweight: torch.Tensor, zeros: torch.Tensor, bits: int):
    per = 32 // bits
    qweight = torch.zeros(intweight.shape[0] // per, intweight.shape[1], dtype=torch.int64)
    i = row = 0
    while row < qweight.shape[0]:
        for j in range(i, i + per):
            qweight[row] |= intweight[j] << (bits * (j - i))
        i += per
        row += 1
    zeros = zeros - 1
    qzeros = torch.zeros(zeros.shape[0], zeros.shape[1] // per, dtype=torch.int64)
    i = col = 0
    while col < qzeros.shape[1]:
        for j in range(i, i + per):
            qzeros[:, col] |= (zeros[:, j] & (2**bits - 1)) << (bits * (j - i))
        i += per
        col += 1
    return _wrap(qweight), _wrap(qzeros)


def dequantize(intweight, zeros, scales, g_idx) -> torch.Tensor:
    """-> the float weight [N, K]: (q - z[g_idx]) * s[g_idx]."""
    gi = g_idx.long()
    return ((intweight.float() - zeros.float()[gi]) * scales.float()[gi]).t()
