"""attention.decode and attention.extend in Triton over the paged KV cache (sglang.ops.attention).

Cache: K [S, Hkv, D], V [S, Hkv, Dv]; sequence b's tokens sit at slots
kv_indices[kv_indptr[b]:kv_indptr[b+1]] in position order, so every key tile is a gather of
BLOCK_N rows (each row a contiguous D-vector of one KV head).

Decode (flash-decoding, two kernels):

    stage 1, grid (B, Hkv * head_blocks, max_splits): one program = one sequence, one KV head's
             query group (up to BLOCK_H heads as the rows of a tl.dot, so K/V are read once per
             KV head, not once per query head), one contiguous split of the keys in reach.
             Writes the split's normalised output [BLOCK_H, Dv] and its log-sum-exp.
    stage 2, grid (B, H): merges the splits by their log-sum-exp into o [B, H, Dv].

CUDA-graph safe: the grid depends only on shapes (B, heads) and `max_splits`, chosen on the
host from B and the SM count, never from the lengths. Each program reads its sequence's length
on the device and works out how many splits that length needs (at least MIN_SPLIT_LEN keys
each); programs past that exit after writing an empty split (lse = -inf). With one split
stage 1 writes o directly and stage 2 is skipped.

Extend: grid (query blocks, H). The query blocks of all sequences are numbered one after the
other (blocks_per_seq = cdiv(new tokens, BLOCK_M), prefix-summed on the device); the grid is
the static upper bound cdiv(N, BLOCK_M) + B and surplus programs exit. A program holds BLOCK_M
new tokens of one head and streams the keys from the first one in reach (0, or the window's
start) up to its last query's position, masking causally and by the window per element.

Sinks (gpt-oss): one more logit per query head in the softmax's denominator, with no value. The
running softmax simply starts from it (m = sink, l = 1, acc = 0) instead of from nothing; in
decode only split 0 starts there, so the sink counts once when stage 2 merges the splits by
their log-sum-exp (and an empty sequence still gets lse = sink, output 0).

Soft-cap: cap * tanh(s / cap) with tanh = 2 * sigmoid(2x) - 1. Accumulation is float32; float32
inputs use IEEE dots (Triton's default for float32 is tf32).
"""

from __future__ import annotations

import functools
import logging

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the backend still imports; the kernels report themselves unavailable
    triton = None
    tl = None

logger = logging.getLogger(__name__)

MIN_SPLIT_LEN = 64  # fewest keys a decode split is worth (one BLOCK_N tile)
MAX_SPLITS = 32
MAX_HEAD_DIM = 256


def _available() -> str | None:
    return None if triton is not None else "triton is not installed"


def _unsupported(config) -> str | None:
    for key in ("head_dim", "v_head_dim"):
        dim = config.get(key)
        if dim and dim > MAX_HEAD_DIM:
            return f"{key} {dim} > {MAX_HEAD_DIM}"
    return None


@functools.cache
def _sm_count(device: torch.device) -> int:
    if device.type == "cpu":  # the Triton interpreter: a small pretend machine
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count


@functools.cache
def _shared_memory(device: torch.device) -> int:
    """Bytes of shared memory one program may use (the interpreter: no limit that matters)."""
    if device.type == "cpu":
        return 1 << 20
    try:
        index = torch.cuda.current_device() if device.index is None else device.index
        props = triton.runtime.driver.active.utils.get_device_properties(index)
        return int(props["max_shared_mem"])
    except Exception:  # an unknown driver: the tiles that fit every GPU
        return 0


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _upcast(q: torch.Tensor) -> bool:
    """Dots in float32: only under the interpreter (CPU tensors), for bfloat16."""
    return q.device.type == "cpu" and q.dtype == torch.bfloat16


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _sinks_arg(sinks: torch.Tensor | None, q: torch.Tensor) -> torch.Tensor:
    """The kernels' Sinks pointer: the [H] sinks (any float dtype; read as float32), or q as
    a placeholder the kernel never reads when there are none."""
    if sinks is None:
        return q
    return sinks if sinks.stride(0) == 1 else sinks.contiguous()


