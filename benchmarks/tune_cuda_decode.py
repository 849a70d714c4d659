"""Times the cuda backend's decode attention over launch parameters, and the Llama-3.1-8B GEMMs
at decode batch sizes, on one GPU: what a decode step at batch B and context L should cost.

    python3 benchmarks/tune_cuda_decode.py [--batches 1 8 64 128 256] [--context 1024]

Prints, per (batch, context), each launch tried with its median time and the KV bytes it read
per second, best first; then the GEMM times (cuBLAS through torch) for the layer's four
projections and the LM head. The KV cache holds each sequence's tokens in consecutive slots
(as the allocator gives a fresh prefill) or, with --shuffle, in random slots.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys

import torch
from sglang_triton import attention

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB, LAYERS = 4096, 32, 8, 128, 14336, 128256, 32
GEMM_SHAPES = {  # name: (K, N) of one layer's projections (qkv and gate_up fused) and the head
    "qkv": (HIDDEN, (HEADS + 2 * KV_HEADS) * HEAD_DIM),
    "o": (HEADS * HEAD_DIM, HIDDEN),
    "gate_up": (HIDDEN, 2 * INTER),
    "down": (INTER, HIDDEN),
    "lm_head": (HIDDEN, VOCAB),
}


def timed(fn, reps: int = 20, per_graph: int = 10) -> float:
    """Median seconds of one fn() call: fn is captured `per_graph` times into a CUDA graph
    (so host launch cost does not count, as in a decode graph) and the graph replayed `reps`
    times between CUDA events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(per_graph):
            fn()
    graph.replay()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3 / per_graph)
    return statistics.median(times)


def attention_case(batch: int, context: int, shuffle: bool, launches: list[dict]) -> list[dict]:
    dev = torch.device("cuda")
    slots = batch * context + 1
    k = torch.randn(slots, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16, device=dev)
    v = torch.randn_like(k)
    q = torch.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16, device=dev)
    indptr = torch.arange(0, batch + 1, dtype=torch.int32, device=dev) * context
    indices = torch.arange(1, slots, dtype=torch.int32, device=dev)
    if shuffle:
        indices = indices[torch.randperm(indices.numel(), device=dev)]
    scale = HEAD_DIM**-0.5
    ref = attention.decode(q, k, v, indptr, indices, scale)
    kv_bytes = batch * context * KV_HEADS * HEAD_DIM * 2 * 2
    rows = []
    for launch in launches:
        try:
            out = attention.decode(q, k, v, indptr, indices, scale, launch=launch)
            err = (out.float() - ref.float()).abs().max().item()

            def call(launch=launch):
                return attention.decode(q, k, v, indptr, indices, scale, launch=launch)

            t = timed(call)
        except Exception as e:  # a launch the compiler refuses (shared memory, registers)
            rows.append({**launch, "error": f"{type(e).__name__}: {str(e)[:80]}"})
            continue
        rows.append({**launch, "us": t * 1e6, "GBps": kv_bytes / t / 1e9, "max_err": err})
    return sorted(rows, key=lambda r: r.get("us", float("inf")))


def gemm_rows(batches: list[int]) -> list[dict]:
    dev = torch.device("cuda")
    shapes = GEMM_SHAPES
    weights = {
        n: torch.randn(o, i, dtype=torch.bfloat16, device=dev) for n, (i, o) in shapes.items()
    }
    rows = []
    for m in batches:
        total = 0.0
        row = {"batch": m}
        for name, (i, _) in shapes.items():
            x = torch.randn(m, i, dtype=torch.bfloat16, device=dev)
            w = weights[name]
            t = timed(lambda x=x, w=w: torch.nn.functional.linear(x, w))
            row[name + "_us"] = t * 1e6
            total += t * (1 if name == "lm_head" else LAYERS)
        row["step_gemm_ms"] = total * 1e3
        rows.append(row)
    return rows


