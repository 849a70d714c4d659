"""Group-wise asymmetric int4 (W4A16) in the AutoAWQ GEMM and AutoGPTQ v1 packings.

Unpacked form, shared by both packings (K input features, N output features, G group size):

  q       [K, N]    integer codes 0..15
  zeros   [K/G, N]  integer zero points
  scales  [K/G, N]  float
  g_idx   [K]       group of each input row; k // G unless GPTQ act-order (desc_act) permuted it
  w[k, n] = (q[k, n] - zeros[g_idx[k], n]) * scales[g_idx[k], n]      (out = x @ w)

Packings, eight 4-bit values per int32, value i of a word in bits [4i, 4i+4):

  AWQ   qweight [K, N/8], qzeros [K/G, N/8], both packed along N in AWQ's interleaved order:
        nibble i of word c holds column 8c + AWQ_ORDER[i], AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7).
        Zeros are stored as they are. Checked against AutoAWQ
        awq/modules/linear/gemm.py (WQLinear_GEMM.from_linear: `order_map = [0, 2, 4, 6, 1, 3,
        5, 7]`, `qweight[:, col] |= qweight_col << (i * w_bit)`) and the unpackers that use
        AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7) (AutoAWQ utils/packing_utils.py, GPTQModel).
  GPTQ  qweight [K/8, N] packed along K in sequential order (nibble i of row r is input row
        8r + i); qzeros [K/G, N/8] packed along N in sequential order, storing zeros - 1 (the
        v1 checkpoint convention; readers add 1 back, so a stored nibble s means zero s + 1).
        Checked against AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py (`pack`:
        `qweight[row] |= intweight[j] << (bits * (j - i))`, `zeros -= 1`; `forward`:
        `zeros = zeros + 1`) and qlinear_cuda.py (`scales[g_idx] * (weight - zeros[g_idx])`).
        Act-order g_idx follows GPTQ's `g_idx = [i // group_size ...][invperm]`.

Float zero points (`quantize_int4(float_zeros=True)`): zeros [K/G, N] stay a float tensor, not
packed, and need not be integers, so the 16 levels (q - z) * s of a group can sit anywhere:
GGUF Q4_1 stores w = d * q + m per 32 weights, which is s = d, z = -m / d. The range is then
the group's own [min, max], not widened to include 0.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import torch

from sglang.ops.spec import compute_dtype

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)
SEQUENTIAL_ORDER = (0, 1, 2, 3, 4, 5, 6, 7)
PACK = 8  # int4 values per int32
_SHIFTS = tuple(4 * i for i in range(PACK))


class Int4Quant(NamedTuple):
    """The unpacked form (see the module docstring)."""

    q: torch.Tensor  # [K, N] int32 codes 0..15
    scales: torch.Tensor  # [K/G, N]
    zeros: torch.Tensor  # [K/G, N] int32 (float in scale_dtype with float zero points)
    g_idx: torch.Tensor  # [K] int32


def pack_nibbles(values: torch.Tensor, order: tuple[int, ...] = SEQUENTIAL_ORDER) -> torch.Tensor:
    """values: [R, C] integers 0..15, C % 8 == 0 -> int32 [R, C/8] packed along the last dim;
    nibble i of word c holds column 8c + order[i]."""
    r, c = values.shape
    if c % PACK:
        raise ValueError(f"cannot pack {c} columns into int32 words of {PACK} nibbles")
    if sys.byteorder != "little":
        return _pack_nibbles_arith(values, order)
    # Nibble i is bits [4i, 4i+4): on a little-endian machine, byte b of the word holds
    # nibbles 2b (low) and 2b + 1 (high), so the word is four such bytes viewed as one int32.
    # Byte by byte (strided selects): a gather over the last dim costs several times more.
    v = values.reshape(r, c // PACK, PACK).to(torch.uint8) & 0xF  # wraps: the low bits stay
    words = torch.stack(
        [v[..., order[2 * b]] | (v[..., order[2 * b + 1]] << 4) for b in range(PACK // 2)], -1
    )
    return words.view(torch.int32).view(r, c // PACK)


def _pack_nibbles_arith(values: torch.Tensor, order: tuple[int, ...]) -> torch.Tensor:
    """pack_nibbles by arithmetic, for any byte order."""
    r, c = values.shape
    # The nibbles' bit fields are disjoint, so the word is their sum: one shift and one
    # reduction over [R, C/8, 8], in int64, then wrapped to int32 (bit 31 set -> negative).
    shifts = torch.tensor(
        [_SHIFTS[order.index(j)] for j in range(PACK)], dtype=torch.int64, device=values.device
    )
    v = values.reshape(r, c // PACK, PACK).to(torch.int64) & 0xF
    words = (v << shifts).sum(dim=-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def unpack_nibbles(packed: torch.Tensor, order: tuple[int, ...] = SEQUENTIAL_ORDER) -> torch.Tensor:
    """Inverse of pack_nibbles: int32 [R, C/8] -> int32 [R, C] codes 0..15."""
    r, w = packed.shape
    if sys.byteorder == "little":  # bytes of the words, low nibble first (see pack_nibbles)
        b = packed.to(torch.int32).contiguous().view(torch.uint8).view(r, w, PACK // 2)
        out = torch.empty(r, w, PACK, dtype=torch.int32, device=packed.device)
        for i in range(PACK // 2):
            out[..., order[2 * i]] = b[..., i] & 0xF
            out[..., order[2 * i + 1]] = b[..., i] >> 4
        return out.view(r, w * PACK)
    # Column 8c + j sits in nibble order.index(j): shift by that nibble's offset directly.
    shifts = torch.tensor(
        [_SHIFTS[order.index(j)] for j in range(PACK)], dtype=torch.int32, device=packed.device
    )
    nibbles = (packed.to(torch.int32).unsqueeze(-1) >> shifts) & 0xF  # [R, C/8, column j]
    return nibbles.reshape(r, w * PACK)


def pack_awq(q: torch.Tensor, zeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q [K, N], zeros [K/G, N]) -> (qweight [K, N/8], qzeros [K/G, N/8]), AWQ order."""
    return pack_nibbles(q, AWQ_ORDER), pack_nibbles(zeros, AWQ_ORDER)


