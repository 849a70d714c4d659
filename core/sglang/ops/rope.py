"""rope: rotary position embedding of queries and keys, read from a cos/sin cache.

Cache layout (SGLang's): cos_sin_cache[p] = cat(cos[p, :r/2], sin[p, :r/2]), r = rotary_dim,
built by `rope_cos_sin_cache` (see sglang.ops.rope_scaling for the scaling schemes). Only the
first r dims of each head rotate (partial rotary, r <= head_dim); the rest pass through.

Pairing of the rotated dims, with i in [0, r/2):
  neox  (is_neox=True):  (x[i], x[i + r/2])      "rotate half", Llama / Qwen / Mistral
  gpt-j (is_neox=False): (x[2i], x[2i + 1])      interleaved, GPT-J / ChatGLM / DeepSeek MLA
and each pair (x1, x2) becomes (x1 cos - x2 sin, x2 cos + x1 sin) with cos, sin = cache[:, i].
"""

from __future__ import annotations

import functools

import torch

from sglang.ops.precision import with_error_bounds
from sglang.ops.rope_scaling import rope_cos_sin_cache, rope_inv_freq
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec

__all__ = ["rope", "rope_cos_sin_cache", "rope_inv_freq"]


def rope(
    positions: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """positions: [T] int64; q: [T, H, D]; k: [T, Hkv, D]; cos_sin_cache: [max_pos, r] float32.
    Returns new (q_out, k_out) with q's and k's shapes and dtypes; inputs are not modified.
    Computed in float32 (float64 under the oracle)."""
    acc = compute_dtype(q, k, cos_sin_cache)
    cos, sin = cos_sin_cache.index_select(0, positions).to(acc).chunk(2, dim=-1)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [T, 1, r/2], broadcast over heads
    return _rotate(q, cos, sin, is_neox, acc), _rotate(k, cos, sin, is_neox, acc)


def _rotate(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, is_neox: bool, acc: torch.dtype
) -> torch.Tensor:
    r = 2 * cos.shape[-1]
    h = x.to(acc)
    rot, rest = h[..., :r], h[..., r:]
    if is_neox:
        x1, x2 = rot[..., : r // 2], rot[..., r // 2 :]
    else:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    o1, o2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    if is_neox:
        rot = torch.cat((o1, o2), dim=-1)
    else:
        rot = torch.stack((o1, o2), dim=-1).flatten(-2)
    return torch.cat((rot, rest), dim=-1).to(x.dtype)


LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 256,
}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512}
YARN_MSCALE = {
    "rope_type": "yarn",
    "factor": 40.0,
    "original_max_position_embeddings": 128,
    "beta_fast": 32,
    "beta_slow": 1,
    "mscale": 1.0,
    "mscale_all_dim": 0.707,
}
SCALINGS = {
    "plain": None,
    "linear": {"rope_type": "linear", "factor": 2.0},
    "llama3": LLAMA3,
    "yarn": YARN,
    "yarnmscale": YARN_MSCALE,
}

# (tokens, heads, kv_heads, head_dim, rotary_dim, is_neox, scaling, max_position)
SHAPES = (
    (0, 4, 2, 64, 64, True, "plain", 256),
    (1, 1, 1, 16, 16, False, "plain", 64),
    (5, 3, 3, 64, 64, False, "plain", 256),
    (7, 8, 2, 128, 128, True, "plain", 1024),
    (13, 32, 8, 128, 128, True, "llama3", 2048),
    (9, 4, 1, 128, 64, True, "linear", 1024),
    (11, 6, 2, 96, 32, False, "plain", 512),
    (17, 4, 4, 64, 64, True, "yarn", 2048),
    (6, 16, 1, 64, 64, False, "yarnmscale", 2048),
    (33, 16, 4, 80, 40, True, "plain", 1024),
)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _cases_of(op: str, shapes) -> list[Case]:
    cases = []
    for dt in DTYPES:
        for t, h, hkv, d, r, neox, scaling, max_pos in shapes:
            name = case_name(
                dt,
                f"T{t}",
                f"H{h}",
                f"KV{hkv}",
                f"D{d}",
                f"R{r}" if r != d else "",
                "neox" if neox else "gptj",
                scaling,
            )
            params = {
                "tokens": t,
                "heads": h,
                "kv_heads": hkv,
                "head_dim": d,
                "rotary_dim": r,
                "is_neox": neox,
                "scaling": scaling,
                "max_position": max_pos,
            }
            cases.append(Case(op, name, dt, params))
    return cases


