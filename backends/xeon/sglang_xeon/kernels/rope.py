"""rope on the CPU: one gather of the cos/sin rows for the batch, shared by q and k, then
vectorised rotation into a preallocated output. Low-precision inputs rotate in float32 (a
bfloat16 product-difference loses a few ulps the tolerance does not grant)."""

from __future__ import annotations

import torch


def rope(positions, q, k, cos_sin_cache, is_neox):
    cos, sin = cos_sin_cache.index_select(0, positions).chunk(2, dim=-1)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return _rotate(q, cos, sin, is_neox), _rotate(k, cos, sin, is_neox)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, is_neox: bool) -> torch.Tensor:
    half = cos.shape[-1]
    r = 2 * half
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    if r < x.shape[-1]:
        out[..., r:] = x[..., r:]
    rot = x[..., :r].float()
    if is_neox:
        x1, x2 = rot[..., :half], rot[..., half:]
        o1, o2 = out[..., :half], out[..., half:r]
    else:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
        o1, o2 = out[..., 0:r:2], out[..., 1:r:2]
    o1.copy_(torch.addcmul(x1 * cos, x2, sin, value=-1))
    o2.copy_(torch.addcmul(x2 * cos, x1, sin))
    return out


def register(registry) -> None:
    registry.register("rope", rope, name="xeon.rope")
