// gemm.fp8 with 128x128 block scales for 1-8 rows on the tensor cores (sm_89 and later): the
// e4m3 weight W [N, K] (row-major) times x quantized per token per 128-group (codes XQ [M, K]
// e4m3 and scales XS [M, K/128], sglang_cuda.kernels.gemv_fp8.quantize_token_group), each
// group's product scaled by XS * WS[n / 128, group] into float32, as the spec says.
//
// One block owns 32 output rows of W (two 16-row MMA tiles); its warps split K by whole groups
// and add their partial sums through shared memory. A warp step is 64 input columns: lane
// (g, t) loads 16 bytes of each of W's rows g, g + 8, g + 16, g + 24 at columns k0 + 16t .. +15
// and 16 bytes of XQ's row g there. The m16n8k32 MMA's k slots of lane t (4t .. 4t+3 and
// 4t+16 .. 4t+19) are taken to be those 16 columns (bytes 0-7 for one MMA, 8-15 for the
// next), the same for W and x, so the loaded words are the MMA operands as they stand: no
// conversion, no permutation. The next group's loads are in flight while this one computes
// (two register buffers). griddepcontrol.wait before the first load, launch_dependents after
// the main loop.
//
// C fragment of row tile T: c0 (row g, x row 2t), c1 (row g, 2t + 1), c2 (row g + 8, 2t),
// c3 (row g + 8, 2t + 1).

#include "common.cuh"

#ifndef WARPS
#define WARPS 8
#endif

struct Group {
    uint4 w[2][4];  // [step][row g, g + 8, g + 16, g + 24]
    uint4 x[2];     // [step]
    float xs0, xs1; // the group's scales of x rows 2t and 2t + 1
    float ws;       // the weight block's scale
};

__device__ __forceinline__ float ldgf(const float* p) {
    float v;
    asm volatile("ld.global.nc.f32 %0, [%1];" : "=f"(v) : "l"(p));
    return v;
}

__device__ __forceinline__ void mma(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0,
                                    u32 b1) {
    asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

struct Cursor {
    const unsigned char* w[4];  // rows g, g + 8, g + 16, g + 24 at column 16t
    const unsigned char* x;     // XQ row g at column 16t
    const float* xs0;           // XS rows 2t, 2t + 1 (clamped to M - 1)
    const float* xs1;
    const float* ws;            // WS row n0 / 128
};

__device__ __forceinline__ void load_group(Group& gr, const Cursor& p, int grp) {
    const int k0 = grp * 128;
#pragma unroll
    for (int s = 0; s < 2; ++s) {
#pragma unroll
        for (int r = 0; r < 4; ++r) gr.w[s][r] = ldg16(p.w[r] + k0 + 64 * s);
        gr.x[s] = ldg16(p.x + k0 + 64 * s);
    }
    gr.xs0 = ldgf(p.xs0 + grp);
    gr.xs1 = ldgf(p.xs1 + grp);
    gr.ws = ldgf(p.ws + grp);
}

__device__ __forceinline__ void compute_group(const Group& gr, float (&y0)[4], float (&y1)[4]) {
    float a0[4] = {0.f, 0.f, 0.f, 0.f}, a1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int s = 0; s < 2; ++s) {
        const uint4 xv = gr.x[s];
        const uint4 r0 = gr.w[s][0], r8 = gr.w[s][1], r16 = gr.w[s][2], r24 = gr.w[s][3];
        mma(a0, r0.x, r8.x, r0.y, r8.y, xv.x, xv.y);
        mma(a0, r0.z, r8.z, r0.w, r8.w, xv.z, xv.w);
        mma(a1, r16.x, r24.x, r16.y, r24.y, xv.x, xv.y);
        mma(a1, r16.z, r24.z, r16.w, r24.w, xv.z, xv.w);
    }
    const float s0 = gr.xs0 * gr.ws, s1 = gr.xs1 * gr.ws;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float s = (j & 1) ? s1 : s0;
        y0[j] = fmaf(a0[j], s, y0[j]);
        y1[j] = fmaf(a1[j], s, y1[j]);
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    gemv_fp8_block_mma(const unsigned char* __restrict__ xq, const float* __restrict__ xs,
                       const unsigned char* __restrict__ w, const float* __restrict__ ws,
                       const unsigned short* __restrict__ bias, unsigned short* __restrict__ y,
                       int m, int n, int k, long long stride_xq, long long stride_xs,
                       long long stride_w, long long stride_ws, long long stride_ym,
                       int has_bias) {
    __shared__ float red[WARPS][32][8];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 32;
    const int groups = k >> 7;
    const int g_begin = (int)((long long)groups * warp / WARPS);
    const int g_end = (int)((long long)groups * (warp + 1) / WARPS);
    // rows past N read row N - 1 and x rows past M read row M - 1: loads stay in bounds and
    // unpredicated, their outputs are not stored
    Cursor p;
#pragma unroll
    for (int r = 0; r < 4; ++r) p.w[r] = w + min(n0 + g + 8 * r, n - 1) * stride_w + 16 * t;
    p.x = xq + min(g, m - 1) * stride_xq + 16 * t;
    p.xs0 = xs + min(2 * t, m - 1) * stride_xs;
    p.xs1 = xs + min(2 * t + 1, m - 1) * stride_xs;
    p.ws = ws + (long long)(n0 >> 7) * stride_ws;

    float y0[4] = {0.f, 0.f, 0.f, 0.f}, y1[4] = {0.f, 0.f, 0.f, 0.f};
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    if (g_begin < g_end) {
        Group ga, gb;
        load_group(ga, p, g_begin);
        for (int c = g_begin; c < g_end; c += 2) {
            if (c + 1 < g_end) load_group(gb, p, c + 1);
            compute_group(ga, y0, y1);
            if (c + 1 >= g_end) break;
            if (c + 2 < g_end) load_group(ga, p, c + 2);
            compute_group(gb, y0, y1);
        }
    }
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
    // partial sums -> shared memory [warp][row of W in the block][row of x]
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int row = g + 8 * (j >> 1), bx = 2 * t + (j & 1);
        red[warp][row][bx] = y0[j];
        red[warp][row + 16][bx] = y1[j];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 32 * 8; i += WARPS * 32) {
        const int row = i >> 3, bx = i & 7;
        if (bx >= m || n0 + row >= n) continue;
        float v = 0.f;
#pragma unroll
        for (int wi = 0; wi < WARPS; ++wi) v += red[wi][row][bx];
        if (has_bias) v += to_float(bias[n0 + row]);
        y[bx * stride_ym + n0 + row] = from_float(v);
    }
}
