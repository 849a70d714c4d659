"""rope: torch_npu.npu_rotary_mul(x, r1, r2, rotary_mode) = x * r1 + rotate(x) * r2, with
rotary_mode "half" (NeoX halves) or "interleave" (GPT-J pairs). x is viewed [T, 1, H, R]
(B = tokens, S = 1), cos/sin expanded to the rotary width R and broadcast [T, 1, 1, R]; the
rotation runs in float32 (the spec rounds once, at the end); the non-rotary tail of each head
passes through."""

from __future__ import annotations

import torch

from sglang_ascend.kernels.npu import npu, register_npu


def _rotate(x, cos, sin, neox: bool):
    r = cos.shape[-1]
    rot = x[..., :r].float().unsqueeze(1)  # [T, 1, H, R]
    out = npu().npu_rotary_mul(rot, cos, sin, rotary_mode="half" if neox else "interleave")
    out = out.squeeze(1).to(x.dtype)
    return out if r == x.shape[-1] else torch.cat((out, x[..., r:]), dim=-1)


def rope(positions, q, k, cos_sin_cache, is_neox):
    cos, sin = cos_sin_cache.index_select(0, positions).float().chunk(2, dim=-1)
    if is_neox:
        cos, sin = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)
    else:
        cos, sin = cos.repeat_interleave(2, -1), sin.repeat_interleave(2, -1)
    cos, sin = cos[:, None, None, :], sin[:, None, None, :]
    return _rotate(q, cos, sin, is_neox), _rotate(k, cos, sin, is_neox)


def register(registry) -> None:
    register_npu(registry, "rope", rope, "npu_rotary_mul")
