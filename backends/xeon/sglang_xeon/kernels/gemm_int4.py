"""gemm.int4 on the CPU: the weight is repacked once (`prepare`) and kept in two forms.

- torch's CPU int4 layout (aten._convert_weight_to_int4pack_for_cpu: uint8 [N, K/2]) with
  scales_and_zeros [K/G, N, 2] in x's dtype, for aten._weight_int4pack_mm_for_cpu, which
  computes w = (q - 8) * scale + zero: the spec's (q - z) * s is that with zero = (8 - z) * s.
  It reads the 4-bit weight directly, GEMV-style: fast for a few rows (SmolLM2-135M's GEMMs,
  2 cores, M=1: 5.8 ms against 17 ms for prepacked bf16) but its cost grows with M (M=16:
  31 against 22 ms), so it serves M <= SMALL_M. Its layout needs N % 16 == 0 (N is padded
  with zero columns) and G in 32/64/128/256 (other group sizes take the dense form only).
- The dequantized weight in the scales' dtype, prepacked for oneDNN (gemm.prepack), for
  larger M (prefill, big decode batches). So int4 here buys decode bandwidth, not memory:
  the layer holds int4 plus a dense copy.
- With the native kernels (kernel xeon.native_int4, `prepare_native`), for bf16 activations,
  only csrc/gemm_int4.cpp's layout (`native_form`, 4.5 bits a weight): M <= NATIVE_MAX_M
  runs on it (AVX-512 BF16 dot products on the codes, exact scaling per group); larger calls
  (prefill) dequantize it natively into bf16 for one oneDNN matmul (AMX where present). So
  the layer stays 4-bit in memory; the two forms above remain for other dtypes and for
  builds without the native kernels.

Zero points may be integers (AWQ / GPTQ) or floats (int4:float_zeros): both become the float
`zero` above. GPTQ act-order: the weight's input rows are put in group order (perm =
argsort(g_idx)) for the int4 form, and x's columns are gathered likewise, since x @ w =
x[:, perm] @ w[perm]; the dense form keeps the true order. A call with raw AWQ / GPTQ
tensors (no prepare) prepares on the fly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from sglang.ops.quant import int4 as q4

from sglang_xeon import native
from sglang_xeon.kernels.gemm import linear, packed_linear, prepack

SMALL_M = 8  # rows up to which the int4 kernel beats the dense one (see the docstring)
# Rows up to which the native kernel (csrc/gemm_int4.cpp) serves bf16: it beats the int4 kernel
# at every M and the dense bf16 one below about 20 rows (SmolLM2-135M layers, 2 cores: M=1 3.8
# vs 5.1 ms, M=16 18.6 vs 25.7 (int4) and 21.5 ms (bf16), M=24 29.1 vs 25.8 ms (bf16)).
NATIVE_MAX_M = 16
INT4_GROUP_SIZES = (32, 64, 128, 256)
N_ALIGN = 16  # the int4 layout packs 16 output columns together


class Int4Weight(NamedTuple):
    """A prepared gemm.int4 weight (what `prepare` passes as `qweight`)."""

    dense: torch.Tensor | None  # [N, K] dequantized, oneDNN-prepacked where it can be
    packed: torch.Tensor | None  # uint8 [N', K/2] (N' = N padded to 16), or None
    scales_zeros: torch.Tensor | None  # [K/G, N', 2]: (scale, zero) with w = (q - 8) * s + zero
    perm: torch.Tensor | None  # int64 [K]: x's columns in the int4 form's row order (act-order)
    n: int
    group_size: int
    native: torch.Tensor | None = None  # uint8: csrc/gemm_int4.cpp's layout (native_form)


def _int4_kernel_available() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and hasattr(
        torch.ops.aten, "_convert_weight_to_int4pack_for_cpu"
    )


def _unpack(packing, qweight, qzeros, g_idx):
    """-> (q [K, N] int32, zeros [K/G, N]) with zeros as the spec reads them (integers, or
    float zero points as given)."""
    if packing == "awq" and g_idx is not None:
        raise ValueError("AWQ has no g_idx (act-order is a GPTQ feature)")
    if qzeros.is_floating_point():
        return q4.unpack_qweight(qweight, packing), qzeros
    if packing == "awq":
        return q4.unpack_awq(qweight, qzeros)
    if packing == "gptq":
        return q4.unpack_gptq(qweight, qzeros)
    raise ValueError(f"unknown int4 packing {packing!r}")


def _dequantize(qn, scales, zeros, g_idx, group_size) -> torch.Tensor:
    """qn [N, K] int32 codes -> float32 [N, K] weights, (q - z[g]) * s[g] with the groups as
    views where they are contiguous."""
    n, k = qn.shape
    s, z = scales.t().float(), zeros.t().float()  # [N, K/G]
    if g_idx is None:
        grouped = qn.view(n, k // group_size, group_size).float()
        return ((grouped - z.unsqueeze(-1)) * s.unsqueeze(-1)).view(n, k)
    rows = g_idx.long()
    return (qn.float() - z[:, rows]) * s[:, rows]


def _int4_form(qn, scales, zeros, g_idx, group_size):
    """(packed, scales_zeros, perm) for the int4 kernel from qn [N, K], or (None,) * 3."""
    n, k = qn.shape
    if not _int4_kernel_available() or group_size not in INT4_GROUP_SIZES or k % group_size:
        return None, None, None
    perm = None
    if g_idx is not None:
        perm = torch.argsort(g_idx.long(), stable=True)
        qn = qn[:, perm]  # input row j now belongs to group j // G
    pad = (-n) % N_ALIGN
    if pad:
        qn = torch.nn.functional.pad(qn, (0, 0, 0, pad), value=8)  # zero columns: s = z = 0
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(qn.contiguous(), 2)
    s = scales.float()
    sz = torch.stack((s, (8 - zeros.float()) * s), dim=-1)  # [K/G, N, 2]
    if pad:
        sz = torch.nn.functional.pad(sz, (0, 0, 0, pad))
    return packed, sz.to(scales.dtype).contiguous(), perm


def prepare(args: dict) -> dict:
    """The AWQ / GPTQ tensors of one layer -> {"qweight": Int4Weight}."""
    group_size = args["group_size"]
    g_idx = args.get("g_idx")
    q, zeros = _unpack(args["packing"], args["qweight"], args["qzeros"], g_idx)
    scales = args["scales"]
    k, n = q.shape
    if g_idx is not None and torch.equal(g_idx.long(), q4.default_g_idx(k, group_size).long()):
        g_idx = None
    qn = q.t().contiguous()  # [N, K]
    dense = _dequantize(qn, scales, zeros, g_idx, group_size).to(scales.dtype)
    packed, sz, perm = _int4_form(qn, scales, zeros, g_idx, group_size)
    return {"qweight": Int4Weight(prepack(dense), packed, sz, perm, n, group_size)}


def native_form(qn, scales, zeros, group_size) -> torch.Tensor:
    """qn [N, K] codes, scales / zeros [K/G, N] (bf16: exact for integer zeros and for bf16
    float zeros), G a multiple of 4 -> csrc/gemm_int4.cpp's packed weight: per block of 16
    columns and group, s and z as bf16 (w = (q - z) s), then the codes in the kernel's lane
    order (two pairs of k per 32 bytes, low and high nibble). N is padded to 16 with s = z = 0
    (weights 0). zeros None (MXFP4's e2m1 codes, csrc's codes 1): the header holds s alone."""
    n, k = qn.shape
    pad = (-n) % 16
    blocks, groups, pairs = (n + pad) // 16, k // group_size, group_size // 2
    s = scales.float()
    q = torch.nn.functional.pad(qn, (0, 0, 0, pad)).to(torch.uint8)
    # lane 2 i + p of pair kp: column i, k = 2 kp + p; pairs 2c and 2c + 1 share chunk c's
    # bytes (low and high nibble)
    q = q.view(blocks, 16, groups, pairs, 2).permute(0, 2, 3, 1, 4)
    q = q.reshape(blocks, groups, pairs // 2, 2, 32)
    codes = (q[..., 0, :] | (q[..., 1, :] << 4)).reshape(blocks, groups, pairs * 16)

    def per_block(t):  # [K/G, N] -> uint8 [blocks, groups, 32]
        t = torch.nn.functional.pad(t, (0, pad)).to(torch.bfloat16).t()
        return t.reshape(blocks, 16, groups).transpose(1, 2).contiguous().view(torch.uint8)

    head = (per_block(s),) if zeros is None else (per_block(s), per_block(zeros.float()))
    return torch.cat((*head, codes), dim=-1).reshape(-1).contiguous()


def prepare_native(args: dict) -> dict:
    """The native kernel's packed form alone where it applies (bf16 scales; act-order's
    groups put in order, x gathered at each call), else `prepare`."""
    group_size, g_idx = args["group_size"], args.get("g_idx")
    if args["scales"].dtype != torch.bfloat16 or group_size % 4:
        return prepare(args)
    q, zeros = _unpack(args["packing"], args["qweight"], args["qzeros"], g_idx)
    k, n = q.shape
    if zeros.is_floating_point() and zeros.dtype != torch.bfloat16:
        return prepare(args)  # the packed form holds zero points as bf16
    if k % group_size:
        return prepare(args)
    qn, perm = q.t().contiguous(), None
    if g_idx is not None and not torch.equal(g_idx.long(), q4.default_g_idx(k, group_size).long()):
        # act-order: the input features in group order (each group's G features together),
        # x's columns gathered likewise at each call
        perm = torch.argsort(g_idx.long(), stable=True)
        if not torch.equal(g_idx.long()[perm], q4.default_g_idx(k, group_size).long()):
            return prepare(args)
        qn = qn[:, perm].contiguous()
    form = native_form(qn, args["scales"], zeros, group_size)
    return {"qweight": Int4Weight(None, None, None, perm, n, group_size, form)}


def native_int4_unavailable() -> str | None:
    why = native.why_unavailable()
    if why is None and not native.ops.int4_gemm_supported():
        why = "the native build has no AVX-512 BF16 (this CPU lacks it)"
    return why


def int4(x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None):
    """The spec's gemm.int4, with qweight an Int4Weight from `prepare` (or the raw tensors)."""
    w = qweight
    if not isinstance(w, Int4Weight):
        raw = {"qweight": qweight, "scales": scales, "qzeros": qzeros, "g_idx": g_idx}
        w = prepare({**raw, "packing": packing, "group_size": group_size})["qweight"]
    m = x.shape[0]
    if w.native is not None:
        xb = x if x.dtype == torch.bfloat16 else x.to(torch.bfloat16)
        xb = xb if w.perm is None else xb.index_select(1, w.perm)
        if m <= NATIVE_MAX_M:
            out = native.ops.int4_gemm(xb, w.native, w.group_size, w.n, 0)
            out = out if bias is None else out + bias.to(out.dtype)
        else:
            dense = native.ops.int4_dequantize(w.native, w.group_size, w.n, xb.shape[1], 0)
            out = linear(xb, dense, None if bias is None else bias.to(torch.bfloat16))
        # (a no-op `to` still costs a dispatch: 120 of these calls a SmolLM2 decode step)
        return out if out.dtype == x.dtype else out.to(x.dtype)
    # aten's int4 GEMV beats the dense product in bfloat16 only: in float32 it is ~3x slower
    # at M=1 (SmolLM2-135M's layers, 2 cores), in float16 ~100x.
    if (
        w.packed is None
        or not 0 < m <= SMALL_M
        or x.dtype != w.scales_zeros.dtype
        or x.dtype != torch.bfloat16
    ):
        return packed_linear(x, w.dense, bias)
    xs = x if w.perm is None else x.index_select(1, w.perm)
    out = torch.ops.aten._weight_int4pack_mm_for_cpu(
        xs.contiguous(), w.packed, w.group_size, w.scales_zeros
    )
    if out.shape[1] != w.n:
        out = out[:, : w.n]
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out


