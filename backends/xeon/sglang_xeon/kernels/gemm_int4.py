"""gemm.int4 on the CPU: unpack the int4 weight with one shift-and-mask per nibble plane,
dequantize in x.dtype ((q - z) is exact there; one rounding at the scale multiply), then
oneDNN's F.linear on the transposed view. Cached when the weight cache is on (see
gemm.cached_linear).

AWQ's interleaved nibble order is never undone on the weight: plane i of word c lands at
column i * N/8 + c ("plane-major"), the small scales and zeros are put in that order, and the
[M, N] output is permuted back to true columns, which costs M * N instead of K * N.
"""

from __future__ import annotations

import functools

import torch

from sglang_xeon.kernels.gemm import cached_linear

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _planes(packed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """int32 [R, C] -> [R, 8, C]: out[:, i] = nibble i of each word (bits 4i..4i+3)."""
    out = torch.empty(packed.shape[0], 8, packed.shape[1], dtype=dtype, device=packed.device)
    for i in range(8):
        out[:, i] = (packed >> (4 * i)) & 0xF
    return out


@functools.lru_cache(maxsize=64)
def _awq_columns(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(true column of each plane-major column, plane-major column of each true column)."""
    words = n // 8
    plane, word = torch.arange(n) // words, torch.arange(n) % words
    true_of_raw = 8 * word + torch.tensor(AWQ_ORDER)[plane]
    return true_of_raw.to(device), torch.argsort(true_of_raw).to(device)


def _is_trivial(g_idx: torch.Tensor | None, group_size: int) -> bool:
    if g_idx is None:
        return True
    expected = torch.arange(g_idx.numel(), device=g_idx.device) // group_size
    return bool(torch.equal(g_idx.long(), expected))


def _apply_groups(q, zeros, scales, group_size, g_idx, dtype) -> torch.Tensor:
    """q [K, N] small integers in dtype, zeros / scales [K/G, N] -> (q - z[g]) * s[g]."""
    k, n = q.shape
    z, s = zeros.to(dtype), scales.to(dtype)
    if _is_trivial(g_idx, group_size):
        grouped = q.view(k // group_size, group_size, n)
        return ((grouped - z.unsqueeze(1)) * s.unsqueeze(1)).view(k, n)
    rows = g_idx.long()
    return (q - z.index_select(0, rows)) * s.index_select(0, rows)


def _awq_weight(qweight, scales, qzeros, group_size, dtype) -> torch.Tensor:
    """-> [K, N] in plane-major column order."""
    k, words = qweight.shape
    true_of_raw, _ = _awq_columns(words * 8, qweight.device)
    q = _planes(qweight, dtype).view(k, words * 8)
    z = _planes(qzeros, torch.int32).view(qzeros.shape[0], words * 8)
    s = scales.index_select(1, true_of_raw)
    return _apply_groups(q, z, s, group_size, None, dtype)


def _gptq_weight(qweight, scales, qzeros, group_size, g_idx, dtype) -> torch.Tensor:
    """-> [K, N] in true order (GPTQ packs along K sequentially; zeros stored minus one)."""
    rows8, n = qweight.shape
    q = _planes(qweight, dtype).view(rows8 * 8, n)
    z = _planes(qzeros, torch.int32).transpose(1, 2).reshape(qzeros.shape[0], n) + 1
    return _apply_groups(q, z, scales, group_size, g_idx, dtype)


def int4(x, qweight, scales, qzeros, packing, group_size, g_idx=None, bias=None):
    dtype = x.dtype
    if packing == "awq":
        out = cached_linear(
            x,
            (qweight, scales, qzeros),
            ("awq", group_size, dtype),
            lambda: _awq_weight(qweight, scales, qzeros, group_size, dtype).t(),
        )
        _, raw_of_true = _awq_columns(out.shape[1], out.device)
        out = out.index_select(1, raw_of_true)
        return out if bias is None else out + bias
    if packing != "gptq":
        raise ValueError(f"unknown int4 packing {packing!r}")
    return cached_linear(
        x,
        (qweight, scales, qzeros, g_idx),
        ("gptq", group_size, dtype),
        lambda: _gptq_weight(qweight, scales, qzeros, group_size, g_idx, dtype).t(),
        bias,
    )


def register(registry) -> None:
    registry.register("gemm.int4", int4, name="xeon.int4_dequant_linear")
