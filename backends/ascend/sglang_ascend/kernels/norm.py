"""norm.rms: torch_npu.npu_rms_norm(x, gamma, epsilon) -> (y, rstd), and with a residual
torch_npu.npu_add_rms_norm(x1, x2, gamma, epsilon) -> (y, rstd, x1 + x2)."""

from __future__ import annotations

from sglang_ascend.kernels.npu import half_only, npu, register_npu


def rms_norm(x, weight, eps=1e-6, residual=None):
    w = weight.to(x.dtype)
    if residual is None:
        return npu().npu_rms_norm(x, w, epsilon=eps)[0]
    out, _, h = npu().npu_add_rms_norm(x, residual.to(x.dtype), w, epsilon=eps)
    return out, h


def register(registry) -> None:
    register_npu(registry, "norm.rms", rms_norm, "npu_rms_norm", unsupported=half_only)
