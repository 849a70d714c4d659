"""gemm.w4a8 on the CPU: csrc/gemm_w4a8.cpp's AVX-512 VNNI kernel, or its AVX2 twin on CPUs without
AVX-512 (int8 activations per row and group, int32 dots on the 4-bit codes: llama.cpp's Q4_1 x
Q8_1; the two give identical results) for up to NATIVE_MAX_M rows. Larger calls (prefill, where
the int4 GEMV's per-row cost loses to one dense matmul) quantize the activations as the op says
and run one oneDNN matmul on the weight dequantized natively per call, so the layer keeps only
its 4-bit codes (4.5 bits a weight with s and z).

The packed form holds s and z as bf16: the weight is served natively where scales (and float
zeros) are bf16, the serving dtype the GGUF plan picks this op for; other weights stay on the
reference kernel's arguments (correct, slow).

Without the native kernels (or neither AVX-512 VNNI nor AVX2), xeon.w4a8 quantizes the
activations in torch as the op defines and runs gemm.int4's kernels on the dequantized int8
activations (their bf16 rounding is one of the op's allowed roundings).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from sglang.ops.gemm_w4a8 import w4a8 as reference_w4a8
from sglang.ops.quant import int4 as q4
from sglang.ops.quant.int8 import quantize_int8_groupwise

from sglang_xeon import native
from sglang_xeon.kernels import gemm_int4

# Rows up to which the VNNI GEMM serves: it beats dequantizing per call (scalar, ~1 ms for a
# 960 x 576 weight) and one oneDNN bf16 matmul at every M measured up to 128 (SmolLM2-135M
# layers, 2 cores, M=128: qkv 0.31 against 1.8 ms, gate_up 0.97 against 5.2, down 0.52 against
# 2.9); larger prefill chunks take the matmul.
NATIVE_MAX_M = 128


class W4A8Weight(NamedTuple):
    packed: torch.Tensor  # uint8, csrc/gemm_w4a8.cpp's layout
    n: int
    k: int
    group_size: int


def native_form(qn: torch.Tensor, scales, zeros, group_size: int) -> torch.Tensor:
    """qn [N, K] codes, scales / zeros [K/G, N] bf16-exact, G a multiple of 8 -> the packed
    weight: per block of 16 columns and group, s and z as 16 bf16 each, then G / 8 chunks of
    64 bytes, byte 4 i + j of chunk c = column i's codes of k = 8 c + j (low nibble) and
    8 c + 4 + j (high nibble). N is padded to 16 with s = z = 0 (weights 0)."""
    n, k = qn.shape
    pad = (-n) % 16
    blocks, groups, chunks = (n + pad) // 16, k // group_size, group_size // 8
    q = F.pad(qn, (0, 0, 0, pad)).to(torch.uint8)
    q = q.view(blocks, 16, groups, chunks, 2, 4).permute(0, 2, 3, 4, 1, 5)  # b g c half i j
    codes = (q[:, :, :, 0] | (q[:, :, :, 1] << 4)).reshape(blocks, groups, chunks * 64)

    def per_block(t):  # [K/G, N] -> uint8 [blocks, groups, 32]
        t = F.pad(t.float(), (0, pad)).to(torch.bfloat16).t()
        return t.reshape(blocks, 16, groups).transpose(1, 2).contiguous().view(torch.uint8)

    return torch.cat((per_block(scales), per_block(zeros), codes), dim=-1).reshape(-1).contiguous()


def prepare_native(args: dict) -> dict:
    """The packed forms where the weight fits them (bf16 scales and float zeros, G a multiple of
    8), else the arguments as given (the reference's computation)."""
    g, scales = args["group_size"], args["scales"]
    if args.get("packing") != "awq" or scales.dtype != torch.bfloat16 or g % 8:
        return dict(args)
    if args["qzeros"].is_floating_point():
        q, zeros = q4.unpack_qweight(args["qweight"], "awq"), args["qzeros"]
        if zeros.dtype != torch.bfloat16:
            return dict(args)
    else:
        q, zeros = q4.unpack_awq(args["qweight"], args["qzeros"])
    k, n = q.shape
    if k % g:
        return dict(args)
    qn = q.t().contiguous()
    return {"qweight": W4A8Weight(native_form(qn, scales, zeros, g), n, k, g)}


def native_w4a8(x, qweight, group_size, packing="awq", scales=None, qzeros=None, bias=None):
    w = qweight
    if not isinstance(w, W4A8Weight):
        return reference_w4a8(x, qweight, scales, qzeros, packing, group_size, bias)
    if x.shape[0] <= NATIVE_MAX_M:
        xn = x if x.dtype in (torch.bfloat16, torch.float32) else x.float()
        out = native.ops.w4a8_gemm(xn, w.packed, w.group_size, w.n)
        out = out if bias is None else out + bias.to(out.dtype)
        return out if xn is x else out.to(x.dtype)
    xq, dx = quantize_int8_groupwise(x.float(), w.group_size)  # as the op defines it
    xd = (xq.float().unflatten(1, (-1, w.group_size)) * dx.unsqueeze(-1)).view(x.shape)
    dense = native.ops.w4a8_dequantize(w.packed, w.group_size, w.n, w.k)
    out = F.linear(xd.to(torch.bfloat16), dense, None if bias is None else bias.to(dense.dtype))
    return out.to(x.dtype)


def prepare(args: dict) -> dict:
    """AWQ weights as gemm.int4 prepares them (its native form where this CPU runs its kernel:
    AVX-512 BF16), for `w4a8`'s fallback through gemm.int4."""
    if args.get("packing") != "awq":
        return dict(args)
    if gemm_int4.native_int4_unavailable() is None:
        return gemm_int4.prepare_native(args)
    return gemm_int4.prepare(args)


def w4a8(x, qweight, group_size, packing="awq", scales=None, qzeros=None, bias=None):
    """gemm.w4a8 in torch: the activations quantized as the op says, then gemm.int4's kernel."""
    if not isinstance(qweight, gemm_int4.Int4Weight):
        return reference_w4a8(x, qweight, scales, qzeros, packing, group_size, bias)
    xq, dx = quantize_int8_groupwise(x.float(), group_size)
    xd = (xq.float().unflatten(1, (-1, group_size)) * dx.unsqueeze(-1)).view(x.shape)
    return gemm_int4.int4(xd.to(x.dtype), qweight, packing, group_size, bias=bias)


def _native_unavailable() -> str | None:
    why = native.why_unavailable()
    if why is None and not native.ops.w4a8_supported():
        why = "the native build has neither AVX-512 VNNI nor AVX2 (this CPU lacks them)"
    return why


def register(registry) -> None:
    registry.register("gemm.w4a8", w4a8, name="xeon.w4a8", prepare=prepare)
    registry.register(
        "gemm.w4a8",
        native_w4a8,
        name="xeon.native_w4a8",
        priority=1,
        available=_native_unavailable,
        prepare=prepare_native,
    )
