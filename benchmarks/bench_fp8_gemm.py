"""gemm.fp8 with 128x128 block scales at prefill and batch sizes, on one GPU: the Triton scaled
GEMM against torch._scaled_mm's block-wise scaling (cuBLASLt), beside bfloat16 cuBLAS, on the
Llama-3.1-8B projections. Prints TFLOP/s per path and the largest difference between the two
fp8 paths relative to the largest output.

    python3 benchmarks/bench_fp8_gemm.py [--rows 16 256 2048 8192] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F

SHAPES_8B = {
    "qkv": (6144, 4096),
    "o": (4096, 4096),
    "gate_up": (28672, 4096),
    "down": (4096, 14336),
}


def timed(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    from sglang.ops.quant import fp8 as q8
    from sglang_cuda.kernels import gemm_fp8

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[16, 256, 2048, 8192])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = torch.device("cuda")
    for name, (n, k) in SHAPES_8B.items():
        w = torch.randn(n, k, device=dev) * k**-0.5
        wq, ws = q8.quantize_fp8_block(w, (128, 128))
        wb = w.to(torch.bfloat16)
        for m in args.rows:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            flop = 2 * m * n * k
            row = {"shape": name, "n": n, "k": k, "m": m}
            outs = {}
            for label, use in (("triton", False), ("torch_block", True)):
                gemm_fp8.USE_TORCH_BLOCK = use
                gemm_fp8._disabled.discard("block")
                fn = lambda x=x, wq=wq, ws=ws: gemm_fp8.fp8(x, wq, ws, "block")  # noqa: E731
                try:
                    outs[label] = fn().float()
                    t = timed(fn)
                    refused = use and "block" in gemm_fp8._disabled
                    row[label] = {"us": t * 1e6, "tflops": flop / t / 1e12, "refused": refused}
                except Exception as e:  # noqa: BLE001 - report and go on
                    row[label] = f"error {type(e).__name__}: {e}"[:200]
            t = timed(lambda x=x, wb=wb: F.linear(x, wb))
            row["bf16_cublas"] = {"us": t * 1e6, "tflops": flop / t / 1e12}
            if len(outs) == 2:
                ref = outs["triton"]
                row["max_rel_diff"] = (
                    (outs["torch_block"] - ref).abs().max() / ref.abs().max().clamp_min(1e-30)
                ).item()
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    gemm_fp8.USE_TORCH_BLOCK = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
