"""rope on GPUs: one Triton program per token rotates all its query and key heads.
rope.qk_norm is the same kernel with each head RMS-normed first (NORM: the head's sum of squares
over its tile row, scaled by q_weight or k_weight, kept in float32 into the rotation): Qwen3's
q_norm, k_norm and rope in one launch instead of three. The normed head is not rounded to the
dtype between the two (as the separate ops would): one rounding fewer, and under Triton's
interpreter, whose bfloat16 casts truncate, a rounding bias that would hide a 1% scale error.

The program reads the token's cos/sin row from the cache once (float32, [r/2] each) and walks
the heads in tiles of [BLOCK_H heads, r/2 pairs]: pair i is (x[i], x[i + r/2]) for neox and
(x[2i], x[2i + 1]) for gpt-j. Dims past the rotary dim r are copied. Outputs are new
tensors (the spec's q_out, k_out); q and k may be strided views (of a fused qkv projection)
as long as the head dim is contiguous.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton import pdl
from sglang_triton.common import next_pow2
from sglang_triton.kv import MAX_BLOCK, _copy_row
from sglang_triton.target import warps

TILE = 4096  # elements of one [heads, pairs] tile


@triton.jit
def _pair_index(pairs, R2: tl.constexpr, IS_NEOX: tl.constexpr):
    """The elements of rotation pair i: (i, i + r/2) for neox, (2i, 2i + 1) for gpt-j."""
    if IS_NEOX:
        i1 = pairs
        i2 = pairs + R2
    else:
        i1 = 2 * pairs
        i2 = 2 * pairs + 1
    return i1, i2


@triton.jit
def _rotate_heads(
    src,
    dst,
    stride_sh,
    stride_dh,
    n_heads,
    cos,
    sin,
    pairs,
    pmask,
    w1,
    w2,
    wr,
    eps,
    R2: tl.constexpr,
    D: tl.constexpr,
    IS_NEOX: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_REST: tl.constexpr,
    NORM: tl.constexpr,
):
    """dst's heads = src's rotated (each RMS-normed first with w1 / w2 / wr, the weights of the
    pairs' two halves and of the dims past the rotary dim, when NORM)."""
    i1, i2 = _pair_index(pairs, R2, IS_NEOX)
    rest = 2 * R2 + tl.arange(0, BLOCK_REST if BLOCK_REST > 0 else 1)
    for h0 in range(0, n_heads, BLOCK_H):
        heads = h0 + tl.arange(0, BLOCK_H)
        mask = (heads < n_heads)[:, None] & pmask[None, :]
        rmask = (heads < n_heads)[:, None] & (rest < D)[None, :]
        s_row = src + heads[:, None] * stride_sh
        d_row = dst + heads[:, None] * stride_dh
        x1 = tl.load(s_row + i1[None, :], mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(s_row + i2[None, :], mask=mask, other=0.0).to(tl.float32)
        if BLOCK_REST > 0:
            x = tl.load(s_row + rest[None, :], mask=rmask, other=0.0)
        if NORM:  # norm.rms of each head row, kept in float32 into the rotation (one rounding)
            ss = tl.sum(x1 * x1 + x2 * x2, axis=1)
            if BLOCK_REST > 0:
                xf = x.to(tl.float32)
                ss += tl.sum(xf * xf, axis=1)
            rstd = tl.rsqrt(ss / D + eps)[:, None]
            x1 = x1 * rstd * w1
            x2 = x2 * rstd * w2
            if BLOCK_REST > 0:
                x = xf * rstd * wr
        o1 = x1 * cos[None, :] - x2 * sin[None, :]
        o2 = x2 * cos[None, :] + x1 * sin[None, :]
        tl.store(d_row + i1[None, :], o1.to(dst.dtype.element_ty), mask=mask)
        tl.store(d_row + i2[None, :], o2.to(dst.dtype.element_ty), mask=mask)
        if BLOCK_REST > 0:
            tl.store(d_row + rest[None, :], x.to(dst.dtype.element_ty), mask=rmask)


@triton.jit
def _norm_weights(
    weight,
    pairs,
    pmask,
    R2: tl.constexpr,
    D: tl.constexpr,
    IS_NEOX: tl.constexpr,
    BLOCK_REST: tl.constexpr,
    ON,
):
    """A head norm's weights at the pairs' two halves and past the rotary dim, as rows (zeros
    where ON is 0: the program's role has no norm)."""
    i1, i2 = _pair_index(pairs, R2, IS_NEOX)
    rest = 2 * R2 + tl.arange(0, BLOCK_REST if BLOCK_REST > 0 else 1)
    # ON as vectors: Triton's interpreter takes no scalar term in a mask
    on = (pairs * 0 + ON) != 0
    on_r = (rest * 0 + ON) != 0
    w1 = tl.load(weight + i1, mask=pmask & on, other=0.0).to(tl.float32)[None, :]
    w2 = tl.load(weight + i2, mask=pmask & on, other=0.0).to(tl.float32)[None, :]
    wr = tl.load(weight + rest, mask=(rest < D) & on_r, other=0.0).to(tl.float32)[None, :]
    return w1, w2, wr


@triton.jit(do_not_specialize_on_alignment=["loc_ptr"])
def _rope_kernel(
    pos_ptr,
    q_ptr,
    k_ptr,
    cache_ptr,
    qo_ptr,
    ko_ptr,
    qw_ptr,
    kw_ptr,
    v_ptr,
    vc_ptr,
    loc_ptr,
    eps,
    H,
    HKV,
    stride_qt,
    stride_qh,
    stride_kt,
    stride_kh,
    stride_qot,
    stride_qoh,
    stride_kot,
    stride_koh,
    stride_vt,
    stride_vh,
    stride_vct,
    stride_vch,
    stride_cache,
    R2: tl.constexpr,
    D: tl.constexpr,
    IS_NEOX: tl.constexpr,
    BLOCK_R2: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_REST: tl.constexpr,
    NORM: tl.constexpr,
    STORE: tl.constexpr,
    BLOCK_V: tl.constexpr,
    PDL: tl.constexpr,
):
    """Program (t, role) does one role of token t: role 0 rotates q's heads into qo, role 1
    k's heads (into k_out row t, or with STORE into the key cache's slot loc[t], stride_kot the
    cache's slot stride), role 2 (STORE) copies v[t]'s heads into the value cache's slot. Three
    short programs instead of one walking q, k and v in turn: at batch 1 their loads overlap.

    Before waiting for the kernel before it (PDL), a program reads only what no kernel of the
    step writes (sglang_triton.pdl): the position and the slot (the step's inputs), the
    cos/sin row and the norm weights; so these loads overlap that kernel's tail."""
    pdl.release_dependents(PDL)
    t = tl.program_id(0).to(tl.int64)
    role = tl.program_id(1)
    k_row = t
    if STORE:
        k_row = tl.load(loc_ptr + t).to(tl.int64)
    pos = tl.load(pos_ptr + t).to(tl.int64)
    pairs = tl.arange(0, BLOCK_R2)
    pmask = pairs < R2
    row = cache_ptr + pos * stride_cache
    cos = tl.load(row + pairs, mask=pmask, other=0.0).to(tl.float32)
    sin = tl.load(row + R2 + pairs, mask=pmask, other=0.0).to(tl.float32)
    if NORM:  # q's weights for role 0, k's for role 1 (the other load masked off)
        qw1, qw2, qwr = _norm_weights(
            qw_ptr, pairs, pmask, R2, D, IS_NEOX, BLOCK_REST, (role == 0).to(tl.int32)
        )
        kw1, kw2, kwr = _norm_weights(
            kw_ptr, pairs, pmask, R2, D, IS_NEOX, BLOCK_REST, (role == 1).to(tl.int32)
        )
        w1, w2, wr = qw1 + kw1, qw2 + kw2, qwr + kwr
    else:
        w1 = tl.zeros([1, BLOCK_R2], tl.float32)
        w2 = w1
        wr = w1
    pdl.wait_for_inputs(PDL)
    if role == 0:
        _rotate_heads(
            q_ptr + t * stride_qt,
            qo_ptr + t * stride_qot,
            stride_qh,
            stride_qoh,
            H,
            cos,
            sin,
            pairs,
            pmask,
            w1,
            w2,
            wr,
            eps,
            R2,
            D,
            IS_NEOX,
            BLOCK_H,
            BLOCK_REST,
            NORM,
        )
    elif role == 1:
        _rotate_heads(
            k_ptr + t * stride_kt,
            ko_ptr + k_row * stride_kot,
            stride_kh,
            stride_koh,
            HKV,
            cos,
            sin,
            pairs,
            pmask,
            w1,
            w2,
            wr,
            eps,
            R2,
            D,
            IS_NEOX,
            BLOCK_H,
            BLOCK_REST,
            NORM,
        )
    elif STORE:
        _copy_row(
            v_ptr + t * stride_vt,
            vc_ptr + k_row * stride_vct,
            stride_vh,
            stride_vch,
            HKV,
            D,
            BLOCK_V,
        )


def _unit_last(x: torch.Tensor) -> torch.Tensor:
    return x if x.shape[-1] <= 1 or x.stride(-1) == 1 else x.contiguous()


def rope(positions, q, k, cos_sin_cache, is_neox, launch=None):
    """The spec's rope: positions [T], q [T, H, D], k [T, Hkv, D] -> new (q_out, k_out)."""
    return _rope(positions, q, k, cos_sin_cache, is_neox, None, None, 0.0, launch)


def rope_kv_store(
    positions,
    q,
    k,
    v,
    cos_sin_cache,
    is_neox,
    k_cache,
    v_cache,
    loc,
    q_out,
    q_weight=None,
    k_weight=None,
    eps=1e-6,
    launch=None,
):
    """The spec's rope.kv_store: rope (with q_weight / k_weight, rope.qk_norm) writing q into
    q_out and the rotated k straight into its cache slots, v copied beside it: one launch."""
    if q_weight is not None:
        q_weight, k_weight = q_weight.contiguous(), k_weight.contiguous()
    store = (_unit_last(v), k_cache, v_cache, loc)
    _rope(positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps, launch, q_out, store)


def rope_qk_norm(
    positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps=1e-6, launch=None
):
    """The spec's rope.qk_norm: each head of q and k RMS-normed (q_weight, k_weight [D]), then
    rope, in one launch."""
    q_weight, k_weight = q_weight.contiguous(), k_weight.contiguous()
    return _rope(positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps, launch)


def _rope(
    positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps, launch, q_out=None, store=None
):
    """store: (v, k_cache, v_cache, loc) for rope.kv_store (k goes to the cache, no k_out)."""
    q, k = _unit_last(q), _unit_last(k)
    if q_out is None:
        q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if store is None:
        k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
        v, v_cache, loc = k, k_out, positions  # placeholders never read without STORE
    else:
        v, k_out, v_cache, loc = store  # k_out: the key cache, row loc[t]
    t, h, d = q.shape
    hkv = k.shape[1]
    r2 = cos_sin_cache.shape[-1] // 2
    if t == 0:
        return q_out, k_out
    cache = _unit_last(cos_sin_cache)
    block_r2 = next_pow2(r2)
    block_h = max(1, min(next_pow2(max(h, hkv)), TILE // block_r2))
    rest = d - 2 * r2
    _rope_kernel[(t, 2 if store is None else 3)](
        positions,
        q,
        k,
        cache,
        q_out,
        k_out,
        q if q_weight is None else q_weight,  # placeholders never read without NORM
        k if k_weight is None else k_weight,
        v,
        v_cache,
        loc,
        float(eps),
        h,
        hkv,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        q_out.stride(0),
        q_out.stride(1),
        k_out.stride(0),
        k_out.stride(1),
        v.stride(0),
        v.stride(1),
        v_cache.stride(0),
        v_cache.stride(1),
        cache.stride(0),
        R2=r2,
        D=d,
        IS_NEOX=bool(is_neox),
        BLOCK_R2=block_r2,
        BLOCK_H=block_h,
        BLOCK_REST=next_pow2(rest) if rest else 0,
        NORM=q_weight is not None,
        STORE=store is not None,
        BLOCK_V=min(next_pow2(hkv * d), MAX_BLOCK),
        num_warps=warps(4 if block_h * block_r2 >= 1024 else 2, launch),
        **pdl.args(q.device),
    )
    return q_out, k_out


def register(registry, target) -> None:
    registry.register("rope", target.bind(rope, "rope"), name=target.name("triton_rope"))
    registry.register(
        "rope.qk_norm",
        target.bind(rope_qk_norm, "rope.qk_norm"),
        name=target.name("triton_rope_qk_norm"),
    )
    registry.register(
        "rope.kv_store",
        target.bind(rope_kv_store, "rope"),
        name=target.name("triton_rope_kv_store"),
    )
