// gemm.int4 for 1-8 rows of 16-bit x on the tensor cores (sm_80 and later), over
// sglang_triton.gemm_int4.prepare's layout:
//   qweight int32 [K/8, N]: nibble i of word (r, n) is the code of input row 8r + i, column n;
//   scales, zs float32 [K/G, N]: w[k, n] = q[k, n] * s - zs (zs = zero * scale), or (PAIRS)
//   float16 (scale, zero) pairs [K/G, N, 2] in the scales' place (common.cuh's ScaleWords).
//
// group_shift: log2 of the chunks a scale group (31: one group over all of K).
//
// One block owns 32 output columns; its warps split K by whole chunks (CH input rows: the group
// size, at most 128), and add their partial sums through shared memory at the end. A warp step
// is 32 input rows: lane (g, t) (g = lane / 4, t = lane % 4) loads one 16-byte vector, the
// four words of word row k0/8 + t at columns 4g .. 4g + 3, and 16 bytes of x (row g of x, input
// rows k0 + 8t .. + 7). Those words are the A operands of four m16n8k16 MMAs as they stand:
// the MMA's k index is permuted so that lane t's k slots (2t, 2t+1, 2t+8, 2t+9) are its own
// input rows k0 + 8t + (0, 4, 2, 6) for one MMA and (1, 5, 3, 7) for the other, and its rows g
// and g + 8 are columns 4g and 4g + 1 (row tile 0) or 4g + 2 and 4g + 3 (row tile 1). So a word
// becomes its four bf16x2 registers by three shifts and four LOP3s (nibble | MAGIC's bits:
// MAGIC + q exactly, 128 in bfloat16, 1024 in float16), x's pairs by four PRMTs, and no byte
// moves between lanes. The MMAs sum (MAGIC + q) * x in float32; one more MMA with a tile of
// ones sums x, and each chunk adds  s * (dot - MAGIC * sum(x)) - zs * sum(x)  per output.
// The next chunk's loads are issued before this chunk's arithmetic (two register buffers).
// XSMEM: x's rows are staged once in shared memory (a block reads k x min(m, 8) elements), so a
// register buffer holds only a chunk's weights and scales and a warp can keep BUFFERS (3) of
// them in flight in about the registers two full buffers took.
// PREFETCH (with STAGES 0, XSMEM 0): a warp also asks L2 for its weights PREFETCH chunks ahead of
// the register buffers (prefetch.global.L2: no registers), so more than the buffers' two chunks
// are on their way from DRAM while a chunk computes; a warp's first chunks after the wait.
// RING (with STAGES 0, XSMEM 0): the weights stream through a ring of RING 16-byte registers a
// lane, one 32-row step each (a step's word is reloaded as soon as it is consumed; the weights
// bypass L1, where x stays), x is loaded one step ahead and the scales one chunk ahead: RING /
// STEPS chunks in flight a warp, and MIN_BLOCKS blocks a processor asked of the compiler (at
// most 65536 / (32 x WARPS x MIN_BLOCKS) registers a thread) so that 16 warps a processor fit.
//
// The C fragment of row tile T: c0 (row g, x row 2t), c1 (row g, 2t + 1), c2 (row g + 8, 2t),
// c3 (row g + 8, 2t + 1).
// gemv_int4_rms (gemm.int4_rms, one row): the plain path's arithmetic with a decoder layer's
// RMS norm before it; see its comment.
// Programmatic dependent launch: griddepcontrol.wait before the first
// load (EARLY: before the first load of x; the weights' first chunks may already be in flight),
// launch_dependents after the main loop (no-ops when not launched with PDL).

#include "gemv_rows.cuh"  // common.cuh, and unpack8 for gemv_int4_rms

