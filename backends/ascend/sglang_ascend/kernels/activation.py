"""act.silu_mul: torch_npu.npu_swiglu(x, dim=-1) = silu(x[..., :I]) * x[..., I:]."""

from __future__ import annotations

from sglang_ascend.kernels.npu import half_only, npu, register_npu


def silu_mul(x):
    return npu().npu_swiglu(x, dim=-1)


def register(registry) -> None:
    register_npu(registry, "act.silu_mul", silu_mul, "npu_swiglu", unsupported=half_only)
