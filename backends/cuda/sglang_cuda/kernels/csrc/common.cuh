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
