"""gemm.dense and gemm.int8 on NVIDIA GPUs.

dense: F.linear, i.e. cuBLAS(Lt) with the bias fused into its epilogue where it can be. float32
stays IEEE unless the user opted into TF32 (torch's allow_tf32 flags, off by default).

int8 (W8A8): x is quantized per token in torch (sglang.ops.quant.int8's formula, a few
elementwise kernels, no host sync); the int32 GEMM is torch._int_mm (cuBLASLt) where its
shape rules hold (M > 16, K and N multiples of 8) with the scales and bias applied after,
and otherwise (decode batches, odd shapes) the Triton scaled GEMM with the scales fused in
its epilogue (sglang_cuda.kernels.scaled_mm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sglang.ops.quant.int8 import quantize_int8_rowwise

from sglang_cuda.kernels.scaled_mm import scaled_mm


def dense(x, weight, bias=None):
    return F.linear(x, weight if weight.dtype == x.dtype else weight.to(x.dtype), bias)


def int_mm_fits(m: int, k: int, n: int) -> bool:
    """torch._int_mm's shape rules (cuBLASLt int8): M > 16, K and N multiples of 8."""
    return m > 16 and k % 8 == 0 and n % 8 == 0 and k > 0


def int8(x, weight, weight_scale, bias=None):
    m, k = x.shape
    n = weight.shape[0]
    xq, x_scale = quantize_int8_rowwise(x)  # [M, K] int8, [M] float32
    if int_mm_fits(m, k, n) and x.device.type == "cuda":
        acc = torch._int_mm(xq, weight.t())  # weight [N, K] row-major = column-major [K, N]
        out = acc.float() * x_scale.float().unsqueeze(1) * weight_scale.float().unsqueeze(0)
        if bias is not None:
            out += bias.float()
        return out.to(x.dtype)
    return scaled_mm(xq, weight, x_scale, weight_scale, x.dtype, bias)


def register(registry) -> None:
    registry.register("gemm.dense", dense, name="cuda.cublas_linear")
    registry.register("gemm.int8", int8, name="cuda.int8_mm")