#ifndef STEPS
#define STEPS 4  // 32-row steps a chunk (CH = 32 * STEPS)
#endif
#ifndef WARPS
#define WARPS 8
#endif
#ifndef STAGES
#define STAGES 4  // chunks a warp has in flight through cp.async (0: two register buffers)
#endif
#ifndef EARLY
#define EARLY 0  // 1: the first chunks' weight copies start before griddepcontrol.wait
#endif
#ifndef XSMEM
#define XSMEM 0  // 1 (with STAGES 0): x's rows staged once in shared memory, read from there
#endif
#ifndef BUFFERS
#define BUFFERS 2  // with XSMEM: chunks of weights a warp holds in registers (2 or 3)
#endif
#ifndef PREFETCH
#define PREFETCH 0  // (register buffers) chunks ahead a warp asks L2 for; 0: none
#endif
#ifndef RING
#define RING 0  // (register buffers) steps of weights in flight a lane, a multiple of STEPS; 0: off
#endif
#ifndef NORM
#define NORM 0  // 1: compile gemv_int4_rms (the RMS norm inside), not gemv_int4_mma
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS 1  // blocks a processor must be able to hold (caps the registers a thread)
#endif
#if RING && (RING % STEPS)
#error "RING must be a multiple of STEPS"
#endif

#if FP16
#define MAGIC_BITS 0x64006400u
#define ONES_BITS 0x3C003C00u
#define MAGIC_F 1024.0f
#define MMA_TYPE "f16"
#else
#define MAGIC_BITS 0x43004300u
#define ONES_BITS 0x3F803F80u
#define MAGIC_F 128.0f
#define MMA_TYPE "bf16"
#endif

struct Chunk {
    uint4 w[STEPS];
    uint4 x[STEPS];
    ScaleWords sc;
};

__device__ __forceinline__ u32 nibble_pair(u32 w) {
    u32 r;
    // (w & 0x000F000F) | MAGIC: nibbles 0 and 4 as MAGIC + q in the low and high halves
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(r) : "r"(w), "n"(0x000F000F), "n"(MAGIC_BITS));
    return r;
}

__device__ __forceinline__ u32 prmt(u32 a, u32 b, u32 sel) {
    u32 r;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
    return r;
}

__device__ __forceinline__ void mma(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0,
                                    u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32." MMA_TYPE "." MMA_TYPE ".f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A lane's pointers at chunk 0 and their strides a chunk (in elements).
struct Cursor {
    const u32* q;               // word row t, columns n_col ..
    const unsigned short* x;    // x row g, input rows 8t ..
    const float* s;             // scale row 0, columns n_col ..
    const float* zs;
    long long q_step;           // 4 word rows (32 input rows) in words
    long long s_stride;
};

__device__ __forceinline__ void load_chunk(Chunk& c, const Cursor& p, int chunk,
                                           int group_shift) {
    const u32* q = p.q + (long long)chunk * (STEPS * p.q_step);
    const unsigned short* x = p.x + chunk * (32 * STEPS);
#pragma unroll
    for (int i = 0; i < STEPS; ++i) {
        c.w[i] = ldg16(q + i * p.q_step);
        c.x[i] = ldg16(x + 32 * i);
    }
    const long long srow = (long long)(chunk >> group_shift) * p.s_stride;
    c.sc = load_scale_words(p.s + srow, p.zs + srow);
}

// L2 prefetch of this lane's weight words of chunk `chunk` (the scales are small and shared by
// a group's chunks)
__device__ __forceinline__ void prefetch_chunk(const Cursor& p, int chunk) {
    const u32* q = p.q + (long long)chunk * (STEPS * p.q_step);
#pragma unroll
    for (int i = 0; i < STEPS; ++i)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(q + i * p.q_step));
}

// load_chunk of chunk `chunk`, and the prefetch of the chunk PREFETCH after it (within the
// warp's range [.., c_end); chunks up to c_first + 1 + PREFETCH were asked for at the start)
__device__ __forceinline__ void load_ahead(Chunk& c, const Cursor& p, int chunk, int c_first,
                                           int c_end, int group_shift) {
    load_chunk(c, p, chunk, group_shift);
#if PREFETCH
    const int ahead = chunk + PREFETCH;
    if (chunk >= c_first + 2 && ahead < c_end) prefetch_chunk(p, ahead);
#endif
}

