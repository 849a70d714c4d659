"""rope in jax.numpy: cos/sin gathered by position, the rotary part rotated in float32 (NeoX
halves or GPT-J interleaved pairs), the rest of each head passed through."""

from __future__ import annotations

import functools

from sglang_tpu.jax_bridge import jax, jnp, to_jax, to_torch
from sglang_tpu.kernels.common import register_jax


def _rotate(x, cos, sin, neox: bool):
    np_ = jnp()
    r = 2 * cos.shape[-1]
    h = x.astype(np_.float32)
    rot, rest = h[..., :r], h[..., r:]
    if neox:
        x1, x2 = rot[..., : r // 2], rot[..., r // 2 :]
    else:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    o1, o2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    if neox:
        rot = np_.concatenate([o1, o2], axis=-1)
    else:
        rot = np_.stack([o1, o2], axis=-1).reshape(rot.shape)
    return np_.concatenate([rot, rest], axis=-1).astype(x.dtype)


@functools.cache
def _fn(neox: bool):
    def f(positions, q, k, cache):
        cs = jnp().take(cache.astype(jnp().float32), positions, axis=0)
        cos, sin = jnp().split(cs, 2, axis=-1)
        cos, sin = cos[:, None, :], sin[:, None, :]
        return _rotate(q, cos, sin, neox), _rotate(k, cos, sin, neox)

    return jax().jit(f)


def rope(positions, q, k, cos_sin_cache, is_neox):
    if q.shape[0] == 0:
        return q.clone(), k.clone()
    qo, ko = _fn(bool(is_neox))(to_jax(positions), to_jax(q), to_jax(k), to_jax(cos_sin_cache))
    return to_torch(qo, q.device), to_torch(ko, k.device)


def register(registry) -> None:
    register_jax(registry, "rope", rope, "rope")
