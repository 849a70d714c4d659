"""Split-K for the decode GEMVs, finished inside the same kernel (no second launch).

At one row a linear layer is a read of its weight; a GEMV that gives each program a block of
outputs and all of K has too few programs for a small N (4096 outputs in blocks of 16: 256
programs, two per SM on an H200) and long serial loops for a large K, so too few bytes are in
flight to reach the memory bandwidth. Splitting K across SPLIT programs per output block
multiplies the programs; each writes its float32 partial sums to a workspace, then counts
itself in on a per-block counter (an acquire-release atomic), and the program that arrives
last adds the SPLIT partials in split order (the same sum whoever arrives last:
deterministic), applies the bias, stores the outputs and sets the counter back to zero for the
next call. A second reduction kernel would cost a launch per linear (a few microseconds each
in a decode graph, over a hundred linears a step).

The counters live in one zeroed int32 buffer per device, shared by every split GEMV on it:
calls on one stream run one after another, and each leaves its counters at zero. Two split
GEMVs running at once on two streams of one device would share counters; the engine does not
do that (a decode step is one stream).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

MAX_SLOTS = 1 << 16
"""Counters per device: one per (row of x, output block) of a call; more: no split."""

_COUNTERS: dict[torch.device, torch.Tensor] = {}


def counters(device: torch.device) -> torch.Tensor:
    """The device's zeroed counter buffer (made on first use)."""
    buf = _COUNTERS.get(device)
    if buf is None:
        buf = _COUNTERS[device] = torch.zeros(MAX_SLOTS, dtype=torch.int32, device=device)
    return buf


@functools.cache
def _processors(device: torch.device) -> int:
    if device.type != "cuda":
        return 4  # the interpreter: a few programs are plenty
    return torch.cuda.get_device_properties(device).multi_processor_count


def choose(split, programs: int, steps: int, device: torch.device, waves: int = 4) -> int:
    """The split factor: `split` when it is a number, else ("auto") enough splits for about
    `waves` programs per processor, at most one per K step; 1 when counters would not fit.
    Returns a factor that leaves no split empty."""
    if programs > MAX_SLOTS or steps <= 1:
        return 1
    if split == "auto":
        split = -(-waves * _processors(device) // max(programs, 1))
    split = max(1, min(int(split), steps))
    return -(-steps // -(-steps // split))  # no empty split: ceil(steps / ceil(steps / split))


def workspace(split: int, slots: int, block: int, device: torch.device) -> torch.Tensor:
    """float32 partial sums for a call: [split, slots * block] (a 1-element stub at split 1)."""
    if split == 1:
        return torch.empty(1, dtype=torch.float32, device=device)
    return torch.empty(split, slots * block, dtype=torch.float32, device=device)


@triton.jit
def finish(
    y,
    y_ptrs,
    b_ptrs,
    mask,
    PART,
    COUNT,
    slot,
    ks,
    n_slots,
    HAS_BIAS: tl.constexpr,
    SPLIT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Store a program's float32 outputs `y` [BLOCK] (its part of K when SPLIT > 1) at y_ptrs:
    directly, or through the workspace PART by the last of the SPLIT programs of `slot`."""
    if SPLIT == 1:
        if HAS_BIAS:
            y += tl.load(b_ptrs, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptrs, y.to(y_ptrs.dtype.element_ty), mask=mask)
    else:
        lanes = tl.arange(0, BLOCK)
        stride = n_slots.to(tl.int64) * BLOCK
        part = PART + slot.to(tl.int64) * BLOCK + lanes
        tl.store(part + ks * stride, y)
        tl.debug_barrier()  # every thread's partial is written before the count
        arrived = tl.atomic_add(COUNT + slot, 1, sem="acq_rel", scope="gpu")
        if arrived == SPLIT - 1:
            total = tl.zeros([BLOCK], tl.float32)
            for s in range(SPLIT):
                total += tl.load(part + s * stride, cache_modifier=".cg")
            if HAS_BIAS:
                total += tl.load(b_ptrs, mask=mask, other=0.0).to(tl.float32)
            tl.store(y_ptrs, total.to(y_ptrs.dtype.element_ty), mask=mask)
            tl.atomic_xchg(COUNT + slot, 0, sem="relaxed", scope="gpu")


@triton.jit
def _finish_column(
    acc,
    m,
    M,
    Y,
    stride_ym,
    B,
    rows,
    row_ok,
    PART,
    COUNT,
    nb,
    ks,
    HAS_BIAS: tl.constexpr,
    SPLIT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """finish_columns' store of column m."""
    r = tl.arange(0, 16)
    y = tl.sum(tl.where(r[None, :] == m, acc, 0.0), axis=1)
    finish(
        y,
        Y + m * stride_ym + rows,
        B + rows,
        row_ok,
        PART,
        COUNT,
        nb * M + m,
        ks,
        tl.num_programs(0) * M,
        HAS_BIAS,
        SPLIT,
        BLOCK,
    )


@triton.jit
def finish_columns(
    acc,
    M,
    Y,
    stride_ym,
    B,
    rows,
    row_ok,
    PART,
    COUNT,
    nb,
    ks,
    HAS_BIAS: tl.constexpr,
    SPLIT: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr = 0,
):
    """`finish` for a tensor-core GEMV's [BLOCK, 16] float32 tile y^T (output features x rows
    of x): column m < M is row m's outputs `rows` of block nb, stored at Y + m * stride_ym;
    slots run the M rows of each block next to each other. ROWS (a power of two >= M, else 0:
    a loop over M) unrolls the columns at compile time, so the unused ones (15 of 16 at M = 1)
    drop out of the caller's loop."""
    args = (Y, stride_ym, B, rows, row_ok, PART, COUNT, nb, ks)
    if ROWS == 0:
        for m in range(M):
            _finish_column(acc, m, M, *args, HAS_BIAS, SPLIT, BLOCK)
    else:
        for m in tl.static_range(ROWS):
            if m < M:
                _finish_column(acc, m, M, *args, HAS_BIAS, SPLIT, BLOCK)
