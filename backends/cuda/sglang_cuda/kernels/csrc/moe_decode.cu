// moe.experts for a few (token, slot) pairs (decode) with 16-bit experts: the two GEMVs of
// sglang_triton.moe_decode, built as csrc/gemv_dense.cu builds a GEMV (a block owns a few
// rows, its warps split K in 256-element steps, each lane reads 16 bytes of every row a step,
// UNROLL steps' loads issued together, one shared-memory reduction).
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

#include "common.cuh"

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

__device__ __forceinline__ float lo_f(u32 v) {
#if FP16
    return to_float((unsigned short)(v & 0xffffu));
#else
    return __uint_as_float(v << 16);
#endif
}

__device__ __forceinline__ float hi_f(u32 v) {
#if FP16
    return to_float((unsigned short)(v >> 16));
#else
    return __uint_as_float(v & 0xffff0000u);
#endif
}

// acc + the 8 products of a 16-byte vector of 16-bit weights and 8 float32 values
__device__ __forceinline__ float dot8(uint4 w, const float (&xf)[8], float acc) {
    const u32 v[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        acc = fmaf(lo_f(v[i]), xf[2 * i], acc);
        acc = fmaf(hi_f(v[i]), xf[2 * i + 1], acc);
    }
    return acc;
}

__device__ __forceinline__ void unpack8(uint4 x, float (&xf)[8]) {
    const u32 v[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        xf[2 * i] = lo_f(v[i]);
        xf[2 * i + 1] = hi_f(v[i]);
    }
}

// the block's per-row sums: each warp's lanes by shuffles, then the warps in order
__device__ __forceinline__ void block_sums(float (&acc)[ROWS], float (*red)[ROWS], int warp,
                                           int lane) {
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
}

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
    const int s_begin = (int)((long long)steps * warp / WARPS);
    const int s_end = (int)((long long)steps * (warp + 1) / WARPS);
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
    for (int s = s_begin; s < s_end; s += UNROLL) {
        uint4 wv[UNROLL][ROWS], xv[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const int col = (s + u) * 256;
            const bool ok = s + u < s_end && col + 8 * lane < hidden;
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
    block_sums(acc, red, warp, lane);
    if (threadIdx.x < COLS && c0 + (int)threadIdx.x < inter) {
        float g = 0.f, u = 0.f;
#pragma unroll
        for (int i = 0; i < WARPS; ++i) {
            g += red[i][threadIdx.x];
            u += red[i][COLS + threadIdx.x];
        }
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
    const int u_begin = (int)((long long)units * warp / WARPS);
    const int u_end = (int)((long long)units * (warp + 1) / WARPS);
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
    block_sums(acc, red, warp, lane);
    if (threadIdx.x < ROWS && n0 + (int)threadIdx.x < hidden) {
        float v = 0.f;
#pragma unroll
        for (int i = 0; i < WARPS; ++i) v += red[i][threadIdx.x];
        out[(long long)token * stride_out + n0 + threadIdx.x] = from_float(v);
    }
}