def _cases() -> list[Case]:
    return _cases_of("rope", SHAPES)


@functools.lru_cache(maxsize=16)
def _cache(rotary_dim: int, max_position: int, scaling: str) -> torch.Tensor:
    return rope_cos_sin_cache(rotary_dim, max_position, 10000.0, SCALINGS[scaling])


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    t, max_pos = p["tokens"], p["max_position"]
    # Positions span the whole cache: for scaled caches, far beyond the original context.
    positions = torch.randint(0, max_pos, (t,), generator=gen, dtype=torch.int64)
    if t:
        positions[-1] = max_pos - 1
    cache = _cache(p["rotary_dim"], max_pos, p["scaling"]).clone()
    return {
        "positions": positions,
        "q": randn(gen, t, p["heads"], p["head_dim"], dtype=dt),
        "k": randn(gen, t, p["kv_heads"], p["head_dim"], dtype=dt),
        "cos_sin_cache": cache,
        "is_neox": p["is_neox"],
    }


SPEC = register_spec(
    OpSpec(
        name="rope",
        signature=(
            "(positions[T] int64, q[T,H,D], k[T,Hkv,D], cos_sin_cache[max_pos,r] f32, is_neox) "
            "-> (q_out, k_out); first r dims of each head rotated, neox halves or gpt-j pairs"
        ),
        reference=rope,
        cases=_cases,
        make_inputs=_inputs,
        # rel_rms: three roundings to the dtype (cos/sin and the two products where a kernel
        # computes in the dtype, then the sum); no sum longer than two terms.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
                torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
                torch.bfloat16: Tolerance(atol=1.6e-2, rtol=1.6e-2),
            },
            roundings=3,
        ),
    )
)


def rope_qk_norm(
    positions: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen3's per-head RMSNorm of q and k before rope, in one op: norm.rms of every head's
    D-vector (q's heads scaled by q_weight [D], k's by k_weight [D]; its output in the dtype,
    as the separate op rounds it), then rope. Shapes and outputs as rope's."""
    from sglang.ops.norm import rms_norm

    qn = rms_norm(q.reshape(-1, q.shape[-1]), q_weight, eps).reshape(q.shape)
    kn = rms_norm(k.reshape(-1, k.shape[-1]), k_weight, eps).reshape(k.shape)
    return rope(positions, qn, kn, cos_sin_cache, is_neox)


QK_NORM_SHAPES = tuple(s for s in SHAPES if s[6] in ("plain", "llama3")) + (
    (1, 32, 4, 128, 128, True, "plain", 4096),  # Qwen3-30B-A3B's decode step
)


def _qk_norm_cases() -> list[Case]:
    return _cases_of("rope.qk_norm", QK_NORM_SHAPES)


def _qk_norm_inputs(case: Case, gen: torch.Generator) -> dict:
    args = _inputs(case, gen)
    d, dt = case.params["head_dim"], case.dtype
    args["q_weight"] = randn(gen, d, dtype=dt, scale=0.1) + 1.0
    args["k_weight"] = randn(gen, d, dtype=dt, scale=0.1) + 1.0
    args["eps"] = 1e-6
    return args


QK_NORM_SPEC = register_spec(
    OpSpec(
        name="rope.qk_norm",
        signature=(
            "(positions[T] int64, q[T,H,D], k[T,Hkv,D], cos_sin_cache[max_pos,r] f32, is_neox, "
            "q_weight[D], k_weight[D], eps) -> (q_out, k_out); norm.rms per head, then rope"
        ),
        reference=rope_qk_norm,
        cases=_qk_norm_cases,
        make_inputs=_qk_norm_inputs,
        # rel_rms: rope's three roundings, one of which may be the normed head's (rounded to the
        # dtype as norm.rms's output); a float32 sum of D <= 128 squares. Not four: under Triton's
        # interpreter (bfloat16 casts truncate, a bias of ~0.3%) a 1% scale error hid in four.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
                torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
                torch.bfloat16: Tolerance(atol=1.6e-2, rtol=1.6e-2),
            },
            roundings=3,
            accumulation=128,
        ),
    )
)


