"""gemm.dense and gemm.int8 on Ascend.

dense: torch's linear on NPU tensors (the cube unit through aclnnMatmul), float16 split
reductions kept in float32 by the operator's default.
int8 (W8A8): x quantized per token as the spec says (sglang.ops.quant.int8), then
torch_npu.npu_quant_matmul(x1 int8 [M, K], x2 int8 [K, N], scale [N] float32,
pertoken_scale=[M] float32, output_dtype=x.dtype): int32 accumulation, both scales applied in
the epilogue; the bias is added after, in float32."""

from __future__ import annotations

import torch.nn.functional as F
from sglang.ops.quant.int8 import quantize_int8_rowwise

from sglang_ascend.kernels.npu import half_only, npu, register_npu


def dense(x, weight, bias=None):
    return F.linear(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype))


def int8(x, weight, weight_scale, bias=None):
    xq, x_scale = quantize_int8_rowwise(x)
    out = npu().npu_quant_matmul(
        xq,
        weight.t(),
        weight_scale.float(),
        pertoken_scale=x_scale.float(),
        output_dtype=x.dtype,
    )
    return out if bias is None else (out.float() + bias.float()).to(x.dtype)


def register(registry) -> None:
    register_npu(registry, "gemm.dense", dense, "linear")
    register_npu(registry, "gemm.int8", int8, "npu_quant_matmul", unsupported=half_only)
