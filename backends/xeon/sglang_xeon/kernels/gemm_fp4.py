"""gemm.fp4 on the CPU: decode e2m1 bytes through a 256-entry table (one gather yields both
nibbles of a byte, low nibble first, so values land in true K order), apply the block scales
(NVFP4: e4m3 * global; MXFP4: 2 ** (e - 127)) in x.dtype, then oneDNN's F.linear. Cached when
the weight cache is on (see gemm.cached_linear)."""

from __future__ import annotations

import functools

import torch

from sglang_xeon.kernels.gemm import cached_linear

E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
BLOCKS = {"nvfp4": 16, "mxfp4": 32}


@functools.lru_cache(maxsize=16)
def _byte_table(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[256, 2]: byte b -> (e2m1[b & 15], e2m1[b >> 4])."""
    values = torch.tensor(E2M1, dtype=torch.float32)
    b = torch.arange(256)
    return torch.stack((values[b & 0xF], values[b >> 4]), dim=-1).to(dtype).to(device)


def _dequant_weight(weight, weight_scale, fmt, global_scale, dtype) -> torch.Tensor:
    # float16 scales in float32 first: small block scales would land in its subnormals.
    work = torch.float32 if dtype == torch.float16 else dtype
    n, half = weight.shape
    k, block = 2 * half, BLOCKS[fmt]
    table = _byte_table(work, weight.device)
    values = table.index_select(0, weight.reshape(-1).to(torch.int32)).view(n, k // block, block)
    if fmt == "nvfp4":
        scale = weight_scale.float()
        if global_scale is not None:
            scale = scale * global_scale.float()
    else:
        e = weight_scale.to(torch.float32)
        scale = torch.where(e == 255, float("nan"), torch.exp2(e - 127.0))  # 255 encodes NaN
    return (values * scale.to(work).unsqueeze(-1)).view(n, k).to(dtype)


def fp4(x, weight, weight_scale, format, global_scale=None, bias=None):
    if format not in BLOCKS:
        raise ValueError(f"unknown fp4 format {format!r}")
    return cached_linear(
        x,
        (weight, weight_scale, global_scale),
        ("fp4", format, x.dtype),
        lambda: _dequant_weight(weight, weight_scale, format, global_scale, x.dtype),
        bias,
    )


def register(registry) -> None:
    registry.register("gemm.fp4", fp4, name="xeon.fp4_dequant_linear")
