"""act.silu_mul on ACME's vector unit: silu(g) = g / (1 + exp(-g)), in float32.

For g below about -88, exp(-g) overflows to inf and g / inf is -0.0: the limit, not a NaN."""

from __future__ import annotations

import torch


def silu_mul(x):
    gate, up = x.float().chunk(2, dim=-1)
    return (gate / (1.0 + torch.exp(-gate)) * up).to(x.dtype)


def register(registry) -> None:
    registry.register("act.silu_mul", silu_mul, name="acme.silu_mul")
