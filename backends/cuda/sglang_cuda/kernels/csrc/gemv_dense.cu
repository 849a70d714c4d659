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

// gemm.dense_rms for one row (batch-1 decode): y = gemm.dense(norm.rms(x + residual)), the norm
// inside the GEMV. Lane l's step reads x, the residual and the norm's weight g at its 8
// columns: h = x + residual, sum of h^2 beside the products W . (h g); the block's warps cover
// all of K, so after the block's reduction every block has the row's reciprocal RMS rs and
// scales its sums by it: y[n] = rs * sum_k W[n, k] h[k] g[k] (+ bias[n]). (The composition
// rounds the normed row to the dtype before the GEMV; here it is not rounded: the spec's
// tolerance has that rounding.) Then each block writes its slice of h (the new residual
// stream; never in place: other blocks read the old one) and, when asked, of the normed row
// (h rs) g in the dtype: every block has rs, and no block is left with all of K to write.
// flags: 1 bias, 2 residual, 4 h_out, 8 normed_out.
extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    gemv_dense_rms(const unsigned short* __restrict__ x, const unsigned short* __restrict__ residual,
                   const unsigned short* __restrict__ g, float eps,
                   const unsigned short* __restrict__ w, const unsigned short* __restrict__ bias,
                   unsigned short* __restrict__ y, unsigned short* __restrict__ h_out,
                   unsigned short* __restrict__ normed_out, int n, int k, long long stride_w,
                   int flags) {
    __shared__ float red[WARPS][ROWS + 1];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * ROWS;
    const int steps = (k + 255) >> 8;
    const int2 range = warp_range(steps, warp, WARPS);
    const int s_begin = range.x, s_end = range.y;
    const bool has_residual = flags & 2;
    const unsigned short* rows[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = w + (long long)min(n0 + r, n - 1) * stride_w + 8 * lane;
    float acc[ROWS + 1];  // the rows' sums, then the sum of h^2
#pragma unroll
    for (int r = 0; r <= ROWS; ++r) acc[r] = 0.f;
    uint4 wv[UNROLL][ROWS];
#if EARLY
    load_rows<ROWS, UNROLL>(wv, rows, s_begin, s_end, k, lane);
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    for (int s = s_begin; s < s_end; s += UNROLL) {
        uint4 xv[UNROLL], rv[UNROLL], gv[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const int col = (s + u) * 256 + 8 * lane;
            const bool ok = s + u < s_end && col < k;
            const uint4 zero = make_uint4(0, 0, 0, 0);
            xv[u] = ok ? ldg16(x + col) : zero;
            rv[u] = ok && has_residual ? ldg16(residual + col) : zero;
            gv[u] = ok ? ldg16(g + col) : zero;
        }
        if (!(EARLY && s == s_begin)) load_rows<ROWS, UNROLL>(wv, rows, s, s_end, k, lane);
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            float hf[8], rf[8], gf[8];
            unpack8(xv[u], hf);
            unpack8(rv[u], rf);
            unpack8(gv[u], gf);
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                hf[i] += rf[i];
                acc[ROWS] = fmaf(hf[i], hf[i], acc[ROWS]);
                hf[i] *= gf[i];
            }
#pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[r] = dot8(wv[u][r], hf, acc[r]);
        }
    }
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    warp_sums<ROWS + 1, WARPS>(acc, red, warp, lane);
    const float rs = rsqrtf(row_sum<ROWS + 1, WARPS>(red, ROWS) / (float)k + eps);
    if (threadIdx.x < ROWS && n0 + (int)threadIdx.x < n) {
        float v = row_sum<ROWS + 1, WARPS>(red, threadIdx.x) * rs;
        if (flags & 1) v += to_float(bias[n0 + threadIdx.x]);
        y[n0 + threadIdx.x] = from_float(v);
    }
    if (flags & 12) {  // every block writes its slice of h / the normed row (no serial tail)
        const int per = (k + gridDim.x - 1) / gridDim.x;
        const int end = min(k, ((int)blockIdx.x + 1) * per);
        for (int e = blockIdx.x * per + threadIdx.x; e < end; e += WARPS * 32) {
            const float h = to_float(x[e]) + (has_residual ? to_float(residual[e]) : 0.f);
            if (flags & 4) h_out[e] = from_float(h);
            if (flags & 8) normed_out[e] = from_float(h * rs * to_float(g[e]));
        }
    }
}
