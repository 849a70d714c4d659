"""gemm.int8 on NVIDIA GPUs (gemm.dense is shared with rocm: sglang_triton.dense).

int8 (W8A8): x is quantized per token in torch (sglang.ops.quant.int8's formula, a few
elementwise kernels, no host sync); the int32 GEMM is torch._int_mm (cuBLASLt) where its
shape rules hold (M > 16, K and N multiples of 8) with the scales and bias applied after.
Other shapes (decode batches, odd sizes) are zero-padded up to those rules (zeros add nothing
to the integer sums): the Triton int8 path of sglang_cuda.kernels.scaled_mm failed every case
on an H200 (triton 3.6), so on CUDA it is not used for int8; it remains the path where
_int_mm does not exist (Triton's CPU interpreter in the tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sglang.ops.quant.int8 import quantize_int8_rowwise

from sglang_cuda.kernels.scaled_mm import scaled_mm


def _round8(v: int) -> int:
    return (v + 7) // 8 * 8


def padded_int_mm(xq: torch.Tensor, wq: torch.Tensor) -> torch.Tensor:
    """int32 xq [M, K] @ wq [N, K].T through torch._int_mm, zero-padding M to 17 and K, N to
    multiples of 8 where they fall short."""
    m, k = xq.shape
    n = wq.shape[0]
    mp, kp, np_ = max(m, 17), _round8(k), _round8(n)
    if (mp, kp) != (m, k):
        xq = F.pad(xq, (0, kp - k, 0, mp - m))
    if (np_, kp) != (n, k):
        wq = F.pad(wq, (0, kp - k, 0, np_ - n))
    acc = torch._int_mm(xq, wq.t())  # wq [N, K] row-major = column-major [K, N]
    return acc if (mp, np_) == (m, n) else acc[:m, :n]


def int8(x, weight, weight_scale, bias=None):
    m, k = x.shape
    n = weight.shape[0]
    xq, x_scale = quantize_int8_rowwise(x)  # [M, K] int8, [M] float32
    if x.device.type == "cuda" and m > 0 and k > 0 and n > 0:
        acc = padded_int_mm(xq, weight)
        out = acc.float() * x_scale.float().unsqueeze(1) * weight_scale.float().unsqueeze(0)
        if bias is not None:
            out += bias.float()
        return out.to(x.dtype)
    return scaled_mm(xq, weight, x_scale, weight_scale, x.dtype, bias)


def register(registry) -> None:
    registry.register("gemm.int8", int8, name="cuda.int8_mm")
