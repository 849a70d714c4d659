"""gemm.int4 (W4A16: AWQ and GPTQ, act-order, integer or float zero points) on GPUs.

`prepare` repacks a layer's weight once into one layout for every variant (Int4Weight):

  qweight  int32 [ceil(K/8), N], packed along K: nibble i of row r is input row 8r + i (the
           GPTQ layout; AWQ's N-packed, interleaved words are unpacked and repacked);
  scales   float32 [K/G, N];
  zs       float32 [K/G, N] = zero * scale, so w[k, n] = q * s - zs, one FMA per weight;
  sz       or, where every scale and zero point is a float16 value (AWQ and GPTQ write float16
           scales and integer zeros), float16 (scale, zero) pairs [K/G, N, 2] in their place
           (scales and zs None): half the bytes a decode step reads for them (an eighth of a
           g128 layer's int4 bytes in float32), and the same products, since kernels form
           zs = z * s in float32 as this function does (`group_scales`; PAIRS switches it off);
  perm     int32 [K] or None: GPTQ act-order puts the rows in group order (perm = argsort(
           g_idx)), so row j of the packed weight belongs to group j // G; the kernel then
           reads x's columns through perm (x @ w = x[:, perm] @ w[perm]).

The Triton kernel dequantizes [BLOCK_K, BLOCK_N] weight tiles in registers (shift, mask, FMA
with the group's scale and scaled zero; one scale row per tile when BLOCK_K divides G) and
feeds them, in x's dtype, to tl.dot with float32 accumulation. For few rows (decode: up to 16
in 16 bits, 4 in float32) gemv_int4.py serves instead (the same layout).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl
from sglang.ops.quant import int4 as q4

from sglang_triton import gemv_int4
from sglang_triton.common import grouped_tile, mma
from sglang_triton.target import warps

USE_GEMV = True
"""Few-row calls through gemv_int4 (off: the tiled kernel for every M). On since its launch
became 128 columns wide and split along K: on an H200, Llama-8B layers, AWQ g128, M = 1, 137 us
a layer against the tiled kernel's 254 (batch-1 ITL 9.0 -> 5.2 ms); the 16-wide unsplit
launch lost (14.1 ms). See docs/benchmarks.md, "Decode kernels at one row"."""


PAIRS = True
"""Whether `prepare` keeps float16 (scale, zero) pairs where they are exact (module docstring);
False: float32 scales and zero x scale always (the A/B switch, set before loading). On: the AWQ
8B's batch-1 ITL on an H100 2.405 / 2.397 ms against 2.481 / 2.471 with float32 scales, in
both orders in one session (benchmarks/gpu_int4_pairs.sh; docs/benchmarks.md, 2026-12-06)."""


class Int4Weight(NamedTuple):
    """A prepared gemm.int4 weight (what `prepare` passes as `qweight`): scales and zs, or sz."""

    qweight: torch.Tensor  # int32 [ceil(K/8), N], packed along K
    scales: torch.Tensor | None  # float32 [K/G, N]
    zs: torch.Tensor | None  # float32 [K/G, N]: zero point times scale
    perm: torch.Tensor | None  # int32 [K]: x's columns in the packed rows' order (act-order)
    k: int
    n: int
    group_size: int
    sz: torch.Tensor | None = None  # float16 [K/G, N, 2]: (scale, zero) pairs

    def scale_args(self) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        """(S, ZS, S's row stride in scale entries, PAIRS) as the kernels take them: the float32
        scales and zs, or the pairs twice (a pair is one entry, ZS unused)."""
        if self.sz is not None:
            return self.sz, self.sz, self.sz.stride(0) // 2, True
        return self.scales, self.zs, self.scales.stride(0), False

    def float32_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scales, zs) float32 [K/G, N] in either layout (from pairs: zs = z x s in float32)."""
        if self.sz is None:
            return self.scales, self.zs
        s = self.sz[..., 0].float()
        return s, self.sz[..., 1].float() * s


def _pairs(scales: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor | None:
    """float16 (scale, zero) pairs [K/G, N, 2] when both convert to float16 exactly, else None."""
    if not PAIRS:
        return None
    s16, z16 = scales.to(torch.float16), zeros.to(torch.float16)
    if not (torch.equal(s16.float(), scales.float()) and torch.equal(z16.float(), zeros.float())):
        return None
    return torch.stack((s16, z16), dim=-1).contiguous()


def _unpack(packing, qweight, qzeros):
    """-> (q [K, N] int32 codes, zeros [K/G, N] as the spec reads them)."""
    if packing not in ("awq", "gptq"):
        raise ValueError(f"unknown int4 packing {packing!r}")
    if qzeros.is_floating_point():
        return q4.unpack_qweight(qweight, packing), qzeros
    if packing == "awq":
        return q4.unpack_awq(qweight, qzeros)
    return q4.unpack_gptq(qweight, qzeros)


def prepare(args: dict) -> dict:
    """The AWQ / GPTQ tensors of one layer -> {"qweight": Int4Weight} (load time: may sync)."""
    packing, group_size = args["packing"], args["group_size"]
    g_idx = args.get("g_idx")
    if packing == "awq" and g_idx is not None:
        raise ValueError("AWQ has no g_idx (act-order is a GPTQ feature)")
    q, zeros = _unpack(packing, args["qweight"], args["qzeros"])
    k, n = q.shape
    scales = args["scales"].float()
    perm = None
    if g_idx is not None:
        order = torch.argsort(g_idx.long(), stable=True)
        if not torch.equal(order, torch.arange(k, device=order.device)):
            groups = g_idx.long()[order]
            if not torch.equal(groups, q4.default_g_idx(k, group_size, q.device).long()):
                raise ValueError("act-order g_idx must give every group exactly group_size rows")
            perm, q = order.to(torch.int32), q[order]
    pad = (-k) % 8
    if pad:
        q = torch.nn.functional.pad(q, (0, 0, 0, pad))
    packed = q4.pack_nibbles(q.t().contiguous()).t().contiguous()  # [ceil(K/8), N]
    sz = _pairs(args["scales"], zeros)
    if sz is not None:
        return {"qweight": Int4Weight(packed, None, None, perm, k, n, group_size, sz)}
    zs = (zeros.float() * scales).contiguous()
    return {"qweight": Int4Weight(packed, scales.contiguous(), zs, perm, k, n, group_size)}


@triton.jit
def _w4a16_kernel(
    x_ptr,
    qw_ptr,
    s_ptr,
    zs_ptr,
    perm_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_qk,
    stride_s,
    stride_om,
    G: tl.constexpr,
    PAIRS: tl.constexpr,
    ALIGNED: tl.constexpr,
    HAS_PERM: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid_m, pid_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mmask = rows < M
    nmask = cols < N
    x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_xm
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        kmask = kk < K
        if HAS_PERM:
            src = tl.load(perm_ptr + kk, mask=kmask, other=0)
        else:
            src = kk
        a = tl.load(x_rows + src[None, :], mask=mmask[:, None] & kmask[None, :], other=0.0)
        wmask = kmask[:, None] & nmask[None, :]
        packed = tl.load(
            qw_ptr + (kk // 8)[:, None] * stride_qk + cols[None, :], mask=wmask, other=0
        )
        q = ((packed >> ((kk % 8) * 4)[:, None]) & 0xF).to(tl.float32)
        if ALIGNED:  # the whole tile lies in one group: one row of scales
            g_off = (k0 // G) * stride_s + cols
            s, zs = gemv_int4.group_scales(s_ptr, zs_ptr, g_off, nmask, PAIRS)
            s, zs = s[None, :], zs[None, :]
        else:
            g_off = (kk // G)[:, None] * stride_s + cols[None, :]
            s, zs = gemv_int4.group_scales(s_ptr, zs_ptr, g_off, wmask, PAIRS)
        w = (q * s - zs).to(a.dtype)
        acc = mma(acc, a, w, IEEE)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + cols, mask=nmask, other=0.0).to(tl.float32)[None, :]
    o_ptrs = out_ptr + rows.to(tl.int64)[:, None] * stride_om + cols[None, :]
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mmask[:, None] & nmask[None, :])


def _tiles(m: int, group_size: int) -> tuple[int, int, int]:
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64
    block_n = 32 if m <= 16 else 64 if m <= 64 else 128
    block_k = 64 if group_size % 64 == 0 else 32
    return block_m, block_n, block_k


def int4(
    x, qweight, packing, group_size, scales=None, qzeros=None, g_idx=None, bias=None, launch=None
):
    """The spec's gemm.int4, with qweight an Int4Weight from `prepare` (or the raw tensors,
    prepared on the fly)."""
    w = qweight
    if not isinstance(w, Int4Weight):
        raw = {"qweight": qweight, "scales": scales, "qzeros": qzeros, "g_idx": g_idx}
        w = prepare({**raw, "packing": packing, "group_size": group_size})["qweight"]
    m = x.shape[0]
    if USE_GEMV and gemv_int4.applies(x, w):
        return gemv_int4.gemv_int4(x, w, bias, launch=_gemv_launch(launch))
    out = torch.empty((m, w.n), dtype=x.dtype, device=x.device)
    if m == 0 or w.n == 0:
        return out
    x = x if x.stride(-1) == 1 else x.contiguous()
    bm, bn, bk = _tiles(m, w.group_size)
    grid = (triton.cdiv(m, bm) * triton.cdiv(w.n, bn),)
    scales, zs, stride_s, pairs = w.scale_args()
    _w4a16_kernel[grid](
        x,
        w.qweight,
        scales,
        zs,
        w.perm if w.perm is not None else w.qweight,
        bias if bias is not None else out,
        out,
        m,
        w.n,
        w.k,
        x.stride(0),
        w.qweight.stride(0),
        stride_s,
        out.stride(0),
        G=w.group_size,
        PAIRS=pairs,
        ALIGNED=w.group_size % bk == 0,
        HAS_PERM=w.perm is not None,
        HAS_BIAS=bias is not None,
        IEEE=x.dtype == torch.float32,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        GROUP_M=8,
        num_warps=warps(4, launch),
    )
    return out


def _gemv_launch(launch):
    """A target's overrides for the GEMV: its "gemv" entry, with the target's warp size."""
    if not launch:
        return None
    return {**{k: v for k, v in launch.items() if k != "gemv"}, **launch.get("gemv", {})}


def register(registry, target) -> None:
    fn = target.bind(int4, "gemm_int4")
    registry.register("gemm.int4", fn, name=target.name("triton_w4a16"), prepare=prepare)
