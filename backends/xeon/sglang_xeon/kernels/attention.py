"""attention.extend and attention.decode on the CPU: one batched gather, then torch's fused
flash-attention kernel (bf16/fp16 in, fp32 accumulation, no fp32 copy of the cache).

Decode pads the batch: slots [B, Lmax] (padding points at the reserved slot 0), one gather of K
and V into reused scratch buffers, one scaled_dot_product_attention over [B, Hkv, group, D]
queries (a GQA group rides the query-length axis, so K/V are never repeated) with a padding
mask only when lengths differ. Sequences of very different lengths go in a few length groups,
so padding never reads more than 1.3x the keys needed. A sliding window gathers only the last
`window` keys. The groups and their slots depend on the batch alone: built by the first layer
of a step and reused by the others (step_memo).

Extend loops over sequences. Without window or soft-cap it splits each sequence's keys into the
cached prefix (every new token sees all of it: no mask) and the new tokens (plain top-left
causal, so the kernel skips the masked blocks), and merges the two by their log-sum-exp. Other
cases (window, soft-cap, Dv != D) take a masked path over the keys in reach.

Soft-cap needs the raw scores: it computes them with float32 matmuls.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from sglang_xeon import native
from sglang_xeon.kernels.step_memo import StepMemo

try:  # fused flash attention that also returns the log-sum-exp (torch >= 2.3 on the CPU)
    _FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
except (AttributeError, RuntimeError):
    _FLASH = None


class _Scratch:
    """Grow-only buffers for the gathered K/V, kept between calls. Fresh multi-hundred-MB
    tensors cost a page fault per 4 KiB on every call, which on a CPU took longer than the
    attention itself (decode B=32, 2k-4k context, 16 threads: 56 ms -> 27 ms). They hold about
    the largest batch's K/V (one layer's worth) for the process's life. Outputs never alias
    them; calls must not overlap (one forward at a time per process, as the model runner
    does)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def take(self, name: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self._buffers.get((name, dtype))
        if buf is None or buf.numel() < numel or self._stale(buf):
            buf = torch.empty(numel, dtype=dtype)
            self._buffers[(name, dtype)] = buf
        return buf[:numel]

    @staticmethod
    def _stale(buf: torch.Tensor) -> bool:
        """A buffer made under inference mode cannot be written outside it (a process may run
        both, e.g. the engine and the conformance suite in one test session)."""
        return buf.is_inference() and not torch.is_inference_mode_enabled()


_SCRATCH = _Scratch()
_PLANS = StepMemo()


def _gather(cache: torch.Tensor, slots: torch.Tensor, name: str) -> torch.Tensor:
    """cache[slots] for cache [S, Hkv, D] and flat int64 slots, into a scratch buffer."""
    rows = cache.view(cache.shape[0], -1)
    out = _SCRATCH.take(name, slots.numel() * rows.shape[1], cache.dtype).view(-1, rows.shape[1])
    torch.index_select(rows, 0, slots, out=out)
    return out.view(slots.numel(), *cache.shape[1:])


def _f32(x: torch.Tensor, name: str) -> torch.Tensor:
    """A contiguous float32 copy of x in one pass (x may be a strided view), in scratch."""
    out = _SCRATCH.take(name, x.numel(), torch.float32).view(x.shape)
    return out.copy_(x)


def _explicit(qg, k, v, visible, scale, softcap, sinks=None):
    """Attention with the scores materialised in float32: qg [..., Q, D], k [..., L, D],
    v [..., L, Dv], visible broadcastable to [..., Q, L], sinks (optional) [..., Q, 1]: one
    more logit per row, without a value. Returns float32 [..., Q, Dv]."""
    scores = torch.matmul(qg.float(), _f32(k, "k32").transpose(-1, -2)) * scale
    if softcap > 0:
        scores = softcap * torch.tanh(scores / softcap)
    scores = scores.masked_fill(~visible, float("-inf"))
    if sinks is not None:
        probs = torch.softmax(torch.cat([scores, sinks.float()], dim=-1), dim=-1)[..., :-1]
    else:
        probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, _f32(v, "v32"))


def _length_groups(counts: list[int], slack: float = 1.3, free: int = 1024) -> list[list[int]]:
    """Sequences grouped so that padding each group to its longest member reads at most
    `slack` times the keys it needs plus `free` keys (about what one more kernel call costs):
    longest first, a group closes when the next sequence would break the bound."""
    order = sorted(range(len(counts)), key=lambda i: -counts[i])
    groups: list[list[int]] = []
    for i in order:
        g = groups[-1] if groups else None
        needed = sum(counts[j] for j in g) + counts[i] if g else 0
        if g and counts[g[0]] * (len(g) + 1) <= slack * needed + free:
            g.append(i)
        else:
            groups.append([i])
    return groups