def rope_kv_store(
    positions: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    loc: torch.Tensor,
    q_out: torch.Tensor,
    q_weight: torch.Tensor | None = None,
    k_weight: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> None:
    """rope (rope.qk_norm when q_weight and k_weight are given) and kv.store in one op: q_out
    [T, H, D] = the rotated q; k_cache[loc[i]] = the rotated k[i], v_cache[loc[i]] = v[i]
    (caches in q's dtype; no fp8 scales). The rotated k is not returned: attention reads it
    from the cache. A decode step then launches one kernel where rope and kv.store took two."""
    if q_weight is None:
        q_rot, k_rot = rope(positions, q, k, cos_sin_cache, is_neox)
    else:
        q_rot, k_rot = rope_qk_norm(
            positions, q, k, cos_sin_cache, is_neox, q_weight, k_weight, eps
        )
    q_out.copy_(q_rot)
    k_cache[loc] = k_rot.to(k_cache.dtype)
    v_cache[loc] = v.to(v_cache.dtype)


def _kv_store_cases() -> list[Case]:
    cases = []
    for norm in (False, True):
        for case in _cases_of("rope.kv_store", QK_NORM_SHAPES if norm else SHAPES):
            params = {**case.params, "norm": norm}
            name = f"{case.name}-qknorm" if norm else case.name
            cases.append(Case(case.op, name, case.dtype, params))
    return cases


def _kv_store_inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    args = _qk_norm_inputs(case, gen) if p["norm"] else _inputs(case, gen)
    t, hkv, d = p["tokens"], p["kv_heads"], p["head_dim"]
    slots = 2 * t + 5  # distinct slots, never the reserved slot 0; the rest stay as they were
    args["v"] = randn(gen, t, hkv, d, dtype=dt)
    args["k_cache"] = randn(gen, slots, hkv, d, dtype=dt)
    args["v_cache"] = randn(gen, slots, hkv, d, dtype=dt)
    args["loc"] = (torch.randperm(slots - 1, generator=gen)[:t] + 1).to(torch.int64)
    args["q_out"] = torch.zeros(t, p["heads"], d, dtype=dt)
    return args


KV_STORE_SPEC = register_spec(
    OpSpec(
        name="rope.kv_store",
        signature=(
            "(positions[T] int64, q[T,H,D], k[T,Hkv,D], v[T,Hkv,D], cos_sin_cache[max_pos,r] f32, "
            "is_neox, k_cache[S,Hkv,D], v_cache[S,Hkv,D], loc[T] int64, q_out[T,H,D], "
            "q_weight[D]=None, k_weight[D]=None, eps=1e-6) -> None; q_out = rope(q) (rope.qk_norm "
            "with the weights); k_cache[loc] = rope(k), v_cache[loc] = v"
        ),
        reference=rope_kv_store,
        cases=_kv_store_cases,
        make_inputs=_kv_store_inputs,
        tolerances=QK_NORM_SPEC.tolerances,
        mutates=("q_out", "k_cache", "v_cache"),
    )
)
