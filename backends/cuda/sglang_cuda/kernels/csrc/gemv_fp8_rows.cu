// gemm.fp8 with 128x128 block scales for one row of 16-bit x (batch-1 decode), on the CUDA
// cores, x quantized inside the kernel: y[n] = sum_g sx[g] sw[n/128, g] sum_{k in g} qx[k] qw[n, k]
// (+ bias[n]), qx = e4m3(x / sx) with sx = amax(|x| over the group) / 448, as the spec says.
//
// Why: the tensor-core GEMV (Triton's wgmma, or csrc/gemv_fp8_block_mma.cu) needs x's codes
// from a quantization launch of its own (~1.4 us a call inside the graph: 0.175 ms of a
// Llama-8B step) and waits for its MMA every 128-column group to apply the two scales. At one
// row a GEMV needs no MMA: here each lane reads 16 weight bytes a row a step, converts them to
// f16 pairs and multiplies them with packed f16 FMAs by x's codes, which it quantizes itself.
//
// Layout of the work, as csrc/gemv_dense.cu: a block owns ROWS output rows (ROWS divides 128,
// so they share one row of block scales), its WARPS warps split K into contiguous ranges of
// 512-column steps; in a step lane l reads 16 bytes of every row at columns 512 s + 16 l, and
// x's 16 elements there. The 8 lanes l = 8 j .. 8 j + 7 cover one 128-column group: its amax
// is reduced across them by three shuffles, so x's quantization needs no shared memory and no
// barrier. x / sx is rounded as the spec's division rounds it (quotient(): a product and one
// correction, not a division per element).
//
// Exactness: an e4m3 value times 2^-8 is exact in f16 (subnormals included), and so is the
// product of two such values scaled so that it stays below 2^10 (448 x 448 x 2^-8 = 784),
// except a product below f16's normal range (2^-14: a tiny code times a tiny code); a
// step's 16 products a row are summed in f16 (two chains of 4 packed FMAs, then their sum: at
// most 16 x 784, below f16's 65504), then in float32 with the group's scales.
// CVT selects how the weight bytes become f16 pairs:
//   0: integer operations (sign | exponent-and-mantissa >> 1: q x 2^-8, the pairs (0, 2), (1, 3)
//      of each 4 bytes), on the integer pipes;
//   1: cvt.rn.f16x2.e4m3x2 (F2FP: q exactly, pairs (0, 1), (2, 3)); x's codes then carry 2^-8.
// Programmatic dependent launch: griddepcontrol.wait before the first load of x (EARLY: a warp's
// first step group of weights and scales is loaded before it, as they are constants of the
// step), launch_dependents after the main loop (no-ops when not launched with PDL).

#include "gemv_rows.cuh"

#ifndef ROWS
#define ROWS 8
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef CVT
#define CVT 0
#endif
#ifndef EARLY
#define EARLY 0  // 1: a warp's first weight loads (and scales) issued before griddepcontrol.wait
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS 1  // blocks a processor must hold: 2 caps the registers (at 8 warps, 128)
#endif

#define E4M3_MAX 448.f

// two float32 values already in e4m3's range -> their e4m3 codes as an f16 pair (lo, hi),
// exact (saturating round to nearest even, as the spec's cast after its clamp)
__device__ __forceinline__ u32 e4m3_pair(float lo, float hi) {
    u32 h;
    asm("{ .reg .b16 q; cvt.rn.satfinite.e4m3x2.f32 q, %1, %2; cvt.rn.f16x2.e4m3x2 %0, q; }"
        : "=r"(h)
        : "f"(hi), "f"(lo));
    return h;
}

// an f16 pair times 2^-8 (exact for e4m3 values: CVT 1 keeps the products below 2^10)
__device__ __forceinline__ u32 scale_pair(u32 v) {
    u32 d;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(v), "r"(0x1C001C00u));
    return d;
}

