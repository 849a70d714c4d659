"""attention.mla_extend and attention.mla_decode: multi-head latent attention (DeepSeek-V2/V3)
over a paged cache that holds, per token, only the compressed latent and the rope part.

Cache: kv_cache [S, 1, R + P]: row s = [c (R = kv_lora_rank, the kv_a_layernorm-ed latent) |
k_pe (P = qk_rope_head_dim, rope applied)], shared by every head. Slots, indptrs and the causal
rule are attention.extend's (sglang.ops.attention); no sliding window, no soft-cap.

The per-head key and value up-projections (kv_b_proj, split per head):
    w_kc [H, Dn, R]: k_nope[h] = w_kc[h] @ c        (Dn = qk_nope_head_dim)
    w_vc [H, Dv, R]: v[h]      = w_vc[h] @ c

mla_extend (prefill, un-absorbed): q [N, H, Dn + P] = [q_nope | q_pe]; each key is
[k_nope[h] | k_pe], each value v[h], both made from the cached latents of the whole sequence
(cached prefix and new tokens). -> o [N, H, Dv].

mla_decode (absorbed): the layer folds w_kc into the query (q_lat[h] = w_kc[h]^T @ q_nope[h])
and w_vc into the output, so attention runs on the latent directly:
    q [B, H, R + P] = [q_lat | q_pe];  score_l = q . kv_cache[l];  o = sum_l p_l c_l  [B, H, R]
Both forms give the same attention (q_nope . (w_kc c) = (w_kc^T q_nope) . c).
"""

from __future__ import annotations

import math

import torch

from sglang.ops.paged_kv import allocate_slots, indptr
from sglang.ops.precision import with_error_bounds
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec


def _causal(length: int, n: int, device) -> torch.Tensor:
    """[n, L] visibility of the last n of L tokens' queries."""
    query_pos = torch.arange(length - n, length, device=device).unsqueeze(1)
    return torch.arange(length, device=device).unsqueeze(0) <= query_pos


def extend(q, kv_cache, qo_indptr, kv_indptr, kv_indices, w_kc, w_vc, sm_scale):
    """Reference: per sequence, up-project its latents, then explicit masked attention."""
    acc = compute_dtype(q, kv_cache, w_kc, w_vc)
    heads, rank, v_dim = q.shape[1], w_kc.shape[-1], w_vc.shape[1]
    out = torch.zeros(q.shape[0], heads, v_dim, dtype=q.dtype, device=q.device)
    wk, wv = w_kc.to(acc), w_vc.to(acc)
    for b in range(qo_indptr.numel() - 1):
        q0, q1 = int(qo_indptr[b]), int(qo_indptr[b + 1])
        k0, k1 = int(kv_indptr[b]), int(kv_indptr[b + 1])
        n, length = q1 - q0, k1 - k0
        if n == 0:
            continue
        rows = kv_cache[kv_indices[k0:k1], 0].to(acc)  # [L, R + P]
        c, pe = rows[:, :rank], rows[:, rank:]
        k_nope = torch.einsum("lr,hnr->hln", c, wk)
        k = torch.cat([k_nope, pe.unsqueeze(0).expand(heads, -1, -1)], dim=-1)  # [H, L, Dn+P]
        v = torch.einsum("lr,hvr->hlv", c, wv)
        scores = torch.einsum("nhd,hld->hnl", q[q0:q1].to(acc), k) * sm_scale
        scores = scores.masked_fill(~_causal(length, n, q.device), float("-inf"))
        o = torch.einsum("hnl,hlv->nhv", scores.softmax(dim=-1), v)
        out[q0:q1] = o.to(q.dtype)
    return out


def decode(q, kv_cache, kv_indptr, kv_indices, sm_scale, kv_lora_rank):
    """Reference: per sequence, attention of the absorbed queries over the cached rows."""
    acc = compute_dtype(q, kv_cache)
    out = torch.zeros(q.shape[0], q.shape[1], kv_lora_rank, dtype=q.dtype, device=q.device)
    for b in range(q.shape[0]):
        k0, k1 = int(kv_indptr[b]), int(kv_indptr[b + 1])
        rows = kv_cache[kv_indices[k0:k1], 0].to(acc)  # [L, R + P]
        probs = (q[b].to(acc) @ rows.T * sm_scale).softmax(dim=-1)  # [H, L]
        out[b] = (probs @ rows[:, :kv_lora_rank]).to(q.dtype)
    return out