__device__ __forceinline__ void tile_mmas(float (&acc)[4], u32 wa, u32 wb, u32 xa0, u32 xa1,
                                          u32 xb0, u32 xb1) {
    // wa: the word of the tile's row g, wb: of row g + 8; first MMA nibbles (0, 4 | 2, 6),
    // second (1, 5 | 3, 7)
    mma(acc, nibble_pair(wa), nibble_pair(wb), nibble_pair(wa >> 8), nibble_pair(wb >> 8), xa0,
        xa1);
    mma(acc, nibble_pair(wa >> 4), nibble_pair(wb >> 4), nibble_pair(wa >> 12),
        nibble_pair(wb >> 12), xb0, xb1);
}

__device__ __forceinline__ void scale_into(float (&y)[4], const float (&acc)[4],
                                           const float (&sx)[4], float s_lo, float s_hi,
                                           float zs_lo, float zs_hi) {
    // c0, c1: row g (s_lo); c2, c3: row g + 8 (s_hi); sx[0], sx[1]: sums of x rows 2t, 2t + 1
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float s = j < 2 ? s_lo : s_hi;
        const float zs = j < 2 ? zs_lo : zs_hi;
        const float sxj = sx[j & 1];
        const float d = fmaf(-MAGIC_F, sxj, acc[j]);
        y[j] = fmaf(-zs, sxj, fmaf(s, d, y[j]));
    }
}

// A chunk's sums into the outputs: y0 (row tile 0: columns 4g, 4g + 1), y1 (4g + 2, 4g + 3)
__device__ __forceinline__ void scale_chunk(float (&y0)[4], float (&y1)[4], const float (&a0)[4],
                                            const float (&a1)[4], const float (&sx)[4],
                                            const ScaleWords& sc) {
    float s[4], zs[4];
    scale_values(sc, s, zs);
    scale_into(y0, a0, sx, s[0], s[1], zs[0], zs[1]);
    scale_into(y1, a1, sx, s[2], s[3], zs[2], zs[3]);
}

// One 32-row step: the word vector w (row tiles 0 and 1) times x's 16 bytes xv into the chunk's
// sums a0, a1 and x's sums sx.
__device__ __forceinline__ void compute_step(uint4 w, uint4 xv, float (&a0)[4], float (&a1)[4],
                                             float (&sx)[4]) {
    const u32 ones = ONES_BITS;
    const u32 xa0 = prmt(xv.x, xv.z, 0x5410u);  // (x0, x4)
    const u32 xa1 = prmt(xv.y, xv.w, 0x5410u);  // (x2, x6)
    const u32 xb0 = prmt(xv.x, xv.z, 0x7632u);  // (x1, x5)
    const u32 xb1 = prmt(xv.y, xv.w, 0x7632u);  // (x3, x7)
    tile_mmas(a0, w.x, w.y, xa0, xa1, xb0, xb1);
    tile_mmas(a1, w.z, w.w, xa0, xa1, xb0, xb1);
    mma(sx, ones, ones, ones, ones, xa0, xa1);
    mma(sx, ones, ones, ones, ones, xb0, xb1);
}

__device__ __forceinline__ void compute_chunk(const Chunk& c, float (&y0)[4], float (&y1)[4]) {
    float a0[4] = {0.f, 0.f, 0.f, 0.f}, a1[4] = {0.f, 0.f, 0.f, 0.f};
    float sx[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < STEPS; ++i) compute_step(c.w[i], c.x[i], a0, a1, sx);
    scale_chunk(y0, y1, a0, a1, sx, c.sc);
}

