"""gemm.w8a16 on the CPU: the int8 weight is repacked once (`prepare`) and stays int8.

- With the native kernels (kernel xeon.native_w8a16): csrc/gemm_w8a16.cpp's layout
  (`native_form`), multiplied in float32 by AVX-512 (or AVX2) FMAs for up to NATIVE_MAX_M rows
  (decode batches, the LM head: it reads a quarter of the bytes of a float32 weight, half of
  bf16); larger calls (prefill) dequantize the weight natively into x's dtype for one oneDNN
  matmul, which costs a pass over the weight per call but keeps no dense copy.
- Without them (xeon.w8a16): the int8 tensors as given, dequantized per call.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from sglang.ops.gemm_w8a16 import dequantize_w8

from sglang_xeon import native

# Rows up to which the native GEMV serves: its FMAs grow with M while oneDNN's blocked
# product (after one dequantization) does not reread the weight per row.
NATIVE_MAX_M = 32


class W8Weight(NamedTuple):
    """A prepared gemm.w8a16 weight (what `prepare_native` passes as `qweight`)."""

    packed: torch.Tensor  # uint8, csrc/gemm_w8a16.cpp's layout
    n: int
    k: int
    group_size: int
    zeros: bool


def native_form(qweight, scales, zeros, group_size) -> torch.Tensor:
    """qweight int8 [N, K], scales / zeros float32 [N, K/G] -> the packed layout: per block of
    16 columns and group, s (and z) as 16 float32, then the group's codes k-major. N is padded
    to 16 with s = 0 (weights 0)."""
    n, k = qweight.shape
    pad = (-n) % 16
    blocks, groups = (n + pad) // 16, k // group_size

    def per_block(t: torch.Tensor) -> torch.Tensor:  # [N, K/G] -> uint8 [blocks, groups, 64]
        t = F.pad(t.float(), (0, 0, 0, pad)).view(blocks, 16, groups).transpose(1, 2)
        return t.contiguous().view(torch.uint8)

    q = F.pad(qweight, (0, 0, 0, pad)).view(blocks, 16, groups, group_size)
    codes = q.permute(0, 2, 3, 1).contiguous().view(torch.uint8).reshape(blocks, groups, -1)
    parts = [per_block(scales)] + ([per_block(zeros)] if zeros is not None else []) + [codes]
    return torch.cat(parts, dim=-1).reshape(-1).contiguous()


def prepare(args: dict) -> dict:
    return {k: args[k] for k in ("qweight", "scales", "zeros") if args.get(k) is not None}


def w8a16(x, qweight, group_size, scales=None, zeros=None, bias=None):
    """The spec's gemm.w8a16 in torch: dequantize in x's dtype (float32 for half types with
    few rows would not be faster: the product is bound by the weight's bytes), one matmul."""
    w = dequantize_w8(qweight, scales, zeros, group_size, torch.float32).to(x.dtype)
    return F.linear(x, w, None if bias is None else bias.to(x.dtype))


def prepare_native(args: dict) -> dict:
    q, g = args["qweight"], args["group_size"]
    if g % 4 or q.shape[1] % g:
        return prepare(args)
    zeros = args.get("zeros")
    packed = native_form(q, args["scales"], zeros, g)
    return {"qweight": W8Weight(packed, q.shape[0], q.shape[1], g, zeros is not None)}


def native_w8a16(x, qweight, group_size, scales=None, zeros=None, bias=None):
    w = qweight
    if not isinstance(w, W8Weight):
        return w8a16(x, qweight, group_size, scales, zeros, bias)
    if x.shape[0] <= NATIVE_MAX_M:
        out = native.ops.w8_gemm(x, w.packed, w.group_size, w.n, w.zeros)
        if bias is not None:
            out = out + bias.float()
        return out.to(x.dtype)
    dense = native.ops.w8_dequantize(w.packed, w.n, w.k, w.group_size, w.zeros).to(x.dtype)
    return F.linear(x, dense, None if bias is None else bias.to(x.dtype))


def _native_unavailable() -> str | None:
    why = native.why_unavailable()
    if why is None and not native.ops.w8_supported():
        why = "the native build has neither AVX-512 nor AVX2 (this CPU lacks them)"
    return why


def register(registry) -> None:
    registry.register("gemm.w8a16", w8a16, name="xeon.w8a16", prepare=prepare)
    registry.register(
        "gemm.w8a16",
        native_w8a16,
        name="xeon.native_w8a16",
        priority=1,
        available=_native_unavailable,
        prepare=prepare_native,
    )
