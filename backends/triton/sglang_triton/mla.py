"""attention.mla_decode and attention.mla_extend in Triton (DeepSeek's multi-head latent
attention over the paged latent cache of sglang.ops.mla: row s = [c (R) | k_pe (P)]).

Absorbed attention is multi-query attention with one KV head of width R + P whose values are
the first R columns of the same rows. One kernel serves decode and the absorbed extend:

    grid (query blocks, head blocks, splits): a program holds BLOCK_T tokens x BLOCK_H heads
    of one sequence as the rows of its tl.dot tiles (decode: BLOCK_T = 1, one token per
    sequence), and one contiguous split of the keys in reach. The key row is read once per
    tile as two parts, the latent [BLOCK_N, R] and the rope part [BLOCK_N, P] (split-D: R and P
    padded to powers of two separately, 512 + 64 rather than 576 -> 1024), scores are
    q_lat . c + q_pe . k_pe, and the same latent tile is the value tile of the P @ V product
    (no second read). Causal per row in extend. Splits merge by their log-sum-exp
    (attention._decode_merge_kernel); one split writes the output directly.

Graph-safe: grids, split counts and buffers follow shapes only (tokens, sequences, heads and
the SM count), each program reads its own lengths on the device and finds how many splits
they need; no host sync, no data-dependent allocation.

mla_extend: the op takes the un-absorbed query [q_nope | q_pe] and the per-head w_kc, w_vc.
  - absorbed (at most `absorb_max_tokens` new tokens, a kv_indices far longer than the new
    tokens (a graph's static buffer), and always while a graph is captured):
    q_lat = w_kc^T q_nope per head (one bmm), the kernel above over the latent rows, then
    o = w_vc o_lat (one bmm). Costs ~3.4x the attention FLOPs of the un-absorbed form but
    never materialises per-head keys and values, so its cost does not grow with the cached
    prefix's up-projection; and it reads only kv_indices[kv_indptr[b]:kv_indptr[b+1]], where
    the prefill graphs pass a kv_indices buffer of their whole capacity.
  - un-absorbed (longer eager prefills): sglang.ops.mla_composed over attention.extend (keys
    [k_nope | k_pe] 192 wide, padded to 256 there; values 128).
"""

from __future__ import annotations

import torch
from sglang.ops.mla_composed import composed

from sglang_triton import attention
from sglang_triton.attention import _available, _pow2, _precision, _upcast, decode_splits
from sglang_triton.target import merged

try:
    import triton
    import triton.language as tl

    from sglang_triton.attention import _mma, _online_softmax_update
except ImportError:  # the backend still imports; the kernels report themselves unavailable
    triton = None
    tl = None

MLA_DECODE_LAUNCH = {
    "block_h": 16,
    "block_n": 32,
    "num_warps": 8,
    "num_stages": 2,
    "programs_per_sm": 2,
    "min_split": 64,
}
"""Decode launch: up to block_h query heads per program (at least 16 rows, the MMA minimum),
splits of at least min_split keys.
On sm_90 at DeepSeek's R 512 / P 64 in bfloat16, 8 warps hold the [16, 512] float32 output in
154 registers a thread without spilling; 4 warps spill (tests/cuda/test_decode_kernels_compile)."""

MLA_EXTEND_LAUNCH = {
    "rows": 32,
    "block_h": 16,
    "block_n": 32,
    "num_warps": 8,
    "num_stages": 2,
    "programs_per_sm": 2,
    "min_split": 64,
    "absorb_max_tokens": 256,
    "unabsorbed_max_keys_per_token": 32,
}
"""Absorbed extend launch: rows = BLOCK_T tokens x BLOCK_H heads per program. Above
absorb_max_tokens new tokens an eager extend runs un-absorbed (the attention FLOPs of the
absorbed form, ~2 (R + P + R) per query-key pair and head, then outweigh the up-projection
of the keys and values, ~2 H (Dn + Dv) R per key), unless kv_indices holds more than
unabsorbed_max_keys_per_token entries a new token: the un-absorbed form up-projects every entry,
and the prefill graphs' warm-up (eager, before capture) passes their static kv_indices buffer of
the whole capacity (up to millions of entries, most of them not the batch's). 32 rows: ~200 registers on sm_90, no spill."""