#if RING
// The warp's chunks [c_begin, c_end) through the ring: step j (0-based within the warp) reads
// word row 4 (STEPS c_begin + j) + t and x's rows 32 (STEPS c_begin + j) + 8t ..; its ring slot
// j % RING is refilled with step j + RING as soon as step j's word is taken.
__device__ __forceinline__ void ring_range(const Cursor& p, int c_begin, int c_end,
                                           int group_shift, float (&y0)[4], float (&y1)[4]) {
    const int steps = (c_end - c_begin) * STEPS;
    const u32* q = p.q + (long long)c_begin * (STEPS * p.q_step);
    const unsigned short* x = p.x + c_begin * (32 * STEPS);
    uint4 ring[RING];
#pragma unroll
    for (int r = 0; r < RING; ++r)
        if (r < steps) ring[r] = ldg16_stream(q + r * p.q_step);
    long long srow = (long long)(c_begin >> group_shift) * p.s_stride;
    // the scales decoded as loaded (decoded at use, float16 pairs spill at the ring's 128 registers)
    float s[4], zs[4];
    scale_values(load_scale_words(p.s + srow, p.zs + srow), s, zs);
    uint4 xv = ldg16(x);
    float a0[4], a1[4], sx[4];
    for (int base = 0; base < steps; base += RING) {
#pragma unroll
        for (int r = 0; r < RING; ++r) {
            const int j = base + r;
            if (j < steps) {  // steps is a multiple of STEPS, so a chunk is all in or all out
                if (r % STEPS == 0) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) a0[e] = a1[e] = sx[e] = 0.f;
                }
                const uint4 w = ring[r];
                if (j + RING < steps) ring[r] = ldg16_stream(q + (long long)(j + RING) * p.q_step);
                const uint4 xc = xv;
                if (j + 1 < steps) xv = ldg16(x + 32 * (j + 1));
                compute_step(w, xc, a0, a1, sx);
                if (r % STEPS == STEPS - 1) {
                    scale_into(y0, a0, sx, s[0], s[1], zs[0], zs[1]);
                    scale_into(y1, a1, sx, s[2], s[3], zs[2], zs[3]);
                    const int next = c_begin + j / STEPS + 1;
                    if (next < c_end) {
                        srow = (long long)(next >> group_shift) * p.s_stride;
                        scale_values(load_scale_words(p.s + srow, p.zs + srow), s, zs);
                    }
                }
            }
        }
    }
}
#endif

#if XSMEM || NORM
// A chunk's weights and scales only: x is read from shared memory when the chunk is computed,
// so a register buffer is 24 registers instead of 40 and a warp can hold BUFFERS of them.
struct ChunkW {
    uint4 w[STEPS];
    ScaleWords sc;
};

__device__ __forceinline__ void load_weights(ChunkW& c, const Cursor& p, int chunk,
                                             int group_shift) {
    const u32* q = p.q + (long long)chunk * (STEPS * p.q_step);
#pragma unroll
    for (int i = 0; i < STEPS; ++i) c.w[i] = ldg16(q + i * p.q_step);
    const long long srow = (long long)(chunk >> group_shift) * p.s_stride;
    c.sc = load_scale_words(p.s + srow, p.zs + srow);
}

// chunk `chunk` of the weights in c, its x from the staged rows (xs: this lane's x row at its
// input rows 8t ..)
__device__ __forceinline__ void compute_staged(const ChunkW& c, const unsigned short* xs,
                                               int chunk, float (&y0)[4], float (&y1)[4]) {
    Chunk full;
#pragma unroll
    for (int i = 0; i < STEPS; ++i) {
        full.w[i] = c.w[i];
        full.x[i] = *reinterpret_cast<const uint4*>(xs + chunk * (32 * STEPS) + 32 * i);
    }
    full.sc = c.sc;
    compute_chunk(full, y0, y1);
}

// The warp's chunks [c_begin, c_end) with x staged at xs (compute_staged), the first two chunks'
// weights already in ca and cb: BUFFERS register buffers of weights, each refilled with the
// chunk BUFFERS ahead as soon as its chunk is computed (the third buffer is loaded here)
__device__ __forceinline__ void staged_chunks(ChunkW& ca, ChunkW& cb, const Cursor& p,
                                              const unsigned short* xs, int c_begin, int c_end,
                                              int group_shift, float (&y0)[4], float (&y1)[4]) {
#if BUFFERS == 3
    ChunkW cc;
    for (int c = c_begin; c < c_end; c += 3) {
        if (c + 2 < c_end) load_weights(cc, p, c + 2, group_shift);
        compute_staged(ca, xs, c, y0, y1);
        if (c + 1 >= c_end) break;
        if (c + 3 < c_end) load_weights(ca, p, c + 3, group_shift);
        compute_staged(cb, xs, c + 1, y0, y1);
        if (c + 2 >= c_end) break;
        if (c + 4 < c_end) load_weights(cb, p, c + 4, group_shift);
        compute_staged(cc, xs, c + 2, y0, y1);
    }
#else
    for (int c = c_begin; c < c_end; c += 2) {
        compute_staged(ca, xs, c, y0, y1);
        if (c + 1 >= c_end) break;
        if (c + 2 < c_end) load_weights(ca, p, c + 2, group_shift);
        compute_staged(cb, xs, c + 1, y0, y1);
        if (c + 3 < c_end) load_weights(cb, p, c + 3, group_shift);
    }
#endif
}
#endif

