// act.silu_mul / act.gelu_mul: act(x[:, :I]) * x[:, I:] in float32, rounded once.
#include "kernels.h"
#include "vec256.h"
#include "vec512.h"

namespace sgl {

template <typename T>
void gated_act(const T* x, int64_t x_stride, T* out, int64_t inter, int act, int64_t begin,
               int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    const T* a = x + t * x_stride;
    const T* b = a + inter;
    T* o = out + t * inter;
#if SGL_AVX512
    if (act == 0) {  // silu(a) * b = a * b / (1 + exp(-a))
      const __m512 one = _mm512_set1_ps(1.0f);
      for (int64_t i = 0; i < inter; i += 16) {
        const __mmask16 m = tail_mask(inter - i);
        const __m512 va = load16(a + i, m), vb = load16(b + i, m);
        const __m512 den = _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), va)));
        store16(o + i, _mm512_div_ps(_mm512_mul_ps(va, vb), den), m);
      }
      continue;
    }
#elif SGL_AVX2
    if (act == 0) {  // the same on 8 lanes
      const __m256 one = _mm256_set1_ps(1.0f);
      for (int64_t i = 0; i < inter; i += 8) {
        const int64_t left = inter - i;
        const __m256 va = load8(a + i, left), vb = load8(b + i, left);
        const __m256 den = _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), va)));
        store8(o + i, _mm256_div_ps(_mm256_mul_ps(va, vb), den), left);
      }
      continue;
    }
#endif
    if (act == 0) {
#pragma omp simd
      for (int64_t i = 0; i < inter; ++i) {
        float v = to_float(a[i]);
        o[i] = from_float<T>(v / (1.0f + fast_exp(-v)) * to_float(b[i]));
      }
    } else if (act == 1) {
#pragma omp simd
      for (int64_t i = 0; i < inter; ++i) {
        float v = to_float(a[i]);
        float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        o[i] = from_float<T>(0.5f * v * (1.0f + fast_tanh(inner)) * to_float(b[i]));
      }
    } else {
      for (int64_t i = 0; i < inter; ++i) {
        float v = to_float(a[i]);
        o[i] = from_float<T>(0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f)) *
                             to_float(b[i]));
      }
    }
  }
}

#define SGL_ACT(T) \
  template void gated_act<T>(const T*, int64_t, T*, int64_t, int, int64_t, int64_t);
SGL_ACT(float)
SGL_ACT(bf16)
SGL_ACT(f16)

}  // namespace sgl
