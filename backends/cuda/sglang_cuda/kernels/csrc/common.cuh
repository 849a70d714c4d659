// Device helpers shared by the cuda backend's CUDA C++ kernels (compiled by NVRTC with this
// folder on the include path: sglang_cuda/nvrtc.py). FP16 selects the 16-bit float type of
// to_float / from_float: bfloat16 (0) or float16 (1).
#pragma once

typedef unsigned int u32;

#ifndef FP16
#define FP16 0
#endif

// 16 bytes through the read-only path (weights, x: never written by this kernel)
__device__ __forceinline__ uint4 ldg16(const void* p) {
    uint4 v;
    asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// 16 bytes read once (streamed weights): not kept in L1 (L1::no_allocate), so they do not evict
// what the processor's warps read again (x)
__device__ __forceinline__ uint4 ldg16_stream(const void* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

__device__ __forceinline__ float to_float(unsigned short h) {
#if FP16
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return __uint_as_float((u32)h << 16);
#endif
}

__device__ __forceinline__ unsigned short from_float(float f) {
    unsigned short h;
#if FP16
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
#else
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
#endif
    return h;
}

__device__ __forceinline__ float4 as_float4(uint4 v) {
    return make_float4(__uint_as_float(v.x), __uint_as_float(v.y), __uint_as_float(v.z),
                       __uint_as_float(v.w));
}

// packed f16 arithmetic on the pairs' bits (low half: the first element)
__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) {
    u32 d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

__device__ __forceinline__ u32 hadd2(u32 a, u32 b) {
    u32 d;
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}

__device__ __forceinline__ u32 hsub2(u32 a, u32 b) {
    u32 d;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}

// the sum of an f16 pair's two halves, in float32
__device__ __forceinline__ float f16x2_sum(u32 v) {
    float lo, hi;
    asm("{ .reg .b16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h; }"
        : "=f"(lo), "=f"(hi)
        : "r"(v));
    return lo + hi;
}

// gemm.int4's prepared scales (sglang_triton.gemm_int4.prepare) for a lane's four output
// columns of one scale group, as loaded. PAIRS: float16 (scale, zero) pairs [K/G, N, 2], one
// 16-byte vector (a pair is one 4-byte entry, so the kernels' scale pointers and strides count
// entries either way); else float32 scales and zero x scale [K/G, N], a vector each.
#ifndef PAIRS
#define PAIRS 0
#endif

struct ScaleWords {
    uint4 s;  // PAIRS: the four (s, z) pairs; else the float32 scales
#if !PAIRS
    uint4 zs;  // the float32 zero x scale
#endif
};

__device__ __forceinline__ ScaleWords load_scale_words(const float* s, const float* zs) {
    ScaleWords v;
    v.s = ldg16(s);
#if !PAIRS
    v.zs = ldg16(zs);
#endif
    return v;
}

// s and zs of the four columns in float32; with PAIRS zs = z * s rounded once, the product
// prepare forms for the float32 layout, so both layouts give the same sums
__device__ __forceinline__ void scale_values(const ScaleWords& v, float (&s)[4], float (&zs)[4]) {
#if PAIRS
    const u32 w[4] = {v.s.x, v.s.y, v.s.z, v.s.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        float z;
        asm("{ .reg .b16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h; }"
            : "=f"(s[j]), "=f"(z)
            : "r"(w[j]));
        zs[j] = __fmul_rn(z, s[j]);
    }
#else
    const float4 a = as_float4(v.s), b = as_float4(v.zs);
    s[0] = a.x, s[1] = a.y, s[2] = a.z, s[3] = a.w;
    zs[0] = b.x, zs[1] = b.y, zs[2] = b.z, zs[3] = b.w;
#endif
}
