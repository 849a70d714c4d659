"""Helpers shared by the cuda kernel modules: launch sizes and the rules every kernel follows.

Rules (why the kernels look the way they do):
- No host synchronisation on the decode path (.item(), .tolist(), nonzero, bool(tensor)):
  decode steps are captured in CUDA graphs, and a sync also stalls the overlap scheduler.
  Shapes and dtypes (host metadata) may steer Python branches; tensor values may not.
- Offsets that can pass 2^31 (a row index times a row stride of a large tensor, an expert
  index times an expert's stride) are computed in int64 inside the kernels.
- tl.dot tiles are at least 16 x 16 x 16 (the smallest MMA shape on real GPUs), even where
  the interpreter would accept less.
- float32 GEMMs ask tl.dot for input_precision="ieee": the default is TF32, which the
  float32 tolerances reject on purpose.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# Triton's interpreter (TRITON_INTERPRET=1, read when kernels are decorated) multiplies
# bfloat16 tiles wrongly in tl.dot (triton 3.9: as raw 16-bit integers), so under it `mma`
# widens 16-bit operands to float32 first: exact, and the same result as the GPU's bf16 MMA
# with float32 accumulation.
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@triton.jit
def mma(acc, a, b, IEEE: tl.constexpr):
    """acc + a @ b with float32 accumulation; IEEE for float32 operands (no TF32)."""
    if INTERPRET_WIDEN:
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    if IEEE:
        return acc + tl.dot(a, b, input_precision="ieee")
    return tl.dot(a, b, acc)


INTERPRET_WIDEN = tl.constexpr(INTERPRET)


@triton.jit
def scaled_tile(w, scale, dtype: tl.constexpr):
    """A weight tile dequantized (w * scale in float32) as an MMA operand of `dtype`; float32
    under Triton's interpreter, whose bfloat16 casts truncate (a bias of ~0.3% a rounding,
    where the GPU rounds to nearest), and whose `mma` widens the operands anyway."""
    v = w.to(tl.float32) * scale
    if INTERPRET_WIDEN:
        return v
    return v.to(dtype)


@triton.jit
def grouped_tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(row tile, column tile) of program `pid` in grouped order: GROUP_M row tiles share each
    column tile while it is in L2 (the GEMM kernels' program order)."""
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * tiles_n
    first_m = (pid // width) * GROUP_M
    group_m = tl.minimum(tiles_m - first_m, GROUP_M)
    return first_m + (pid % width) % group_m, (pid % width) // group_m


TABLE_INDEX_ARGS = ["qo_indptr", "kv_indptr", "kv_indices", "block_seq", "block_indptr"]
"""Attention kernels' index arguments, left out of Triton's 16-byte alignment specialisation
(`do_not_specialize_on_alignment`): for one request they are views of the request-to-token
table (rows of context + 1 slots), aligned or not by row and prefix, and a variant compiled
mid-serving holds every request for seconds. They are read an index at a time."""


def next_pow2(n: int) -> int:
    return triton.next_power_of_2(max(int(n), 1))


def row_warps(block: int) -> int:
    """Warps for a one-row-per-program kernel over `block` elements."""
    if block >= 8192:
        return 16
    if block >= 2048:
        return 8
    if block >= 512:
        return 4
    return 2 if block >= 128 else 1


def rows_2d(x: torch.Tensor) -> torch.Tensor:
    """x as [rows, last] with a unit stride along the last dim (a copy only when needed)."""
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[-1] > 1 and x2.stride(-1) != 1:
        x2 = x2.contiguous()
    return x2
