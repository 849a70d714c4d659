"""attention.extend and attention.decode: one Pallas kernel over the paged KV cache.

The cache is token-slot paged (K [S, Hkv, D], V [S, Hkv, Dv]; sequence b's tokens at slots
kv_indices[kv_indptr[b]:kv_indptr[b+1]]). Ahead of the kernel, XLA gathers each sequence's
queries and keys into padded blocks (sizes rounded up to powers of two so that a handful of
shapes are compiled, not one a step):

    q  [B, Nmax, Hkv, G, D]   (G = H / Hkv query heads per KV head; padding rows are zero)
    k  [B, Lmax, Hkv, D], v [B, Lmax, Hkv, Dv], lens [B, 2] = (new tokens n, context L)

Grid (B, Hkv): one program holds one sequence's queries of one KV head's group (Nmax * G
rows, so K and V are read once per KV head) and all its keys; query row i sits at position
L - n + i // G. Scores in float32, soft-capped, masked causally, by the window and by the
lengths, softmax with an all-masked row giving zeros, then P @ V in float32. Decode is extend
with one new token per sequence.

Keys are not blocked (one [Nmax * G, Lmax] score tile per program): fine for decode and short
prefills, the first thing to change for long prompts on a real TPU (VMEM is 16-128 MiB).
"""

from __future__ import annotations

import functools

import torch
from sglang.backend.plugin_kit import decode_from_extend

from sglang_tpu.jax_bridge import interpret, jax, jnp, pallas, to_jax, to_torch
from sglang_tpu.kernels.common import register_jax


def _pow2(n: int) -> int:
    return 1 << max(0, (max(n, 1) - 1).bit_length())


def _kernel(lens_ref, q_ref, k_ref, v_ref, o_ref, *, scale, window, softcap, group):
    np_ = jnp()
    f32 = np_.float32
    n, length = lens_ref[0, 0], lens_ref[0, 1]
    nmax, d = q_ref.shape[1], q_ref.shape[4]
    q = q_ref[0, :, 0].reshape(nmax * group, d).astype(f32)
    k = k_ref[0, :, 0].astype(f32)  # [Lmax, D]
    v = v_ref[0, :, 0].astype(f32)  # [Lmax, Dv]
    s = np_.dot(q, k.T, precision=jax().lax.Precision.HIGHEST) * scale
    if softcap > 0:
        s = softcap * np_.tanh(s / softcap)
    row = jax().lax.broadcasted_iota(np_.int32, s.shape, 0) // group
    key = jax().lax.broadcasted_iota(np_.int32, s.shape, 1)
    q_pos = length - n + row
    visible = (key <= q_pos) & (key < length) & (row < n)
    if window > 0:
        visible = visible & (q_pos - key < window)
    s = np_.where(visible, s, -np_.inf)
    m = np_.max(s, axis=-1, keepdims=True)
    p = np_.exp(s - np_.where(np_.isfinite(m), m, 0.0))
    total = np_.sum(p, axis=-1, keepdims=True)
    o = np_.dot(p, v, precision=jax().lax.Precision.HIGHEST) / np_.where(total > 0, total, 1.0)
    o_ref[0, :, 0] = o.reshape(nmax, group, -1).astype(o_ref.dtype)


@functools.cache
def _call(b, nmax, lmax, hkv, group, d, dv, dtype_name, scale, window, softcap):
    pl = pallas()
    dtype = jnp().dtype(dtype_name)
    kernel = functools.partial(_kernel, scale=scale, window=window, softcap=softcap, group=group)
    call = pl.pallas_call(
        kernel,
        grid=(b, hkv),
        in_specs=[
            pl.BlockSpec((1, 2), lambda i, h: (i, 0)),
            pl.BlockSpec((1, nmax, 1, group, d), lambda i, h: (i, 0, h, 0, 0)),
            pl.BlockSpec((1, lmax, 1, d), lambda i, h: (i, 0, h, 0)),
            pl.BlockSpec((1, lmax, 1, dv), lambda i, h: (i, 0, h, 0)),
        ],
        out_specs=pl.BlockSpec((1, nmax, 1, group, dv), lambda i, h: (i, 0, h, 0, 0)),
        out_shape=jax().ShapeDtypeStruct((b, nmax, hkv, group, dv), dtype),
        interpret=interpret(),
    )

    def run(q, k_cache, v_cache, q_rows, key_slots, lens, out_rows):
        np_ = jnp()
        qz = np_.concatenate([q, np_.zeros((1,) + q.shape[1:], q.dtype)])  # row N: padding
        qb = np_.take(qz, q_rows, axis=0).reshape(b, nmax, hkv, group, d)
        kb = np_.take(k_cache, key_slots, axis=0)  # [B, Lmax, Hkv, D]
        vb = np_.take(v_cache, key_slots, axis=0)
        o = call(lens, qb, kb, vb).reshape(b * nmax, hkv * group, dv)
        return np_.take(o, out_rows, axis=0)

    return jax().jit(run)


def extend(
    q,
    k_cache,
    v_cache,
    qo_indptr,
    kv_indptr,
    kv_indices,
    sm_scale,
    sliding_window=-1,
    logit_softcap=0.0,
):
    tokens, heads, d = q.shape
    hkv, dv = k_cache.shape[1], v_cache.shape[2]
    b = qo_indptr.numel() - 1
    if tokens == 0 or b == 0:
        return q.new_zeros(tokens, heads, dv)
    qo, kv = qo_indptr.tolist(), kv_indptr.tolist()  # host metadata: the tensors are on the host
    n = [qo[i + 1] - qo[i] for i in range(b)]
    lengths = [kv[i + 1] - kv[i] for i in range(b)]
    nmax, lmax = _pow2(max(n)), _pow2(max(lengths))
    q_rows = torch.full((b, nmax), tokens, dtype=torch.int32)
    key_slots = torch.zeros((b, lmax), dtype=torch.int32)
    out_rows = torch.empty(tokens, dtype=torch.int32)
    slots = kv_indices.to(torch.int32).cpu()
    for i in range(b):
        q_rows[i, : n[i]] = torch.arange(qo[i], qo[i + 1], dtype=torch.int32)
        key_slots[i, : lengths[i]] = slots[kv[i] : kv[i + 1]]
        out_rows[qo[i] : qo[i + 1]] = torch.arange(n[i], dtype=torch.int32) + i * nmax
    lens = torch.tensor(list(zip(n, lengths)), dtype=torch.int32).reshape(b, 2)
    run = _call(
        b,
        nmax,
        lmax,
        hkv,
        heads // hkv,
        d,
        dv,
        str(q.dtype).split(".")[1],
        float(sm_scale),
        int(sliding_window),
        float(logit_softcap),
    )
    out = run(
        to_jax(q),
        to_jax(k_cache),
        to_jax(v_cache),
        to_jax(q_rows.reshape(-1)),
        to_jax(key_slots),
        to_jax(lens),
        to_jax(out_rows),
    )
    return to_torch(out, q.device)


decode = decode_from_extend(extend)


def _unsupported(config) -> str | None:
    if config.get("page_size", 1) not in (1, 16, 64):
        return f"page size {config['page_size']}"
    return None


def register(registry) -> None:
    common = dict(priority=10, unsupported=_unsupported)
    register_jax(registry, "attention.extend", extend, "pallas_extend", **common)
    register_jax(registry, "attention.decode", decode, "pallas_decode", **common)
