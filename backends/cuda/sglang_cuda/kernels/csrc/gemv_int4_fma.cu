// gemm.int4 for one row of 16-bit x (batch-1 decode) on the CUDA cores, over
// sglang_triton.gemm_int4.prepare's layout (the one csrc/gemv_int4_mma.cu reads):
//   qweight int32 [K/8, N]: nibble i of word (r, n) is the code of input row 8r + i, column n;
//   scales, zs float32 [K/G, N]: w[k, n] = q[k, n] * s - zs (zs = zero * scale), or (PAIRS)
//   float16 (scale, zero) pairs [K/G, N, 2] in the scales' place (common.cuh's ScaleWords).
//
// Why: at one row the tensor-core kernel (gemv_int4_mma.cu) holds 126 registers a thread for
// its MMA operands, x's fragments and two chunks of weights, so a processor runs 16 of its warps
// and streams the 8B's weights at 1.3-2.8 TB/s (Nsight on the H200: 60-70% of the schedulers'
// cycles issue nothing). Here no MMA operand is built: x is staged once a block in shared
// memory, already as the f16 pairs each nibble mask meets, and a lane's weight words go
// straight into packed f16 FMAs, so a warp's registers are mostly its weights in flight.
//
// A nibble as an f16 in one mask (CENTER 0): the half whose bits are q (0..15) is the subnormal
// q x 2^-24, exactly; the bits 16 q (the nibble one place up) are q x 2^-20. So a word w gives
// its 8 codes as four f16 pairs by masks alone: w & 0x000F000F = (q0, q4) x 2^-24,
// w & 0x00F000F0 = (q1, q5) x 2^-20, and the same of w >> 8 for (q2, q6) and (q3, q7). x is
// staged as the matching pairs (x0, x4), (x1, x5), (x2, x6), (x3, x7) of each word row, scaled by
// a power of two per chunk (2^(14 - e), e the exponent of the chunk's largest |x|, so every
// staged value is below 2^15 and exact for 16-bit x), the odd pairs by 2^-4 more. Every product
// is then q x x 2^-(10 + e): below 15 x 2^-9, far inside f16's range; a packed f16 FMA handles
// subnormal operands at full rate. Per word: one shift, four masks, four FMAs.
// Centred (CENTER 1): the mask also sets f16's exponent of 1024 (one LOP3: 1024 + q, or
// 1024 + 16 q one nibble up, exact), and one packed subtraction of 1032 (1152) leaves q - 8
// (16 (q - 8)) exactly; x is staged below 2^8 (2^(7 - e), the odd pairs 2^-4 more), so a chunk's
// 16 products a half sum below 2^15. Four more instructions a word, and the f16 sums are about
// half as large and no longer cancel against the zero point's term: the float16 spec's tolerance
// (relative RMS 8.5e-4) is met with 5.9e-4 where the uncentred sums gave 1.6e-3 (CPU emulation,
// tests/cuda/test_gemv_int4_fma_cuda.py); bfloat16's (6.8e-3) either way (1.6e-3 / 2.2e-3).
// Per chunk and column the lane converts its f16 pair of sums to float32 and adds
// s x 2^(e - c) x dot - zs x sum(x) (centred: + 8 s x sum(x)), sum(x) over its own input rows of
// the chunk (float32, from the staging).
//
// Work layout as gemv_int4_mma.cu's: a block owns 32 output columns, its WARPS warps split K by
// whole chunks (CH = 32 x STEPS input rows: the group size, at most 128); in a 32-row step lane
// (g, t) (g = lane / 4, t = lane % 4) reads the four words of word row 4 s + t at columns
// 4g .. 4g + 3 (16 bytes) and x's staged pairs of that word row (16 bytes of shared memory, four
// addresses a warp: broadcasts). BUFFERS (2 or 3) chunks of weights and scales a warp are in
// registers at once: while one is summed the others are on their way. The lanes' sums meet by
// two shuffles (the four t of a column) and the warps' through shared memory.
// Programmatic dependent launch: griddepcontrol.wait before x is staged (EARLY: a warp's first
// chunks of weights and scales, constants of the step, are loaded before it; otherwise right
// after it, still before the staging), launch_dependents after the main loop.

#include "common.cuh"

#ifndef STEPS
#define STEPS 4  // 32-row steps a chunk (CH = 32 * STEPS)
#endif
#ifndef WARPS
#define WARPS 8
#endif
#ifndef BUFFERS
#define BUFFERS 2  // chunks of weights a warp holds in registers (2 or 3)
#endif
#ifndef EARLY
#define EARLY 0
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS 1
#endif
#ifndef CENTER
#define CENTER FP16  // 1: codes as q - 8 (module comment)
#endif
#if CENTER
#define X_EVEN 7  // staged x below 2^8: x * 2^(X_EVEN - e)
#else
#define X_EVEN 14  // staged x below 2^15
#endif
#if STEPS != 1 && STEPS != 2 && STEPS != 4
#error "STEPS must be 1, 2 or 4"
#endif
#if BUFFERS != 2 && BUFFERS != 3
#error "BUFFERS must be 2 or 3"
#endif

