"""kv.store: write the new tokens' keys and values into their slots of the KV cache."""

from __future__ import annotations

import torch

from sglang.ops.spec import EXACT, Case, OpSpec, Tolerance, case_name, randn
from sglang.ops.specs import register_spec

FP8_CACHES = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


def to_cache(x: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """x / scale in the cache's dtype; fp8 saturates at its largest finite value (e4m3fn has no
    infinity, and a cast past it is NaN)."""
    if dtype.itemsize != 1:
        return (x / scale if scale != 1.0 else x).to(dtype)
    top = torch.finfo(dtype).max
    return (x.to(torch.float32) / scale).clamp(-top, top).to(dtype)


def store(
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    loc: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
) -> None:
    """k_cache: [S, Hkv, D], v_cache: [S, Hkv, Dv], loc: [N] int64 distinct slots,
    k: [N, Hkv, D], v: [N, Hkv, Dv]. Mutates the caches: k_cache[loc[i]] = k[i] / k_scale and
    v_cache[loc[i]] = v[i] / v_scale (cast to the cache's dtype, saturating for fp8 caches;
    the scales are 1 for 16/32-bit caches); every other slot is left as it was.
    Slot 0 is the reserved padding slot and never appears in loc."""
    k_cache[loc] = to_cache(k, k_scale, k_cache.dtype)
    v_cache[loc] = to_cache(v, v_scale, v_cache.dtype)


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
            params = {
                "tokens": n,
                "kv_heads": kv_heads,
                "head_dim": dim,
                "v_head_dim": v_dim,
                "order": order,
            }
            cases.append(Case("kv.store", name, dtype, params))
        if dtype == torch.float16:
            continue
        for kv_cache in FP8_CACHES:  # power-of-two scales: exact divisions on every side
            for n, kv_heads, dim, v_dim, order in _SHAPES[1:4]:
                name = case_name(dtype, f"N{n}", f"Hkv{kv_heads}", f"D{dim}", order, kv_cache)
                params = {
                    "tokens": n,
                    "kv_heads": kv_heads,
                    "head_dim": dim,
                    "v_head_dim": v_dim,
                    "order": order,
                    "kv_cache": kv_cache,
                }
                cases.append(Case("kv.store", name, dtype, params, (f"kv_cache:{kv_cache}",)))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    n, slots = p["tokens"], 2 * p["tokens"] + 5
    if p["order"] == "pages":
        start = 1 + int(torch.randint(0, slots - n, (1,), generator=gen))
        loc = torch.arange(start, start + n, dtype=torch.int64)
    else:
        loc = (torch.randperm(slots - 1, generator=gen)[:n] + 1).to(torch.int64)
    cache_dt = FP8_CACHES[p["kv_cache"]] if p.get("kv_cache") else dt
    args = {
        "k_cache": randn(gen, slots, p["kv_heads"], p["head_dim"], dtype=dt).to(cache_dt),
        "v_cache": randn(gen, slots, p["kv_heads"], p["v_head_dim"], dtype=dt).to(cache_dt),
        "loc": loc,
        "k": randn(
            gen, n, p["kv_heads"], p["head_dim"], dtype=dt, scale=8.0 if p.get("kv_cache") else 1.0
        ),
        "v": randn(gen, n, p["kv_heads"], p["v_head_dim"], dtype=dt),
    }
    if p.get("kv_cache"):
        args["k_scale"], args["v_scale"] = 0.0625, 0.5  # k values past e4m3's 448 saturate
    return args


SPEC = register_spec(
    OpSpec(
        name="kv.store",
        signature=(
            "(k_cache[S,Hkv,D], v_cache[S,Hkv,Dv], loc[N] int64, k[N,Hkv,D], v[N,Hkv,Dv], "
            "k_scale=1.0, v_scale=1.0) -> None; writes k/k_scale, v/v_scale into slots loc"
        ),
        reference=store,
        cases=_cases,
        make_inputs=_inputs,
        tolerances={dt: Tolerance() for dt in (torch.float32, torch.bfloat16, torch.float16)},
        metric=EXACT,
        mutates=("k_cache", "v_cache"),
    )
)
