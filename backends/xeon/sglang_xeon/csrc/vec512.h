// AVX-512 (F + BW + VL) loads and stores of 16 elements as float32 lanes, with a lane mask for
// row tails, and exp over 16 lanes. SGL_AVX512 is defined when the build targets such a CPU
// (-march=native); the kernels keep a plain-loop path for other CPUs.
#pragma once

#include "scalar.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define SGL_AVX512 1
#include <immintrin.h>

namespace sgl {

// Lanes [0, left) of 16: all for left >= 16, none for left <= 0.
inline __mmask16 tail_mask(int64_t left) {
  if (left >= 16) return __mmask16(0xffff);
  return left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
}

// Masked loads only for tails: a full mask takes the plain load, which is much faster on
// some cores (Zen 4 measured: masked 16-bit loads dominated decode attention).
inline __m512 load16(const float* p, __mmask16 m) {
  return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}
inline __m256i load16_bits(const void* p, __mmask16 m) {
  return m == 0xffff ? _mm256_loadu_si256(static_cast<const __m256i*>(p))
                     : _mm256_maskz_loadu_epi16(m, p);
}
inline __m512 load16(const bf16* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load16_bits(p, m)), 16));
}
inline __m512 load16(const f16* p, __mmask16 m) { return _mm512_cvtph_ps(load16_bits(p, m)); }

inline void store16(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
inline void store16(bf16* p, __m512 v, __mmask16 m) {  // round to nearest even, NaN kept
  __m512i u = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  r = _mm512_mask_blend_epi32(nan, r, q);
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(r));
}
inline void store16(f16* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

// fast_exp (scalar.h) on 16 lanes.
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(
      _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 z = _mm512_mul_ps(r, r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, z, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(~under, y, _mm512_castsi512_ps(e));
}

}  // namespace sgl
#endif
