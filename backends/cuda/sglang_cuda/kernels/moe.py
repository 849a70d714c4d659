"""moe.experts on cuda: the CUDA C++ decode GEMVs (moe_decode_cuda) for 16-bit experts at a few
(token, slot) pairs where their launch table turns them on, else the kernels shared with rocm
(sglang_triton.moe: the Triton decode GEMVs, the aligned-block GEMMs)."""

from __future__ import annotations

from sglang_triton import moe as shared

from sglang_cuda.kernels import moe_decode_cuda


def experts(
    x,
    w13,
    w2,
    topk_weights,
    topk_ids,
    activation="silu",
    w13_bias=None,
    w2_bias=None,
    w13_scale=None,
    w2_scale=None,
    block_size=(128, 128),
    w13_zeros=None,
    w2_zeros=None,
    launch=None,
    w13_perm=None,
):
    """The spec's moe.experts (launch: the shared kernels' overrides, and "cuda" for these)."""
    extras = (w13_bias, w2_bias, w13_scale, w2_scale, w13_zeros, w2_zeros, w13_perm)
    cfg = moe_decode_cuda.plan(
        x,
        w13,
        w2,
        topk_weights,
        topk_ids,
        activation,
        any(t is not None for t in extras),
        (launch or {}).get("cuda"),
    )
    if cfg is not None:
        return moe_decode_cuda.experts_decode(x, w13, w2, topk_weights, topk_ids, cfg)
    return shared.experts(
        x, w13, w2, topk_weights, topk_ids, activation, w13_bias, w2_bias, w13_scale,
        w2_scale, block_size, w13_zeros, w2_zeros, launch=launch, w13_perm=w13_perm,
    )  # fmt: skip


def register(registry) -> None:
    from sglang_cuda.kernels import CUDA

    registry.register(
        "moe.experts", CUDA.bind(experts, "moe"), name="cuda.moe_decode_gemv", priority=1
    )
