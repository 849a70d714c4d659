"""gemm.fp8 on the CPU: no fp8 arithmetic here, so activations are quantized to e4m3 and
straight back (the spec's rounding, in float32), the weight is dequantized to x.dtype (cached
when the weight cache is on, see gemm.cached_linear), and oneDNN's F.linear multiplies."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sglang_xeon.kernels.gemm import cached_linear

E4M3_MAX = 448.0
FP8 = torch.float8_e4m3fn


def _fake_quant(xf: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 x and a broadcastable float32 scale -> dequantized e4m3 values, float32."""
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (xf / safe).clamp_(-E4M3_MAX, E4M3_MAX).to(FP8).float() * scale


def _activation(x: torch.Tensor, scheme: str, input_scale, bk: int) -> torch.Tensor:
    xf = x.float()
    m, k = xf.shape
    if scheme == "per_tensor":
        if input_scale is not None:
            scale = input_scale.float().reshape(1, 1)
        else:
            amax = xf.abs().amax() if xf.numel() else xf.new_zeros(())
            scale = (amax / E4M3_MAX).reshape(1, 1)
        return _fake_quant(xf, scale).to(x.dtype)
    if scheme == "per_channel":
        return _fake_quant(xf, xf.abs().amax(dim=-1, keepdim=True) / E4M3_MAX).to(x.dtype)
    groups = math.ceil(k / bk)
    padded = F.pad(xf, (0, groups * bk - k)).view(m, groups, bk)
    scale = padded.abs().amax(dim=-1, keepdim=True) / E4M3_MAX
    return _fake_quant(padded, scale).view(m, groups * bk)[:, :k].to(x.dtype)


def _dequant_weight(weight, weight_scale, scheme, block, dtype) -> torch.Tensor:
    # float16 multiplies in float32: small scales would land in its subnormals.
    work = torch.float32 if dtype == torch.float16 else dtype
    w = weight.to(work)
    n, k = w.shape
    if scheme == "per_tensor":
        w = w * weight_scale.to(work).reshape(1, 1)
    elif scheme == "per_channel":
        w = w * weight_scale.to(work).reshape(n, 1)
    else:
        (bn, bk), s = block, weight_scale.to(work)
        if n % bn == 0 and k % bk == 0:
            w = (w.view(n // bn, bn, k // bk, bk) * s[:, None, :, None]).view(n, k)
        else:
            s = s.repeat_interleave(bn, 0)[:n].repeat_interleave(bk, 1)[:, :k]
            w = w * s
    return w.to(dtype)


def fp8(x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None):
    block = tuple(block_size)
    return cached_linear(
        _activation(x, scheme, input_scale, block[1]),
        (weight, weight_scale),
        ("fp8", scheme, block, x.dtype),
        lambda: _dequant_weight(weight, weight_scale, scheme, block, x.dtype),
        bias,
    )


def register(registry) -> None:
    registry.register("gemm.fp8", fp8, name="xeon.fp8_dequant_linear")
