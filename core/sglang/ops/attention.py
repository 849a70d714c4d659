"""attention.extend and attention.decode: causal attention of new tokens over a paged KV cache.

Layout (see sglang.ops.paged_kv): sequence b has L_b tokens in the cache, at slots
kv_indices[kv_indptr[b]:kv_indptr[b+1]] in position order. In extend, the LAST
n_b = qo_indptr[b+1] - qo_indptr[b] of them are the new tokens (their K/V already written by
kv.store) and the first L_b - n_b a cached prefix; queries are packed sequence after sequence.
Decode is extend with one new token per sequence, at position L_b - 1.

Rules, for the query of the token at position p and the key at position j:
- visible when j <= p and, when sliding_window > 0, p - j < sliding_window (Hugging Face's
  convention: the window counts the query's own token);
- score = (q . k) * sm_scale, then logit_softcap * tanh(score / logit_softcap) when
  logit_softcap > 0; softmax over the visible keys in float32 (float64 under the oracle);
- GQA: query head h reads kv head h // (H // Hkv);
- sinks (optional, [H] float32, gpt-oss): one more logit per head in the softmax's denominator
  with no value: p_j = exp(s_j) / (sum_l exp(s_l) + exp(sinks[h])), so the weights of a row sum
  to less than 1.

A quantized KV cache (float8_e4m3fn or float8_e5m2 buffers, `--kv-cache-dtype`) holds k / k_scale
and v / v_scale (kv.store); attention reads k_cache * k_scale and v_cache * v_scale. The scales
are per layer (a checkpoint's k_scale / v_scale, else 1.0); with a 16/32-bit cache they are 1.
"""

from __future__ import annotations

import math

import torch

from sglang.ops.paged_kv import allocate_slots, indptr
from sglang.ops.precision import with_error_bounds
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec


def extend(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    qo_indptr: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_indices: torch.Tensor,
    sm_scale: float,
    sliding_window: int = -1,
    logit_softcap: float = 0.0,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
    sinks: torch.Tensor | None = None,
) -> torch.Tensor:
    """q: [N, H, D] (new tokens of all sequences, packed); k_cache: [S, Hkv, D];
    v_cache: [S, Hkv, Dv]; qo_indptr, kv_indptr: [B+1] int32; kv_indices: [sum L] int64.
    Returns o: [N, H, Dv] in q.dtype. Loops over sequences, gathers each one's K/V and builds
    its mask explicitly."""
    acc = compute_dtype(q, k_cache, v_cache)
    heads, kv_heads, dim = q.shape[1], k_cache.shape[1], q.shape[2]
    group = heads // kv_heads
    out = torch.zeros(q.shape[0], heads, v_cache.shape[2], dtype=q.dtype, device=q.device)
    for b in range(qo_indptr.numel() - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        k0, k1 = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n, length = q1 - q0, k1 - k0
        if n == 0:  # an empty sequence (a prefill graph's trailing padding): no queries
            continue
        slots = kv_indices[k0:k1]
        k = k_cache[slots].to(acc) * k_scale  # [L, Hkv, D]
        v = v_cache[slots].to(acc) * v_scale  # [L, Hkv, Dv]
        qg = q[q0:q1].to(acc).view(n, kv_heads, group, dim)  # head h = kv head h // group
        scores = torch.einsum("nkgd,lkd->kgnl", qg, k) * sm_scale
        if logit_softcap > 0:
            scores = logit_softcap * torch.tanh(scores / logit_softcap)
        query_pos = torch.arange(length - n, length, device=q.device).unsqueeze(1)  # [n, 1]
        key_pos = torch.arange(length, device=q.device).unsqueeze(0)  # [1, L]
        visible = key_pos <= query_pos
        if sliding_window > 0:
            visible &= query_pos - key_pos < sliding_window
        scores = scores.masked_fill(~visible, float("-inf"))
        if sinks is not None:  # one more column per head, dropped after the softmax
            sink = sinks.to(acc).view(kv_heads, group, 1, 1).expand(-1, -1, n, 1)
            probs = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[..., :-1]
        else:
            probs = torch.softmax(scores, dim=-1)  # [Hkv, group, n, L]
        o = torch.einsum("kgnl,lkd->nkgd", probs, v)
        out[q0:q1] = o.reshape(n, heads, -1).to(q.dtype)
    return out


def decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    kv_indptr: torch.Tensor,
    kv_indices: torch.Tensor,
    sm_scale: float,
    sliding_window: int = -1,
    logit_softcap: float = 0.0,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
    sinks: torch.Tensor | None = None,
) -> torch.Tensor:
    """q: [B, H, D], one query per sequence at position L_b - 1; other arguments as extend.
    Returns o: [B, H, Dv] in q.dtype."""
    one_each = torch.arange(q.shape[0] + 1, dtype=torch.int32, device=q.device)
    return extend(
        q,
        k_cache,
        v_cache,
        one_each,
        kv_indptr,
        kv_indices,
        sm_scale,
        sliding_window=sliding_window,
        logit_softcap=logit_softcap,
        k_scale=k_scale,
        v_scale=v_scale,
        sinks=sinks,
    )


