"""Does the int4 decode GEMV stream faster when each block's 32 columns are contiguous in memory?

prepare's layout (qweight int32 [K/8, N], scales / zs float32 [K/G, N]) puts a block's 32
columns of one word row in 128 bytes, the next word row N x 4 bytes away: a block's weights are
K/8 separate 128-byte pieces. In 32-column strips ([N/32, K/8, 32], [N/32, K/G, 32]) they are one
contiguous run. This times csrc/gemv_int4_fma.cu at one row on Llama-3.1-8B's AWQ shapes in both
layouts (the kernel takes the layout as strides: block_q, block_s), CUDA graphs over weight
copies larger than L2, and checks that both give the same output.

    python3 benchmarks/bench_int4_strips.py [--launch '{"early": true}'] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import ctypes
import json

import torch

SHAPES = {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)}


def strips(t: torch.Tensor) -> torch.Tensor:
    """[R, N] -> [N/32, R, 32] contiguous (N a multiple of 32)."""
    r, n = t.shape
    return t.reshape(r, n // 32, 32).permute(1, 0, 2).contiguous()


def bench_shape(name: str, n: int, k: int, launch: dict) -> dict:
    from sglang_cuda import nvrtc
    from sglang_cuda.kernels import gemv_int4_fma_cuda as fma
    from sglang_triton import gemm_int4, pdl

    dev = torch.device("cuda")
    g = 128
    nbytes = n * k // 2 + 2 * (k // g) * n * 4
    copies = max(2, int(160e6 // nbytes) + 1)
    ws = []
    for _ in range(copies):
        raw = {
            "qweight": torch.randint(
                -(2**31), 2**31 - 1, (k, n // 8), dtype=torch.int32, device=dev
            ),
            "qzeros": torch.randint(
                -(2**31), 2**31 - 1, (k // g, n // 8), dtype=torch.int32, device=dev
            ),
            "scales": torch.rand(k // g, n, device=dev, dtype=torch.bfloat16) * 0.01,
            "packing": "awq",
            "group_size": g,
        }
        gemm_int4.PAIRS = False  # the float32 scales and zs this comparison's strips copy
        w = gemm_int4.prepare(raw)["qweight"]
        ws.append((w, strips(w.qweight), strips(w.scales), strips(w.zs)))
    x = torch.randn(1, k, device=dev, dtype=torch.bfloat16)
    cfg = fma.plan(x, ws[0][0], launch)
    assert cfg is not None
    defines = (
        ("FP16", 0),
        ("STEPS", cfg["steps"]),
        ("WARPS", cfg["warps"]),
        ("BUFFERS", cfg["buffers"]),
        ("EARLY", cfg["early"]),
        ("MIN_BLOCKS", cfg["min_blocks"]),
        ("CENTER", cfg["center"]),
    )
    kern = nvrtc.kernel(fma.SOURCE, "gemv_int4_fma", dev, defines)
    y = torch.empty(1, n, device=dev, dtype=torch.bfloat16)

    def call(i, strip):
        w, qs, ss, zss = ws[i]
        q, s, zs = (qs, ss, zss) if strip else (w.qweight, w.scales, w.zs)
        a = [
            ctypes.c_void_p(x.data_ptr()),
            ctypes.c_void_p(q.data_ptr()),
            ctypes.c_void_p(s.data_ptr()),
            ctypes.c_void_p(zs.data_ptr()),
            ctypes.c_void_p(0),
            ctypes.c_void_p(y.data_ptr()),
            ctypes.c_int(n),
            ctypes.c_int(k),
            ctypes.c_int(cfg["group_shift"]),
            ctypes.c_longlong(32 if strip else w.qweight.stride(0)),
            ctypes.c_longlong(32 if strip else w.scales.stride(0)),
            ctypes.c_int(0),
            ctypes.c_longlong((k // 8) * 32 if strip else 32),
            ctypes.c_longlong((k // g) * 32 if strip else 32),
        ]
        kern.launch(
            (n // 32, 1, 1),
            (32 * cfg["warps"], 1, 1),
            a,
            torch.cuda.current_stream().cuda_stream,  # the capture's stream in a graph
            pdl.enabled(dev),
            cfg["shared"],
        )

    call(0, False)
    y0 = y.clone()
    call(0, True)
    torch.testing.assert_close(y, y0, rtol=0, atol=0)
    res = {"shape": name, "n": n, "k": k, "launch": launch, "warps": cfg["warps"]}
    for strip in (False, True, False, True):
        graph = torch.cuda.CUDAGraph()
        reps = 20
        with torch.cuda.graph(graph):
            for _ in range(reps):
                for i in range(copies):
                    call(i, strip)
        graph.replay()
        torch.cuda.synchronize()
        t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0.record()
        for _ in range(5):
            graph.replay()
        t1.record()
        torch.cuda.synchronize()
        us = t0.elapsed_time(t1) * 1e3 / (5 * reps * copies)
        key = "strips_us" if strip else "plain_us"
        res.setdefault(key, []).append(round(us, 2))
    res["plain_gbs"] = round(nbytes / min(res["plain_us"]) / 1e3)
    res["strips_gbs"] = round(nbytes / min(res["strips_us"]) / 1e3)
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launch", default="{}")
    ap.add_argument("--out")
    args = ap.parse_args()
    launch = {"enabled": True, **json.loads(args.launch)}
    rows = []
    for name, (n, k) in SHAPES.items():
        rows.append(bench_shape(name, n, k, launch))
        torch.cuda.empty_cache()
    for key in ("plain_us", "strips_us"):
        print(f"total {key}: {sum(min(r[key]) for r in rows):.1f} us over {len(rows)} shapes")
    if args.out:
        with open(args.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
