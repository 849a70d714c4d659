"""Times the few-row (decode) kernels against the paths they replace, at M = 1, on one GPU:

  fp8    gemm.fp8, 128x128 block scales: kernels.gemv_fp8 vs the torch activation
         quantization + Triton scaled GEMM (Llama-3.1-8B shapes)
  int4   gemm.int4 (AWQ layout, group 128, prepared): gemv_int4 vs the tiled W4A16 kernel
  dense  gemm.dense in bfloat16: sglang_triton.gemv (the default at one row) vs cuBLAS (F.linear)
  moe    moe.experts, Qwen3-30B-A3B experts (128 experts, hidden 2048, intermediate 768,
         top-8, bfloat16): moe_decode vs the aligned-block fused MoE

    python3 benchmarks/bench_decode_gemv.py [--only fp8,int4,dense,moe] [--out FILE.jsonl]
    python3 benchmarks/bench_decode_gemv.py --check   # no GPU: tiny shapes, the interpreter

Each call is captured in a CUDA graph (no host launch cost, as in a decode graph), cycling
through enough copies of the weights that they do not sit in L2 (50 MB on an H200). Prints the
median time per call and the weight bytes read per second, per launch configuration, and the
largest difference from the old path relative to its largest output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import torch

SHAPES_8B = {
    "qkv": (6144, 4096),
    "o": (4096, 4096),
    "gate_up": (28672, 4096),
    "down": (4096, 14336),
}  # name: (N, K)
SHAPES_QWEN3 = {  # Qwen3-30B-A3B's dense linears: hidden 2048, 32 q + 2 x 4 kv heads of 128
    "qkv": (5120, 2048),
    "o": (2048, 4096),
    "router": (128, 2048),
}
QWEN3_MOE = {"experts": 128, "hidden": 2048, "inter": 768, "top_k": 8}
FP8_LAUNCHES = [  # the GEMV (x quantized once per call, float32 FMAs) and "mma": tensor cores
    None,
    {"block_n": 32, "block_k": 256, "num_warps": 8, "split_k": "auto"},
    {"mma": True, "block_n": 64, "num_warps": 4, "num_stages": 3, "split_k": "auto"},
    {"mma": True, "block_n": 64, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"mma": True, "block_n": 64, "num_warps": 4, "num_stages": 6, "split_k": "auto"},
    {"mma": True, "block_n": 64, "num_warps": 4, "num_stages": 4, "split_k": "auto", "waves": 8},
    {"mma": True, "block_n": 128, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"mma": True, "block_n": 128, "num_warps": 4, "num_stages": 6, "split_k": "auto"},
    {"mma": True, "block_n": 128, "num_warps": 8, "num_stages": 4, "split_k": "auto"},
    {"mma": True, "block_n": 32, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"mma": "fused", "block_n": 64, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"mma": "fused", "block_n": 128, "num_warps": 8, "num_stages": 4, "split_k": "auto"},
    # the cuda backend's CUDA C++ tensor-core kernel (gemv_fp8_cuda; lost on the H200, 12-05)
    {"cuda": {"enabled": True}},
    # its CUDA-core kernel at one row, x quantized inside (gemv_fp8_rows_cuda)
    {"rows_cuda": {"enabled": True}},
    {"rows_cuda": {"enabled": True, "cvt": 0}},
    {"rows_cuda": {"enabled": True, "min_blocks": 1}},
    {"rows_cuda": {"enabled": True, "early": True}},
    {"rows_cuda": {"enabled": True, "rows": 4}},
    {"rows_cuda": {"enabled": True, "rows": 16, "warps": 4}},
    {"rows_cuda": {"enabled": True, "unroll": 2}},
]
INT4_LAUNCHES = [  # None: the default (the tensor-core kernel for bf16 x); "mma": False: the
    # CUDA-core GEMV (its words are rows of N: wide blocks of N, split along K)
    None,
    {"mma": False, "block_n": 128, "block_k": 128, "num_warps": 4, "split_k": "auto"},
    {"block_n": 64, "num_warps": 4, "num_stages": 3, "split_k": "auto"},
    {"block_n": 128, "num_warps": 4, "num_stages": 2, "split_k": "auto"},
    {"block_n": 128, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"block_n": 128, "num_warps": 4, "num_stages": 3, "split_k": "auto", "waves": 2},
    {"block_n": 128, "num_warps": 4, "num_stages": 3, "split_k": "auto", "waves": 8},
    {"block_n": 256, "num_warps": 4, "num_stages": 3, "split_k": "auto"},
    {"block_n": 256, "num_warps": 8, "num_stages": 3, "split_k": "auto"},
    {"block_n": 128, "num_warps": 4, "num_stages": 3, "split_k": "auto", "ones": True},
    {"block_n": 128, "num_warps": 4, "num_stages": 3, "split_k": "auto", "asm": False},
    # the CUDA C++ tensor-core GEMV of the cuda backend (sglang_cuda.kernels.gemv_int4_cuda)
    {"cuda": {"enabled": True, "warps": "auto"}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 4}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 4, "early": True}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 3}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 2}},
    {"cuda": {"enabled": True, "warps": 4, "stages": 4}},
    {"cuda": {"enabled": True, "warps": 8, "stages": 4}},
    {"cuda": {"enabled": True, "warps": 16, "stages": 4}},
    {"cuda": {"enabled": True, "warps": 4, "stages": 0}},
    {"cuda": {"enabled": True, "warps": 8, "stages": 0}},
    {"cuda": {"enabled": True, "warps": 16, "stages": 0}},
    # fewer warps a block (gate_up's 896 blocks in one wave), L2 prefetch ahead of the buffers
    {"cuda": {"enabled": True, "warps": 2, "stages": 0}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 0, "prefetch": 2}},
    # a ring of 16-byte registers: N chunks of weights in flight a warp (at most 128 registers)
    {"cuda": {"enabled": True, "warps": "auto", "stages": 0, "ring": 2}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 0, "ring": 3}},
    {"cuda": {"enabled": True, "warps": "auto", "stages": 0, "ring": 4}},
    {"cuda": {"enabled": True, "warps": "auto", "min_warps": 4, "stages": 0, "ring": 4}},
    # the CUDA-core GEMV at one row (sglang_cuda.kernels.gemv_int4_fma_cuda): x staged in shared
    # memory as f16 pairs, nibbles as f16 by masks, packed f16 FMAs, ~80 registers
    {"cuda_fma": {"enabled": True}},
    {"cuda_fma": {"enabled": True, "center": True}},
    {"cuda_fma": {"enabled": True, "early": True}},
    {"cuda_fma": {"enabled": True, "per_sm": 16}},
    {"cuda_fma": {"enabled": True, "per_sm": 20}},
    {"cuda_fma": {"enabled": True, "buffers": 3, "per_sm": 16}},
    {"cuda_fma": {"enabled": True, "min_warps": 4}},
    {"cuda_fma": {"enabled": True, "warps": 8}},
    {"cuda_fma": {"enabled": True, "warps": 16}},
]
DENSE_LAUNCHES = [
    None,
    {"split_k": "auto"},
    {"block_n": 16, "block_k": 512, "num_warps": 4, "split_k": "auto"},
    {"block_n": 8, "block_k": 1024, "num_warps": 4, "split_k": "auto"},
    {"block_n": 32, "block_k": 512, "num_warps": 8, "split_k": "auto"},
]
SMALL_LAUNCHES = [  # candidates for the small shapes (gemv.SMALL_LAUNCH), all keys given
    {"block_n": 16, "block_k": 1024, "num_warps": 8, "split_k": "auto"},
    {"block_n": 16, "block_k": 512, "num_warps": 4, "split_k": "auto"},
    {"block_n": 16, "block_k": 512, "num_warps": 8, "split_k": "auto"},
    {"block_n": 8, "block_k": 1024, "num_warps": 4, "split_k": "auto"},
    {"block_n": 8, "block_k": 512, "num_warps": 4, "split_k": "auto"},
    {"block_n": 4, "block_k": 512, "num_warps": 4, "split_k": "auto"},
    {"block_n": 8, "block_k": 256, "num_warps": 2, "split_k": "auto"},
    {"block_n": 16, "block_k": 256, "num_warps": 4, "split_k": "auto"},
    {"block_n": 32, "block_k": 256, "num_warps": 4, "split_k": "auto"},
    {"block_n": 8, "block_k": 512, "num_warps": 4, "split_k": 1},
    {"block_n": 4, "block_k": 1024, "num_warps": 4, "split_k": 1},
    {"block_n": 8, "block_k": 1024, "num_warps": 4, "split_k": 1},
]
SMALL_LAUNCHES = [dict(c, num_stages=3) for c in SMALL_LAUNCHES]
_GU = {"num_stages": 3}
_DN = {"num_stages": 3, "split": True}
MOE_GATE_UP = [  # gate/up candidates, timed with the default down (and the other way round)
    {"block_n": 8, "block_k": 256, "num_warps": 4},
    {"block_n": 8, "block_k": 512, "num_warps": 4},
    {"block_n": 8, "block_k": 256, "num_warps": 2},
    {"block_n": 4, "block_k": 512, "num_warps": 4},
    {"block_n": 16, "block_k": 128, "num_warps": 4},
    {"block_n": 32, "block_k": 128, "num_warps": 8},
]
MOE_DOWN = [
    {"block_n": 8, "block_k": 256, "num_warps": 4},
    {"block_n": 16, "block_k": 256, "num_warps": 4},
    {"block_n": 32, "block_k": 256, "num_warps": 8},
    {"block_n": 16, "block_k": 128, "num_warps": 4},
    {"block_n": 8, "block_k": 128, "num_warps": 2},
    {"block_n": 32, "block_k": 128, "num_warps": 4},
]
MOE_SWEEP = (
    [None]
    + [{"gate_up": dict(c, **_GU)} for c in MOE_GATE_UP]
    + [{"down": dict(c, **_DN)} for c in MOE_DOWN]
)
MOE_LAUNCHES = [
    None,
    {
        "gate_up": {"block_n": 8, "block_k": 512, "num_warps": 4},
        "down": {"block_n": 8, "block_k": 256, "num_warps": 4},
    },
    {
        "gate_up": {"block_n": 16, "block_k": 256, "num_warps": 4},
        "down": {"block_n": 16, "block_k": 256, "num_warps": 8, "split": True},
    },
    {
        "gate_up": {"block_n": 8, "block_k": 256, "num_warps": 4},
        "down": {"block_n": 16, "block_k": 256, "num_warps": 4},
    },
]
ROWS_MS = (1, 2, 4, 8, 16)
ROWS_LAUNCHES = [  # gemv.ROWS_LAUNCH candidates (tensor-core rows kernel); "gemv": the FMA GEMV
    {"block_n": 64, "block_k": 256, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"block_n": 64, "block_k": 128, "num_warps": 4, "num_stages": 4, "split_k": "auto"},
    {"block_n": 64, "block_k": 256, "num_warps": 4, "num_stages": 3, "split_k": 1},
    {"block_n": 64, "block_k": 512, "num_warps": 4, "num_stages": 3, "split_k": "auto"},
    {"block_n": 128, "block_k": 128, "num_warps": 8, "num_stages": 3, "split_k": "auto"},
    {"block_n": 128, "block_k": 256, "num_warps": 8, "num_stages": 3, "split_k": "auto"},
    {"block_n": 32, "block_k": 256, "num_warps": 2, "num_stages": 4, "split_k": "auto"},
]
L2_SPAN = 256 << 20  # bytes of weight copies cycled through per graph
CHECK = False  # --check: the script's plumbing on the CPU (tiny shapes, one untimed call)
OUT = None  # --out: one JSON line per kernel, written as each finishes (a timeout keeps them)


def timed(calls, reps: int = 20) -> float:
    """Median seconds per call of `calls` (closures over distinct weight copies), each run once
    per CUDA graph replay."""
    if CHECK:
        calls[0]()
        return 1.0
    for fn in calls:
        fn()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        calls[0]()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for fn in calls:
            fn()
    graph.replay()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3 / len(calls))
    return statistics.median(times)


def copies(nbytes: int) -> int:
    return max(2, min(16, -(-L2_SPAN // max(nbytes, 1))))


def compare(name, nbytes, make_old, make_new, launches, rows):
    """make_old() / make_new(launch) -> list of closures returning the output."""
    old_calls = make_old()
    ref = old_calls[0]().float()
    t_old = timed(old_calls)
    row = {"kernel": name, "old_us": t_old * 1e6, "old_GBps": nbytes / t_old / 1e9}
    line = f"{name}: old {t_old * 1e6:8.1f} us {nbytes / t_old / 1e9:7.0f} GB/s"
    for launch in launches:
        key = (
            "default"
            if launch is None
            else "/".join(
                f"{k}{v}" if not isinstance(v, dict) else f"{k}:" + ",".join(map(str, v.values()))
                for k, v in launch.items()
            )
        )
        try:
            new_calls = make_new(launch)
            out = new_calls[0]().float()
            err = ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
            t = timed(new_calls)
        except Exception as e:  # noqa: BLE001 - a launch the compiler refuses
            row[key] = f"error {type(e).__name__}: {e}"[:200]
            line += f" | {key}: {row[key]}"
            continue
        row[key] = {"us": t * 1e6, "GBps": nbytes / t / 1e9, "max_rel_err": err, "launch": launch}
        line += f" | {key}: {t * 1e6:.1f} us {nbytes / t / 1e9:.0f} GB/s err {err:.1e}"
    timed_keys = [k for k, v in row.items() if isinstance(v, dict)]
    if timed_keys:
        best = min(timed_keys, key=lambda k: row[k]["us"])
        line += f"\n  best {name}: {best} {row[best]['us']:.1f} us {row[best]['GBps']:.0f} GB/s"
    print(line, flush=True)
    rows.append(row)
    if OUT:
        with open(OUT, "a") as f:
            f.write(json.dumps(row) + "\n")


def bench_fp8(rows, dev):
    from sglang.ops.quant import fp8 as q8
    from sglang_cuda.kernels import gemm_fp8, gemv_fp8

    for name, (n, k) in SHAPES_8B.items():
        nbytes = n * k + (n // 128) * (k // 128) * 4
        ws = []
        for _ in range(copies(nbytes)):
            wq, s = q8.quantize_fp8_block(torch.randn(n, k, device=dev) * k**-0.5, (128, 128))
            ws.append((wq, s.float()))
        x = torch.randn(1, k, device=dev, dtype=torch.bfloat16)

        def old(x=x, ws=ws):
            gemm_fp8.USE_GEMV = False
            return [lambda w=w: gemm_fp8.fp8(x, w[0], w[1], "block") for w in ws]

        def new(launch, x=x, ws=ws):
            gemm_fp8.USE_GEMV = True
            return [
                lambda w=w: gemv_fp8.gemv_fp8(x, w[0], w[1], "block", launch=launch) for w in ws
            ]

        compare(f"fp8-block {name} {n}x{k}", nbytes, old, new, FP8_LAUNCHES, rows)
        gemm_fp8.USE_GEMV = True


def bench_int4(rows, dev):
    from sglang_triton import gemm_int4, gemv_int4

    g = 128
    for name, (n, k) in SHAPES_8B.items():
        nbytes = n * k // 2 + (k // g) * n * (4 if gemm_int4.PAIRS else 8)  # scales: pairs
        ws = []
        for _ in range(copies(nbytes)):
            raw = {
                "qweight": torch.randint(
                    -(2**31), 2**31 - 1, (k, n // 8), dtype=torch.int32, device=dev
                ),
                "qzeros": torch.randint(
                    -(2**31), 2**31 - 1, (k // g, n // 8), dtype=torch.int32, device=dev
                ),
                # float16 scales served in bfloat16, as an AWQ checkpoint is (prepare keeps them as
                # float16 pairs; random bfloat16 values would take the float32 layout)
                "scales": (
                    torch.rand(k // g, n, device=dev, dtype=torch.float16) * 0.01
                ).bfloat16(),
                "packing": "awq",
                "group_size": g,
            }
            ws.append(gemm_int4.prepare(raw)["qweight"])
        x = torch.randn(1, k, device=dev, dtype=torch.bfloat16)

        def old(x=x, ws=ws):
            gemm_int4.USE_GEMV = False
            return [lambda w=w: gemm_int4.int4(x, w, "awq", g) for w in ws]

        def new(launch, x=x, ws=ws):
            gemm_int4.USE_GEMV = True
            if launch and ("cuda" in launch or "cuda_fma" in launch):  # the cuda backend's own
                from sglang_cuda.kernels import gemm_int4 as cuda_int4  # kernels, no fallback
                from sglang_cuda.kernels import gemv_int4_cuda, gemv_int4_fma_cuda

                if "cuda_fma" in launch:
                    assert gemv_int4_fma_cuda.plan(x, ws[0], launch["cuda_fma"]) is not None
                else:
                    assert gemv_int4_cuda.plan(x, ws[0], launch["cuda"]) is not None
                return [lambda w=w: cuda_int4.int4(x, w, "awq", g, launch=launch) for w in ws]
            return [lambda w=w: gemv_int4.gemv_int4(x, w, launch=launch) for w in ws]

        compare(f"int4-awq {name} {n}x{k}", nbytes, old, new, INT4_LAUNCHES, rows)
        gemm_int4.USE_GEMV = True


def bench_dense(rows, dev, sets=("8b",)):
    import torch.nn.functional as F
    from sglang_triton import gemv

    jobs = []  # (label, shapes, launches)
    if "8b" in sets:
        shapes = dict(SHAPES_8B, **({} if CHECK else {"lm_head": (128256, 4096)}))
        jobs.append(("", shapes, DENSE_LAUNCHES))
    if "qwen3" in sets:
        jobs.append(("qwen3 ", SHAPES_QWEN3, [None] + SMALL_LAUNCHES))
    if "qwen3-head" in sets and not CHECK:
        jobs.append(("qwen3 ", {"lm_head": (151936, 2048)}, [None] + SMALL_LAUNCHES[:2]))
    for label, shapes, launches in jobs:
        for name, (n, k) in shapes.items():
            bench_dense_shape(rows, dev, f"{label}{name}", n, k, launches, F, gemv)


def bench_dense_shape(rows, dev, name, n, k, launches, F, gemv):
    nbytes = n * k * 2
    ws = [
        torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k**-0.5 for _ in range(copies(nbytes))
    ]
    x = torch.randn(1, k, device=dev, dtype=torch.bfloat16)

    def old(x=x, ws=ws):
        return [lambda w=w: F.linear(x, w) for w in ws]

    def new(launch, x=x, ws=ws):
        return [lambda w=w: gemv.gemv(x, w, launch=launch) for w in ws]

    compare(f"dense-bf16 {name} {n}x{k}", nbytes, old, new, launches, rows)


def bench_rows(rows, dev):
    """gemm.dense at 1-16 rows (small decode batches, short prefills): cuBLAS (torch.mm, the
    old path) against gemv.rows' tensor-core kernel, and at one row the FMA GEMV too; then the
    total over the 8B's four linears per launch and row count (Qwen3-30B-A3B's small linears
    are timed too, outside the total)."""
    from sglang_triton import gemv

    for m in ROWS_MS:
        launches = ROWS_LAUNCHES + ([{"gemv": True}] if m == 1 else [])
        shapes = dict(SHAPES_8B, **{f"qwen3-{k}": v for k, v in SHAPES_QWEN3.items()})
        for name, (n, k) in shapes.items():
            nbytes = n * k * 2
            ws = [
                torch.randn(n, k, device=dev, dtype=torch.bfloat16) * k**-0.5
                for _ in range(copies(nbytes))
            ]
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)

            def old(x=x, ws=ws):
                return [lambda w=w: torch.mm(x, w.t()) for w in ws]

            def new(launch, x=x, ws=ws):
                if launch.get("gemv"):
                    return [lambda w=w: gemv.gemv(x, w) for w in ws]
                return [lambda w=w: gemv.rows(x, w, launch=launch) for w in ws]

            compare(f"rows-m{m} {name} {n}x{k}", nbytes, old, new, launches, rows)
        fam = [
            r for r in rows if r["kernel"].startswith(f"rows-m{m} ") and "qwen3" not in r["kernel"]
        ]
        line = f"total rows-m{m}: cuBLAS {sum(r['old_us'] for r in fam):.1f} us"
        for key in [k for k, v in fam[0].items() if isinstance(v, dict)] if fam else []:
            if all(isinstance(r.get(key), dict) for r in fam):
                line += f" | {key}: {sum(r[key]['us'] for r in fam):.1f}"
        print(line, flush=True)


def bench_moe(rows, dev, launches=None):
    from sglang_triton import moe, moe_decode

    e, d, i, k = (QWEN3_MOE[key] for key in ("experts", "hidden", "inter", "top_k"))
    w13 = torch.randn(e, 2 * i, d, device=dev, dtype=torch.bfloat16) * d**-0.5
    w2 = torch.randn(e, d, i, device=dev, dtype=torch.bfloat16) * i**-0.5
    nbytes = k * 3 * d * i * 2  # the top-8 experts' weights
    gen = torch.Generator(device="cpu").manual_seed(0)
    sets = []
    for _ in range(16):  # 16 different expert choices (128 experts: little L2 reuse)
        ids = torch.randperm(e, generator=gen)[:k].view(1, k).to(dev, torch.int32)
        weights = torch.rand(1, k, generator=gen).softmax(-1).to(dev)
        sets.append((ids, weights))
    x = torch.randn(1, d, device=dev, dtype=torch.bfloat16)

    def old():
        moe.USE_DECODE = False
        return [lambda s=s: moe.experts(x, w13, w2, s[1], s[0]) for s in sets]

    def new(launch):
        moe.USE_DECODE = True
        return [
            lambda s=s: moe_decode.experts_decode(x, w13, w2, s[1], s[0], launch=launch)
            for s in sets
        ]

    name = f"moe qwen3-30b-a3b T1 E{e} D{d} I{i} k{k}"
    compare(name, nbytes, old, new, launches or MOE_LAUNCHES, rows)
    moe.USE_DECODE = True


FAMILIES = {  # bench prefix: (module path, launch table, switch that routes M=1 to the GEMV)
    "fp8-block": ("sglang_cuda.kernels.gemv_fp8", "GEMV_FP8_BLOCK_LAUNCH", None),
    "int4-awq": ("sglang_triton.gemv_int4", "GEMV_INT4_MMA_LAUNCH", "sglang_triton.gemm_int4"),
    "dense-bf16": ("sglang_triton.gemv", "GEMV_LAUNCH", "sglang_triton.dense"),
}


def pick_best(rows) -> dict:
    """Per kernel family, the launch with the least total time over the shapes (every shape
    measured without error), and whether it beats the path it replaces in total:
    {family: {"module", "table", "launch", "us", "old_us", "use_gemv_module"}}."""
    best = {}
    for fam, (module, table, switch) in FAMILIES.items():
        fam_rows = [  # the shapes the family's default launch is for (not SMALL_LAUNCH's)
            r for r in rows if r["kernel"].startswith(fam + " ") and " qwen3 " not in r["kernel"]
        ]
        if not fam_rows:
            continue
        keys = [k for k, v in fam_rows[0].items() if isinstance(v, dict)]
        totals = {
            k: sum(r[k]["us"] for r in fam_rows)
            for k in keys
            if all(isinstance(r.get(k), dict) for r in fam_rows)
        }
        if not totals:
            continue
        key = min(totals, key=totals.get)
        best[fam] = {
            "module": module,
            "table": table,
            "launch": fam_rows[0][key]["launch"] or {},
            "us": totals[key],
            "old_us": sum(r["old_us"] for r in fam_rows),
            "switch": switch,
        }
    best.update(pick_small(rows))
    best.update(pick_moe(rows))
    return best


SMALL_TIERS = {"router": 1 << 20, "qkv": 12 << 20, "o": 12 << 20}
"""The gemv.SMALL_LAUNCH tier (max N*K) each Qwen3 shape stands for; the 8B shapes (16.8M
elements and up) are above them all."""


def _timed_keys(rs) -> dict:
    """{launch key: total us} over rows `rs`, for the keys every row measured."""
    keys = [k for k, v in rs[0].items() if isinstance(v, dict)]
    return {
        k: sum(r[k]["us"] for r in rs) for k in keys if all(isinstance(r.get(k), dict) for r in rs)
    }


def pick_small(rows) -> dict:
    """gemv.SMALL_LAUNCH from the Qwen3 dense rows: per tier, the launch with the least total
    time over the tier's shapes, where it beats the default launch."""
    tiers = {}
    for r in rows:
        parts = r["kernel"].split()
        if r["kernel"].startswith("dense-bf16 qwen3 ") and parts[2] in SMALL_TIERS:
            tiers.setdefault(SMALL_TIERS[parts[2]], []).append(r)
    value, us, old_us = [], 0.0, 0.0
    for limit in sorted(tiers):
        totals = _timed_keys(tiers[limit])
        if "default" not in totals:
            continue
        key = min(totals, key=totals.get)
        us, old_us = us + totals[key], old_us + totals["default"]
        if key != "default":
            value.append([limit, tiers[limit][0][key]["launch"]])
    if not tiers:
        return {}
    return {
        "dense-bf16-small": {
            "module": "sglang_triton.gemv",
            "table": "SMALL_LAUNCH",
            "value": value,
            "launch": value,
            "us": us,
            "old_us": old_us,
        }
    }