// A warp's partial sums into red_w [column in the block][row of x]: lane (g, t) holds columns
// 4g, 4g + 1 (y0) and 4g + 2, 4g + 3 (y1) at x rows 2t, 2t + 1 (the C fragments' layout)
__device__ __forceinline__ void store_partials(float (*red_w)[8], int g, int t,
                                               const float (&y0)[4], const float (&y1)[4]) {
    const int bx = 2 * t;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int col = 4 * g + (j >> 1);
        red_w[col][bx + (j & 1)] = y0[j];
        red_w[col + 2][bx + (j & 1)] = y1[j];
    }
}

// 16 bytes global -> shared through cp.async (no registers; cp.async.wait_* orders them)
__device__ __forceinline__ void cp16(void* smem, const void* gmem) {
    const u32 dst = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(gmem) : "memory");
}

#if STAGES
// One chunk of a warp's pipeline in shared memory: each lane's own 16-byte words (a lane reads
// back only what it copied, so cp.async.wait_group alone orders it) and its scale vectors.
struct Slot {
    uint4 w[STEPS][32];
    uint4 s[32];
#if !PAIRS
    uint4 zs[32];
#endif
};

__device__ __forceinline__ void issue_chunk(Slot& slot, const Cursor& p, int chunk,
                                            int group_shift, int lane) {
    const u32* q = p.q + (long long)chunk * (STEPS * p.q_step);
#pragma unroll
    for (int i = 0; i < STEPS; ++i) cp16(&slot.w[i][lane], q + i * p.q_step);
    const long long srow = (long long)(chunk >> group_shift) * p.s_stride;
    cp16(&slot.s[lane], p.s + srow);
#if !PAIRS
    cp16(&slot.zs[lane], p.zs + srow);
#endif
}

__device__ __forceinline__ void load_x(uint4 (&xv)[STEPS], const Cursor& p, int chunk) {
    const unsigned short* x = p.x + chunk * (32 * STEPS);
#pragma unroll
    for (int i = 0; i < STEPS; ++i) xv[i] = ldg16(x + 32 * i);
}

