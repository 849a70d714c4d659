"""xeon kernels from intel-extension-for-pytorch (IPEX), where its version matches torch's.

IPEX ends the process on import when its torch differs (IPEX 2.8 needs torch 2.8), so it is
imported only after sglang_xeon.cpu.ipex_status() compared the versions from metadata, once, in
a guard; until then every kernel here reports itself unavailable and the native / torch
kernels serve. The ipex.llm functions used (documented in their docstrings):

  norm.rms          ipex.llm.functional.rms_norm(x, weight, eps); with a residual
                    add_rms_norm(residual, x, weight, None, eps, add_back=True), which writes
                    x + residual into `residual` (a copy here: the spec's inputs stay as they are)
  act.*_mul         ipex.llm.functional.silu_mul(gate, up) / gelu_mul(gate, up, approximate=)
  rope              ipex.llm.functional.rotary_embedding(q, k, sin, cos, rotary_dim, rotary_half)
                    with sin/cos [tokens, rotary_dim] (halves repeated, or pairs interleaved)
  kv.store          PagedAttention.reshape_and_cache(k, v, k_cache, v_cache, slot_mapping)
  attention.decode  PagedAttention.single_query_cached_kv_attention(out, q, k_cache, v_cache,
                    head_mapping, scale, block_tables, context_lens, block_size, max_len, None,
                    window_size, softcap=)
  attention.extend  PagedAttention.flash_attn_varlen_func(out, q, k_cache, v_cache, cu_q, cu_kv,
                    max_q, max_kv, scale, True, block_tables, None, window_left, 0, softcap=)

IPEX's paged cache is [blocks, kv heads, block size, head dim]; the engine's token-slot cache
[slots, kv heads, head dim] is that layout with block size 1 (a view, no copy), and a block
table is each sequence's slot list.

Priority: below the native and torch kernels. Measured on this project's CPU (AMD EPYC, 2
threads, torch 2.8 + IPEX 2.8, benchmarks/bench_xeon_ipex.py, docs/benchmarks.md), the native
kernels win at decode sizes (RMS norm, silu-mul, rope at 1-16 tokens, paged decode attention)
and the torch extend attention beats IPEX's varlen kernel (block size 1) by 5-13x; IPEX wins
only rope at 512 tokens. So they serve where the others decline; rerun the benchmark on a Xeon
with AMX before raising them.
"""

from __future__ import annotations

import functools
import importlib

import torch
from sglang.ops import attention as reference

from sglang_xeon import cpu

PRIORITY = -1  # below the native (1) and torch (0) kernels, above the reference (-1000)


@functools.cache
def _load():
    usable, why = cpu.ipex_status()
    if not usable:
        return None, why
    try:
        return importlib.import_module("intel_extension_for_pytorch"), None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - IPEX exits on a torch mismatch
        return None, f"import intel_extension_for_pytorch failed: {type(e).__name__}: {e}"


def why_unavailable() -> str | None:
    return _load()[1]


def _llm():
    return _load()[0].llm


def rms_norm(x, weight, eps=1e-6, residual=None):
    w = weight.to(x.dtype)
    if residual is None:
        return _llm().functional.rms_norm(x.contiguous(), w, eps)
    h = residual.to(x.dtype).clone()
    out = _llm().functional.add_rms_norm(h, x.contiguous(), w, None, eps, True)
    return out, h


def silu_mul(x):
    half = x.shape[-1] // 2
    return _llm().functional.silu_mul(x[..., :half], x[..., half:])


def gelu_mul(x, approximate="tanh"):
    if approximate not in ("tanh", "none"):
        raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")
    half = x.shape[-1] // 2
    return _llm().functional.gelu_mul(x[..., :half], x[..., half:], approximate=approximate)


def rope(positions, q, k, cos_sin_cache, is_neox):
    cos, sin = cos_sin_cache.index_select(0, positions).chunk(2, dim=-1)
    # IPEX takes cos/sin with the rotary width, halves repeated, for both styles (measured:
    # repeat_interleave for GPT-J is wrong), and only a rotary width equal to the head size
    # (or half of it): a partial rotary part is rotated on its own and the rest appended.
    cos, sin = torch.cat((cos, cos), -1).contiguous(), torch.cat((sin, sin), -1).contiguous()
    r = cos.shape[-1]
    qr = q[..., :r].clone(memory_format=torch.contiguous_format)  # rotated in place
    kr = k[..., :r].clone(memory_format=torch.contiguous_format)
    qr, kr = _llm().functional.rotary_embedding(qr, kr, sin, cos, r, bool(is_neox))
    if r == q.shape[-1]:
        return qr, kr
    return torch.cat((qr, q[..., r:]), -1), torch.cat((kr, k[..., r:]), -1)