def pick_moe(rows) -> dict:
    """moe_decode.DECODE_LAUNCH from a --moe-sweep row: the fastest gate/up (timed with the
    default down) and the fastest down (with the default gate/up), where each beats the default."""
    rs = [r for r in rows if r["kernel"].startswith("moe ")]
    if not rs or not isinstance(rs[0].get("default"), dict):
        return {}
    row, launch = rs[0], {}
    base = row["default"]["us"]
    us = base
    for part in ("gate_up", "down"):
        cands = {k: v for k, v in row.items() if k.startswith(part + ":") and isinstance(v, dict)}
        if cands:
            key = min(cands, key=lambda k: cands[k]["us"])
            if cands[key]["us"] < base:
                launch[part] = cands[key]["launch"][part]
                us -= base - cands[key]["us"]
    return {
        "moe-decode": {
            "module": "sglang_triton.moe_decode",
            "table": "DECODE_LAUNCH",
            "launch": launch,
            "us": us,
            "old_us": base,
            "switch": None,
        }
    }


def main(argv=None) -> int:
    global CHECK, SHAPES_8B, SHAPES_QWEN3, L2_SPAN, OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="fp8,int4,dense,moe", help="families, and rows (1-16 rows)")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--dense-shapes",
        default="8b",
        help="dense shape sets: 8b (Llama-3.1-8B, the default launches), qwen3 (Qwen3-30B-A3B's "
        "small linears, SMALL_LAUNCHES), qwen3-head (its LM head)",
    )
    ap.add_argument("--rows-m", default=None, help="rows: the row counts, e.g. 1,16 (default 1-16)")
    ap.add_argument("--moe-sweep", action="store_true", help="moe: gate/up and down one at a time")
    ap.add_argument("--check", action="store_true", help="CPU plumbing check, tiny shapes")
    ap.add_argument(
        "--launch-key",
        default=None,
        help="only the launches with this key (e.g. cuda: the CUDA C++ kernels), and the default",
    )
    ap.add_argument("--rows", metavar="FILE", help="--pick-best from an earlier --out, no timing")
    ap.add_argument(
        "--pick-best",
        metavar="FILE",
        help="write each family's fastest launch (and whether it beats the old path) as JSON, "
        "for benchmarks/bench_cuda_llama8b.py --launch-overrides",
    )
    args = ap.parse_args(argv)
    OUT = args.out
    if args.launch_key:
        for table in (FP8_LAUNCHES, INT4_LAUNCHES, DENSE_LAUNCHES):
            table[:] = [c for c in table if c is None or args.launch_key in c]
    if args.rows_m:
        global ROWS_MS
        ROWS_MS = tuple(int(m) for m in args.rows_m.split(","))
    dev = torch.device("cuda")
    if args.check:
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernel modules are imported
        CHECK, dev, L2_SPAN = True, torch.device("cpu"), 0
        SHAPES_8B = {"qkv": (48, 256), "down": (32, 384)}
        SHAPES_QWEN3 = {"router": (8, 512)}
        QWEN3_MOE.update(experts=16, hidden=64, inter=32)
    rows: list[dict] = []
    sets = tuple(args.dense_shapes.split(","))
    benches = {
        "fp8": bench_fp8,
        "int4": bench_int4,
        "dense": lambda rows, dev: bench_dense(rows, dev, sets),
        "moe": lambda rows, dev: bench_moe(rows, dev, MOE_SWEEP if args.moe_sweep else None),
        "rows": bench_rows,
    }
    if args.rows:
        with open(args.rows) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    for name in [] if args.rows else args.only.split(","):
        try:
            benches[name](rows, dev)
        except Exception as e:  # noqa: BLE001 - report and go on to the next family
            print(f"{name}: failed: {type(e).__name__}: {e}", flush=True)
        if not CHECK:
            torch.cuda.empty_cache()
    for fam in FAMILIES:  # per launch, the total over the shapes measured without error
        fam_rows = [r for r in rows if r["kernel"].startswith(fam + " ")]
        for key in [k for k, v in fam_rows[0].items() if isinstance(v, dict)] if fam_rows else []:
            if all(isinstance(r.get(key), dict) for r in fam_rows):
                total = sum(r[key]["us"] for r in fam_rows)
                print(f"total {fam} {key}: {total:.1f} us over {len(fam_rows)} shapes")
    if args.pick_best:
        best = pick_best(rows)
        with open(args.pick_best, "w") as f:
            json.dump(best, f, indent=1)
        for fam, b in best.items():
            print(f"best {fam}: {b['launch']} {b['us']:.1f} us (old path {b['old_us']:.1f} us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
