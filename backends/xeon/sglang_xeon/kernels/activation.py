"""act.silu_mul / act.gelu_mul on the CPU: torch's vectorised activation and multiply, in the
input dtype (no float32 round trip: the AVX-512 kernels widen internally)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang_xeon import native

_GELU = {"tanh": 1, "none": 2}


def silu_mul(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    out = F.silu(x[..., :half])
    return out.mul_(x[..., half:])


def gelu_mul(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    half = x.shape[-1] // 2
    out = F.gelu(x[..., :half], approximate=approximate)
    return out.mul_(x[..., half:])


def native_silu_mul(x: torch.Tensor) -> torch.Tensor:
    """csrc/activation.cpp: one pass, float32 inside, rounded once."""
    return native.ops.gated_act(x, 0)


def native_gelu_mul(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    return native.ops.gated_act(x, _GELU[approximate])


def register(registry) -> None:
    registry.register("act.silu_mul", silu_mul, name="xeon.silu_mul")
    registry.register("act.gelu_mul", gelu_mul, name="xeon.gelu_mul")
    kw = dict(priority=1, available=native.why_unavailable)
    registry.register("act.silu_mul", native_silu_mul, name="xeon.native_silu_mul", **kw)
    registry.register("act.gelu_mul", native_gelu_mul, name="xeon.native_gelu_mul", **kw)
