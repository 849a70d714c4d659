"""kv.store: write the new tokens' keys and values into their slots of the KV cache."""

from __future__ import annotations

import torch

from sglang.ops.spec import EXACT, Case, OpSpec, Tolerance, case_name, randn
from sglang.ops.specs import register_spec


def store(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    loc: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
) -> None:
    """k_cache: [S, Hkv, D], v_cache: [S, Hkv, Dv], loc: [N] int64 distinct slots,
    k: [N, Hkv, D], v: [N, Hkv, Dv]. Mutates the caches: k_cache[loc[i]] = k[i] and
    v_cache[loc[i]] = v[i] (cast to the cache's dtype); every other slot is left as it was.
    Slot 0 is the reserved padding slot and never appears in loc."""
    k_cache[loc] = k.to(k_cache.dtype)
    v_cache[loc] = v.to(v_cache.dtype)


# (tokens, kv heads, D, Dv, slot order): "scattered" draws distinct random slots, "pages"
# takes contiguous runs, as a prefill writing into freshly allocated pages does.
_SHAPES = (
    (0, 2, 64, 64, "scattered"),
    (1, 1, 64, 64, "scattered"),
    (7, 2, 128, 128, "scattered"),
    (33, 8, 128, 128, "scattered"),
    (13, 4, 96, 64, "scattered"),
    (40, 8, 128, 128, "pages"),
)


def _cases() -> list[Case]:
    cases = []
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for n, kv_heads, dim, v_dim, order in _SHAPES:
            name = case_name(dtype, f"N{n}", f"Hkv{kv_heads}", f"D{dim}", f"Dv{v_dim}", order)
            params = {"tokens": n, "kv_heads": kv_heads, "head_dim": dim,
                      "v_head_dim": v_dim, "order": order}
            cases.append(Case("kv.store", name, dtype, params))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    n, slots = p["tokens"], 2 * p["tokens"] + 5
    if p["order"] == "pages":
        start = 1 + int(torch.randint(0, slots - n, (1,), generator=gen))
        loc = torch.arange(start, start + n, dtype=torch.int64)
    else:
        loc = (torch.randperm(slots - 1, generator=gen)[:n] + 1).to(torch.int64)
    return {
        "k_cache": randn(gen, slots, p["kv_heads"], p["head_dim"], dtype=dt),
        "v_cache": randn(gen, slots, p["kv_heads"], p["v_head_dim"], dtype=dt),
        "loc": loc,
        "k": randn(gen, n, p["kv_heads"], p["head_dim"], dtype=dt),
        "v": randn(gen, n, p["kv_heads"], p["v_head_dim"], dtype=dt),
    }


SPEC = register_spec(
    OpSpec(
        name="kv.store",
        signature=(
            "(k_cache[S,Hkv,D], v_cache[S,Hkv,Dv], loc[N] int64, k[N,Hkv,D], v[N,Hkv,Dv]) "
            "-> None; writes k/v into slots loc of the caches"
        ),
        reference=store,
        cases=_cases,
        make_inputs=_inputs,
        tolerances={dt: Tolerance() for dt in (torch.float32, torch.bfloat16, torch.float16)},
        metric=EXACT,
        mutates=("k_cache", "v_cache"),
    )
)