class _Part(NamedTuple):
    """One length group of a decode batch, padded to its longest member."""

    rows: torch.Tensor | None  # the group's sequences (None: the whole batch)
    slots: torch.Tensor  # [B * width] KV slots, padding at the reserved slot 0
    valid: torch.Tensor  # bool [B, 1, 1, width]: real keys
    ragged: bool  # whether any sequence is shorter than width (then SDPA needs the mask)
    width: int


def _plan(kv_indptr, kv_indices, sliding_window) -> list[_Part]:
    """The decode batch's length groups and their gather slots: a function of the batch alone,
    built once per step (step_memo) and reused by every layer."""
    lengths = (kv_indptr[1:] - kv_indptr[:-1]).long()
    counts = lengths.clamp(max=sliding_window) if sliding_window > 0 else lengths
    first = kv_indptr[:-1].long() + lengths - counts
    groups = _length_groups(counts.tolist())
    last = max(kv_indices.numel() - 1, 0)
    parts = []
    for members in groups:
        rows = None if len(groups) == 1 else torch.tensor(members)
        f, c = (first, counts) if rows is None else (first[rows], counts[rows])
        width = int(c.max())
        cols = torch.arange(width)
        valid = cols < c[:, None]  # [B, width]
        offsets = (f[:, None] + cols).clamp(max=last)
        slots = torch.where(valid, kv_indices[offsets], 0).view(-1)
        ragged = bool((c != width).any())
        parts.append(_Part(rows, slots, valid[:, None, None, :], ragged, width))
    return parts