def _paged(cache):
    return cache.unsqueeze(2)  # [slots, Hkv, D] -> [slots, Hkv, 1, D]: block size 1


def store(k_cache, v_cache, loc, k, v) -> None:
    if loc.numel() == 0:
        return
    if k_cache.shape[-1] != v_cache.shape[-1]:  # IPEX assumes one head size: it corrupts memory
        k_cache.index_put_((loc,), k.to(k_cache.dtype))
        v_cache.index_put_((loc,), v.to(v_cache.dtype))
        return
    _llm().modules.PagedAttention.reshape_and_cache(
        k.to(k_cache.dtype).contiguous(),
        v.to(v_cache.dtype).contiguous(),
        _paged(k_cache),
        _paged(v_cache),
        loc.to(torch.int64),
    )


def _tables(kv_indptr, kv_indices):
    bounds = kv_indptr.tolist()
    lengths = [bounds[b + 1] - bounds[b] for b in range(len(bounds) - 1)]
    table = torch.zeros(len(lengths), max(lengths + [1]), dtype=torch.int32)
    for b, n in enumerate(lengths):
        table[b, :n] = kv_indices[bounds[b] : bounds[b + 1]].to(torch.int32)
    return table, lengths


def decode(
    q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window=-1, logit_softcap=0.0
):
    batch, heads, _ = q.shape
    hkv, dv = k_cache.shape[1], v_cache.shape[2]
    if dv != k_cache.shape[2]:  # IPEX assumes one head size (writes past `out` otherwise)
        return reference.decode(
            q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window, logit_softcap
        )
    out = q.new_empty(batch, heads, dv)
    if batch == 0:
        return out
    table, lengths = _tables(kv_indptr, kv_indices)
    mapping = torch.arange(hkv, dtype=torch.int32).repeat_interleave(heads // hkv)
    _llm().modules.PagedAttention.single_query_cached_kv_attention(
        out,
        q.contiguous(),
        _paged(k_cache),
        _paged(v_cache),
        mapping,
        float(sm_scale),
        table,
        torch.tensor(lengths, dtype=torch.int32),
        1,
        max(lengths),
        None,
        int(sliding_window) if sliding_window > 0 else -1,
        softcap=float(logit_softcap) if logit_softcap > 0 else -1.0,
    )
    return out


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
    tokens, heads, _ = q.shape
    if v_cache.shape[2] != k_cache.shape[2]:  # IPEX assumes one head size
        return reference.extend(
            q,
            k_cache,
            v_cache,
            qo_indptr,
            kv_indptr,
            kv_indices,
            sm_scale,
            sliding_window,
            logit_softcap,
        )
    out = q.new_empty(tokens, heads, v_cache.shape[2])
    if tokens == 0:
        return out
    table, lengths = _tables(kv_indptr, kv_indices)
    qo = qo_indptr.to(torch.int32)
    new = (qo[1:] - qo[:-1]).tolist()
    cu_kv = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    cu_kv[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int32), 0)
    _llm().modules.PagedAttention.flash_attn_varlen_func(
        out,
        q.contiguous(),
        _paged(k_cache),
        _paged(v_cache),
        qo,
        cu_kv,
        max(new),
        max(lengths),
        float(sm_scale),
        True,
        table,
        None,
        int(sliding_window) - 1 if sliding_window > 0 else -1,
        0,
        softcap=float(logit_softcap) if logit_softcap > 0 else -1.0,
    )
    return out


def _one_head_size(config) -> str | None:
    if config.get("sinks"):
        return "IPEX's paged attention takes no attention sinks"
    v_dim = config.get("v_head_dim")
    if v_dim and v_dim != config.get("head_dim", v_dim):
        return f"IPEX's paged attention assumes one head size, not {config['head_dim']}/{v_dim}"
    return None


def register(registry) -> None:
    common = dict(priority=PRIORITY, available=why_unavailable)
    registry.register("norm.rms", rms_norm, name="xeon.ipex_rms_norm", **common)
    registry.register("act.silu_mul", silu_mul, name="xeon.ipex_silu_mul", **common)
    registry.register("act.gelu_mul", gelu_mul, name="xeon.ipex_gelu_mul", **common)
    registry.register("rope", rope, name="xeon.ipex_rope", **common)
    registry.register("kv.store", store, name="xeon.ipex_kv_store", **common)
    attn = dict(common, unsupported=_one_head_size)
    registry.register("attention.decode", decode, name="xeon.ipex_paged_decode", **attn)
    registry.register("attention.extend", extend, name="xeon.ipex_varlen_extend", **attn)