# A case's geometry: sequences as (cached prefix, new tokens); decode reads prefix + 1 as its
# context length. Defaults: H=Hkv=4, D=Dv=64, page 1, no window/cap, scale 1/sqrt(D).
_SHAPES = (
    ("b1", {"seqs": ((0, 5),)}),
    (
        "ragged",
        {
            "seqs": ((0, 1), (3, 4), (10, 1), (0, 7), (5, 13), (1, 2), (17, 3)),
            "heads": 8,
            "kv_heads": 8,
        },
    ),
    ("gqa4-D128", {"seqs": ((4, 9), (0, 3), (30, 20)), "heads": 8, "kv_heads": 2, "head_dim": 128}),
    ("gqa8", {"seqs": ((0, 6), (12, 1), (9, 9)), "heads": 16, "kv_heads": 2}),
    ("Dv32", {"seqs": ((6, 5), (0, 2)), "heads": 4, "kv_heads": 2, "v_head_dim": 32}),
    (
        "window",
        {
            "seqs": ((0, 1), (3, 12), (20, 5), (0, 9)),
            "heads": 8,
            "kv_heads": 2,
            "sliding_window": 6,
        },
    ),
    ("softcap", {"seqs": ((2, 7), (11, 3)), "kv_heads": 2, "logit_softcap": 5.0, "q_scale": 3.0}),
    ("scale", {"seqs": ((3, 5), (0, 4)), "sm_scale": 0.3}),
    (
        "sinks-window",
        {
            "seqs": ((0, 1), (3, 12), (20, 5)),
            "heads": 8,
            "kv_heads": 2,
            "sliding_window": 6,
            "sinks": True,
        },
    ),
    ("sinks", {"seqs": ((2, 7), (11, 1)), "heads": 4, "kv_heads": 1, "sinks": True}),
    ("page16", {"seqs": ((20, 13), (0, 40), (33, 1)), "kv_heads": 1, "page_size": 16}),
    ("page64", {"seqs": ((70, 30), (0, 5)), "heads": 8, "kv_heads": 2, "page_size": 64}),
    ("empty", {"seqs": ()}),
)
# Realistic sizes (Llama-3-8B heads), bfloat16 and float32 only to keep the list fast.
_LARGE_SHAPES = {
    "attention.extend": (
        ("prefix200-new100", {"seqs": ((200, 100),), "heads": 32, "kv_heads": 8, "head_dim": 128}),
        (
            "mixed-window-page16",
            {
                "seqs": ((0, 64), (150, 40), (300, 1)),
                "heads": 32,
                "kv_heads": 8,
                "head_dim": 128,
                "sliding_window": 128,
                "page_size": 16,
            },
        ),
    ),
    "attention.decode": (
        (
            "B8-ctx1000",
            {
                "seqs": tuple((n, 1) for n in (999, 37, 512, 800, 1, 256, 640, 128)),
                "heads": 32,
                "kv_heads": 8,
                "head_dim": 128,
            },
        ),
        (
            "B6-softcap-page64",
            {
                "seqs": tuple((n, 1) for n in (700, 63, 64, 300, 5, 128)),
                "heads": 32,
                "kv_heads": 8,
                "head_dim": 128,
                "page_size": 64,
                "logit_softcap": 30.0,
                "q_scale": 3.0,
            },
        ),
    ),
}
# Quantized caches: a few geometries in float32 and bfloat16 per fp8 type, with power-of-two
# scales (exact divisions, so every side rounds the same values to fp8).
_FP8_CACHES = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
_FP8_SHAPES = ("b1", "gqa4-D128", "page16")
_DEFAULTS = {
    "heads": 4,
    "kv_heads": 4,
    "head_dim": 64,
    "v_head_dim": None,
    "page_size": 1,
    "sliding_window": -1,
    "logit_softcap": 0.0,
    "sm_scale": None,
    "q_scale": 1.0,
    "kv_cache": None,
    "sinks": False,
}


def _requires(p: dict) -> tuple[str, ...]:
    req = []
    if p["heads"] != p["kv_heads"]:
        req.append("attention:gqa")
    if p["sliding_window"] > 0:
        req.append("attention:sliding_window")
    if p["logit_softcap"] > 0:
        req.append("attention:logit_softcap")
    if p["sm_scale"] is not None and p["sm_scale"] != 1.0 / math.sqrt(p["head_dim"]):
        req.append("attention:custom_scale")
    if p["page_size"] > 1:
        req.append(f"page_size:{p['page_size']}")
    if p["kv_cache"]:
        req.append(f"kv_cache:{p['kv_cache']}")
    if p["sinks"]:
        req.append("attention:sinks")
    return tuple(req)


