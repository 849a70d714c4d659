// The 16-bit GEMV core shared by csrc/gemv_dense.cu and csrc/moe_decode.cu: a block owns NR
// rows of 16-bit weights, its warps split K into contiguous ranges of 256-element steps, and
// in a step lane l reads 16 bytes (8 elements) of every row at columns 256 s + 8 l and the same
// 16 bytes of x. NU steps' loads (the kernels' UNROLL) are issued before any of their products:
// NR x NU x 16 bytes a lane in flight. The kernels' __launch_bounds__(threads, 1) lets ptxas
// keep them in registers; with the default bound it interleaved loads and products, one
// latency each. Products and sums in float32; a step past K (the last one when K % 256 != 0)
// is predicated off.
#pragma once

#include "common.cuh"

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

// warp `warp` of `warps`' contiguous share [begin, end) of `total` work units
__device__ __forceinline__ int2 warp_range(int total, int warp, int warps) {
    return make_int2((int)((long long)total * warp / warps),
                     (int)((long long)total * (warp + 1) / warps));
}

// a group of NU steps' 16-byte weight vectors from step s (a step past s_end or K: zeros)
template <int NR, int NU>
__device__ __forceinline__ void load_rows(uint4 (&wv)[NU][NR],
                                          const unsigned short* const (&rows)[NR], int s,
                                          int s_end, int k, int lane) {
#pragma unroll
    for (int u = 0; u < NU; ++u) {
        const int col = (s + u) * 256;
        const bool ok = s + u < s_end && col + 8 * lane < k;
#pragma unroll
        for (int r = 0; r < NR; ++r) wv[u][r] = ok ? ldg16(rows[r] + col) : make_uint4(0, 0, 0, 0);
    }
}

// acc[r] += rows[r][s_begin*256 .. s_end*256) . x over the same columns, this lane's share;
// rows[r] and xp already point at the lane's 8 elements of column 0. wv holds the first step
// group's weights already when `first_loaded` (loaded before griddepcontrol.wait: EARLY).
template <int NR, int NU>
__device__ __forceinline__ void rows_dot_loaded(float (&acc)[NR], uint4 (&wv)[NU][NR],
                                                bool first_loaded,
                                                const unsigned short* const (&rows)[NR],
                                                const unsigned short* xp, int s_begin, int s_end,
                                                int k, int lane) {
    for (int s = s_begin; s < s_end; s += NU) {
        uint4 xv[NU];
#pragma unroll
        for (int u = 0; u < NU; ++u) {
            const int col = (s + u) * 256;
            const bool ok = s + u < s_end && col + 8 * lane < k;
            xv[u] = ok ? ldg16(xp + col) : make_uint4(0, 0, 0, 0);
        }
        if (!(first_loaded && s == s_begin)) load_rows<NR, NU>(wv, rows, s, s_end, k, lane);
#pragma unroll
        for (int u = 0; u < NU; ++u) {
            float xf[8];
            unpack8(xv[u], xf);
#pragma unroll
            for (int r = 0; r < NR; ++r) acc[r] = dot8(wv[u][r], xf, acc[r]);
        }
    }
}

template <int NR, int NU>
__device__ __forceinline__ void rows_dot(float (&acc)[NR], const unsigned short* const (&rows)[NR],
                                         const unsigned short* xp, int s_begin, int s_end,
                                         int k, int lane) {
    uint4 wv[NU][NR];
    rows_dot_loaded<NR, NU>(acc, wv, false, rows, xp, s_begin, s_end, k, lane);
}

// the block's per-row sums, step 1: each warp's lanes by shuffles into red[warp][r]; after it
// (a __syncthreads inside) every thread may read red and add the warps in order
template <int NR, int NW>
__device__ __forceinline__ void warp_sums(float (&acc)[NR], float (&red)[NW][NR], int warp,
                                          int lane) {
#pragma unroll
    for (int r = 0; r < NR; ++r) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < NR; ++r) red[warp][r] = acc[r];
    }
    __syncthreads();
}

// warp 0 .. NW - 1's sums of row r, added in warp order
template <int NR, int NW>
__device__ __forceinline__ float row_sum(const float (&red)[NW][NR], int r) {
    float v = 0.f;
#pragma unroll
    for (int i = 0; i < NW; ++i) v += red[i][r];
    return v;
}
