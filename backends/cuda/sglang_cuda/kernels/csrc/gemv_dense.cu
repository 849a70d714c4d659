// gemm.dense for one row of 16-bit x (batch-1 decode): y[n] = sum_k W[n, k] x[k] (+ bias[n]),
// W [N, K] row-major (row stride stride_w elements, K a multiple of 8, rows 16-byte aligned).
//
// A block owns ROWS output rows and runs gemv_rows.cuh's core over them (its WARPS warps split
// K, each lane issues a step group's 16-byte loads at once); at the end each warp reduces its
// lanes by shuffles and the block its warps through shared memory. A row past N reads the
// block's last row again (loads stay in bounds) and nothing is stored for it.
//
// Why not the Triton GEMV (sglang_triton.gemv): at batch 1 a small weight (Qwen3-30B-A3B's
// qkv, o and router: 21, 17 and 0.5 MB) is read in a few microseconds, so a GEMV's time is its
// ramp and its loads' latency more than its bytes: here every warp has all of its loads in
// flight at once, and the only synchronisation is one shared-memory reduction.
// Programmatic dependent launch: griddepcontrol.wait before the first load (EARLY: before the
// first load of x, a warp's first weights already in flight), launch_dependents after the main
// loop (no-ops when not launched with PDL).

#include "gemv_rows.cuh"

#ifndef ROWS
#define ROWS 8
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef UNROLL
#define UNROLL 2
#endif
#ifndef EARLY
#define EARLY 0  // 1: a warp's first step group of weights loaded before griddepcontrol.wait
#endif

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    gemv_dense(const unsigned short* __restrict__ x, const unsigned short* __restrict__ w,
               const unsigned short* __restrict__ bias, unsigned short* __restrict__ y, int n,
               int k, long long stride_w, int has_bias) {
    __shared__ float red[WARPS][ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * ROWS;
    const int steps = (k + 255) >> 8;
    const int2 range = warp_range(steps, warp, WARPS);
    const int s_begin = range.x, s_end = range.y;
    const unsigned short* rows[ROWS];  // the lane's 8 elements of column 0, row by row
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = w + (long long)min(n0 + r, n - 1) * stride_w + 8 * lane;
    const unsigned short* xp = x + 8 * lane;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
    uint4 wv[UNROLL][ROWS];
#if EARLY  // the weights are constants of the step: a warp's first group read before the wait
    load_rows<ROWS, UNROLL>(wv, rows, s_begin, s_end, k, lane);
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    rows_dot_loaded<ROWS, UNROLL>(acc, wv, EARLY != 0, rows, xp, s_begin, s_end, k, lane);
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    warp_sums<ROWS, WARPS>(acc, red, warp, lane);
    if (threadIdx.x < ROWS && n0 + (int)threadIdx.x < n) {
        float v = row_sum<ROWS, WARPS>(red, threadIdx.x);
        if (has_bias) v += to_float(bias[n0 + threadIdx.x]);
        y[n0 + threadIdx.x] = from_float(v);
    }
}