if triton is not None:
    from sglang_triton import pdl, split_k
    from sglang_triton.common import TABLE_INDEX_ARGS

    @triton.jit
    def _softcap(s, cap):
        return cap * (2.0 * tl.sigmoid(2.0 * s / cap) - 1.0)

    @triton.jit
    def _mma(a, b, PRECISION: tl.constexpr, UPCAST: tl.constexpr):
        if UPCAST:  # the interpreter's bfloat16 dot is wrong (triton 3.9): go through float32
            return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
        return tl.dot(a, b, input_precision=PRECISION)

    @triton.jit
    def _online_softmax_update(
        acc, m, l_sum, s, v, BASE2: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr
    ):
        """Fold one tile of scores s [rows, keys] (hidden keys at -inf) and its values
        v [keys, Dv] into the running max m, sum l_sum and output acc [rows, Dv], all float32;
        returns the new (acc, m, l_sum). BASE2: s carries a log2(e) factor and exp2 is used.
        A row with nothing visible yet keeps m = -inf and adds nothing (exp(-inf - 0) = 0)."""
        m_new = tl.maximum(m, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        if BASE2:
            p = tl.math.exp2(s - m_safe[:, None])
            alpha = tl.math.exp2(m - m_safe)
        else:
            p = tl.exp(s - m_safe[:, None])
            alpha = tl.exp(m - m_safe)
        l_sum = l_sum * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + _mma(p.to(v.dtype), v, PRECISION, UPCAST)
        return acc, m_new, l_sum

    @triton.jit
    def _decode_split_kernel(
        Q,
        K,
        V,
        Out,
        LSE,
        Sinks,
        kv_indptr,
        kv_indices,
        sm_scale,
        logit_softcap,
        sliding_window,
        stride_qb,
        stride_qh,
        stride_kn,
        stride_kh,
        stride_vn,
        stride_vh,
        stride_ob,
        stride_oh,
        stride_os,
        stride_lb,
        stride_lh,
        Final,
        COUNT,
        stride_fb,
        stride_fh,
        GROUP: tl.constexpr,
        HEAD_BLOCKS: tl.constexpr,
        BLOCK_H: tl.constexpr,
        BLOCK_N: tl.constexpr,
        D: tl.constexpr,
        DV: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr,
        SPLITS: tl.constexpr,
        MIN_SPLIT: tl.constexpr,
        USE_WINDOW: tl.constexpr,
        USE_SOFTCAP: tl.constexpr,
        USE_SINKS: tl.constexpr,
        DIRECT: tl.constexpr,
        MERGE: tl.constexpr,
        SKIP_EMPTY: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr,
        PDL: tl.constexpr,
    ):
        # Before the wait (PDL) only the step's inputs: the sequence's KV extent, the first
        # block's slots and the sinks (weights); q and the cache come after it (the kernel
        # before writes them: the new token's key and value).
        pdl.release_dependents(PDL)
        b = tl.program_id(0)
        kv_head = tl.program_id(1) // HEAD_BLOCKS
        rows = (tl.program_id(1) % HEAD_BLOCKS) * BLOCK_H + tl.arange(0, BLOCK_H)
        row_ok = rows < GROUP
        heads = kv_head * GROUP + rows
        split = tl.program_id(2)

        kv0 = tl.load(kv_indptr + b).to(tl.int64)
        length = tl.load(kv_indptr + b + 1).to(tl.int64) - kv0
        first = length * 0
        if USE_WINDOW:
            first = tl.maximum(length - sliding_window, 0)
        n_splits = tl.minimum(tl.maximum(tl.cdiv(length - first, MIN_SPLIT), 1), SPLITS)
        per_split = tl.cdiv(tl.cdiv(length - first, n_splits), BLOCK_N) * BLOCK_N
        lo = first + split * per_split
        hi = tl.minimum(lo + per_split, length)

        d = tl.arange(0, BLOCK_D)
        dv = tl.arange(0, BLOCK_DV)
        m = tl.full([BLOCK_H], float("-inf"), tl.float32)
        l_sum = tl.zeros([BLOCK_H], tl.float32)
        if USE_SINKS:  # split 0 starts from the sink: counted once when the splits merge
            sink = tl.load(Sinks + heads, mask=row_ok, other=0.0).to(tl.float32)
            m = tl.where(split == 0, sink, m)
            l_sum = tl.where(split == 0, 1.0, l_sum)
        if SKIP_EMPTY and split >= n_splits:  # (MERGE) a split past the sequence's: no work
            return
        offs = lo + tl.arange(0, BLOCK_N)
        slots = tl.load(kv_indices + kv0 + offs, mask=offs < hi, other=0).to(tl.int64)
        pdl.wait_for_inputs(PDL)
        q = tl.load(
            Q + b * stride_qb + heads[:, None] * stride_qh + d[None, :],
            mask=row_ok[:, None] & (d[None, :] < D),
            other=0.0,
        )
        acc = tl.zeros([BLOCK_H, BLOCK_DV], tl.float32)
        for start in range(lo, hi, BLOCK_N):
            offs = start + tl.arange(0, BLOCK_N)
            key_ok = offs < hi
            # keys and values loaded together, then the next block's slots
            k = tl.load(
                K + slots[:, None] * stride_kn + kv_head * stride_kh + d[None, :],
                mask=key_ok[:, None] & (d[None, :] < D),
                other=0.0,
            )
            v = tl.load(
                V + slots[:, None] * stride_vn + kv_head * stride_vh + dv[None, :],
                mask=key_ok[:, None] & (dv[None, :] < DV),
                other=0.0,
            )
            nxt = offs + BLOCK_N
            slots = tl.load(kv_indices + kv0 + nxt, mask=nxt < hi, other=0).to(tl.int64)
            # float32 even where a caller passes the scalars as float64 (torch.compile does)
            s = (_mma(q, tl.trans(k), PRECISION, UPCAST) * sm_scale).to(tl.float32)
            if USE_SOFTCAP:
                s = _softcap(s, logit_softcap).to(tl.float32)
            s = tl.where(key_ok[None, :], s, float("-inf"))
            acc, m, l_sum = _online_softmax_update(acc, m, l_sum, s, v, False, PRECISION, UPCAST)

        seen = l_sum > 0
        out = acc / tl.where(seen, l_sum, 1.0)[:, None]
        o_ptr = Out + b * stride_ob + heads[:, None] * stride_oh + split * stride_os + dv[None, :]
        o_mask = row_ok[:, None] & (dv[None, :] < DV)
        if DIRECT:
            tl.store(o_ptr, out.to(Out.dtype.element_ty), mask=o_mask)
        else:
            tl.store(o_ptr, out, mask=o_mask)
            lse = tl.where(seen, m + tl.log(tl.where(seen, l_sum, 1.0)), float("-inf"))
            tl.store(LSE + b * stride_lb + heads * stride_lh + split, lse, mask=row_ok)
            if MERGE:  # the last of the sequence's splits to finish merges them (no 2nd launch)
                tl.debug_barrier()  # every thread's partial is written before the count
                slot = b * tl.num_programs(1) + tl.program_id(1)
                arrived = tl.atomic_add(COUNT + slot, 1, sem="acq_rel", scope="gpu")
                last = n_splits - 1 if SKIP_EMPTY else SPLITS - 1  # the splits that arrive
                if arrived == last:
                    _merge_split_rows(
                        Out + b * stride_ob + heads[:, None] * stride_oh + dv[None, :],
                        LSE + b * stride_lb + heads * stride_lh,
                        Final + b * stride_fb + heads[:, None] * stride_fh + dv[None, :],
                        o_mask,
                        row_ok,
                        n_splits,
                        stride_os,
                        BLOCK_H,
                        BLOCK_DV,
                    )
                    tl.atomic_xchg(COUNT + slot, 0, sem="relaxed", scope="gpu")

    @triton.jit
    def _merge_split_rows(
        part_ptrs,
        lse_ptrs,
        out_ptrs,
        o_mask,
        row_ok,
        n_splits,
        stride_ps,
        BLOCK_H: tl.constexpr,
        BLOCK_DV: tl.constexpr,
    ):
        """out = the first n_splits partial outputs (part_ptrs + s * stride_ps, [BLOCK_H,
        BLOCK_DV]) weighted by their log-sum-exps (lse_ptrs + s, [BLOCK_H]): the merge kernel's
        arithmetic for one program's heads; the later splits are empty (lse -inf, weight 0).
        Read through L2 (.cg): other programs wrote them."""
        top = tl.full([BLOCK_H], float("-inf"), tl.float32)
        for s in range(0, n_splits):
            lse = tl.load(lse_ptrs + s, mask=row_ok, other=float("-inf"), cache_modifier=".cg")
            top = tl.maximum(top, lse)
        top = tl.where(top == float("-inf"), 0.0, top)
        total = tl.zeros([BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_H, BLOCK_DV], tl.float32)
        for s in range(0, n_splits):
            lse = tl.load(lse_ptrs + s, mask=row_ok, other=float("-inf"), cache_modifier=".cg")
            w = tl.exp(lse - top)  # empty splits: exp(-inf) = 0
            part = tl.load(part_ptrs + s * stride_ps, mask=o_mask, other=0.0, cache_modifier=".cg")
            total += w
            acc += part * w[:, None]
        out = acc / tl.where(total > 0, total, 1.0)[:, None]
        tl.store(out_ptrs, out.to(out_ptrs.dtype.element_ty), mask=o_mask)

    @triton.jit
    def _decode_merge_kernel(
        PART,
        LSE,
        Out,
        stride_pb,
        stride_ph,
        stride_ps,
        stride_lb,
        stride_lh,
        stride_ob,
        stride_oh,
        DV: tl.constexpr,
        BLOCK_DV: tl.constexpr,
        SPLITS: tl.constexpr,
        PDL: tl.constexpr,
    ):
        pdl.enter(PDL)
        b = tl.program_id(0)
        h = tl.program_id(1)
        s = tl.arange(0, SPLITS)
        dv = tl.arange(0, BLOCK_DV)
        lse = tl.load(LSE + b * stride_lb + h * stride_lh + s)
        top = tl.max(lse, 0)
        top = tl.where(top == float("-inf"), 0.0, top)
        w = tl.exp(lse - top)  # empty splits: exp(-inf) = 0
        part = tl.load(
            PART + b * stride_pb + h * stride_ph + s[:, None] * stride_ps + dv[None, :],
            mask=dv[None, :] < DV,
            other=0.0,
        )
        total = tl.sum(w, 0)
        out = tl.sum(part * w[:, None], 0) / tl.where(total > 0, total, 1.0)
        tl.store(
            Out + b * stride_ob + h * stride_oh + dv, out.to(Out.dtype.element_ty), mask=dv < DV
        )

    @triton.jit
    def _extend_tile(
        acc,
        m,
        l_sum,
        q,
        K,
        V,
        kv_indices,
        kv0,
        start,
        hi,
        q_pos,
        kv_head,
        sm_scale,
        logit_softcap,
        sliding_window,
        stride_kn,
        stride_kh,
        stride_vn,
        stride_vh,
        d,
        dv,
        D: tl.constexpr,
        DV: tl.constexpr,
        BLOCK_N: tl.constexpr,
        MASKED: tl.constexpr,
        USE_WINDOW: tl.constexpr,
        USE_SOFTCAP: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr,
    ):
        """One BLOCK_N tile of keys into the running softmax (base-2: m and s carry a log2(e)
        factor). MASKED: the tile may hold keys past `hi`, past a query or outside its
        window; unmasked tiles lie wholly before the block's first query."""
        offs = start + tl.arange(0, BLOCK_N)
        if MASKED:
            key_ok = offs < hi
            slots = tl.load(kv_indices + kv0 + offs, mask=key_ok, other=0).to(tl.int64)
            k = tl.load(
                K + slots[:, None] * stride_kn + kv_head * stride_kh + d[None, :],
                mask=key_ok[:, None] & (d[None, :] < D),
                other=0.0,
            )
        else:
            slots = tl.load(kv_indices + kv0 + offs).to(tl.int64)
            k = tl.load(
                K + slots[:, None] * stride_kn + kv_head * stride_kh + d[None, :],
                mask=d[None, :] < D,
                other=0.0,
            )
        # float32 even where a caller passes the scalars as float64 (torch.compile does)
        s = (_mma(q, tl.trans(k), PRECISION, UPCAST) * sm_scale).to(tl.float32)
        if USE_SOFTCAP:
            s = _softcap(s, logit_softcap).to(tl.float32)
        s = s * 1.4426950408889634  # log2(e): exp2 below
        if MASKED:
            visible = key_ok[None, :] & (offs[None, :] <= q_pos[:, None])
            if USE_WINDOW:
                visible = visible & (q_pos[:, None] - offs[None, :] < sliding_window)
            s = tl.where(visible, s, float("-inf"))
        if MASKED:
            v = tl.load(
                V + slots[:, None] * stride_vn + kv_head * stride_vh + dv[None, :],
                mask=key_ok[:, None] & (dv[None, :] < DV),
                other=0.0,
            )
        else:
            v = tl.load(
                V + slots[:, None] * stride_vn + kv_head * stride_vh + dv[None, :],
                mask=dv[None, :] < DV,
                other=0.0,
            )
        return _online_softmax_update(acc, m, l_sum, s, v, True, PRECISION, UPCAST)

    @triton.jit(do_not_specialize=["num_seqs"], do_not_specialize_on_alignment=TABLE_INDEX_ARGS)
    def _extend_kernel(
        Q,
        K,
        V,
        Out,
        Sinks,
        qo_indptr,
        kv_indptr,
        kv_indices,
        block_seq,
        block_indptr,
        sm_scale,
        logit_softcap,
        sliding_window,
        num_seqs,
        stride_qn,
        stride_qh,
        stride_kn,
        stride_kh,
        stride_vn,
        stride_vh,
        stride_on,
        stride_oh,
        GROUP: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        D: tl.constexpr,
        DV: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr,
        USE_WINDOW: tl.constexpr,
        USE_SOFTCAP: tl.constexpr,
        USE_SINKS: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr,
    ):
        pid = tl.program_id(0)
        h = tl.program_id(1)
        b = tl.load(block_seq + pid)
        if b >= num_seqs:
            return
        block = pid - tl.load(block_indptr + b)
        kv_head = h // GROUP
        q0 = tl.load(qo_indptr + b).to(tl.int64)
        n_new = tl.load(qo_indptr + b + 1).to(tl.int64) - q0
        kv0 = tl.load(kv_indptr + b).to(tl.int64)
        length = tl.load(kv_indptr + b + 1).to(tl.int64) - kv0
        prefix = length - n_new

        rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < n_new
        q_pos = prefix + rows
        d = tl.arange(0, BLOCK_D)
        dv = tl.arange(0, BLOCK_DV)
        q = tl.load(
            Q + (q0 + rows)[:, None] * stride_qn + h * stride_qh + d[None, :],
            mask=row_ok[:, None] & (d[None, :] < D),
            other=0.0,
        )
        hi = tl.minimum(prefix + (block + 1) * BLOCK_M, length)
        lo = hi * 0
        if USE_WINDOW:
            lo = tl.maximum(prefix + block * BLOCK_M - sliding_window + 1, 0)
            full = lo  # every tile masked: the window cuts into them
        else:
            # Whole tiles before the block's first query: every key visible to every row.
            full = ((prefix + block * BLOCK_M) // BLOCK_N) * BLOCK_N
        if USE_SINKS:  # the head's sink starts the running softmax (base 2, as m is)
            sink = tl.load(Sinks + h).to(tl.float32) * 1.4426950408889634
            m = tl.full([BLOCK_M], 0.0, tl.float32) + sink
            l_sum = tl.full([BLOCK_M], 1.0, tl.float32)
        else:
            m = tl.full([BLOCK_M], float("-inf"), tl.float32)
            l_sum = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)
        # Two spans of key tiles, unrolled at compile time: [lo, full) whole tiles every row
        # sees (no mask), then [full, hi) masked per element.
        for masked in tl.static_range(2):
            for start in range(lo if masked == 0 else full, full if masked == 0 else hi, BLOCK_N):
                acc, m, l_sum = _extend_tile(
                    acc,
                    m,
                    l_sum,
                    q,
                    K,
                    V,
                    kv_indices,
                    kv0,
                    start,
                    hi,
                    q_pos,
                    kv_head,
                    sm_scale,
                    logit_softcap,
                    sliding_window,
                    stride_kn,
                    stride_kh,
                    stride_vn,
                    stride_vh,
                    d,
                    dv,
                    D,
                    DV,
                    BLOCK_N,
                    masked == 1,
                    USE_WINDOW,
                    USE_SOFTCAP,
                    PRECISION,
                    UPCAST,
                )
        out = acc / tl.where(l_sum > 0, l_sum, 1.0)[:, None]
        tl.store(
            Out + (q0 + rows)[:, None] * stride_on + h * stride_oh + dv[None, :],
            out.to(Out.dtype.element_ty),
            mask=row_ok[:, None] & (dv[None, :] < DV),
        )


def decode_splits(
    batch: int, kv_heads: int, head_blocks: int, device: torch.device, per_sm: int = 2
) -> int:
    """Largest number of KV splits per sequence: enough programs to fill the GPU `per_sm`
    times over when the batch alone cannot, a power of two, at most MAX_SPLITS. A function of
    shapes only (a captured graph keeps it)."""
    programs = batch * kv_heads * head_blocks
    want = -(-per_sm * _sm_count(device) // max(programs, 1))
    return min(MAX_SPLITS, _pow2(want))


def merge_splits(part, lse, out, v_dim: int, splits: int) -> None:
    """out[r, h, :v_dim] = the splits' normalised outputs part [R, H, S, Dv] merged by their
    log-sum-exps lse [R, H, S] (one launch); shared by the decode and MLA kernels."""
    _decode_merge_kernel[(part.shape[0], part.shape[1])](
        part,
        lse,
        out,
        part.stride(0),
        part.stride(1),
        part.stride(2),
        lse.stride(0),
        lse.stride(1),
        out.stride(0),
        out.stride(1),
        DV=v_dim,
        BLOCK_DV=max(16, _pow2(v_dim)),
        SPLITS=splits,
        num_warps=4,
        **pdl.args(part.device),
    )


DECODE_LAUNCH = {
    "block_n": None,
    "num_warps": 4,
    "num_stages": 3,
    "programs_per_sm": 2,
    "merge": True,
    "skip_empty": False,
}
"""Launch parameters of the decode kernels (block_n None: 64 up to head dim 128, else 32).
A module-level table so that a tuning run (benchmarks/sweep_decode_launch.py) can try others.
"merge": the last split of each sequence and head block merges the splits (split_k's counters)
instead of a second kernel launch (_decode_merge_kernel, ~2.2 us a layer at batch 1). On the
H200 it gained nothing while the split kernel read its slots after the PDL wait (Qwen3-30B-A3B
3.03 against 3.02 ms); with the slots read before the wait, Llama-8B AWQ's batch-1 step on an
H100 went 2.473 -> 2.421 ms with it (in the model's graph, sweep_decode_launch.py), so it is on.
"skip_empty" (with merge): the programs of splits past a sequence's own (28 of 32 a KV head at
context 256) exit at once instead of writing empty partials and counting themselves, and the
merge waits for the sequence's splits only; off until timed on a GPU."""


def decode(
    q,
    k_cache,
    v_cache,
    kv_indptr,
    kv_indices,
    sm_scale,
    sliding_window=-1,
    logit_softcap=0.0,
    sinks=None,
    launch=None,
):
    batch, heads, dim = q.shape
    kv_heads, v_dim = k_cache.shape[1], v_cache.shape[2]
    out = q.new_empty(batch, heads, v_dim)
    if batch == 0:
        return out
    cfg = DECODE_LAUNCH if launch is None else {**DECODE_LAUNCH, **launch}
    group = heads // kv_heads
    block_h = max(16, min(64, _pow2(group)))
    head_blocks = -(-group // block_h)
    splits = decode_splits(batch, kv_heads, head_blocks, q.device, cfg["programs_per_sm"])
    block_d, block_dv = max(16, _pow2(dim)), max(16, _pow2(v_dim))
    block_n = cfg["block_n"] or (64 if max(block_d, block_dv) <= 128 else 32)
    q = q.contiguous()
    direct = splits == 1
    # with "merge" the split kernel merges its splits itself, where the per-(sequence, head
    # block) counters fit split_k's buffer
    merge = not direct and cfg["merge"] and batch * kv_heads * head_blocks <= split_k.MAX_SLOTS
    if direct:
        part, lse = out, out  # lse unused
        part_strides = (out.stride(0), out.stride(1), 0)
        lse_strides = (0, 0)
    else:
        part = torch.empty(batch, heads, splits, v_dim, dtype=torch.float32, device=q.device)
        lse = torch.empty(batch, heads, splits, dtype=torch.float32, device=q.device)
        part_strides = (part.stride(0), part.stride(1), part.stride(2))
        lse_strides = (lse.stride(0), lse.stride(1))
    _decode_split_kernel[(batch, kv_heads * head_blocks, splits)](
        q,
        k_cache,
        v_cache,
        part,
        lse,
        _sinks_arg(sinks, q),
        kv_indptr,
        kv_indices,
        float(sm_scale),
        float(logit_softcap),
        int(sliding_window),
        q.stride(0),
        q.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        v_cache.stride(0),
        v_cache.stride(1),
        *part_strides,
        *lse_strides,
        out,
        split_k.counters(q.device) if merge else out,
        out.stride(0),
        out.stride(1),
        GROUP=group,
        HEAD_BLOCKS=head_blocks,
        BLOCK_H=block_h,
        BLOCK_N=block_n,
        D=dim,
        DV=v_dim,
        BLOCK_D=block_d,
        BLOCK_DV=block_dv,
        SPLITS=splits,
        MIN_SPLIT=MIN_SPLIT_LEN,
        USE_WINDOW=sliding_window > 0,
        USE_SOFTCAP=logit_softcap > 0,
        USE_SINKS=sinks is not None,
        DIRECT=direct,
        MERGE=merge,
        SKIP_EMPTY=merge and bool(cfg["skip_empty"]),
        PRECISION=_precision(q.dtype),
        UPCAST=_upcast(q),
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
        **pdl.args(q.device),
    )
    if not direct and not merge:
        merge_splits(part, lse, out, v_dim, splits)
    return out


EXTEND_LAUNCH = {"block_m": None, "block_n": None, "num_warps": None, "num_stages": None}
"""Launch parameters of the extend kernel; None picks by shape (`_extend_launch`).
benchmarks/tune_cuda_extend.py tries others."""

LONG_EXTEND_TOKENS = 512
"""Mean new tokens per sequence from which 16-bit head-dim-128 prefill takes 128 x 128 tiles."""


def _extend_launch(cfg: dict, block_d: int, block_dv: int, q, long: bool) -> dict:
    """The extend kernel's launch, entries left None chosen by shape. Head dim 128 in 16 bits
    (H200, Llama-3.1-8B heads, benchmarks/tune_cuda_extend.py): 128 x 128 tiles, 8 warps, 3
    stages for long prompts (4k: 0.45 ms against 0.77 for the old 64 x 32, 2 stages; 32k: 413
    TFLOP/s against 190; an 8k chunk after 24k cached: 401 against 164), 64 x 64, 4 warps, 3
    stages for short ones (less of a tile wasted past each sequence's end). They need 224 / 112
    KB of shared memory in 16 bits (Hopper has 227, an A100 164), so where they do not fit,
    and for float32 and other head dims, the older 64/32-row tiles, 4 warps, 2 stages."""
    width = max(block_d, block_dv)
    fits = _shared_memory(q.device)
    if 64 < width <= 128 and q.element_size() == 2 and long and fits >= 229376:
        auto = {"block_m": 128, "block_n": 128, "num_warps": 8, "num_stages": 3}
    elif 64 < width <= 128 and q.element_size() == 2 and fits >= 114688:
        auto = {"block_m": 64, "block_n": 64, "num_warps": 4, "num_stages": 3}
    else:
        auto = {
            "block_m": 64 if width <= 128 else 32,
            "block_n": 64 if width <= 64 else 32,
            "num_warps": 4,
            "num_stages": 2,
        }
    return {key: auto[key] if cfg.get(key) is None else cfg[key] for key in auto}


_last_blocks: tuple | None = None
_compiled: set = set()


def _compile_other_tiles(args: tuple, consts: dict, cfg: dict, q, long: bool) -> None:
    """Compile (not run) the extend kernel's other automatic tiles the first time a shape
    family is seen outside a capture: the prefill graphs' warm-up runs at startup, so a long
    prompt arriving mid-run does not stall every request while its variant compiles."""
    if q.device.type == "cpu" or torch.cuda.is_current_stream_capturing():
        return
    key = (q.device, tuple(sorted(consts.items())), args[14:])
    if key in _compiled:
        return
    _compiled.add(key)
    other = _extend_launch(EXTEND_LAUNCH, consts["BLOCK_D"], consts["BLOCK_DV"], q, long)
    if other == cfg:
        return
    try:
        _extend_kernel.warmup(
            *args,
            **consts,
            BLOCK_M=other["block_m"],
            BLOCK_N=other["block_n"],
            num_warps=other["num_warps"],
            num_stages=other["num_stages"],
            grid=(1,),
        )
    except Exception as e:  # noqa: BLE001 - a compile now is an optimisation, not a need
        logger.debug("extend tiles %s not compiled ahead: %r", other, e)


def _query_blocks(qo_indptr: torch.Tensor, block_m: int, grid0: int):
    """Query blocks of all sequences, numbered in sequence order, and the sequence of each
    program (on the device: no sync). Five small ops; every layer of one forward passes the same
    qo_indptr tensor, so they run once per forward, not once per layer (~1 ms of launches an
    8B prefill step): the last result is kept with the tensor it was computed from. A graph
    capture never reuses a result computed outside it (nor the reverse): the captured ops must
    recompute it at every replay, from whatever the static buffer then holds."""
    global _last_blocks
    capturing = qo_indptr.is_cuda and torch.cuda.is_current_stream_capturing()
    key = (qo_indptr.data_ptr(), qo_indptr.numel(), block_m, grid0, capturing)
    last = _last_blocks
    if last is not None and last[0] is qo_indptr and last[1] == key:
        return last[2]
    num_seqs = qo_indptr.numel() - 1
    new = (qo_indptr[1:] - qo_indptr[:-1]).to(torch.int64)
    block_indptr = torch.zeros(num_seqs + 1, dtype=torch.int64, device=qo_indptr.device)
    torch.cumsum((new + block_m - 1) // block_m, 0, out=block_indptr[1:])
    ids = torch.arange(grid0, dtype=torch.int64, device=qo_indptr.device)
    block_seq = torch.searchsorted(block_indptr[1:], ids, right=True).to(torch.int32)
    _last_blocks = (qo_indptr, key, (block_indptr, block_seq))
    return block_indptr, block_seq


def extend(
    q,
    k_cache,
    v_cache,
    qo_indptr,
    kv_indptr,
    kv_indices,
    sm_scale,
    sliding_window=-1,
    logit_softcap=0.0,
    sinks=None,
    launch=None,
):
    tokens, heads, dim = q.shape
    kv_heads, v_dim = k_cache.shape[1], v_cache.shape[2]
    num_seqs = qo_indptr.numel() - 1
    out = q.new_empty(tokens, heads, v_dim)
    if tokens == 0 or num_seqs == 0:
        return out
    cfg = EXTEND_LAUNCH if launch is None else {**EXTEND_LAUNCH, **launch}
    block_d, block_dv = max(16, _pow2(dim)), max(16, _pow2(v_dim))
    long = tokens >= LONG_EXTEND_TOKENS * num_seqs
    cfg = _extend_launch(cfg, block_d, block_dv, q, long)
    block_m, block_n = cfg["block_m"], cfg["block_n"]
    grid0 = tokens // block_m + num_seqs  # >= sum(cdiv(new_b, block_m))
    block_indptr, block_seq = _query_blocks(qo_indptr, block_m, grid0)
    q = q.contiguous()
    args = (
        q,
        k_cache,
        v_cache,
        out,
        _sinks_arg(sinks, q),
        qo_indptr,
        kv_indptr,
        kv_indices,
        block_seq,
        block_indptr,
        float(sm_scale),
        float(logit_softcap),
        int(sliding_window),
        num_seqs,
        q.stride(0),
        q.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        v_cache.stride(0),
        v_cache.stride(1),
        out.stride(0),
        out.stride(1),
    )
    consts = dict(
        GROUP=heads // kv_heads,
        D=dim,
        DV=v_dim,
        BLOCK_D=block_d,
        BLOCK_DV=block_dv,
        USE_WINDOW=sliding_window > 0,
        USE_SOFTCAP=logit_softcap > 0,
        USE_SINKS=sinks is not None,
        PRECISION=_precision(q.dtype),
        UPCAST=_upcast(q),
    )
    _extend_kernel[(grid0, heads)](
        *args,
        **consts,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
    )
    if launch is None:
        _compile_other_tiles(args, consts, cfg, q, not long)
    return out


def register(registry, target) -> None:
    common = dict(priority=10, available=_available, unsupported=_unsupported)
    dec, ext = target.bind(decode, "attention.decode"), target.bind(extend, "attention.extend")
    registry.register("attention.decode", dec, name=target.name("triton_decode"), **common)
    registry.register("attention.extend", ext, name=target.name("triton_extend"), **common)
