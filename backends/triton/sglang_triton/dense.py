"""gemm.dense on GPUs: the vendor BLAS through torch (cuBLAS(Lt) on NVIDIA, hipBLASLt on AMD),
with the bias fused into its epilogue where it can be; a single bf16/fp16 row goes through the
Triton GEMV of gemv.py instead, and up to 16 rows through its tensor-core kernel where
gemv.ROWS_LAUNCH turns that on. float32 stays IEEE unless the user opted into TF32 (torch's
allow_tf32 flags, off by default). float16 split-K reductions stay in float32: torch lets the
BLAS reduce them in float16 by default, which failed the spec's float16 tolerance at K=1000 on
an H200; registering this kernel turns that off (the flag lives under torch.backends.cuda on
HIP builds too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang_triton import gemv

USE_GEMV = True
"""One-row bf16/fp16 products (batch-1 decode) through the Triton GEMV (gemv.py), which reads
the weights closer to the memory bandwidth than cuBLAS does at M = 1."""


def dense(x, weight, bias=None, launch=None):
    weight = weight if weight.dtype == x.dtype else weight.to(x.dtype)
    if gemv.rows_apply(x, weight, launch and launch.get("rows")):
        return gemv.rows(x, weight, bias, launch=launch and launch.get("rows"))
    if USE_GEMV and gemv.applies(x, weight):
        return gemv.gemv(x, weight, bias, launch=launch and launch.get("gemv"))
    if bias is None and x.dim() == 2:
        # The same BLAS call as F.linear's, without linear's and matmul's dispatch layers:
        # ~5 us of host time a call, 128 calls an eager 8B forward (prefill is launch-bound).
        return torch.mm(x, weight.t())
    return F.linear(x, weight, bias)


def register(registry, target) -> None:
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    fn = target.bind(dense, "dense")
    registry.register("gemm.dense", fn, name=target.name(f"{target.blas}_linear"))