def _decode_part(q, k_cache, v_cache, part: _Part, scale, softcap):
    """q [B, H, D] of one length group -> [B, H, Dv]."""
    batch, heads, dim = q.shape
    kv_heads, v_dim, width = k_cache.shape[1], v_cache.shape[2], part.width
    k = _gather(k_cache, part.slots, "k").view(batch, width, kv_heads, dim).transpose(1, 2)
    v = _gather(v_cache, part.slots, "v").view(batch, width, kv_heads, v_dim).transpose(1, 2)
    qg = q.view(batch, kv_heads, heads // kv_heads, dim)
    if softcap > 0:
        out = _explicit(qg, k, v, part.valid, scale, softcap).to(q.dtype)
    else:
        mask = part.valid if part.ragged else None
        out = F.scaled_dot_product_attention(qg, k, v, attn_mask=mask, scale=scale)
    return out.reshape(batch, heads, v_dim)


def decode(
    q,
    k_cache,
    v_cache,
    kv_indptr,
    kv_indices,
    sm_scale,
    sliding_window=-1,
    logit_softcap=0.0,
    sinks=None,
):
    batch, heads = q.shape[0], q.shape[1]
    if batch == 0:
        return q.new_empty(0, heads, v_cache.shape[2])
    if sinks is not None:  # extend's explicit path, one query per sequence
        one_each = torch.arange(batch + 1, dtype=torch.int32)
        return extend(
            q,
            k_cache,
            v_cache,
            one_each,
            kv_indptr,
            kv_indices,
            sm_scale,
            sliding_window,
            logit_softcap,
            sinks,
        )
    parts = _PLANS.get(
        (kv_indptr, kv_indices),
        (sliding_window,),
        lambda: _plan(kv_indptr, kv_indices, sliding_window),
    )
    args = (k_cache, v_cache)
    if len(parts) == 1:
        return _decode_part(q, *args, parts[0], sm_scale, logit_softcap)
    out = q.new_empty(batch, heads, v_cache.shape[2])
    for part in parts:
        out[part.rows] = _decode_part(q[part.rows], *args, part, sm_scale, logit_softcap)
    return out


def _split_causal(qs, k, v, prefix, scale):
    """One sequence, no window/cap: qs [n, H, D], k/v [L, Hkv, D] (position order).
    Prefix keys without a mask, new keys top-left causal, merged by log-sum-exp."""
    n, heads, dim = qs.shape
    kv_heads = k.shape[1]
    group = heads // kv_heads
    k_new = k[prefix:].transpose(0, 1).repeat_interleave(group, dim=0)  # [H, n, D]
    v_new = v[prefix:].transpose(0, 1).repeat_interleave(group, dim=0)
    o_new, lse_new = _FLASH(
        qs.transpose(0, 1)[None], k_new[None], v_new[None], is_causal=True, scale=scale
    )
    o_new, lse_new = o_new[0], lse_new[0]  # [H, n, Dv], [H, n]
    if prefix == 0:
        return o_new.transpose(0, 1)
    qg = qs.view(n, kv_heads, group, dim).permute(1, 2, 0, 3).reshape(1, kv_heads, group * n, dim)
    o_pre, lse_pre = _FLASH(
        qg, k[:prefix].transpose(0, 1)[None], v[:prefix].transpose(0, 1)[None], scale=scale
    )
    o_pre, lse_pre = o_pre.reshape(heads, n, -1), lse_pre.reshape(heads, n)
    lse = torch.logaddexp(lse_pre, lse_new)
    out = o_pre.float() * torch.exp(lse_pre - lse).unsqueeze(-1) + o_new.float() * torch.exp(
        lse_new - lse
    ).unsqueeze(-1)
    return out.transpose(0, 1)


def _masked(qs, k, v, scale, window, softcap, sinks=None):
    """One sequence, general rules: qs [n, H, D], k [L, Hkv, D], v [L, Hkv, Dv], sinks [H]
    or None; only the keys a query can reach are read. GQA groups are folded into the query
    axis (row g*n + i)."""
    n, heads, dim = qs.shape
    length, kv_heads = k.shape[0], k.shape[1]
    group = heads // kv_heads
    query_pos = torch.arange(length - n, length)[:, None]
    lo = max(0, length - n - window + 1) if window > 0 else 0
    key_pos = torch.arange(lo, length)[None, :]
    visible = key_pos <= query_pos
    if window > 0:
        visible &= query_pos - key_pos < window
    visible = visible.repeat(group, 1)  # [group * n, L - lo]
    qg = qs.view(n, kv_heads, group, dim).permute(1, 2, 0, 3).reshape(kv_heads, group * n, dim)
    kt, vt = k[lo:].transpose(0, 1), v[lo:].transpose(0, 1)
    if sinks is not None:
        sink = sinks.view(kv_heads, group, 1).expand(-1, -1, n).reshape(kv_heads, group * n, 1)
        out = _explicit(qg, kt, vt, visible, scale, softcap, sink)
    elif softcap > 0:
        out = _explicit(qg, kt, vt, visible, scale, softcap)
    else:
        out = F.scaled_dot_product_attention(qg, kt, vt, attn_mask=visible, scale=scale)
    return out.view(kv_heads, group, n, -1).permute(2, 0, 1, 3).reshape(n, heads, -1)


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
    sinks=None,
):
    heads, v_dim = q.shape[1], v_cache.shape[2]
    out = q.new_empty(q.shape[0], heads, v_dim)
    if q.shape[0] == 0:
        return out
    k_all = _gather(k_cache, kv_indices, "k")
    v_all = _gather(v_cache, kv_indices, "v")
    qo, kv = qo_indptr.tolist(), kv_indptr.tolist()
    fused = _FLASH is not None and logit_softcap <= 0 and v_dim == q.shape[2] and sinks is None
    for b in range(len(qo) - 1):
        q0, q1, k0, k1 = qo[b], qo[b + 1], kv[b], kv[b + 1]
        n, length = q1 - q0, k1 - k0
        if n == 0:
            continue
        k, v = k_all[k0:k1], v_all[k0:k1]
        if fused and (sliding_window <= 0 or length <= sliding_window):
            out[q0:q1] = _split_causal(q[q0:q1], k, v, length - n, sm_scale)
        else:
            out[q0:q1] = _masked(q[q0:q1], k, v, sm_scale, sliding_window, logit_softcap, sinks)
    return out


def native_decode(
    q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window=-1, logit_softcap=0.0
):
    """csrc/attention.cpp: K/V rows read from the paged cache by slot (no gather, no padding,
    no per-step plan), online softmax in float32, one work item per (sequence, kv head)."""
    return native.ops.decode_attention(
        q, k_cache, v_cache, kv_indptr, kv_indices, sm_scale, sliding_window, logit_softcap
    )


def _no_sinks(config) -> str | None:
    return "attention sinks (the torch decode takes them)" if config.get("sinks") else None


def register(registry) -> None:
    registry.register("attention.decode", decode, name="xeon.attention_decode")
    registry.register(
        "attention.decode",
        native_decode,
        name="xeon.native_attention_decode",
        priority=1,
        available=native.why_unavailable,
        unsupported=_no_sinks,
    )
    registry.register("attention.extend", extend, name="xeon.attention_extend")
