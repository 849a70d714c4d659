"""FP4 e2m1 values with NVFP4 and MXFP4 block scales.

e2m1 codes (1 sign, 2 exponent, 1 mantissa bit): code c -> E2M1_VALUES[c], i.e. 0..7 map to
{0, 0.5, 1, 1.5, 2, 3, 4, 6} and 8..15 to their negatives. Two codes per byte, along K: the
low nibble holds the even k, the high nibble the odd k. Checked against NVIDIA ModelOpt
modelopt/torch/quantization/qtensor/nvfp4_tensor.py (`(q[..., 1::2] << 4) | q[..., 0::2]`;
dequantize: `unpacked[..., 0::2] = input & 0x0F`), vLLM's `break_fp4_bytes`
(`torch.stack((low, high))`), PyTorch's test_matmul_cuda `pack_uint4`
(`uint8_data[1::2] << 4 | uint8_data[::2]`, feeding the hardware's float4_e2m1fn_x2) and, for
MXFP4, transformers' gpt-oss `convert_moe_packed_tensors` (`sub[:, 0::2] = lut[idx_lo]`, then
`ldexp` by scales - 127).

  NVFP4  blocks of 16 along K; weight_scale float8_e4m3fn [N, K/16]; global_scale float32
         scalar (ModelOpt's `weight_scale_2` = amax / (6 * 448)); w = e2m1 * scale * global.
         (vLLM's nvfp4 test helpers pass the reciprocal, 6 * 448 / amax, and divide by it;
         checkpoints store the multiplicative form, which this signature takes.)
  MXFP4  OCP Microscaling v1.0: blocks of 32 along K; scale uint8 e8m0 [N, K/32], value
         2 ** (e - 127) (255 is NaN and never produced); w = e2m1 * 2 ** (e - 127). The
         quantization recipe is the spec's, as oneDNN's MX RFC restates it: scale =
         pow2_floor(amax) / pow2_floor(6).

Quantization rounds to the nearest e2m1 value, ties to even mantissa (ModelOpt `_cast_fp4`),
saturating at +-6.
"""

from __future__ import annotations

import torch

from sglang.ops.quant.fp8 import E4M3_MAX, FP8
from sglang.ops.spec import compute_dtype

E2M1_VALUES = (
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
    -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
)  # fmt: skip
E2M1_MAX = 6.0
NVFP4_BLOCK = 16
MXFP4_BLOCK = 32
E8M0_BIAS = 127
# Midpoints between consecutive e2m1 magnitudes; a tie goes to the even code (0, 1, 2, 4).
_BOUNDS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


def e2m1_table(dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    return torch.tensor(E2M1_VALUES, dtype=dtype, device=device)


def e2m1_decode(codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer codes 0..15 -> their e2m1 values."""
    return e2m1_table(dtype, codes.device)[codes.long()]


def e2m1_encode(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest e2m1 value (ties to even, saturating at 6) -> uint8 codes."""
    a = x.abs().clamp(max=E2M1_MAX)
    bounds = torch.tensor(_BOUNDS, dtype=a.dtype, device=a.device)
    below = torch.searchsorted(bounds, a, right=False)  # bounds strictly below a
    upto = torch.searchsorted(bounds, a, right=True)  # bounds at or below a
    tie_up = (upto > below) & (below % 2 == 1)  # on a midpoint, from an odd to an even code
    magnitude = torch.where(tie_up, upto, below)
    return (magnitude + 8 * (x < 0).to(magnitude.dtype)).to(torch.uint8)


def pack_fp4(codes: torch.Tensor) -> torch.Tensor:
    """codes [..., K] (K even) -> uint8 [..., K/2], low nibble = even k."""
    c = codes.to(torch.uint8)
    return c[..., 0::2] | (c[..., 1::2] << 4)


def unpack_fp4(packed: torch.Tensor) -> torch.Tensor:
    """uint8 [..., K/2] -> codes uint8 [..., K]."""
    p = packed.to(torch.uint8)
    return torch.stack((p & 0x0F, p >> 4), dim=-1).flatten(-2)


def _blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    n, k = x.shape
    if k % block:
        raise ValueError(f"K={k} is not a multiple of the block size {block}")
    return x.reshape(n, k // block, block)


def quantize_nvfp4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """w [N, K] -> (packed uint8 [N, K/2], scale e4m3 [N, K/16], global_scale float32 []),
    ModelOpt's recipe: global = amax / (6 * 448); block scale = block_amax / (6 * global)
    cast to e4m3 (0 -> 1, floored at the e4m3 subnormal 2**-9); codes = e2m1(w / (s * g))."""
    wf = w.to(compute_dtype(w))
    amax = wf.abs().amax()
    glob = (amax / (E2M1_MAX * E4M3_MAX)).to(torch.float32)
    glob = torch.where(glob > 0, glob, torch.ones_like(glob))
    blocks = _blocks(wf, NVFP4_BLOCK)
    scale = blocks.abs().amax(dim=-1) / (E2M1_MAX * glob.to(wf.dtype))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).clamp(2.0**-9, E4M3_MAX)
    scale = scale.to(FP8)
    scaled = blocks / (scale.to(wf.dtype) * glob.to(wf.dtype)).unsqueeze(-1)
    return pack_fp4(e2m1_encode(scaled).reshape(wf.shape)), scale, glob


def dequantize_nvfp4(
    packed: torch.Tensor, scale: torch.Tensor, global_scale: torch.Tensor, dtype=torch.float32
) -> torch.Tensor:
    """-> [N, K] float: e2m1 * scale (per 16 along K) * global_scale."""
    values = _blocks(e2m1_decode(unpack_fp4(packed), dtype), NVFP4_BLOCK)
    w = values * (scale.to(dtype) * global_scale.to(dtype)).unsqueeze(-1)
    return w.flatten(-2)


def quantize_mxfp4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (packed uint8 [N, K/2], scale e8m0 uint8 [N, K/32]), the OCP MX v1.0
    recipe: shared exponent = floor(log2(block amax)) - 2 (e2m1's emax), so values land in
    [0, 8) and saturate to 6; an all-zero block gets exponent 0 (scale 1)."""
    wf = w.to(compute_dtype(w))
    blocks = _blocks(wf, MXFP4_BLOCK)
    amax = blocks.abs().amax(dim=-1)
    exp = torch.floor(torch.log2(torch.where(amax > 0, amax, torch.ones_like(amax)))) - 2
    exp = exp.clamp(-E8M0_BIAS, E8M0_BIAS)
    scaled = blocks / torch.exp2(exp).unsqueeze(-1)
    codes = e2m1_encode(scaled).reshape(wf.shape)
    return pack_fp4(codes), (exp + E8M0_BIAS).to(torch.uint8)


def e8m0_decode(scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 biased exponents -> 2 ** (e - 127) (255, the NaN encoding, decodes to NaN)."""
    e = scale.to(torch.int32)
    value = torch.exp2((e - E8M0_BIAS).to(dtype))
    return torch.where(e == 255, torch.full_like(value, float("nan")), value)


def dequantize_mxfp4(
    packed: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """-> [N, K] float: e2m1 * 2 ** (e - 127) (per 32 along K)."""
    values = _blocks(e2m1_decode(unpack_fp4(packed), dtype), MXFP4_BLOCK)
    return (values * e8m0_decode(scale, dtype).unsqueeze(-1)).flatten(-2)
