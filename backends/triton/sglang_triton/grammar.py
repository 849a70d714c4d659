"""grammar.apply_bitmask on GPUs: a Triton kernel over (row, block of tokens) that
writes -inf where the token's bit is 0 and touches nothing else (allowed logits are not even
read). Bit j % 32 of word j // 32, least significant first; an arithmetic shift of the int32
word keeps bit 31 right."""

from __future__ import annotations

import triton
import triton.language as tl

from sglang_triton.target import warps

BLOCK = 1024


@triton.jit
def _apply_bitmask_kernel(logits_ptr, mask_ptr, V, stride_l, stride_m, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = cols < V
    words = tl.load(mask_ptr + row * stride_m + cols // 32, mask=inside, other=-1)
    banned = ((words >> (cols % 32)) & 1) == 0
    ninf = tl.full((BLOCK,), float("-inf"), dtype=logits_ptr.dtype.element_ty)
    tl.store(logits_ptr + row * stride_l + cols, ninf, mask=inside & banned)


def apply_bitmask(logits, bitmask, launch=None) -> None:
    b, v = logits.shape
    if b == 0 or v == 0:
        return
    if v > 1 and logits.stride(1) != 1:
        raise ValueError("grammar.apply_bitmask needs logits rows with a unit stride")
    bitmask = bitmask if bitmask.stride(-1) == 1 else bitmask.contiguous()
    grid = (b, triton.cdiv(v, BLOCK))
    _apply_bitmask_kernel[grid](
        logits,
        bitmask,
        v,
        logits.stride(0),
        bitmask.stride(0),
        BLOCK=BLOCK,
        num_warps=warps(4, launch),
    )


def register(registry, target) -> None:
    fn = target.bind(apply_bitmask, "grammar")
    registry.register("grammar.apply_bitmask", fn, name=target.name("triton_apply_bitmask"))
