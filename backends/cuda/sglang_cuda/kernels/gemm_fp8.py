"""gemm.fp8 (W8A8, float8_e4m3fn) on NVIDIA GPUs (sm_89 and up: fp8 tensor cores).

Activations are quantized as the spec says, with sglang.ops.quant.fp8's torch helpers (a few
elementwise kernels and an amax, no host sync): per tensor (static input_scale or dynamic),
per token, or per token per group of block_size[1] along K. Then:

  per_tensor   torch._scaled_mm (cuBLASLt, scalar scales) when K and N are multiples of 16 and
               USE_TORCH_PER_TENSOR is on (off by default: see there);
  per_channel  torch._scaled_mm with row-wise scales ([M, 1] and [1, N]) on sm_90+ for a
               bfloat16 output (what its row-wise path serves) under the same shape rule;
  block        128x128 weight blocks, 1x128 activation groups, K and N multiples of 128, a
               bfloat16 output, sm_90+: torch._scaled_mm's block-wise scaling (cuBLASLt,
               CUDA 12.9+; A's scales M-major: stride (1, M), B's as stored, [N/128, K/128]);
  otherwise: the Triton scaled GEMM (kernels.scaled_mm), with per-row / per-column scales in
  its epilogue or per-block scales inside its K loop.

Up to gemv_fp8.MAX_ROWS rows (decode) every scheme goes to the GEMV of kernels.gemv_fp8
instead: x quantized as above by one small kernel, then the weight read once.

Should torch._scaled_mm refuse a call it was expected to take (its rules move between torch
releases), that path is switched off for the process with a warning and the Triton kernel
serves instead; the refusal is raised on the host before launch, so it is safe even while a
CUDA graph is being captured.
"""

from __future__ import annotations

import functools
import logging

import torch
from sglang.ops.quant import fp8 as q8

from sglang_cuda.kernels import gemv_fp8
from sglang_cuda.kernels.scaled_mm import scaled_mm

logger = logging.getLogger(__name__)

_disabled: set[str] = set()  # torch._scaled_mm paths that raised once
USE_GEMV = True
"""Few-row calls through kernels.gemv_fp8 (off: the paths above for every M)."""


@functools.cache
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


USE_TORCH_PER_TENSOR = False
"""Per-tensor scales through torch._scaled_mm (off: the Triton kernel). Off since the H200 run
of tests/layers/quantization -k cuda (a1446e8): the FP8 per-tensor checkpoints (fp8 static and
dynamic, ModelOpt FP8, compressed-tensors fp8-static) gave logits 4.4% off transformers on
every prompt position after the first, and matched with this path off (the Triton kernel),
although gemm.fp8's conformance cases pass through it op by op. Not yet explained
(benchmarks/gpu_diag_fp8.sh compares the two paths call by call inside that test)."""

USE_TORCH_BLOCK = True
"""128x128 block scales through torch._scaled_mm where it applies (off: the Triton kernel)."""


def torch_path(x: torch.Tensor, scheme: str, n: int, block_size=(128, 128)) -> bool:
    """Whether torch._scaled_mm serves this call (see the module docstring)."""
    m, k = x.shape
    if x.device.type != "cuda" or scheme in _disabled or m == 0 or k % 16 or n % 16:
        return False
    if scheme == "per_tensor":
        return USE_TORCH_PER_TENSOR
    if scheme == "per_channel":
        return x.dtype == torch.bfloat16 and _capability(x.device) >= (9, 0)
    if scheme == "block":
        return (
            USE_TORCH_BLOCK
            and tuple(block_size) == (128, 128)
            and k % 128 == 0
            and n % 128 == 0
            and x.dtype == torch.bfloat16
            and _capability(x.device) >= (9, 0)
        )
    return False


def _torch_scaled_mm(xq, weight, x_scale, w_scale, out_dtype, scheme):
    try:
        return torch._scaled_mm(
            xq, weight.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=out_dtype
        )
    except (RuntimeError, NotImplementedError, ValueError) as e:  # argument checks, on the host
        _disabled.add(scheme)
        logger.warning("torch._scaled_mm refused gemm.fp8 %s (%s); using Triton", scheme, e)
        return None


def fp8(x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None):
    if input_scale is not None and scheme != "per_tensor":
        raise ValueError(f"a static input_scale belongs to scheme 'per_tensor', not {scheme!r}")
    if USE_GEMV and gemv_fp8.applies(x, scheme, block_size):
        return gemv_fp8.gemv_fp8(x, weight, weight_scale, scheme, input_scale, block_size, bias)
    m, k = x.shape
    n = weight.shape[0]
    ws = weight_scale.float().contiguous()
    if scheme == "per_tensor":
        if input_scale is not None:
            xs = input_scale.float().reshape(1)
            xq = q8.quantize_fp8(x, xs)
        else:
            xq, xs = q8.quantize_fp8_per_tensor(x)
        if torch_path(x, scheme, n):
            out = _torch_scaled_mm(xq, weight, xs.reshape(()), ws.reshape(()), x.dtype, scheme)
            if out is not None:
                return out if bias is None else out.add_(bias.to(out.dtype))
        return scaled_mm(xq, weight, xs, ws, x.dtype, bias)
    if scheme == "per_channel":
        xq, xs = q8.quantize_fp8_rowwise(x)
        if torch_path(x, scheme, n):
            out = _torch_scaled_mm(
                xq, weight, xs.float().view(m, 1), ws.view(1, n), x.dtype, scheme
            )
            if out is not None:
                return out if bias is None else out.add_(bias.to(out.dtype))
        return scaled_mm(xq, weight, xs, ws, x.dtype, bias)
    if scheme == "block":
        bn, bk = block_size
        on_torch = torch_path(x, scheme, n, block_size)
        if bk & (bk - 1) == 0:  # one launch; scales M-major for torch._scaled_mm
            xq, xs = gemv_fp8.quantize_token_group(x, bk, m_major=on_torch)
        else:
            xq, xs = q8.quantize_fp8_token_group(x, bk)
        if on_torch:
            xs = xs if xs.stride(0) == 1 else xs.float().t().contiguous().t()  # stride (1, M)
            out = _torch_scaled_mm(xq, weight, xs, ws.t(), x.dtype, scheme)
            if out is not None:
                return out if bias is None else out.add_(bias.to(out.dtype))
        return scaled_mm(xq, weight, xs, ws, x.dtype, bias, block=(bn, bk))
    raise ValueError(f"scheme must be per_tensor, per_channel or block, got {scheme!r}")


def register(registry) -> None:
    registry.register("gemm.fp8", fp8, name="cuda.fp8_mm", requires=("fp8:e4m3fn",))
