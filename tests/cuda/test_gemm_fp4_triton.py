"""gemm.fp4: the cuda backend's W4A16 Triton kernel (NVFP4 and MXFP4 weights decoded in the
kernel) against the spec's reference through the conformance runner (in Triton's interpreter
where there is no GPU), plus the bit-level decoders over every code."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.ops.quant import fp4 as q4
from sglang_triton import gemm_fp4


def small(case):
    p = case.params
    return p["k"] <= 1056 and (p["m"] <= 7 or case.dtype == torch.bfloat16)


@pytest.mark.parametrize("case", kc.params("gemm.fp4", small))
def test_fp4(case):
    kc.check("gemm.fp4", gemm_fp4.fp4, case)


@pytest.mark.parametrize("fmt", ["nvfp4", "mxfp4"])
def test_every_code_and_scale_decodes(fmt):
    """x = I picks the dequantized weight out column by column: every e2m1 code against every
    scale byte the format uses (e4m3 normals and subnormals; e8m0 from 2^-127 up)."""
    block = 16 if fmt == "nvfp4" else 32
    # e8m0 up to 2^120: 6 * 2^127 would overflow float32 and 0 * inf poison the product.
    scale_bytes = torch.arange(0, 127 if fmt == "nvfp4" else 248, dtype=torch.uint8)
    n, k = scale_bytes.numel(), block
    codes = torch.arange(k) % 16
    weight = q4.pack_fp4(codes.repeat(n, 1))
    if fmt == "nvfp4":
        scale = scale_bytes.view(torch.float8_e4m3fn).reshape(n, 1)
        glob = torch.tensor(0.5)
        ref = q4.dequantize_nvfp4(weight, scale, glob)
    else:
        scale, glob = scale_bytes.reshape(n, 1), None
        ref = q4.dequantize_mxfp4(weight, scale)
    eye = torch.eye(k, dtype=torch.float32, device=kc.DEVICE)
    out = gemm_fp4.fp4(
        eye,
        weight.to(kc.DEVICE),
        scale.to(kc.DEVICE),
        fmt,
        None if glob is None else glob.to(kc.DEVICE),
    )
    torch.testing.assert_close(out.cpu(), ref.t(), rtol=0, atol=0)