if triton is not None:
    from sglang_triton.common import TABLE_INDEX_ARGS

    @triton.jit(do_not_specialize=["num_seqs"], do_not_specialize_on_alignment=TABLE_INDEX_ARGS)
    def _mla_kernel(
        Q,
        KV,
        Out,
        LSE,
        qo_indptr,
        kv_indptr,
        kv_indices,
        block_seq,
        block_indptr,
        sm_scale,
        num_seqs,
        stride_qn,
        stride_qh,
        stride_kv,
        stride_on,
        stride_oh,
        stride_os,
        stride_ln,
        stride_lh,
        HEADS: tl.constexpr,
        R: tl.constexpr,
        P: tl.constexpr,
        BLOCK_R: tl.constexpr,
        BLOCK_P: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_H: tl.constexpr,
        BLOCK_N: tl.constexpr,
        SPLITS: tl.constexpr,
        MIN_SPLIT: tl.constexpr,
        DECODE: tl.constexpr,
        DIRECT: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr,
    ):
        pid = tl.program_id(0)
        split = tl.program_id(2)
        if DECODE:  # program pid = sequence pid, its one token at row pid of q
            b = pid
            block = pid * 0
            q0 = pid.to(tl.int64)
            n_new = q0 * 0 + 1
        else:
            b = tl.load(block_seq + pid)
            if b >= num_seqs:
                return
            block = pid - tl.load(block_indptr + b).to(tl.int32)
            q0 = tl.load(qo_indptr + b).to(tl.int64)
            n_new = tl.load(qo_indptr + b + 1).to(tl.int64) - q0
        kv0 = tl.load(kv_indptr + b).to(tl.int64)
        length = tl.load(kv_indptr + b + 1).to(tl.int64) - kv0
        prefix = length - n_new

        r = tl.arange(0, BLOCK_T * BLOCK_H)
        tok = block * BLOCK_T + r // BLOCK_H
        head = tl.program_id(1) * BLOCK_H + r % BLOCK_H
        row_ok = (tok < n_new) & (head < HEADS)
        q_pos = prefix + tok
        # keys in reach of the block's last token, cut into at most SPLITS splits
        hi = tl.minimum(prefix + (block + 1) * BLOCK_T, length)
        n_splits = tl.minimum(tl.maximum(tl.cdiv(hi, MIN_SPLIT), 1), SPLITS)
        per_split = tl.cdiv(tl.cdiv(hi, n_splits), BLOCK_N) * BLOCK_N
        lo = split * per_split
        end = tl.minimum(lo + per_split, hi)

        dr = tl.arange(0, BLOCK_R)
        dp = tl.arange(0, BLOCK_P)
        q_row = Q + (q0 + tok)[:, None] * stride_qn + head[:, None] * stride_qh
        q_lat = tl.load(q_row + dr[None, :], mask=row_ok[:, None] & (dr[None, :] < R), other=0.0)
        q_pe = tl.load(q_row + R + dp[None, :], mask=row_ok[:, None] & (dp[None, :] < P), other=0.0)
        m = tl.full([BLOCK_T * BLOCK_H], float("-inf"), tl.float32)
        l_sum = tl.zeros([BLOCK_T * BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_T * BLOCK_H, BLOCK_R], tl.float32)
        for start in range(lo, end, BLOCK_N):
            offs = start + tl.arange(0, BLOCK_N)
            key_ok = offs < end
            slots = tl.load(kv_indices + kv0 + offs, mask=key_ok, other=0).to(tl.int64)
            row = KV + slots[:, None] * stride_kv
            c = tl.load(row + dr[None, :], mask=key_ok[:, None] & (dr[None, :] < R), other=0.0)
            pe = tl.load(row + R + dp[None, :], mask=key_ok[:, None] & (dp[None, :] < P), other=0.0)
            s = _mma(q_lat, tl.trans(c), PRECISION, UPCAST)
            s += _mma(q_pe, tl.trans(pe), PRECISION, UPCAST)
            # float32 even where a caller passes the scale as float64 (torch.compile does)
            s = (s * sm_scale).to(tl.float32)
            visible = key_ok[None, :]
            if not DECODE:
                visible = visible & (offs[None, :] <= q_pos[:, None])
            s = tl.where(visible, s, float("-inf"))
            acc, m, l_sum = _online_softmax_update(acc, m, l_sum, s, c, False, PRECISION, UPCAST)

        seen = l_sum > 0
        out = acc / tl.where(seen, l_sum, 1.0)[:, None]
        o_ptr = (
            Out
            + (q0 + tok)[:, None] * stride_on
            + head[:, None] * stride_oh
            + split * stride_os
            + dr[None, :]
        )
        o_mask = row_ok[:, None] & (dr[None, :] < R)
        if DIRECT:
            tl.store(o_ptr, out.to(Out.dtype.element_ty), mask=o_mask)
        else:
            tl.store(o_ptr, out, mask=o_mask)
            lse = tl.where(seen, m + tl.log(tl.where(seen, l_sum, 1.0)), float("-inf"))
            tl.store(LSE + (q0 + tok) * stride_ln + head * stride_lh + split, lse, mask=row_ok)


