"""The cuda backend's decode GEMVs at one row, each called a few times outside any graph, for
Nsight Compute to profile (stall reasons, achieved bandwidth, occupancy):

    ncu --kernel-name regex:'gemv_int4_mma|gemv_int4_fma|gemv_fp8_rows' --launch-skip 4 \\
        --launch-count 8 \\
        --section SpeedOfLight --section WarpStateStats --section Occupancy \\
        --section LaunchStats --section MemoryWorkloadAnalysis \\
        python3 benchmarks/ncu_decode_gemv.py [--only int4,fp8] [--launch JSON] [--fma]

Llama-3.1-8B's shapes (bench_decode_gemv.SHAPES_8B), AWQ g128 for int4 and 128x128 blocks for
FP8, random weights. --launch: a GEMV_INT4_CUDA_LAUNCH override (JSON) for the int4 calls.
Each shape runs `--calls` times (the first compiles the kernel), so --launch-skip 4 and a
--launch-count of the shapes' count skip the compiles and take one call of each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_decode_gemv import SHAPES_8B  # noqa: E402


def int4_calls(launch: dict | None, calls: int, fma: bool = False) -> None:
    from sglang_cuda.kernels import gemm_int4 as cuda_int4
    from sglang_cuda.kernels import gemv_int4_cuda, gemv_int4_fma_cuda
    from sglang_triton import gemm_int4

    g = 128
    for name, (n, k) in SHAPES_8B.items():
        raw = {
            "qweight": torch.randint(-(2**31), 2**31 - 1, (k, n // 8), dtype=torch.int32),
            "qzeros": torch.randint(-(2**31), 2**31 - 1, (k // g, n // 8), dtype=torch.int32),
            # float16 scales served in bfloat16, as an AWQ checkpoint is (float16 pairs)
            "scales": (torch.rand(k // g, n, dtype=torch.float16) * 0.01).bfloat16(),
            "packing": "awq",
            "group_size": g,
        }
        raw = {key: v.cuda() if isinstance(v, torch.Tensor) else v for key, v in raw.items()}
        w = gemm_int4.prepare(raw)["qweight"]
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        cfg = {"enabled": True, **(launch or {})}
        plan = gemv_int4_fma_cuda.plan if fma else gemv_int4_cuda.plan
        assert plan(x, w, cfg) is not None, name
        for _ in range(calls):
            cuda_int4.int4(x, w, "awq", g, launch={"cuda_fma" if fma else "cuda": cfg})
        torch.cuda.synchronize()
        print(f"int4 {name} {n}x{k}: {calls} calls", flush=True)


def fp8_calls(calls: int) -> None:
    from sglang.ops.quant import fp8 as q8
    from sglang_cuda.kernels import gemv_fp8

    for name, (n, k) in SHAPES_8B.items():
        wq, s = q8.quantize_fp8_block(torch.randn(n, k, device="cuda") * k**-0.5, (128, 128))
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        for _ in range(calls):
            gemv_fp8.gemv_fp8(x, wq, s.float(), "block", launch={"rows_cuda": {"enabled": True}})
        torch.cuda.synchronize()
        print(f"fp8 {name} {n}x{k}: {calls} calls", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="int4,fp8")
    ap.add_argument("--launch", default=None, help="GEMV_INT4_CUDA_LAUNCH override, JSON")
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument(
        "--fma",
        action="store_true",
        help="int4 through the CUDA-core GEMV (gemv_int4_fma_cuda; --launch: its table)",
    )
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if "int4" in only:
        int4_calls(json.loads(args.launch) if args.launch else None, args.calls, args.fma)
    if "fp8" in only:
        fp8_calls(args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
