"""kv.store on GPUs: one Triton launch writes both caches.

Each program copies one token's key row and value row (all KV heads) into its slot, casting
to the cache dtype. Two `index_put_` calls (one scatter kernel per cache) do the same work,
but at batch 1 a decode step is a chain of ~10 small kernels a layer, each costing its launch
more than its bytes: one launch instead of two saves ~3 us a layer, ~0.1 ms a step of an 8B
model's ~6 ms. k and v may be strided views of a fused qkv projection (unit stride on the head
dim); other layouts take the index_put_ path.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sglang_triton import pdl
from sglang_triton.common import next_pow2
from sglang_triton.target import warps

MAX_BLOCK = 4096  # elements of a row one program copies per tile


@triton.jit
def _copy_row(src, dst, stride_sh, stride_dh, n, D: tl.constexpr, BLOCK: tl.constexpr):
    for start in range(0, n * D, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n * D
        h = offs // D
        d = offs % D
        x = tl.load(src + h * stride_sh + d, mask=mask)
        tl.store(dst + h * stride_dh + d, x.to(dst.dtype.element_ty), mask=mask)


# loc is often a view into the request-to-token table (a row's slice from the request's cached
# length): its address is 16-byte aligned or not by the row and the prefix length. Specialising
# on that compiled a second variant in the middle of serving (~1.3 s with every request waiting);
# a program reads one slot from it, so alignment buys nothing.
@triton.jit(do_not_specialize_on_alignment=["loc"])
def _store_kernel(
    k_cache,
    v_cache,
    loc,
    k,
    v,
    stride_kt,
    stride_kh,
    stride_vt,
    stride_vh,
    stride_kcs,
    stride_kch,
    stride_vcs,
    stride_vch,
    HKV,
    D: tl.constexpr,
    DV: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_V: tl.constexpr,
    PDL: tl.constexpr,
):
    pdl.enter(PDL)
    t = tl.program_id(0).to(tl.int64)
    slot = tl.load(loc + t).to(tl.int64)
    _copy_row(
        k + t * stride_kt, k_cache + slot * stride_kcs, stride_kh, stride_kch, HKV, D, BLOCK_K
    )
    _copy_row(
        v + t * stride_vt, v_cache + slot * stride_vcs, stride_vh, stride_vch, HKV, DV, BLOCK_V
    )


def _fits(x: torch.Tensor, cache: torch.Tensor) -> bool:
    return x.dim() == 3 and x.stride(-1) == 1 and cache.stride(-1) == 1


def store(k_cache, v_cache, loc, k, v, launch=None) -> None:
    n = loc.numel()
    if n == 0:
        return
    if not (_fits(k, k_cache) and _fits(v, v_cache)):
        k_cache.index_put_((loc,), k.to(k_cache.dtype))
        v_cache.index_put_((loc,), v.to(v_cache.dtype))
        return
    hkv, d, dv = k.shape[1], k.shape[2], v.shape[2]
    block_k = min(MAX_BLOCK, next_pow2(hkv * d))
    block_v = min(MAX_BLOCK, next_pow2(hkv * dv))
    _store_kernel[(n,)](
        k_cache,
        v_cache,
        loc,
        k,
        v,
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        k_cache.stride(0),
        k_cache.stride(1),
        v_cache.stride(0),
        v_cache.stride(1),
        hkv,
        D=d,
        DV=dv,
        BLOCK_K=block_k,
        BLOCK_V=block_v,
        num_warps=warps(4 if max(block_k, block_v) >= 1024 else 2, launch),
        **pdl.args(k_cache.device),
    )


def register(registry, target) -> None:
    registry.register("kv.store", target.bind(store, "kv"), name=target.name("kv_store"))