def _latent_attention(q, kv_cache, qo_indptr, kv_indptr, kv_indices, sm_scale, rank, cfg):
    """o [N, H, R]: absorbed attention of q [N, H, R + P] over the latent rows. qo_indptr None:
    decode (one token per sequence, N = B)."""
    tokens, heads, width = q.shape
    out = q.new_empty(tokens, heads, rank)
    decode = qo_indptr is None
    num_seqs = tokens if decode else qo_indptr.numel() - 1
    if tokens == 0 or num_seqs == 0:
        return out
    if q.stride(-1) != 1:
        q = q.contiguous()
    if kv_cache.stride(-1) != 1:
        raise ValueError("mla: the latent cache needs a unit stride along its rows")
    if decode:
        block_h = max(16, min(cfg["block_h"], _pow2(heads)))
        block_t = 1
        grid0 = tokens
        qo_indptr = block_seq = block_indptr = kv_indptr  # placeholders, never read
    else:
        block_h = min(cfg["block_h"], _pow2(heads))
        block_t = max(1, cfg["rows"] // block_h)
        grid0 = tokens // block_t + num_seqs  # >= sum(cdiv(new_b, block_t))
        block_indptr, block_seq = attention._query_blocks(qo_indptr, block_t, grid0)
    head_blocks = -(-heads // block_h)
    splits = decode_splits(grid0, 1, head_blocks, q.device, cfg["programs_per_sm"])
    direct = splits == 1
    if direct:
        part, lse = out, out  # lse unused
        part_strides, lse_strides = (out.stride(0), out.stride(1), 0), (0, 0)
    else:
        part = torch.empty(tokens, heads, splits, rank, dtype=torch.float32, device=q.device)
        lse = torch.empty(tokens, heads, splits, dtype=torch.float32, device=q.device)
        part_strides = (part.stride(0), part.stride(1), part.stride(2))
        lse_strides = (lse.stride(0), lse.stride(1))
    rope = width - rank
    _mla_kernel[(grid0, head_blocks, splits)](
        q,
        kv_cache,
        part,
        lse,
        qo_indptr,
        kv_indptr,
        kv_indices,
        block_seq,
        block_indptr,
        float(sm_scale),
        num_seqs,
        q.stride(0),
        q.stride(1),
        kv_cache.stride(0),
        *part_strides,
        *lse_strides,
        HEADS=heads,
        R=rank,
        P=rope,
        BLOCK_R=max(16, _pow2(rank)),
        BLOCK_P=max(16, _pow2(rope)),
        BLOCK_T=block_t,
        BLOCK_H=block_h,
        BLOCK_N=cfg["block_n"],
        SPLITS=splits,
        MIN_SPLIT=cfg["min_split"],
        DECODE=decode,
        DIRECT=direct,
        PRECISION=_precision(q.dtype),
        UPCAST=_upcast(q),
        num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"],
    )
    if not direct:
        attention.merge_splits(part, lse, out, rank, splits)
    return out


def mla_decode(q, kv_cache, kv_indptr, kv_indices, sm_scale, kv_lora_rank, launch=None):
    cfg = merged(MLA_DECODE_LAUNCH, launch)
    return _latent_attention(q, kv_cache, None, kv_indptr, kv_indices, sm_scale, kv_lora_rank, cfg)


_, _unabsorbed_extend = composed(attention.decode, attention.extend)


def _capturing(t: torch.Tensor) -> bool:
    return t.is_cuda and torch.cuda.is_current_stream_capturing()


def mla_extend(q, kv_cache, qo_indptr, kv_indptr, kv_indices, w_kc, w_vc, sm_scale, launch=None):
    cfg = merged(MLA_EXTEND_LAUNCH, launch)
    tokens = q.shape[0]
    unabsorbed = (
        tokens > cfg["absorb_max_tokens"]
        and kv_indices.numel() <= cfg["unabsorbed_max_keys_per_token"] * tokens
        and not _capturing(q)
    )
    if unabsorbed:
        return _unabsorbed_extend(
            q=q,
            kv_cache=kv_cache,
            qo_indptr=qo_indptr,
            kv_indptr=kv_indptr,
            kv_indices=kv_indices,
            w_kc=w_kc,
            w_vc=w_vc,
            sm_scale=sm_scale,
        )
    nope, rank = w_kc.shape[1], w_kc.shape[2]
    q_nope, q_pe = q.split([nope, q.shape[-1] - nope], dim=-1)
    q_lat = torch.bmm(q_nope.transpose(0, 1), w_kc.to(q.dtype)).transpose(0, 1)  # [N, H, R]
    o_lat = _latent_attention(
        torch.cat([q_lat, q_pe], dim=-1),
        kv_cache,
        qo_indptr,
        kv_indptr,
        kv_indices,
        sm_scale,
        rank,
        cfg,
    )
    # [H, N, R] @ [H, R, Dv] -> [N, H, Dv]
    out = torch.bmm(o_lat.transpose(0, 1), w_vc.to(q.dtype).transpose(1, 2))
    return out.transpose(0, 1).contiguous()


def register(registry, target) -> None:
    common = dict(priority=10, available=_available)
    dec = target.bind(mla_decode, "attention.mla_decode")
    ext = target.bind(mla_extend, "attention.mla_extend")
    registry.register("attention.mla_decode", dec, name=target.name("triton_mla_decode"), **common)
    registry.register("attention.mla_extend", ext, name=target.name("triton_mla_extend"), **common)