def unpack_awq(qweight: torch.Tensor, qzeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(qweight [K, N/8], qzeros [K/G, N/8]) -> (q [K, N], zeros [K/G, N])."""
    return unpack_nibbles(qweight, AWQ_ORDER), unpack_nibbles(qzeros, AWQ_ORDER)


def pack_gptq(q: torch.Tensor, zeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q [K, N], zeros [K/G, N] in 1..16) -> (qweight [K/8, N], qzeros [K/G, N/8] = zeros-1)."""
    if zeros.numel() and (int(zeros.min()) < 1 or int(zeros.max()) > 16):
        raise ValueError("GPTQ v1 stores zeros - 1 in 4 bits: zero points must lie in 1..16")
    qweight = pack_nibbles(q.t()).t().contiguous()
    return qweight, pack_nibbles(zeros - 1)


def unpack_gptq(qweight: torch.Tensor, qzeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(qweight [K/8, N], qzeros [K/G, N/8]) -> (q [K, N], zeros [K/G, N] = stored + 1)."""
    q = unpack_nibbles(qweight.t()).t()
    return q, unpack_nibbles(qzeros) + 1


def pack_qweight(q: torch.Tensor, packing: str) -> torch.Tensor:
    """q [K, N] -> qweight alone, in the packing's layout (for float zero points)."""
    if packing == "awq":
        return pack_nibbles(q, AWQ_ORDER)
    if packing == "gptq":
        return pack_nibbles(q.t()).t().contiguous()
    raise ValueError(f"unknown int4 packing {packing!r}")


def unpack_qweight(qweight: torch.Tensor, packing: str) -> torch.Tensor:
    """Inverse of pack_qweight: -> q [K, N] int32."""
    if packing == "awq":
        return unpack_nibbles(qweight, AWQ_ORDER)
    if packing == "gptq":
        return unpack_nibbles(qweight.t()).t()
    raise ValueError(f"unknown int4 packing {packing!r}")


def unpack_int4(
    qweight: torch.Tensor, qzeros: torch.Tensor, packing: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """gemm.int4's qweight and qzeros in either packing -> (q [K, N] int32, zeros [K/G, N]):
    integer zero points as the spec reads them (GPTQ's stored + 1), or float ones as given."""
    if qzeros.is_floating_point():
        return unpack_qweight(qweight, packing), qzeros
    if packing == "awq":
        return unpack_awq(qweight, qzeros)
    return unpack_gptq(qweight, qzeros)


def default_g_idx(k: int, group_size: int, device: torch.device | None = None) -> torch.Tensor:
    """[K] int32: input row k belongs to group k // group_size."""
    return (torch.arange(k, device=device) // group_size).to(torch.int32)


def act_order_g_idx(perm: torch.Tensor, group_size: int) -> torch.Tensor:
    """GPTQ desc_act: rows are quantized in the order `perm` (a permutation of range(K)), in
    groups of group_size along that order, so g_idx[perm[j]] = j // group_size."""
    g_idx = torch.empty_like(perm, dtype=torch.int32)
    g_idx[perm] = default_g_idx(perm.numel(), group_size, perm.device)
    return g_idx


def quantize_int4(
    w: torch.Tensor,
    group_size: int,
    g_idx: torch.Tensor | None = None,
    scale_dtype: torch.dtype = torch.float32,
    min_zero: int = 0,
    float_zeros: bool = False,
) -> Int4Quant:
    """Min-max asymmetric quantization of a Linear weight w [N, K], as AutoAWQ / GPTQ's
    quantizers do (range widened to include 0): scale = (max - min) / 15 per (group, column),
    zero = round(-min / scale) clamped to [min_zero, 15], q = clamp(round(w / scale) + zero).
    Scales are rounded to scale_dtype first, and q computed with the rounded scales, as a
    checkpoint stores them. GPTQ v1 needs min_zero=1 (see pack_gptq).

    float_zeros: zero = -min / scale unrounded, over the group's own range, stored in
    scale_dtype (q computed with the stored zero), so zeros come back as floats: weights that
    already lie on a 4-bit grid per group (a dequantized Q4_1 tensor) are recovered up to the
    rounding of scale and zero to scale_dtype."""
    n, k = w.shape
    groups = k // group_size
    if groups * group_size != k:
        raise ValueError(f"K={k} is not a multiple of group_size={group_size}")
    wt = w.t().to(compute_dtype(w)).contiguous()  # [K, N]
    gi = default_g_idx(k, group_size, w.device) if g_idx is None else g_idx.to(torch.int32)
    if not torch.equal(
        torch.bincount(gi.long(), minlength=groups), torch.full_like(gi.long()[:groups], group_size)
    ):
        raise ValueError("every group must hold exactly group_size input rows")
    trivial = torch.equal(gi, default_g_idx(k, group_size, w.device))
    # Act-order rows gathered into group order by indexing: index_select along dim 0 of a
    # wide [K, N] is pathologically slow on the CPU (torch 2.13: 7 s against 0.1 s for K=576,
    # N=49152). Contiguous groups are a view.
    grouped = (wt if trivial else wt[torch.argsort(gi.long(), stable=True)]).view(groups, -1, n)
    lo, hi = grouped.amin(dim=1), grouped.amax(dim=1)
    if not float_zeros:
        lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    scales = ((hi - lo) / 15).to(scale_dtype)
    s = torch.where(scales != 0, scales, torch.ones_like(scales)).to(wt.dtype)
    if float_zeros:
        zeros = (-lo / s).to(scale_dtype).to(wt.dtype)
    else:
        zeros = torch.round(-lo / s).clamp(min_zero, 15)
    if trivial:  # [groups, G, N] against [groups, 1, N]: no per-row copies of s and zeros
        base, s_rows, z_rows = grouped, s.unsqueeze(1), zeros.unsqueeze(1)
    else:
        rows = gi.long()
        base, s_rows, z_rows = wt, s[rows], zeros[rows]
    if float_zeros:
        q = torch.round(base / s_rows + z_rows).clamp_(0, 15).reshape(k, n)
        return Int4Quant(q.to(torch.int32), s.to(scale_dtype), zeros.to(scale_dtype), gi)
    q = (torch.round(base / s_rows) + z_rows).clamp_(0, 15).reshape(k, n)
    return Int4Quant(q.to(torch.int32), s.to(scale_dtype), zeros.to(torch.int32), gi)


def dequantize_int4(
    q: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor,
    g_idx: torch.Tensor,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(q - zeros[g_idx]) * scales[g_idx] -> [K, N], in dtype (default: the compute dtype of
    scales, float32 or float64)."""
    dt = dtype or compute_dtype(scales)
    gi = g_idx.long()
    return (q.to(dt) - zeros.to(dt)[gi]) * scales.to(dt)[gi]