// The first STAGES - 1 chunks' copies, one commit group each (empty past the warp's range).
__device__ __forceinline__ void issue_prologue(Slot* slots, const Cursor& p, int c_begin,
                                               int c_end, int group_shift, int lane) {
#pragma unroll
    for (int i = 0; i < STAGES - 1; ++i) {
        if (c_begin + i < c_end)
            issue_chunk(slots[(c_begin + i) % STAGES], p, c_begin + i, group_shift, lane);
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
}

// Chunk c from its slot, with x's registers xv; first the copy of chunk c + STAGES - 1 is
// issued into the slot chunk c - 1 used, and x of chunk c + 1 is loaded into xn.
__device__ __forceinline__ void pipe_chunk(Slot* slots, const Cursor& p, int c, int c_end,
                                           int group_shift, int lane, const uint4 (&xv)[STEPS],
                                           uint4 (&xn)[STEPS], float (&y0)[4], float (&y1)[4]) {
    asm volatile("cp.async.wait_group %0;" ::"n"(STAGES - 2) : "memory");
    const int nc = c + STAGES - 1;
    if (nc < c_end) issue_chunk(slots[nc % STAGES], p, nc, group_shift, lane);
    asm volatile("cp.async.commit_group;" ::: "memory");
    if (c + 1 < c_end) load_x(xn, p, c + 1);
    const Slot& slot = slots[c % STAGES];
    Chunk ch;
#pragma unroll
    for (int i = 0; i < STEPS; ++i) {
        ch.w[i] = slot.w[i][lane];
        ch.x[i] = xv[i];
    }
    ch.sc.s = slot.s[lane];
#if !PAIRS
    ch.sc.zs = slot.zs[lane];
#endif
    compute_chunk(ch, y0, y1);
}
#endif

#if !NORM
extern "C" __global__ void __launch_bounds__(WARPS * 32, MIN_BLOCKS)
    gemv_int4_mma(const unsigned short* __restrict__ x, const u32* __restrict__ qw,
                  const float* __restrict__ s, const float* __restrict__ zs,
                  const unsigned short* __restrict__ bias, unsigned short* __restrict__ y,
                  int m, int n, int k, int group_shift, long long stride_xm, long long stride_q,
                  long long stride_s, long long stride_ym, int has_bias) {
#if STAGES
    extern __shared__ uint4 smem[];  // WARPS * STAGES slots, then the partial sums
    float (*red)[32][8] = reinterpret_cast<float (*)[32][8]>(smem);
#else
    __shared__ float red[WARPS][32][8];
#endif
#if XSMEM
    extern __shared__ uint4 xsmem[];  // x's first min(m, 8) rows, k elements each
#endif
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 32;
    // a lane past N reads the block's last four columns again (N % 4 == 0), a lane past M
    // x's last row: loads stay in bounds and unpredicated, their outputs are not stored
    const int n_col = min(n0 + 4 * g, n - 4);
    const int chunks = k / (32 * STEPS);
    const int c_begin = (int)((long long)chunks * warp / WARPS);
    const int c_end = (int)((long long)chunks * (warp + 1) / WARPS);
    Cursor p;
    p.q = qw + t * stride_q + n_col;
    p.x = x + min(g, m - 1) * stride_xm + 8 * t;
    p.s = s + n_col;
    p.zs = zs + n_col;
    p.q_step = 4 * stride_q;
    p.s_stride = stride_s;

    float y0[4] = {0.f, 0.f, 0.f, 0.f}, y1[4] = {0.f, 0.f, 0.f, 0.f};
#if STAGES
    Slot* slots = reinterpret_cast<Slot*>(smem) + warp * STAGES;
#if EARLY
    // the weights and scales are constants of the step (no kernel writes them): their first
    // chunks may be in flight while the kernel before this one finishes
    issue_prologue(slots, p, c_begin, c_end, group_shift, lane);
#endif
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#if STAGES
#if !EARLY
    issue_prologue(slots, p, c_begin, c_end, group_shift, lane);
#endif
    if (c_begin < c_end) {
        uint4 xa[STEPS], xb[STEPS];
        load_x(xa, p, c_begin);
        for (int c = c_begin; c < c_end; c += 2) {
            pipe_chunk(slots, p, c, c_end, group_shift, lane, xa, xb, y0, y1);
            if (c + 1 >= c_end) break;
            pipe_chunk(slots, p, c + 1, c_end, group_shift, lane, xb, xa, y0, y1);
        }
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
    __syncthreads();  // every warp is done with its slots: the partial sums reuse them
#elif XSMEM
    {
        // the first chunks' weights first, then x staged (its loads overlap theirs)
        ChunkW ca, cb;
        if (c_begin < c_end) load_weights(ca, p, c_begin, group_shift);
        if (c_begin + 1 < c_end) load_weights(cb, p, c_begin + 1, group_shift);
        unsigned short* xs_all = reinterpret_cast<unsigned short*>(xsmem);
        const int rows = min(m, 8), vecs = k / 8;
        // through cp.async: a thread's copies all in flight at once (register loads paid one
        // L2 round trip per 16 bytes a thread, 8 of them for a 2-warp block at K 4096)
        for (int i = threadIdx.x; i < rows * vecs; i += WARPS * 32) {
            const int r = i / vecs, v = i - r * vecs;
            cp16(&xsmem[i], x + r * stride_xm + 8 * v);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
        asm volatile("cp.async.wait_all;" ::: "memory");
        __syncthreads();
        const unsigned short* xs = xs_all + min(g, m - 1) * k + 8 * t;
        staged_chunks(ca, cb, p, xs, c_begin, c_end, group_shift, y0, y1);
    }
#elif RING
    if (c_begin < c_end) ring_range(p, c_begin, c_end, group_shift, y0, y1);
#else
    if (c_begin < c_end) {
        Chunk ca, cb;
        load_chunk(ca, p, c_begin, group_shift);
#if PREFETCH
        // the chunks after the two register buffers' first loads
        for (int j = c_begin + 2; j < min(c_begin + 2 + PREFETCH, c_end); ++j) prefetch_chunk(p, j);
#endif
        for (int c = c_begin; c < c_end; c += 2) {
            if (c + 1 < c_end) load_ahead(cb, p, c + 1, c_begin, c_end, group_shift);
            compute_chunk(ca, y0, y1);
            if (c + 1 >= c_end) break;
            if (c + 2 < c_end) load_ahead(ca, p, c + 2, c_begin, c_end, group_shift);
            compute_chunk(cb, y0, y1);
        }
    }
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif

    // partial sums -> shared memory [warp][column in the block][row of x]
    store_partials(red[warp], g, t, y0, y1);
    __syncthreads();
    for (int i = threadIdx.x; i < 32 * 8; i += WARPS * 32) {
        const int col = i >> 3, row = i & 7;
        if (row >= m || n0 + col >= n) continue;
        float v = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) v += red[w][col][row];
        if (has_bias) v += to_float(bias[n0 + col]);
        y[row * stride_ym + n0 + col] = from_float(v);
    }
}
#endif

#if NORM
// gemm.int4_rms at one row: y = gemm.int4(norm.rms(x + residual) with weight g) (+ bias).
// Each warp first stages its own K range (the chunks it computes) of h g in shared memory as
// 16-bit pairs, h = x + residual in float32, with its share of the sum of h^2 (register loads,
// two 256-element steps at a time: cp.async copies of x, the residual and g into shared memory
// lost, 2.80 against 2.48 ms in the AWQ 8B's step on an H100); then the
// weights' chunks run as with staged x (compute_staged: no __syncthreads, a warp reads only what
// it wrote). The block's warps cover all of K, so after the partial sums' reduction every block
// has the row's reciprocal RMS rs and scales its sums by it (the MMA sums are linear in x):
// y = rs * sum_k w h g. (The composition rounds the normed row h rs g to the dtype; here h g is
// rounded: the spec's tolerance has one rounding more.) float16 stages h g / 256 (2^-8, exact),
// so a large residual stream times the norm's weight stays within float16's range; rs is
// scaled back. Block b writes its slice of h (the new residual stream, never in place: other
// blocks read the old one) while staging, and of the normed row h rs g at the end when asked.
// flags: 1 bias, 2 residual, 4 h_out, 8 normed_out. EARLY: the first chunks' weights are loaded
// before griddepcontrol.wait (they are constants of the step).
#if FP16
#define STAGE_SCALE 0.00390625f
#else
#define STAGE_SCALE 1.0f
#endif

__device__ __forceinline__ u32 pack2(float lo, float hi) {
    return (u32)from_float(lo) | ((u32)from_float(hi) << 16);
}

extern "C" __global__ void __launch_bounds__(WARPS * 32, 1)
    gemv_int4_rms(const unsigned short* __restrict__ x, const unsigned short* __restrict__ residual,
                  const unsigned short* __restrict__ g_w, float eps, const u32* __restrict__ qw,
                  const float* __restrict__ s, const float* __restrict__ zs,
                  const unsigned short* __restrict__ bias, unsigned short* __restrict__ y,
                  unsigned short* __restrict__ h_out, unsigned short* __restrict__ normed_out,
                  int n, int k, int group_shift, long long stride_q, long long stride_s,
                  int flags) {
    extern __shared__ uint4 xsmem[];  // h g (scaled) for all of K, 8 elements a vector
    __shared__ float red[WARPS][32][8];
    __shared__ float ss_red[WARPS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 32;
    const int n_col = min(n0 + 4 * g, n - 4);
    const int chunks = k / (32 * STEPS);
    const int c_begin = (int)((long long)chunks * warp / WARPS);
    const int c_end = (int)((long long)chunks * (warp + 1) / WARPS);
    const bool has_residual = flags & 2;
    Cursor p;
    p.q = qw + t * stride_q + n_col;
    p.x = nullptr;
    p.s = s + n_col;
    p.zs = zs + n_col;
    p.q_step = 4 * stride_q;
    p.s_stride = stride_s;

    ChunkW ca, cb;
#if EARLY
    if (c_begin < c_end) load_weights(ca, p, c_begin, group_shift);
    if (c_begin + 1 < c_end) load_weights(cb, p, c_begin + 1, group_shift);
#endif
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#if !EARLY
    if (c_begin < c_end) load_weights(ca, p, c_begin, group_shift);
    if (c_begin + 1 < c_end) load_weights(cb, p, c_begin + 1, group_shift);
#endif
    // this warp's K range, staged: h g (scaled), the sum of h^2, block b's slice of h written
    const int per = (k + gridDim.x - 1) / gridDim.x;
    const int h_lo = blockIdx.x * per, h_hi = min(k, h_lo + per);
    float ss = 0.f;
    {
        const int e_end = c_end * (32 * STEPS);
        for (int e0 = c_begin * (32 * STEPS); e0 < e_end; e0 += 2 * 256) {
            uint4 xv[2], rv[2], gv[2];
            const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int u = 0; u < 2; ++u) {
                const int e = e0 + 256 * u + 8 * lane;
                const bool ok = e < e_end;
                xv[u] = ok ? ldg16(x + e) : zero;
                rv[u] = ok && has_residual ? ldg16(residual + e) : zero;
                gv[u] = ok ? ldg16(g_w + e) : zero;
            }
#pragma unroll
            for (int u = 0; u < 2; ++u) {
                const int e = e0 + 256 * u + 8 * lane;
                if (e >= e_end) break;
                float hf[8], rf[8], gf[8];
                unpack8(xv[u], hf);
                unpack8(rv[u], rf);
                unpack8(gv[u], gf);
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    hf[i] += rf[i];
                    ss = fmaf(hf[i], hf[i], ss);
                    if ((flags & 4) && e + i >= h_lo && e + i < h_hi) h_out[e + i] = from_float(hf[i]);
                    gf[i] *= hf[i] * STAGE_SCALE;
                }
                xsmem[e >> 3] = make_uint4(pack2(gf[0], gf[1]), pack2(gf[2], gf[3]),
                                           pack2(gf[4], gf[5]), pack2(gf[6], gf[7]));
            }
        }
    }
    __syncwarp();
    float y0[4] = {0.f, 0.f, 0.f, 0.f}, y1[4] = {0.f, 0.f, 0.f, 0.f};
    const unsigned short* xs = reinterpret_cast<const unsigned short*>(xsmem) + 8 * t;
    staged_chunks(ca, cb, p, xs, c_begin, c_end, group_shift, y0, y1);
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if (lane == 0) ss_red[warp] = ss;
    // partial sums (only x row 0 is real: the MMA's column 2t of lanes t == 0)
    store_partials(red[warp], g, t, y0, y1);
    __syncthreads();
    float sum_sq = 0.f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) sum_sq += ss_red[w];
    const float rs = rsqrtf(sum_sq / (float)k + eps);
    if (threadIdx.x < 32 && n0 + (int)threadIdx.x < n) {
        const int col = threadIdx.x;
        float v = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) v += red[w][col][0];
        v *= rs * (1.0f / STAGE_SCALE);
        if (flags & 1) v += to_float(bias[n0 + col]);
        y[n0 + col] = from_float(v);
    }
    if (flags & 8) {  // the normed row's slice of this block
        for (int e = h_lo + threadIdx.x; e < h_hi; e += WARPS * 32) {
            const float h = to_float(x[e]) + (has_residual ? to_float(residual[e]) : 0.f);
            normed_out[e] = from_float(h * rs * to_float(g_w[e]));
        }
    }
}
#endif
