"""norm.rms on ACME's vector unit: the mean square comes from a 2-norm (one reduction),
scaled by the reciprocal square root; float32 throughout, rounded once at the end."""

from __future__ import annotations

import torch


def rms_norm(x, weight, eps=1e-6, residual=None):
    h = x.float() if residual is None else x.float() + residual.float()
    mean_square = torch.linalg.vector_norm(h, dim=-1, keepdim=True).square() / h.shape[-1]
    out = (h * torch.rsqrt(mean_square + eps) * weight.float()).to(x.dtype)
    return out if residual is None else (out, h.to(x.dtype))


def register(registry) -> None:
    registry.register("norm.rms", rms_norm, name="acme.rms_norm")
