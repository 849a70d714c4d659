"""The Triton MLA kernels (sglang_triton.mla) on one GPU at DeepSeek-V2-Lite's geometry (16 heads,
R 512, P 64, Dn 128, Dv 128, bfloat16), one layer: mla_decode at batch x context, with the
bandwidth of its latent reads (B * L * 576 * 2 bytes), and mla_extend's two paths (absorbed,
un-absorbed; the default takes the first up to absorb_max_tokens new tokens) at new x
cached-prefix tokens. Times are CUDA events over replays of a CUDA graph of 20 calls (launch
overhead excluded; the un-absorbed extend, which a capture never takes, runs eagerly), one
JSON line each.

    python3 benchmarks/bench_mla.py --out mla.jsonl [--heads 128]
"""

from __future__ import annotations

import argparse
import functools
import json

import torch

DECODE = ((1, 1024), (1, 4096), (1, 32768), (16, 4096), (64, 1024), (256, 1024))
# mla_decode launch candidates for --tune (block_h stays 16: more rows spill on sm_90)
TUNE = [
    {"block_n": n, "num_warps": w, "num_stages": st, "min_split": 64}
    for n in (16, 32, 64)
    for w in (4, 8)
    for st in (2, 3)
] + [{"block_n": 32, "num_warps": 8, "num_stages": 2, "min_split": m} for m in (32, 128)]
TUNE_SHAPES = ((1, 1024), (1, 8192), (64, 1024), (256, 2048))
EXTEND = ((16, 4096), (128, 0), (256, 2048), (512, 0), (2048, 0), (4096, 0))


def timed(fn, reps: int = 20, graph: bool = True) -> float:
    """Microseconds a call, from a graph of `reps` calls (eager calls with graph False)."""
    fn()
    torch.cuda.synchronize()
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(reps):
                fn()
        run = g.replay
    else:

        def run():
            for _ in range(reps):
                fn()

    run()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000 / (5 * reps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="mla.jsonl")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument(
        "--tune",
        action="store_true",
        help="also time mla_decode's launch candidates (TUNE) at a few shapes; best first",
    )
    args = p.parse_args()
    from sglang_triton import mla

    dev, dt = torch.device("cuda"), torch.bfloat16
    heads, rank, rope, nope, v_dim = args.heads, 512, 64, 128, 128
    slots = 300_000
    cache = torch.randn(slots, 1, rank + rope, device=dev, dtype=dt)
    w_kc = torch.randn(heads, nope, rank, device=dev, dtype=dt) * rank**-0.5
    w_vc = torch.randn(heads, v_dim, rank, device=dev, dtype=dt) * rank**-0.5
    rows = []
    for batch, ctx in DECODE:
        q = torch.randn(batch, heads, rank + rope, device=dev, dtype=dt)
        kv_indptr = torch.arange(batch + 1, device=dev, dtype=torch.int32) * ctx
        kv_indices = torch.randint(1, slots, (batch * ctx,), device=dev, dtype=torch.int64)
        us = timed(functools.partial(mla.mla_decode, q, cache, kv_indptr, kv_indices, 0.04, rank))
        gbs = batch * ctx * (rank + rope) * 2 / us / 1e3
        rows.append(
            {
                "op": "mla_decode",
                "heads": heads,
                "batch": batch,
                "ctx": ctx,
                "us": us,
                "latent_GB_s": round(gbs, 1),
            }
        )
    for new, prefix in EXTEND:
        q = torch.randn(new, heads, nope + rope, device=dev, dtype=dt)
        qo = torch.tensor([0, new], device=dev, dtype=torch.int32)
        kv_indptr = torch.tensor([0, new + prefix], device=dev, dtype=torch.int32)
        kv_indices = torch.randint(1, slots, (new + prefix,), device=dev, dtype=torch.int64)
        # both paths at every size (absorb_max_tokens's crossover): the absorbed one in a
        # graph, the un-absorbed one (which a capture never takes) eagerly
        call = functools.partial(
            mla.mla_extend, q, cache, qo, kv_indptr, kv_indices, w_kc, w_vc, 0.07
        )
        absorbed = timed(functools.partial(call, launch={"absorb_max_tokens": 1 << 30}))
        never = {"absorb_max_tokens": 0, "unabsorbed_max_keys_per_token": 1 << 30}
        unabsorbed = timed(functools.partial(call, launch=never), graph=False)
        rows.append(
            {
                "op": "mla_extend",
                "heads": heads,
                "new": new,
                "prefix": prefix,
                "us": min(absorbed, unabsorbed),
                "absorbed_us": round(absorbed, 1),
                "unabsorbed_us": round(unabsorbed, 1),
                "default_path": "absorbed"
                if new <= mla.MLA_EXTEND_LAUNCH["absorb_max_tokens"]
                or new + prefix > mla.MLA_EXTEND_LAUNCH["unabsorbed_max_keys_per_token"] * new
                else "un-absorbed",
            }
        )
    for batch, ctx in TUNE_SHAPES if args.tune else ():
        q = torch.randn(batch, heads, rank + rope, device=dev, dtype=dt)
        kv_indptr = torch.arange(batch + 1, device=dev, dtype=torch.int32) * ctx
        kv_indices = torch.randint(1, slots, (batch * ctx,), device=dev, dtype=torch.int64)
        call = functools.partial(mla.mla_decode, q, cache, kv_indptr, kv_indices, 0.04, rank)
        times = []
        for launch in TUNE:
            try:
                times.append((timed(functools.partial(call, launch=launch)), launch))
            except Exception as e:  # noqa: BLE001 - a launch the GPU refuses (shared memory)
                print(f"skip {launch}: {type(e).__name__}")
        times.sort(key=lambda t: t[0])
        for us, launch in times[:3]:
            rows.append(
                {
                    "op": "mla_decode_tune",
                    "heads": heads,
                    "batch": batch,
                    "ctx": ctx,
                    "us": us,
                    "launch": launch,
                    "default_us": next(
                        (t for t, c in times if all(c[k] == mla.MLA_DECODE_LAUNCH[k] for k in c)),
                        None,
                    ),
                }
            )
    with open(args.out, "a") as f:
        for row in rows:
            row = {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
            print(json.dumps(row))
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