def int4_rms(
    x,
    norm_weight,
    qweight,
    packing,
    group_size,
    eps=1e-6,
    scales=None,
    qzeros=None,
    g_idx=None,
    bias=None,
    residual=None,
    return_normed=False,
):
    """gemm.int4_rms as the two ops it is made of (this backend's norm.rms, then `int4`; on the
    CPU the norm is not a launch to save), so that layers take the fused op's path here as on a
    GPU (gemm.dense_rms's precedent). qweight: as either gemm.int4 kernel's prepare left it
    (gemm.int4_rms has no prepare of its own), or the raw tensors."""
    from sglang_xeon.kernels import norm

    rms = norm.native_rms_norm if native.why_unavailable() is None else norm.rms_norm
    if residual is None:
        normed, h = rms(x, norm_weight, eps), None
    else:
        normed, h = rms(x, norm_weight, eps, residual)
    out = [int4(normed, qweight, packing, group_size, scales, qzeros, g_idx, bias)]
    out += [h] if h is not None else []
    out += [normed] if return_normed else []
    return out[0] if len(out) == 1 else tuple(out)


def register(registry) -> None:
    registry.register("gemm.int4_rms", int4_rms, name="xeon.int4_rms")
    registry.register("gemm.int4", int4, name="xeon.int4_pack_mm", prepare=prepare)
    registry.register(
        "gemm.int4",
        int4,
        name="xeon.native_int4",
        priority=1,
        available=native_int4_unavailable,
        prepare=prepare_native,
    )
