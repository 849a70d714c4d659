// gemm.dense for one row of 16-bit x (batch-1 decode): y[n] = sum_k W[n, k] x[k] (+ bias[n]),
// W [N, K] row-major (row stride stride_w elements, K a multiple of 8, rows 16-byte aligned).
//
// A block owns ROWS output rows; its WARPS warps split K into contiguous ranges of whole
// 256-element steps. In a step, lane l reads 16 bytes (8 elements) of each of the ROWS rows at
// columns 256 s + 8 l, and the same 16 bytes of x; UNROLL steps' loads are issued before any of
// their products (ROWS x UNROLL x 16 bytes a lane in flight), products and sums in float32. At
// the end each warp reduces its lanes by shuffles and the block its warps through shared memory.
// A lane past N reads the block's last row again (loads stay in bounds and unpredicated) and
// nothing is stored for it; a step past K (the last one when K % 256 != 0) is predicated off.
//
// Why not the Triton GEMV (sglang_triton.gemv): at batch 1 a small weight (Qwen3-30B-A3B's
// qkv, o and router: 21, 17 and 0.5 MB) is read in a few microseconds, so a GEMV's time is its
// ramp and its loads' latency more than its bytes: here every warp has all of its loads in
// flight at once, and the only synchronisation is one shared-memory reduction.
// Programmatic dependent launch: griddepcontrol.wait before the first load,
// launch_dependents after the main loop (no-ops when not launched with PDL).

#include "common.cuh"

#ifndef ROWS
#define ROWS 8
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef UNROLL
#define UNROLL 2
#endif

// sum of the 8 products of two 16-byte vectors of 16-bit floats, added to acc
__device__ __forceinline__ float dot8(uint4 w, const float (&xf)[8], float acc) {
    const u32 v[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#if FP16
        acc = fmaf(to_float((unsigned short)(v[i] & 0xffffu)), xf[2 * i], acc);
        acc = fmaf(to_float((unsigned short)(v[i] >> 16)), xf[2 * i + 1], acc);
#else
        acc = fmaf(__uint_as_float(v[i] << 16), xf[2 * i], acc);
        acc = fmaf(__uint_as_float(v[i] & 0xffff0000u), xf[2 * i + 1], acc);
#endif
    }
    return acc;
}

__device__ __forceinline__ void unpack8(uint4 x, float (&xf)[8]) {
    const u32 v[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        xf[2 * i] = to_float((unsigned short)(v[i] & 0xffffu));
        xf[2 * i + 1] = to_float((unsigned short)(v[i] >> 16));
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    gemv_dense(const unsigned short* __restrict__ x, const unsigned short* __restrict__ w,
               const unsigned short* __restrict__ bias, unsigned short* __restrict__ y, int n,
               int k, long long stride_w, int has_bias) {
    __shared__ float red[WARPS][ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * ROWS;
    const int steps = (k + 255) >> 8;
    const int s_begin = (int)((long long)steps * warp / WARPS);
    const int s_end = (int)((long long)steps * (warp + 1) / WARPS);
    const unsigned short* rows[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = w + (long long)min(n0 + r, n - 1) * stride_w + 8 * lane;
    const unsigned short* xp = x + 8 * lane;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    for (int s = s_begin; s < s_end; s += UNROLL) {
        uint4 wv[UNROLL][ROWS], xv[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const int col = (s + u) * 256;
            const bool ok = s + u < s_end && col + 8 * lane < k;
            xv[u] = ok ? ldg16(xp + col) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
                wv[u][r] = ok ? ldg16(rows[r] + col) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            float xf[8];
            unpack8(xv[u], xf);
#pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[r] = dot8(wv[u][r], xf, acc[r]);
        }
    }
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < ROWS; ++r) red[warp][r] = acc[r];
    }
    __syncthreads();
    if (threadIdx.x < ROWS && n0 + (int)threadIdx.x < n) {
        float v = 0.f;
#pragma unroll
        for (int i = 0; i < WARPS; ++i) v += red[i][threadIdx.x];
        if (has_bias) v += to_float(bias[n0 + threadIdx.x]);
        y[n0 + threadIdx.x] = from_float(v);
    }
}
