// The native kernels, over raw pointers and strides (elements), one call per range of rows
// [begin, end): the bindings (bindings.cpp) check the tensors and split the rows between
// threads. T is float, bf16 or f16; I is int32_t or int64_t.
#pragma once

#include <cstdint>

#include "scalar.h"

namespace sgl {

// out[t] = w * h / rms(h), h = x[t] (+ residual[t]); with residual, h (rounded to T) goes to
// h_out[t]. Rows of x / residual / out / h_out have stride x_stride / r_stride / dim / dim.
template <typename T>
void rms_norm(const T* x, int64_t x_stride, const T* residual, int64_t r_stride, const T* w,
              T* out, T* h_out, int64_t dim, float eps, int64_t begin, int64_t end);

// Rotary embedding of token t's heads [heads, dim] (head stride, token stride given) into a
// contiguous [tokens, heads, dim] output; cache rows [rotary_dim] = cos | sin.
template <typename T>
void rope(const T* x, int64_t t_stride, int64_t h_stride, T* out, int64_t heads, int64_t dim,
          const int64_t* positions, const float* cache, int64_t rotary_dim, bool neox,
          int64_t begin, int64_t end);

// out[t, :I] = act(x[t, :I]) * x[t, I:]; act 0 = silu, 1 = gelu tanh, 2 = gelu erf.
template <typename T>
void gated_act(const T* x, int64_t x_stride, T* out, int64_t inter, int act, int64_t begin,
               int64_t end);

// Decode attention straight from the paged cache, for sequences [begin, end) of the batch.
// q [B, H, D] (strides q_b, q_h), caches
// [S, Hkv, D] (strides k_s, k_h / v_s, v_h), out [B, H, Dv] contiguous.
struct DecodeShape {
  int64_t heads, kv_heads, dim, v_dim;
  int64_t q_b, q_h, k_s, k_h, v_s, v_h;
  float scale, softcap;
  int64_t window;
};

template <typename T, typename I>
void decode_attention(const T* q, const T* k_cache, const T* v_cache, const int64_t* kv_indptr,
                      const I* kv_indices, T* out, const DecodeShape& s, int64_t begin,
                      int64_t end);

}  // namespace sgl

namespace sgl {

// gemm.int4 with bf16 activations x [m, k] (contiguous; xsum [m, k / group_size] their
// float32 sums per group) and the packed weight of gemm_int4.cpp, for column blocks
// [nb_begin, nb_end) of 16 into out [m, n] (bf16). codes: 0 the integers 0..15 (int4), 1 e2m1
// (MXFP4, zero points 0). Only where the build targets AVX-512 BF16 (int4_bf16_supported()).
bool int4_bf16_supported();
void int4_bf16_gemm(const uint16_t* x, const float* xsum, int64_t m, int64_t k,
                    const uint8_t* packed, int64_t group_size, uint16_t* out, int64_t n,
                    int64_t nb_begin, int64_t nb_end, int codes);
// The packed weight's column blocks [nb_begin, nb_end) as bf16 (value(q) - z) s into out [n, k].
void int4_bf16_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, uint16_t* out,
                          int64_t n, int64_t nb_begin, int64_t nb_end, int codes);

}  // namespace sgl

namespace sgl {

// gemm.w8a16 with float32 activations x [m, k] (contiguous; xsum [m, k / group_size] their
// per-group sums, read only with zeros) and the packed weight of gemm_w8a16.cpp, for column
// blocks [nb_begin, nb_end) of 16 into out [m, n] (float32); w8_dequantize writes those
// blocks' weights, (q - z) s, into out [n, k] (float32). Only where the build targets AVX-512
// or AVX2 with FMA (w8_supported()); both give the same sums.
bool w8_supported();
void w8_gemm(const float* x, const float* xsum, int64_t m, int64_t k, const uint8_t* packed,
             int64_t group_size, bool zeros, float* out, int64_t n, int64_t nb_begin,
             int64_t nb_end);
void w8_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, bool zeros, float* out,
                   int64_t n, int64_t nb_begin, int64_t nb_end);

}  // namespace sgl

namespace sgl {

// gemm.w4a8: x [m, k] quantized per row and group by w4a8_quantize (xq int8 [m, k], dx and
// xsum [m, k / group_size]), times the packed 4-bit weight of gemm_w4a8.cpp, for column blocks
// [nb_begin, nb_end) of 16 into out [m, n] (bf16 where out_bf16, else float32). Only where the
// build targets AVX-512 VNNI or AVX2 with FMA (w4a8_supported()); both give the same sums.
bool w4a8_supported();
template <typename T>
void w4a8_quantize(const T* x, int64_t m, int64_t k, int64_t group_size, int8_t* xq, float* dx,
                   int32_t* xsum);
void w4a8_gemm(const int8_t* xq, const float* dx, const int32_t* xsum, int64_t m, int64_t k,
               const uint8_t* packed, int64_t group_size, void* out, bool out_bf16, int64_t n,
               int64_t nb_begin, int64_t nb_end);

// The packed weight's column blocks [nb_begin, nb_end) as bf16 (q - z) s into out [n, k].
void w4a8_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, uint16_t* out,
                     int64_t n, int64_t nb_begin, int64_t nb_end);

}  // namespace sgl