// 4 e4m3 weight bytes -> two f16 pairs p0, p1 (module comment: CVT)
__device__ __forceinline__ void weight_pairs(u32 q, u32& p0, u32& p1) {
#if CVT
    asm("{ .reg .b16 l, h; mov.b32 {l, h}, %2; cvt.rn.f16x2.e4m3x2 %0, l; cvt.rn.f16x2.e4m3x2 %1, h; }"
        : "=r"(p0), "=r"(p1)
        : "r"(q));
#else
    const u32 r = q << 8;  // bytes 0 and 2 where bytes 1 and 3 were
    p0 = (r & 0x80008000u) | ((r & 0x7F007F00u) >> 1);
    p1 = (q & 0x80008000u) | ((q & 0x7F007F00u) >> 1);
#endif
}

// v / d rounded as IEEE division rounds it, from inv = 1 / d correctly rounded: one product
// and Markstein's correction (the residual v - q d is exact in an FMA). The plain product
// v * inv misses v / d by an ulp on a quarter of bf16 inputs' quotients, and many of those sit
// on an e4m3 rounding tie (4 codes of 1024 changed in a conformance case, the output's error
// 4x the tolerance's budget); this form matched the division on 512M bf16 and fp16 samples.
__device__ __forceinline__ float quotient(float v, float d, float inv) {
    const float q = __fmul_rn(v, inv);
    return __fmaf_rn(__fmaf_rn(-q, d, v), inv, q);
}

#define F32_MIN_NORMAL 1.17549435e-38f

// x's 16 elements of a step (32 bytes) -> its group's scale and the 8 f16 pairs of their codes
// that weight_pairs' p0 / p1 of the 4 words meet
__device__ __forceinline__ float quantize_x(uint4 a, uint4 b, u32 (&xp)[8]) {
    float xf[16];
    unpack8(a, *reinterpret_cast<float(*)[8]>(&xf[0]));
    unpack8(b, *reinterpret_cast<float(*)[8]>(&xf[8]));
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 16; ++i) amax = fmaxf(amax, fabsf(xf[i]));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 4));
    const float sx = __fdiv_rn(amax, E4M3_MAX);
    const float d = sx > 0.f ? sx : 1.f, inv = __frcp_rn(d);
    if (d >= F32_MIN_NORMAL) {
#pragma unroll
        for (int i = 0; i < 16; ++i) xf[i] = quotient(xf[i], d, inv);
    } else {  // a subnormal scale (amax below ~5e-36): 1 / d overflows; divide (rare)
#pragma unroll
        for (int i = 0; i < 16; ++i) xf[i] = __fdiv_rn(xf[i], d);
    }
#pragma unroll
    for (int w = 0; w < 4; ++w) {
        const float* v = &xf[4 * w];
#if CVT
        xp[2 * w] = scale_pair(e4m3_pair(v[0], v[1]));
        xp[2 * w + 1] = scale_pair(e4m3_pair(v[2], v[3]));
#else
        xp[2 * w] = e4m3_pair(v[0], v[2]);
        xp[2 * w + 1] = e4m3_pair(v[1], v[3]);
#endif
    }
    return sx;
}

// a group of NU steps' weight bytes and block scales, from step s: a step past the warp's
// range or past K reads column 0 again (every load in bounds, none predicated) and its scale 0
// cancels it
template <int NR, int NU>
__device__ __forceinline__ void load_weights(uint4 (&wv)[NU][NR], float (&swv)[NU],
                                             const unsigned char* const (&rows)[NR], const float* sw,
                                             int s, int s_end, int k, int lane) {
#pragma unroll
    for (int u = 0; u < NU; ++u) {
        const bool ok = s + u < s_end && (s + u) * 512 + 16 * lane < k;
        const int col = ok ? (s + u) * 512 : 0;
        swv[u] = ok ? __ldg(sw + ((col + 16 * lane) >> 7)) : 0.f;
#pragma unroll
        for (int r = 0; r < NR; ++r) wv[u][r] = ldg16(rows[r] + col);
    }
}