#define WROWS (4 * STEPS)  // word rows a chunk

struct WChunk {
    uint4 w[STEPS];
    ScaleWords sc;
};

// (lo, hi) rounded to an f16 pair (lo in the low half)
__device__ __forceinline__ u32 f16_pair(float lo, float hi) {
    u32 d;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
    return d;
}

// 2^p for p in float's normal exponent range
__device__ __forceinline__ float exp2i(int p) { return __uint_as_float((u32)(127 + p) << 23); }

// A lane's weight words of chunk 0 (word row t, columns n_col ..) and scale row 0.
struct Cursor {
    const u32* q;
    const float* s;
    const float* zs;
    int q_step;  // 4 word rows (one 32-row step) in words (32-bit: fewer registers)
    int s_stride;
};

__device__ __forceinline__ void load_chunk(WChunk& c, const Cursor& p, int chunk,
                                           int group_shift) {
    const u32* q = p.q + (long long)chunk * (STEPS * p.q_step);
#pragma unroll
    for (int i = 0; i < STEPS; ++i) c.w[i] = ldg16(q + i * p.q_step);
    const long long srow = (long long)(chunk >> group_shift) * p.s_stride;
    c.sc = load_scale_words(p.s + srow, p.zs + srow);
}

// x [K] -> xs (a 16-byte vector a word row: the f16 pairs of the module comment), f2[c] =
// what a chunk's f16 sums are multiplied by, and sx[4 c + t] = the sum of x over the word rows 4 i + t of chunk c. Thread r
// (of the block) takes word rows r, r + threads, ...; a chunk's WROWS rows are WROWS
// neighbouring lanes of one warp, so its largest |x| and sums meet by shuffles.
__device__ __forceinline__ void stage_x(const unsigned short* __restrict__ x, uint4* xs, float* f2,
                                        float* sx, int k) {
    const int rows = k >> 3;
    for (int base = 0; base < rows; base += WARPS * 32) {
        if (base + (int)(threadIdx.x & ~31u) >= rows) break;  // the whole warp past K
        const int r = base + threadIdx.x;
        const bool ok = r < rows;
        const uint4 raw = ok ? ldg16(x + 8 * r) : make_uint4(0, 0, 0, 0);
        const u32 h[4] = {raw.x, raw.y, raw.z, raw.w};
        float v[8];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[2 * i] = to_float((unsigned short)(h[i] & 0xffffu));
            v[2 * i + 1] = to_float((unsigned short)(h[i] >> 16));
        }
        float amax = 0.f, sum = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            amax = fmaxf(amax, fabsf(v[i]));
            sum += v[i];
        }
#pragma unroll
        for (int off = 1; off < WROWS; off <<= 1)
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
#pragma unroll
        for (int off = 4; off < WROWS; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
        // amax < 2^(e + 1); e kept where 2^(X_EVEN - e) and 2^(e - X_EVEN + 24) are floats
        const int e = min(max((int)((__float_as_uint(amax) >> 23) & 0xffu) - 127, -113), 100);
        const float even = exp2i(X_EVEN - e), odd = exp2i(X_EVEN - 4 - e);
        if (ok) {
            xs[r] = make_uint4(f16_pair(v[0] * even, v[4] * even), f16_pair(v[1] * odd, v[5] * odd),
                               f16_pair(v[2] * even, v[6] * even), f16_pair(v[3] * odd, v[7] * odd));
            const int c = r / WROWS, j = r % WROWS;
#if CENTER  // products (q - 8) x x 2^(X_EVEN - e)
            if (j == 0) f2[c] = exp2i(e - X_EVEN);
#else  // products q x x 2^(X_EVEN - e - 24)
            if (j == 0) f2[c] = exp2i(e - X_EVEN + 24);
#endif
            if (j < 4) sx[4 * c + j] = sum;
        }
    }
}