# (label, seqs as (cached prefix, new tokens), heads, R, P, Dn, Dv)
_SHAPES = (
    ("b1", ((0, 5),), 4, 32, 16, 32, 32),
    ("ragged", ((0, 1), (3, 4), (10, 1), (0, 7), (5, 13), (17, 3)), 8, 64, 16, 32, 48),
    ("prefix", ((30, 20), (0, 3)), 16, 64, 32, 64, 64),
    ("empty", (), 4, 32, 16, 32, 32),
)
# DeepSeek-V2-Lite's geometry (R 512, P 64, Dn 128, Dv 128, 16 heads).
_LARGE = (("v2lite", ((100, 40), (0, 24), (300, 1)), 16, 512, 64, 128, 128),)


def _cases_for(op: str) -> list[Case]:
    cases = []
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        shapes = _SHAPES + (_LARGE if dtype != torch.float16 else ())
        for label, seqs, heads, rank, rope, nope, v_dim in shapes:
            if op == "attention.mla_decode":
                seqs = tuple((prefix + new - 1, 1) for prefix, new in seqs)
            params = {
                "seqs": seqs,
                "heads": heads,
                "rank": rank,
                "rope": rope,
                "nope": nope,
                "v_dim": v_dim,
            }
            cases.append(Case(op, case_name(dtype, label), dtype, params))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    heads, rank, rope, nope = p["heads"], p["rank"], p["rope"], p["nope"]
    lengths = [prefix + new for prefix, new in p["seqs"]]
    batch = allocate_slots(gen, lengths)
    new_tokens = sum(new for _, new in p["seqs"])
    args = {"kv_cache": randn(gen, batch.num_slots, 1, rank + rope, dtype=dt)}
    if case.op == "attention.mla_extend":
        args["q"] = randn(gen, new_tokens, heads, nope + rope, dtype=dt)
        args["qo_indptr"] = indptr([new for _, new in p["seqs"]])
        args["w_kc"] = randn(gen, heads, nope, rank, dtype=dt, scale=rank**-0.5)
        args["w_vc"] = randn(gen, heads, p["v_dim"], rank, dtype=dt, scale=rank**-0.5)
        scale = 1.0 / math.sqrt(nope + rope)
    else:
        args["q"] = randn(gen, new_tokens, heads, rank + rope, dtype=dt)
        args["kv_lora_rank"] = rank
        scale = 1.0 / math.sqrt(rank + rope)
    args["kv_indptr"] = batch.kv_indptr
    args["kv_indices"] = batch.kv_indices
    args["sm_scale"] = scale
    return args


# rel_rms: four roundings to the dtype (the probabilities, the keys and the values a kernel
# up-projects and materialises, the output) and float32 sums over up to 1024 terms.
_TOLERANCES = with_error_bounds(
    {
        torch.float32: Tolerance(atol=1e-4, rtol=1e-4),
        torch.float16: Tolerance(atol=4e-3, rtol=4e-3),
        torch.bfloat16: Tolerance(atol=3e-2, rtol=3e-2),
    },
    roundings=4,
    accumulation=1024,
)

EXTEND = register_spec(
    OpSpec(
        name="attention.mla_extend",
        signature=(
            "(q[N,H,Dn+P], kv_cache[S,1,R+P], qo_indptr[B+1], kv_indptr[B+1], kv_indices[sum L], "
            "w_kc[H,Dn,R], w_vc[H,Dv,R], sm_scale) -> o[N,H,Dv]; un-absorbed MLA prefill over "
            "cached latents, causal with the cached prefix"
        ),
        reference=extend,
        cases=lambda: _cases_for("attention.mla_extend"),
        make_inputs=_inputs,
        tolerances=_TOLERANCES,
    )
)

DECODE = register_spec(
    OpSpec(
        name="attention.mla_decode",
        signature=(
            "(q[B,H,R+P], kv_cache[S,1,R+P], kv_indptr[B+1], kv_indices[sum L], sm_scale, "
            "kv_lora_rank) -> o[B,H,R]; absorbed MLA decode, values = the cached latents"
        ),
        reference=decode,
        cases=lambda: _cases_for("attention.mla_decode"),
        make_inputs=_inputs,
        tolerances=_TOLERANCES,
    )
)
