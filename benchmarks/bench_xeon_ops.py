"""xeon kernels against the reference kernels at realistic serving sizes (CPU).

    python benchmarks/bench_xeon_ops.py [--threads N] [--repeat 5] [--json out.jsonl]

Both kernels come from the same registry the engine uses. Times are medians of `--repeat`
runs after one warm-up; the ratio is reference time / xeon time (above 1: xeon is faster).
Shapes: a Llama-3.1-8B attention layer (32 heads, 8 KV heads, head_dim 128) and its
4096x4096 projection, in bfloat16.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time

import torch
from sglang.backend.discovery import discover


def paged_batch(
    batch: int, context: int, new: int, heads=32, kv_heads=8, dim=128, dtype=torch.bfloat16
):
    """KV cache with `batch` sequences of `context` tokens (the last `new` of them new),
    slots scattered over a pool twice as large."""
    gen = torch.Generator().manual_seed(0)
    slots = batch * context * 2 + 1
    k_cache = torch.randn(slots, kv_heads, dim, generator=gen).to(dtype)
    v_cache = torch.randn(slots, kv_heads, dim, generator=gen).to(dtype)
    perm = torch.randperm(slots - 1, generator=gen)[: batch * context] + 1
    kv_indptr = torch.arange(batch + 1, dtype=torch.int32) * context
    qo_indptr = torch.arange(batch + 1, dtype=torch.int32) * new
    q = torch.randn(batch * new, heads, dim, generator=gen).to(dtype)
    return dict(
        q=q,
        k_cache=k_cache,
        v_cache=v_cache,
        kv_indptr=kv_indptr,
        kv_indices=perm.to(torch.int64),
        sm_scale=dim**-0.5,
    ), qo_indptr


def cases():
    for b, ctx in ((1, 1024), (8, 1024), (32, 1024), (8, 4096)):
        args, _ = paged_batch(b, ctx, 1)
        yield "attention.decode", f"B={b} ctx={ctx}", args
    for b, prefix, new in ((1, 0, 512), (2, 512, 256), (4, 1024, 128)):
        args, qo = paged_batch(b, prefix + new, new)
        args["qo_indptr"] = qo
        yield "attention.extend", f"B={b} prefix={prefix} new={new}", args
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4096, 4096, generator=gen).to(torch.bfloat16)
    for m in (1, 16, 128):
        x = torch.randn(m, 4096, generator=gen).to(torch.bfloat16)
        yield "gemm.dense", f"M={m} K=N=4096", dict(x=x, weight=w)


def median_time(fn, args, repeat: int) -> float:
    fn(**args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(**args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    found = discover()
    reg, xeon = found.registry, found.backends["xeon"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = "?"
    print(
        f"machine: {xeon.create_runtime(device_index=0).device_name()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, commit {commit}"
    )
    print("| op | shape | reference ms | xeon ms | ratio |")
    print("|---|---|---|---|---|")
    rows = []
    for op, shape, args in cases():
        ref, _ = reg.backend_kernel(op, "reference")
        fast, _ = reg.backend_kernel(op, "xeon", xeon.capabilities)
        t_ref = median_time(ref.fn, args, a.repeat)
        t_fast = median_time(fast.fn, args, a.repeat)
        row = dict(
            op=op,
            shape=shape,
            reference_ms=t_ref * 1e3,
            xeon_ms=t_fast * 1e3,
            ratio=t_ref / t_fast,
            xeon_kernel=fast.name,
            commit=commit,
            threads=torch.get_num_threads(),
            machine=platform.machine(),
        )
        rows.append(row)
        print(
            f"| {op} | {shape} | {t_ref * 1e3:.2f} | {t_fast * 1e3:.2f} | {t_ref / t_fast:.2f}x |",
            flush=True,
        )
    if a.json:
        with open(a.json, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
