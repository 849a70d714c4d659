"""What read bandwidth this GPU gives a kernel that only streams: the ceiling the decode GEMVs
(which read each weight byte once) are measured against.

    python3 benchmarks/bench_stream_read.py [--mib 1024] [--out FILE.jsonl]

A kernel compiled by NVRTC reads a buffer larger than L2 once, 16 bytes a load, each thread
issuing UNROLL independent loads before it uses them, over a grid of B blocks of T threads
(every combination below), in three orders (the whole grid striding over one window; each
block, or each warp, over a contiguous part of its own: the GEMVs' order), and XORs what it read into one word (written only if it is a
value no input makes, so nothing is optimised away). Also torch's own reduction (`sum` of
int32) over the same bytes. Prints GB/s for each; the best is what "% of peak" in Nsight
should be read against.
"""

from __future__ import annotations

import argparse
import json

import torch

SOURCE = r"""
// MODE 0: grid-stride (at any moment the whole GPU reads one window of memory);
// MODE 1: block b reads its own contiguous part (the GPU reads as many places as blocks);
// MODE 2: each warp reads its own contiguous part (as a GEMV whose warps split K).
extern "C" __global__ void stream_read(const uint4* __restrict__ p, long long n, unsigned* out) {
    unsigned acc = 0;
#if MODE == 0
    const long long begin = (long long)blockIdx.x * blockDim.x * UNROLL + threadIdx.x;
    const long long end = n, lanes = blockDim.x;
    const long long stride = (long long)gridDim.x * blockDim.x * UNROLL;
#elif MODE == 1
    const long long part = (n + gridDim.x - 1) / gridDim.x;
    const long long begin = blockIdx.x * part + threadIdx.x;
    const long long end = min(n, (blockIdx.x + 1) * part), lanes = blockDim.x;
    const long long stride = (long long)blockDim.x * UNROLL;
#else
    const long long warps = (long long)gridDim.x * (blockDim.x / 32);
    const long long w = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const long long part = (n + warps - 1) / warps;
    const long long begin = w * part + threadIdx.x % 32;
    const long long end = min(n, (w + 1) * part), lanes = 32;
    const long long stride = 32LL * UNROLL;
#endif
    for (long long i = begin; i < end; i += stride) {
        uint4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const long long j = i + (long long)u * lanes;
            if (j < end) {
                asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                             : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                             : "l"(p + j));
            } else {
                v[u] = make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    if (acc == 0x9e3779b9u) out[0] = acc;
}
"""


def graph_sizes(mib: int, arch: str, sms: int, dev) -> list[dict]:
    """Kernels reading `mib` MiB each from copies larger than L2 together, in a CUDA graph."""
    import ctypes

    from sglang_cuda import nvrtc

    nbytes = mib << 20
    copies = max(2, (256 << 20) // nbytes)
    bufs = [
        torch.empty(nbytes // 4, dtype=torch.int32, device=dev).fill_(i + 1) for i in range(copies)
    ]
    out = torch.zeros(1, dtype=torch.int32, device=dev)
    rows = []
    for mode, unroll, threads, per_sm in (
        (0, 4, 512, 2),
        (1, 4, 1024, 1),
        (2, 4, 1024, 1),
        (2, 8, 256, 4),
    ):
        opts = (f"-DUNROLL={unroll}", f"-DMODE={mode}")
        kern = nvrtc.Kernel(
            nvrtc.compile_cubin(SOURCE, "stream_read.cu", arch, opts), "stream_read", dev
        )

        def run_all(kern=kern, threads=threads, per_sm=per_sm):
            stream = torch.cuda.current_stream().cuda_stream
            for b in bufs:
                a = [
                    ctypes.c_void_p(b.data_ptr()),
                    ctypes.c_longlong(nbytes // 16),
                    ctypes.c_void_p(out.data_ptr()),
                ]
                kern.launch((sms * per_sm, 1, 1), (threads, 1, 1), a, stream)

        run_all()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(10):
                run_all()
        graph.replay()
        torch.cuda.synchronize()
        t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0.record()
        for _ in range(5):
            graph.replay()
        t1.record()
        torch.cuda.synchronize()
        us = t0.elapsed_time(t1) * 1e3 / (5 * 10 * copies)
        rows.append(
            {
                "kernel": f"stream_read in a graph, {mib} MiB a kernel",
                "mode": ("grid-stride", "block parts", "warp parts")[mode],
                "unroll": unroll,
                "threads": threads,
                "blocks_per_sm": per_sm,
                "us": round(us, 2),
                "gbs": round(nbytes / us / 1e3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument(
        "--graph-mib",
        type=int,
        default=0,
        help="also: kernels of this size, each over its own buffer (copies past L2), replayed "
        "back to back in a CUDA graph (the GEMV benchmarks' harness): a kernel's ramp and tail",
    )
    ap.add_argument("--out")
    args = ap.parse_args()
    from sglang_cuda import nvrtc

    dev = torch.device("cuda")
    nbytes = args.mib << 20
    buf = torch.randint(0, 2**31 - 1, (nbytes // 4,), dtype=torch.int32, device=dev)
    out = torch.zeros(1, dtype=torch.int32, device=dev)
    sms = nvrtc.processors(dev.index or 0)
    arch = nvrtc.arch_of(dev)
    rows = []

    def timed(fn, reps=10) -> float:
        fn()
        torch.cuda.synchronize()
        t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0.record()
        for _ in range(reps):
            fn()
        t1.record()
        torch.cuda.synchronize()
        return t0.elapsed_time(t1) / reps * 1e-3

    s = timed(lambda: buf.sum())
    rows.append({"kernel": "torch int32 sum", "gbs": round(nbytes / s / 1e9)})
    print(json.dumps(rows[-1]), flush=True)
    import ctypes

    n16 = nbytes // 16
    for mode, unroll in [(0, u) for u in (1, 2, 4, 8)] + [(1, 4), (2, 4), (2, 8)]:
        opts = (f"-DUNROLL={unroll}", f"-DMODE={mode}")
        cubin = nvrtc.compile_cubin(SOURCE, "stream_read.cu", arch, opts)
        kern = nvrtc.Kernel(cubin, "stream_read", dev)
        for threads in (256, 512, 1024):
            for per_sm in (1, 2, 4, 8):
                blocks = sms * per_sm
                if threads * per_sm > 2048:
                    continue
                a = [
                    ctypes.c_void_p(buf.data_ptr()),
                    ctypes.c_longlong(n16),
                    ctypes.c_void_p(out.data_ptr()),
                ]

                def run(kern=kern, blocks=blocks, threads=threads, a=a):
                    stream = torch.cuda.current_stream().cuda_stream
                    kern.launch((blocks, 1, 1), (threads, 1, 1), a, stream)

                s = timed(run)
                rows.append(
                    {
                        "kernel": "stream_read",
                        "mode": ("grid-stride", "block parts", "warp parts")[mode],
                        "unroll": unroll,
                        "threads": threads,
                        "blocks_per_sm": per_sm,
                        "warps_per_sm": threads * per_sm // 32,
                        "bytes_in_flight_per_sm_kib": threads * per_sm * unroll * 16 // 1024,
                        "gbs": round(nbytes / s / 1e9),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    if args.graph_mib:
        rows += graph_sizes(args.graph_mib, arch, sms, dev)
    best = max(rows, key=lambda r: r["gbs"])
    print(f"best: {best}")
    if args.out:
        with open(args.out, "a") as f:
            for r in rows:
                f.write(json.dumps({**r, "device": torch.cuda.get_device_name()}) + "\n")


if __name__ == "__main__":
    main()
