// moe.experts for a few (token, slot) pairs (decode) with 16-bit experts: the two GEMVs of
// sglang_triton.moe_decode on gemv_rows.cuh's core (a block owns a few rows, its warps split K
// in 256-element steps, each lane issues a step group's 16-byte loads at once, one
// shared-memory reduction), as csrc/gemv_dense.cu.
//
// moe_gate_up, grid (column blocks of I, pairs): pair p = (token p / TOPK, slot), expert
// e = ids[p]; the block's rows are the gate rows w13[e, c0 .. c0 + COLS) and the up rows
// w13[e, I + c0 ..), against x[token]; h[p, c] = silu(gate) * up in float32. A dead slot
// (e outside [0, E)) writes nothing: moe_down skips it.
//
// moe_down, grid (row blocks of D, tokens): out[t, rows] = sum over the token's TOPK slots of
// weights[p] * (w2[e, rows] . h[p]); a warp's units are (slot, step) pairs in slot order, each
// scaled by its slot's weight, and the block adds its warps' sums in warp order (no atomics:
// the same result every run). Dead slots add nothing.
//
// Rows past the end read the last row again and store nothing. Programmatic dependent launch:
// griddepcontrol.wait before the first load (ids, weights, x and h are written by the kernels
// before), launch_dependents after the main loop.

#include "gemv_rows.cuh"

#ifndef ROWS
#define ROWS 8  // moe_gate_up: 2 * COLS (gate and up); moe_down: output rows a block
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef TOPK
#define TOPK 8
#endif

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    moe_gate_up(const unsigned short* __restrict__ x, const unsigned short* __restrict__ w13,
                const int* __restrict__ ids, float* __restrict__ h, int inter, int hidden,
                int experts, long long stride_x, long long stride_we, long long stride_wn,
                long long stride_h) {
    constexpr int COLS = ROWS / 2;
    __shared__ float red[WARPS][ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int pair = blockIdx.y, c0 = blockIdx.x * COLS;
    const int steps = (hidden + 255) >> 8;
    const int2 range = warp_range(steps, warp, WARPS);
    const int s_begin = range.x, s_end = range.y;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    const int e = ids[pair];
    if (e < 0 || e >= experts) return;  // the whole block: a dead slot
    const unsigned short* rows[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        const int col = min(c0 + (r % COLS), inter - 1);
        const int row = r < COLS ? col : inter + col;
        rows[r] = w13 + (long long)e * stride_we + (long long)row * stride_wn + 8 * lane;
    }
    const unsigned short* xp = x + (long long)(pair / TOPK) * stride_x + 8 * lane;
    rows_dot<ROWS, UNROLL>(acc, rows, xp, s_begin, s_end, hidden, lane);
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    warp_sums<ROWS, WARPS>(acc, red, warp, lane);
    if (threadIdx.x < COLS && c0 + (int)threadIdx.x < inter) {
        const float g = row_sum<ROWS, WARPS>(red, threadIdx.x);
        const float u = row_sum<ROWS, WARPS>(red, COLS + threadIdx.x);
        h[(long long)pair * stride_h + c0 + threadIdx.x] = g / (1.f + __expf(-g)) * u;
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    moe_down(const float* __restrict__ h, const unsigned short* __restrict__ w2,
             const int* __restrict__ ids, const float* __restrict__ weights,
             unsigned short* __restrict__ out, int hidden, int inter, int experts,
             long long stride_h, long long stride_we, long long stride_wn, long long stride_out) {
    __shared__ float red[WARPS][ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int token = blockIdx.y, n0 = blockIdx.x * ROWS;
    const int steps = (inter + 255) >> 8;
    const int units = TOPK * steps;  // (slot, step), slot-major
    const int2 range = warp_range(units, warp, WARPS);
    const int u_begin = range.x, u_end = range.y;
    long long row_off[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) row_off[r] = (long long)min(n0 + r, hidden - 1) * stride_wn;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    for (int u0 = u_begin; u0 < u_end; u0 += UNROLL) {
        uint4 wv[UNROLL][ROWS], hv[UNROLL][2];
        float wt[UNROLL];
#pragma unroll
        for (int i = 0; i < UNROLL; ++i) {
            const int u = u0 + i;
            const int slot = u / steps, col = (u - slot * steps) * 256 + 8 * lane;
            const int pair = token * TOPK + min(slot, TOPK - 1);
            const int e = ids[pair];
            const bool ok = u < u_end && col < inter && e >= 0 && e < experts;
            wt[i] = ok ? weights[pair] : 0.f;
            const float* hp = h + (long long)pair * stride_h + col;
            hv[i][0] = ok ? ldg16(hp) : make_uint4(0, 0, 0, 0);
            hv[i][1] = ok ? ldg16(hp + 4) : make_uint4(0, 0, 0, 0);
            const unsigned short* wp = w2 + (long long)(ok ? e : 0) * stride_we + col;
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
                wv[i][r] = ok ? ldg16(wp + row_off[r]) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int i = 0; i < UNROLL; ++i) {
            const float hf[8] = {__uint_as_float(hv[i][0].x), __uint_as_float(hv[i][0].y),
                                 __uint_as_float(hv[i][0].z), __uint_as_float(hv[i][0].w),
                                 __uint_as_float(hv[i][1].x), __uint_as_float(hv[i][1].y),
                                 __uint_as_float(hv[i][1].z), __uint_as_float(hv[i][1].w)};
#pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[r] = fmaf(wt[i], dot8(wv[i][r], hf, 0.f), acc[r]);
        }
    }
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    warp_sums<ROWS, WARPS>(acc, red, warp, lane);
    if (threadIdx.x < ROWS && n0 + (int)threadIdx.x < hidden) {
        const float v = row_sum<ROWS, WARPS>(red, threadIdx.x);
        out[(long long)token * stride_out + n0 + threadIdx.x] = from_float(v);
    }
}
