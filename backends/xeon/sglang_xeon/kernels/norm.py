"""norm.rms on the CPU: torch's fused rms_norm (one pass, vectorised) in the input dtype."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps=1e-6, residual=None):
    if residual is not None:
        # The residual stream is kept in float32 for the sum, as the reference does.
        h = (x.float() + residual.float())
        out = F.rms_norm(h, (x.shape[-1],), weight.float(), eps).to(x.dtype)
        return out, h.to(x.dtype)
    if x.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    return F.rms_norm(x.float(), (x.shape[-1],), weight.float(), eps).to(x.dtype)


def register(registry) -> None:
    registry.register("norm.rms", rms_norm, name="xeon.rms_norm")