def _cases_for(op: str) -> list[Case]:
    decode_op = op == "attention.decode"
    cases = []
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        shapes = _SHAPES
        if dtype != torch.float16:
            shapes = shapes + _LARGE_SHAPES[op]
        for label, shape in shapes:
            params = {**_DEFAULTS, **shape}
            if decode_op:
                params["seqs"] = tuple((prefix + new - 1, 1) for prefix, new in params["seqs"])
            cases.append(Case(op, case_name(dtype, label), dtype, params, _requires(params)))
        if dtype == torch.float16:
            continue
        for kv_cache in _FP8_CACHES:
            for label, shape in _SHAPES:
                if label not in _FP8_SHAPES:
                    continue
                params = {**_DEFAULTS, **shape, "kv_cache": kv_cache}
                if decode_op:
                    params["seqs"] = tuple((a + b - 1, 1) for a, b in params["seqs"])
                name = case_name(dtype, label, kv_cache)
                cases.append(Case(op, name, dtype, params, _requires(params)))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    dim, v_dim = p["head_dim"], p["v_head_dim"] or p["head_dim"]
    lengths = [prefix + new for prefix, new in p["seqs"]]
    batch = allocate_slots(gen, lengths, page_size=p["page_size"])
    new_tokens = sum(new for _, new in p["seqs"])
    args = {
        "q": randn(gen, new_tokens, p["heads"], dim, dtype=dt, scale=p["q_scale"]),
        "k_cache": randn(gen, batch.num_slots, p["kv_heads"], dim, dtype=dt),
        "v_cache": randn(gen, batch.num_slots, p["kv_heads"], v_dim, dtype=dt),
    }
    if p["kv_cache"]:  # what kv.store leaves: k / k_scale in the fp8 type
        fp8 = _FP8_CACHES[p["kv_cache"]]
        args["k_scale"], args["v_scale"] = 0.125, 0.25
        for name in ("k_cache", "v_cache"):
            scale = args[name[0] + "_scale"]
            args[name] = (args[name].float() / scale).to(fp8)
    if case.op == "attention.extend":
        args["qo_indptr"] = indptr([new for _, new in p["seqs"]])
    args["kv_indptr"] = batch.kv_indptr
    args["kv_indices"] = batch.kv_indices
    args["sm_scale"] = p["sm_scale"] or 1.0 / math.sqrt(dim)
    args["sliding_window"] = p["sliding_window"]
    args["logit_softcap"] = p["logit_softcap"]
    if p["sinks"]:  # around the scores' scale, some well above: rows keep < 1 of their weight
        args["sinks"] = randn(gen, p["heads"], dtype=torch.float32, scale=2.0)
    return args


# rel_rms: three roundings to the dtype (the probabilities, as flash kernels round them before
# P @ V, the partial outputs of split-KV decode, the output) and float32 sums over the longest
# context of the cases (1000 keys).
_TOLERANCES = with_error_bounds(
    {
        torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
        torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
        torch.bfloat16: Tolerance(atol=1.6e-2, rtol=1.6e-2),
    },
    roundings=3,
    accumulation=1024,
)
_COMMON = (
    "sm_scale, sliding_window=-1, logit_softcap=0.0, k_scale=1.0, v_scale=1.0, sinks[H] f32=None"
)

EXTEND = register_spec(
    OpSpec(
        name="attention.extend",
        signature=(
            "(q[N,H,D], k_cache[S,Hkv,D], v_cache[S,Hkv,Dv], qo_indptr[B+1], kv_indptr[B+1], "
            f"kv_indices[sum L], {_COMMON}) -> o[N,H,Dv]; new tokens are the last of each "
            "sequence's L, causal with the cached prefix"
        ),
        reference=extend,
        cases=lambda: _cases_for("attention.extend"),
        make_inputs=_inputs,
        tolerances=_TOLERANCES,
    )
)

DECODE = register_spec(
    OpSpec(
        name="attention.decode",
        signature=(
            "(q[B,H,D], k_cache[S,Hkv,D], v_cache[S,Hkv,Dv], kv_indptr[B+1], kv_indices[sum L], "
            f"{_COMMON}) -> o[B,H,Dv]; one query per sequence at position L_b - 1"
        ),
        reference=decode,
        cases=lambda: _cases_for("attention.decode"),
        make_inputs=_inputs,
        tolerances=_TOLERANCES,
    )
)
