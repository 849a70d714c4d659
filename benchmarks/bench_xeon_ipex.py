"""Every available xeon kernel of an op against the others (IPEX, native C++, torch) at the
bench_xeon_ops shapes, to choose their priorities. Needs a venv where IPEX matches torch
(IPEX 2.8 with torch 2.8):

    python benchmarks/bench_xeon_ipex.py [--threads N] [--repeat 5]

Times are medians of --repeat runs after one warm-up, in milliseconds, bfloat16, Llama-3.1-8B
sizes (32 heads, 8 KV heads, head_dim 128, hidden 4096, intermediate 14336).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sglang.backend.discovery import discover

sys.path.insert(0, str(Path(__file__).parent))
from bench_xeon_ops import cases, median_time  # noqa: E402


def small_op_cases():
    gen = torch.Generator().manual_seed(0)
    bf16 = torch.bfloat16
    w = torch.randn(4096, generator=gen).to(bf16)
    cache = torch.randn(8192, 128, generator=gen)
    for t in (1, 16, 512):
        x = torch.randn(t, 4096, generator=gen).to(bf16)
        yield "norm.rms", f"T={t} D=4096", dict(x=x, weight=w, eps=1e-6)
        yield "norm.rms", f"T={t} D=4096 +residual", dict(x=x, weight=w, eps=1e-6, residual=x)
        gate_up = torch.randn(t, 2 * 14336, generator=gen).to(bf16)
        yield "act.silu_mul", f"T={t} I=14336", dict(x=gate_up)
        q = torch.randn(t, 32, 128, generator=gen).to(bf16)
        k = torch.randn(t, 8, 128, generator=gen).to(bf16)
        pos = torch.randint(0, 8192, (t,), generator=gen)
        yield (
            "rope",
            f"T={t} H=32 KV=8",
            dict(positions=pos, q=q, k=k, cos_sin_cache=cache, is_neox=True),
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    found = discover()
    xeon = found.backends["xeon"]
    print(
        f"{xeon.create_runtime(device_index=0).device_name()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}"
    )
    print("| op | shape | kernel | ms |")
    print("|---|---|---|---|")
    for op, shape, args in [*small_op_cases(), *cases()]:
        if op == "gemm.dense":
            continue
        for k in found.registry.kernels(op, "xeon"):
            if k.reject_reason(xeon.capabilities, {"dtype": torch.bfloat16}):
                continue
            ms = median_time(k.fn, args, a.repeat) * 1e3
            print(f"| {op} | {shape} | {k.name} | {ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