def gemv_rows() -> list[dict]:
    """The batch-1 GEMMs: cuBLAS (F.linear) against the Triton GEMV over launch parameters."""
    from sglang_triton import gemv

    dev = torch.device("cuda")
    shapes = GEMM_SHAPES
    launches = [
        {"block_n": bn, "block_k": bk, "num_warps": w, "num_stages": st}
        for bn, bk, w, st in itertools.product((4, 8, 16, 32), (256, 512, 1024), (4, 8), (2, 3, 4))
        if bn * bk <= 2048 * w
    ]
    rows = []
    totals = {"cublas": 0.0}
    for name, (k, n) in shapes.items():
        w = torch.randn(n, k, dtype=torch.bfloat16, device=dev) * 0.02
        x = torch.randn(1, k, dtype=torch.bfloat16, device=dev)
        ref = torch.nn.functional.linear(x, w)
        t_ref = timed(lambda x=x, w=w: torch.nn.functional.linear(x, w))
        layers = 1 if name == "lm_head" else LAYERS
        totals["cublas"] += t_ref * layers
        gbps = n * k * 2 / 1e9
        row = {"shape": name, "cublas_us": t_ref * 1e6, "cublas_GBps": gbps / t_ref}
        for launch in launches:
            key = "{block_n}x{block_k}/w{num_warps}/s{num_stages}".format(**launch)
            try:
                out = gemv.gemv(x, w, launch=launch)
                err = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                t = timed(lambda x=x, w=w, launch=launch: gemv.gemv(x, w, launch=launch))
            except Exception as e:  # noqa: BLE001 - a launch the compiler refuses
                row[key] = f"error {type(e).__name__}"
                continue
            row[key] = round(t * 1e6, 2)
            totals[key] = totals.get(key, 0.0) + t * layers
            row.setdefault("max_rel_err", 0.0)
            row["max_rel_err"] = max(row["max_rel_err"], err)
        rows.append(row)
        best = min((v, k2) for k2, v in row.items() if "/" in k2 and isinstance(v, float))
        print(
            f"   {name}: cuBLAS {t_ref * 1e6:.1f} us ({gbps / t_ref:.0f} GB/s), best GEMV "
            f"{best[1]} {best[0]:.1f} us ({gbps / best[0] * 1e6:.0f} GB/s), "
            f"max rel err {row.get('max_rel_err', 0):.2e}",
            flush=True,
        )
    ranked = sorted((v, k2) for k2, v in totals.items() if len(k2) > 0)
    print("   per-step totals (32 layers + LM head), ms:", flush=True)
    for v, k2 in ranked[:8]:
        print(f"     {k2}: {v * 1e3:.3f}", flush=True)
    print(f"     cublas: {totals['cublas'] * 1e3:.3f}", flush=True)
    rows.append({"shape": "step_total_ms", **{k2: v * 1e3 for k2, v in totals.items()}})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 128, 256])
    ap.add_argument("--context", type=int, nargs="+", default=[1024])
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--out", default=None, help="JSON lines of every row")
    ap.add_argument("--gemv", action="store_true", help="also the batch-1 GEMV sweep")
    args = ap.parse_args(argv)
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    launches = [
        {"block_n": bn, "num_warps": w, "num_stages": s, "programs_per_sm": 2}
        for bn, w, s in itertools.product((32, 64, 128), (4, 8), (1, 2, 3, 4))
        if not (bn == 128 and s == 4)
    ] + [
        {"block_n": bn, "num_warps": 4, "num_stages": s, "programs_per_sm": p}
        for bn, s, p in itertools.product((32, 64), (2, 3), (4, 8, 16))
    ]
    results = []
    for batch, context in itertools.product(args.batches, args.context):
        if batch <= 0:  # --batches 0: no attention sweep
            continue
        rows = attention_case(batch, context, args.shuffle, launches)
        mine = {**attention.DECODE_LAUNCH, "block_n": 64}
        default = next(r for r in rows if all(r.get(k) == v for k, v in mine.items()))
        print(
            f"\n== attention.decode batch {batch} context {context}: default "
            f"{default.get('us', 0):.1f} us ({default.get('GBps', 0):.0f} GB/s) x {LAYERS} "
            f"layers = {default.get('us', 0) * LAYERS / 1e3:.2f} ms",
            flush=True,
        )
        for r in rows[:8]:
            print("   ", json.dumps(r), flush=True)
        results += [{"case": "attention", "batch": batch, "context": context, **r} for r in rows]
    print("\n== GEMMs (bf16, cuBLAS via torch), per layer us; step = 32 layers + LM head")
    for r in gemm_rows([b for b in args.batches if b > 0]):
        print("   ", json.dumps({k: round(v, 1) for k, v in r.items()}), flush=True)
        results.append({"case": "gemm", **r})
    if args.gemv:
        print("\n== batch-1 GEMMs: cuBLAS against the Triton GEMV", flush=True)
        results += [{"case": "gemv", **r} for r in gemv_rows()]
    if args.out:
        with open(args.out, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