// acc[r] += this lane's share of rows[r] . x over steps [s_begin, s_end) (512 columns each);
// rows[r] and xp point at the lane's 16 columns of column 0, sw at the rows' block scales.
// wv / swv hold the first group's weights when `first_loaded` (EARLY: loaded before the wait).
template <int NR, int NU>
__device__ __forceinline__ void rows_dot_fp8(float (&acc)[NR], uint4 (&wv)[NU][NR], float (&swv)[NU],
                                             bool first_loaded,
                                             const unsigned char* const (&rows)[NR],
                                             const unsigned short* xp, const float* sw, int s_begin,
                                             int s_end, int k, int lane) {
    for (int s = s_begin; s < s_end; s += NU) {
        if (!(first_loaded && s == s_begin)) load_weights<NR, NU>(wv, swv, rows, sw, s, s_end, k, lane);
        uint4 xa[NU], xb[NU];
#pragma unroll
        for (int u = 0; u < NU; ++u) {
            const bool ok = s + u < s_end && (s + u) * 512 + 16 * lane < k;
            const int col = ok ? (s + u) * 512 : 0;
            xa[u] = ldg16(xp + col);
            xb[u] = ldg16(xp + col + 8);
        }
#pragma unroll
        for (int u = 0; u < NU; ++u) {
            u32 xq[8];
            const float scale = quantize_x(xa[u], xb[u], xq) * swv[u] * 256.f;
#pragma unroll
            for (int r = 0; r < NR; ++r) {
                const u32 w[4] = {wv[u][r].x, wv[u][r].y, wv[u][r].z, wv[u][r].w};
                u32 s0, s1;
                asm("mov.b32 %0, 0;" : "=r"(s0));
                s1 = s0;
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    u32 p0, p1;
                    weight_pairs(w[i], p0, p1);
                    s0 = hfma2(p0, xq[2 * i], s0);
                    s1 = hfma2(p1, xq[2 * i + 1], s1);
                }
                // scale 0: a step past the range (its bytes are another step's, or past the
                // tensors' ends when K < 512) or an all-zero group; skipped, not multiplied by
                // 0, so that stray bytes (an e4m3 NaN code) cannot reach the sums
                if (scale != 0.f) acc[r] = fmaf(f16x2_sum(hadd2(s0, s1)), scale, acc[r]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS)
    gemv_fp8_rows(const unsigned short* __restrict__ x, const unsigned char* __restrict__ w,
                  const float* __restrict__ ws, const unsigned short* __restrict__ bias,
                  unsigned short* __restrict__ y, int n, int k, long long stride_w,
                  long long stride_ws, int has_bias) {
    __shared__ float red[WARPS][ROWS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int n0 = blockIdx.x * ROWS;
    const int steps = (k + 511) >> 9;
    const int2 range = warp_range(steps, warp, WARPS);
    // the lane's 16 columns of step 0; a lane past K (K < 512) reads the last 16 instead, so
    // that every load stays inside x's and the rows' K (its steps are all cancelled)
    const int lane_col = min(16 * lane, k - 16);
    const unsigned char* rows[ROWS];  // row by row
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = w + (long long)min(n0 + r, n - 1) * stride_w + lane_col;
    const float* sw = ws + (long long)(n0 >> 7) * stride_ws;
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
    uint4 wv[UNROLL][ROWS];
    float swv[UNROLL];
#if EARLY  // the weights and their scales are constants of the step: read before the wait
    load_weights<ROWS, UNROLL>(wv, swv, rows, sw, range.x, range.y, k, lane);
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    rows_dot_fp8<ROWS, UNROLL>(acc, wv, swv, EARLY != 0, rows, x + lane_col, sw, range.x, range.y,
                               k, lane);
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