// y[j] += this lane's share of chunk `chunk` for its 4 columns
__device__ __forceinline__ void compute_chunk(const WChunk& c, const uint4* xs, const float* f2,
                                              const float* sx, int chunk, int t, float (&y)[4]) {
    u32 acc[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) asm("mov.b32 %0, 0;" : "=r"(acc[j]));
#pragma unroll
    for (int i = 0; i < STEPS; ++i) {
        const uint4 xp = xs[chunk * WROWS + 4 * i + t];
        const u32 w[4] = {c.w[i].x, c.w[i].y, c.w[i].z, c.w[i].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const u32 hi = w[j] >> 8;
#if CENTER
            const u32 m = 0x64006400u, even = 0x64086408u, odd = 0x64806480u;  // 1024, 1032, 1152
            acc[j] = hfma2(hsub2((w[j] & 0x000F000Fu) | m, even), xp.x, acc[j]);
            acc[j] = hfma2(hsub2((w[j] & 0x00F000F0u) | m, odd), xp.y, acc[j]);
            acc[j] = hfma2(hsub2((hi & 0x000F000Fu) | m, even), xp.z, acc[j]);
            acc[j] = hfma2(hsub2((hi & 0x00F000F0u) | m, odd), xp.w, acc[j]);
#else
            acc[j] = hfma2(w[j] & 0x000F000Fu, xp.x, acc[j]);
            acc[j] = hfma2(w[j] & 0x00F000F0u, xp.y, acc[j]);
            acc[j] = hfma2(hi & 0x000F000Fu, xp.z, acc[j]);
            acc[j] = hfma2(hi & 0x00F000F0u, xp.w, acc[j]);
#endif
        }
    }
    const float f = f2[chunk], sxt = sx[4 * chunk + t];
    float s[4], zs[4];
    scale_values(c.sc, s, zs);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#if CENTER  // s (q - 8) x + (8 s - zs) x
        const float zterm = fmaf(8.f, s[j], -zs[j]);
#else
        const float zterm = -zs[j];
#endif
        y[j] = fmaf(zterm, sxt, fmaf(s[j], f16x2_sum(acc[j]) * f, y[j]));
    }
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS)
    gemv_int4_fma(const unsigned short* __restrict__ x, const u32* __restrict__ qw,
                  const float* __restrict__ s, const float* __restrict__ zs,
                  const unsigned short* __restrict__ bias, unsigned short* __restrict__ y, int n,
                  int k, int group_shift, long long stride_q, long long stride_s, int has_bias,
                  long long block_q, long long block_s) {
    // dynamic: xs (k / 8 vectors), then f2 (chunks floats), then sx (4 chunks floats)
    extern __shared__ uint4 smem[];
    __shared__ float red[WARPS][32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 32;
    const int n_col = min(n0 + 4 * g, n - 4);
    const int chunks = k / (32 * STEPS);
    const int c_begin = (int)((long long)chunks * warp / WARPS);
    const int c_end = (int)((long long)chunks * (warp + 1) / WARPS);
    uint4* xs = smem;
    float* f2 = reinterpret_cast<float*>(smem + (k >> 3));
    float* sx = f2 + chunks;
    Cursor p;
    // block_q / block_s: elements from one block's 32 columns to the next's (32 in prepare's
    // layout; a layout of 32-column strips, each contiguous over K, has (K / 8) x 32 words)
    p.q = qw + blockIdx.x * block_q + t * stride_q + (n_col - n0);
    p.s = s + blockIdx.x * block_s + (n_col - n0);
    p.zs = zs + blockIdx.x * block_s + (n_col - n0);
    p.q_step = (int)(4 * stride_q);  // plan(): below 2^31
    p.s_stride = (int)stride_s;

    WChunk ca, cb;
#if BUFFERS == 3
    WChunk cc;
#endif
    // the first BUFFERS chunks of weights and scales (constants of the step: EARLY loads them
    // before griddepcontrol.wait), so they are on their way while x is staged
    auto load_first = [&]() {
        if (c_begin < c_end) load_chunk(ca, p, c_begin, group_shift);
        if (c_begin + 1 < c_end) load_chunk(cb, p, c_begin + 1, group_shift);
#if BUFFERS == 3
        if (c_begin + 2 < c_end) load_chunk(cc, p, c_begin + 2, group_shift);
#endif
    };
#if EARLY
    load_first();
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#if !EARLY
    load_first();
#endif
    stage_x(x, xs, f2, sx, k);
    __syncthreads();

    float acc[4] = {0.f, 0.f, 0.f, 0.f};
#if BUFFERS == 3
    for (int c = c_begin; c < c_end; c += 3) {
        compute_chunk(ca, xs, f2, sx, c, t, acc);
        if (c + 3 < c_end) load_chunk(ca, p, c + 3, group_shift);
        if (c + 1 >= c_end) break;
        compute_chunk(cb, xs, f2, sx, c + 1, t, acc);
        if (c + 4 < c_end) load_chunk(cb, p, c + 4, group_shift);
        if (c + 2 >= c_end) break;
        compute_chunk(cc, xs, f2, sx, c + 2, t, acc);
        if (c + 5 < c_end) load_chunk(cc, p, c + 5, group_shift);
    }
#else
    for (int c = c_begin; c < c_end; c += 2) {
        compute_chunk(ca, xs, f2, sx, c, t, acc);
        if (c + 2 < c_end) load_chunk(ca, p, c + 2, group_shift);
        if (c + 1 >= c_end) break;
        compute_chunk(cb, xs, f2, sx, c + 1, t, acc);
        if (c + 3 < c_end) load_chunk(cb, p, c + 3, group_shift);
    }
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif

    // the four t of a column, then the warps in order
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], 1);
        acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], 2);
    }
    if (t == 0) {
#pragma unroll
        for (int j = 0; j < 4; ++j) red[warp][4 * g + j] = acc[j];
    }
    __syncthreads();
    if (threadIdx.x < 32 && n0 + (int)threadIdx.x < n) {
        float v = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) v += red[w][threadIdx.x];
        if (has_bias) v += to_float(bias[n0 + threadIdx.x]);
        y[n0 + threadIdx.x] = from_float(v);
    }
}
