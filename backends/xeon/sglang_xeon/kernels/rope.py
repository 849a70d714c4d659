"""rope on the CPU: out = x * cos2 + rot(x) * sin2 in float32, rounded once to x's dtype.

rot is the rotate-half (neox: (x1, x2) -> (-x2, x1)) or pair swap (gpt-j: (a, b) -> (-b, a))
of the first r dims, done as one small matmul with a signed permutation matrix [D, D] (exact:
each output is one input, the other products are zeros); cos2 / sin2 [T, 1, D] spread the
cache's r/2 angles over the rotated dims (and hold 1 / 0 past r, so the rest passes through).
They are gathered once per step (step_memo): every layer passes the same positions. The
products and the sum are the reference's, in float32.
"""

from __future__ import annotations

import functools

import torch

from sglang_xeon import native
from sglang_xeon.kernels.norm import native_rms_norm, rms_norm
from sglang_xeon.kernels.step_memo import StepMemo

_ANGLES = StepMemo()


@functools.lru_cache(maxsize=32)
def _rotation(dim: int, rotary_dim: int, is_neox: bool, device: torch.device) -> torch.Tensor:
    """R [D, D] float32 with (x @ R) = rot(x) on the first rotary_dim dims, 0 past them."""
    r = torch.zeros(dim, dim, dtype=torch.float32)
    half = rotary_dim // 2
    for i in range(half):
        a, b = (i, i + half) if is_neox else (2 * i, 2 * i + 1)
        r[b, a] = -1.0  # out[a] = -x[b]
        r[a, b] = 1.0  # out[b] = x[a]
    return r.to(device)


def _angles(positions, cos_sin_cache, dim: int, is_neox: bool):
    """(cos2, sin2) [T, 1, D] float32 for these positions."""
    cos, sin = cos_sin_cache.index_select(0, positions).float().chunk(2, dim=-1)  # [T, r/2]
    if is_neox:
        cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    else:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    pad = dim - cos.shape[-1]
    if pad:
        cos = torch.nn.functional.pad(cos, (0, pad), value=1.0)
        sin = torch.nn.functional.pad(sin, (0, pad), value=0.0)
    return cos.unsqueeze(1), sin.unsqueeze(1)


def rope(positions, q, k, cos_sin_cache, is_neox):
    dim = q.shape[-1]
    cos2, sin2 = _ANGLES.get(
        (positions,),
        (dim, is_neox),
        lambda: _angles(positions, cos_sin_cache, dim, is_neox),
        constants=(cos_sin_cache,),
    )
    rot = _rotation(dim, cos_sin_cache.shape[-1], is_neox, q.device)
    return _apply(q, cos2, sin2, rot), _apply(k, cos2, sin2, rot)


def _apply(x: torch.Tensor, cos2, sin2, rot) -> torch.Tensor:
    xf = x.float()
    return torch.addcmul(xf * cos2, xf @ rot, sin2).to(x.dtype)


def native_rope(positions, q, k, cos_sin_cache, is_neox):
    """csrc/rope.cpp: q and k in one call, cos/sin read from the cache by position (no
    per-step angle tables), float32 inside, rounded once; new contiguous outputs."""
    return native.ops.rope(positions, q, k, cos_sin_cache, is_neox)


def _heads_normed(x: torch.Tensor, weight: torch.Tensor, eps: float, norm) -> torch.Tensor:
    """norm.rms of every head's D-vector as rows of one [T * H, D] call, rounded to x's dtype
    as the separate op's output is."""
    return norm(x.reshape(-1, x.shape[-1]), weight, eps).view(x.shape)


def rope_qk_norm(positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps=1e-6):
    """rope.qk_norm as the two ops it is made of (no fused CPU kernel: the per-head norm is
    one vectorised pass either way): the native rms_norm (~7x torch's at decode sizes) and
    rope where they built, else the torch ones."""
    built = native.why_unavailable() is None
    norm = native_rms_norm if built else rms_norm
    qn, kn = _heads_normed(q, q_weight, eps, norm), _heads_normed(k, k_weight, eps, norm)
    return (native_rope if built else rope)(positions, qn, kn, cos_sin_cache, is_neox)


def rope_kv_store(
    positions,
    q,
    k,
    v,
    cos_sin_cache,
    is_neox,
    k_cache,
    v_cache,
    loc,
    q_out,
    q_weight=None,
    k_weight=None,
    eps=1e-6,
):
    """rope.kv_store as this backend's rope (rope_qk_norm with the weights) then its kv.store,
    native where built. A CPU runs kernels as they are called, so there is no launch to save:
    this serves the op's contract (the layer calls one op where it called two)."""
    from sglang_xeon.kernels.kv import native_store, store

    built = native.why_unavailable() is None
    if q_weight is None:
        q_rot, k_rot = (native_rope if built else rope)(positions, q, k, cos_sin_cache, is_neox)
    else:
        q_rot, k_rot = rope_qk_norm(
            positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps
        )
    q_out.copy_(q_rot)
    (native_store if built else store)(k_cache, v_cache, loc, k_rot, v)


def register(registry) -> None:
    registry.register("rope.kv_store", rope_kv_store, name="xeon.rope_kv_store")
    registry.register("rope", rope, name="xeon.rope")
    registry.register(
        "rope", native_rope, name="xeon.native_rope", priority=1, available=native.why_unavailable
    )
    registry.register("rope.qk_norm", rope_qk_norm, name="xeon.rope_qk_norm")
