// gemm.w4a8 for a few rows (decode batches): 4-bit weights times int8 activations by AVX-512
// VNNI integer dot products (vpdpbusd: 4 u8 codes x 4 s8 activations into an int32 lane, 64
// products an instruction), what llama.cpp's Q4_1 x Q8_1 dot does. The codes are split from
// their bytes by and / shift (no table lookups), sums are exact int32 within a group, and
// scale and offset apply once per group in float32:
//   sum_k x w = dx sum_k xq (q - z) s = dx s (sum_k xq q - z sum_k xq)
// with xq = round(x / dx) in [-127, 127], dx = amax / 127 per row and group (w4a8_quantize).
//
// Packed layout (made by sglang_xeon.kernels.gemm_w4a8.native_form), for 16 output columns
// ("block" nb) and one group g of G input features (G a multiple of 8):
//
//   [s: 16 x bf16][z: 16 x bf16][G / 8 chunks x 64 bytes]     (64 + 8 G bytes, blocks nb-major)
//
// Byte 4 i + j of chunk c holds column i's code of k = 8 c + j (low nibble) and of
// k = 8 c + 4 + j (high nibble), j < 4: the low nibbles of a chunk are vpdpbusd's operand for
// activations 8c..8c+3 (one broadcast int32), the high ones for 8c+4..8c+7.
#include <cmath>

#include "kernels.h"

#if defined(__AVX512VNNI__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define SGL_W4A8 1
#elif defined(__AVX2__) && defined(__FMA__)
// AVX2 (no VNNI): vpmaddubsw multiplies the u8 codes by the s8 activations and adds pairs into
// int16 lanes (at most 2 x 15 x 127 = 3810, so never saturating), vpmaddwd by ones adds those
// pairs into the int32 lane of a column's four codes: vpdpbusd's sum in two instructions, as
// llama.cpp's AVX2 Q4_1 x Q8_1 dot does it. The int16 partials of up to 4 chunks (8 products
// of 3810 at most: 30480 < 32767) are added before the widening, so the int32 sums, and the
// float32 arithmetic after them, are exactly the AVX-512 kernel's.
#include <immintrin.h>
#define SGL_W4A8_AVX2 1
#endif

namespace sgl {

#if SGL_W4A8
namespace {

inline __m512 bf16x16(const uint8_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}

// Rows [m0, m0 + MT) against NB column blocks from nb. NA = 2 accumulators a (block, row): the
// low and the high nibbles, so consecutive dot products do not wait on each other.
template <int MT, int NB>
void w4a8_block(const int8_t* xq, const float* dx, const int32_t* xsum, int64_t k,
                const uint8_t* packed, int64_t groups, int64_t group_size, void* out,
                bool out_bf16, int64_t n, int64_t nb, int64_t m0) {
  __m512 total[NB][MT];
  for (int b = 0; b < NB; ++b)
    for (int r = 0; r < MT; ++r) total[b][r] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0f);
  const int64_t chunks = group_size / 8, stride = 64 + 8 * group_size;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p0 = packed + (nb * groups + g) * stride;
    __m512i acc[NB][MT][2];
    for (int b = 0; b < NB; ++b)
      for (int r = 0; r < MT; ++r) acc[b][r][0] = acc[b][r][1] = _mm512_setzero_si512();
    const int8_t* xg = xq + m0 * k + g * group_size;
    for (int64_t c = 0; c < chunks; ++c) {
      __m512i xa[MT], xb[MT];
      for (int r = 0; r < MT; ++r) {
        const int32_t* xr = reinterpret_cast<const int32_t*>(xg + r * k + 8 * c);
        xa[r] = _mm512_set1_epi32(xr[0]);
        xb[r] = _mm512_set1_epi32(xr[1]);
      }
      for (int b = 0; b < NB; ++b) {
        const __m512i v = _mm512_loadu_si512(p0 + b * groups * stride + 64 + 64 * c);
        const __m512i lo = _mm512_and_si512(v, low);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        for (int r = 0; r < MT; ++r) {
          acc[b][r][0] = _mm512_dpbusd_epi32(acc[b][r][0], lo, xa[r]);
          acc[b][r][1] = _mm512_dpbusd_epi32(acc[b][r][1], hi, xb[r]);
        }
      }
    }
    for (int b = 0; b < NB; ++b) {
      const uint8_t* p = p0 + b * groups * stride;
      const __m512 s = bf16x16(p), z = bf16x16(p + 32);
      for (int r = 0; r < MT; ++r) {
        const int64_t i = (m0 + r) * groups + g;
        const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(acc[b][r][0], acc[b][r][1]));
        const __m512 t = _mm512_fnmadd_ps(z, _mm512_set1_ps(float(xsum[i])), dot);
        total[b][r] = _mm512_fmadd_ps(t, _mm512_mul_ps(s, _mm512_set1_ps(dx[i])), total[b][r]);
      }
    }
  }
  for (int b = 0; b < NB; ++b) {
    const int64_t left = n - (nb + b) * 16;
    const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    for (int r = 0; r < MT; ++r) {
      const int64_t at = (m0 + r) * n + (nb + b) * 16;
      if (out_bf16) {
        __m256i h = (__m256i)_mm512_cvtneps_pbh(total[b][r]);
        _mm256_mask_storeu_epi16(static_cast<uint16_t*>(out) + at, mask, h);
      } else {
        _mm512_mask_storeu_ps(static_cast<float*>(out) + at, mask, total[b][r]);
      }
    }
  }
}

using BlockFn = void (*)(const int8_t*, const float*, const int32_t*, int64_t, const uint8_t*,
                         int64_t, int64_t, void*, bool, int64_t, int64_t, int64_t);
constexpr BlockFn kRows[] = {w4a8_block<1, 1>, w4a8_block<2, 1>, w4a8_block<3, 1>,
                             w4a8_block<4, 1>};

}  // namespace

bool w4a8_supported() { return true; }

void w4a8_gemm(const int8_t* xq, const float* dx, const int32_t* xsum, int64_t m, int64_t k,
               const uint8_t* packed, int64_t group_size, void* out, bool out_bf16, int64_t n,
               int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size;
  int64_t nb = nb_begin;
  if (m == 1) {
    for (; nb + 4 <= nb_end; nb += 4)
      w4a8_block<1, 4>(xq, dx, xsum, k, packed, groups, group_size, out, out_bf16, n, nb, 0);
  } else if (m == 2) {
    for (; nb + 2 <= nb_end; nb += 2)
      w4a8_block<2, 2>(xq, dx, xsum, k, packed, groups, group_size, out, out_bf16, n, nb, 0);
  }
  for (; nb < nb_end; ++nb) {
    for (int64_t m0 = 0; m0 < m; m0 += 4) {
      const int rows = int(m - m0 < 4 ? m - m0 : 4);
      kRows[rows - 1](xq, dx, xsum, k, packed, groups, group_size, out, out_bf16, n, nb, m0);
    }
  }
}
#elif SGL_W4A8_AVX2
namespace {

inline __m256 bf16x8(const uint8_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}

// Rows [m0, m0 + MT) against column block nb: the block's 16 columns as two halves of 8 (a
// chunk's bytes 0-31 and 32-63), an int32 lane a column.
template <int MT>
void w4a8_block_avx2(const int8_t* xq, const float* dx, const int32_t* xsum, int64_t k,
                     const uint8_t* packed, int64_t groups, int64_t group_size, void* out,
                     bool out_bf16, int64_t n, int64_t nb, int64_t m0) {
  __m256 total[2][MT];
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < MT; ++r) total[h][r] = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  const int64_t chunks = group_size / 8, stride = 64 + 8 * group_size;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p = packed + (nb * groups + g) * stride;
    const int8_t* xg = xq + m0 * k + g * group_size;
    __m256i acc[2][MT];
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < MT; ++r) acc[h][r] = _mm256_setzero_si256();
    for (int64_t c0 = 0; c0 < chunks; c0 += 4) {
      const int64_t c1 = chunks < c0 + 4 ? chunks : c0 + 4;
      __m256i part[2][MT];  // int16 sums of pairs of products
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < MT; ++r) part[h][r] = _mm256_setzero_si256();
      for (int64_t c = c0; c < c1; ++c) {
        __m256i xa[MT], xb[MT];
        for (int r = 0; r < MT; ++r) {
          const int32_t* xr = reinterpret_cast<const int32_t*>(xg + r * k + 8 * c);
          xa[r] = _mm256_set1_epi32(xr[0]);
          xb[r] = _mm256_set1_epi32(xr[1]);
        }
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256((const __m256i*)(p + 64 + 64 * c + 32 * h));
          const __m256i lo = _mm256_and_si256(v, low);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          for (int r = 0; r < MT; ++r)
            part[h][r] = _mm256_add_epi16(
                part[h][r], _mm256_add_epi16(_mm256_maddubs_epi16(lo, xa[r]),
                                             _mm256_maddubs_epi16(hi, xb[r])));
        }
      }
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < MT; ++r)
          acc[h][r] = _mm256_add_epi32(acc[h][r], _mm256_madd_epi16(part[h][r], ones));
    }
    for (int h = 0; h < 2; ++h) {
      const __m256 s = bf16x8(p + 16 * h), z = bf16x8(p + 32 + 16 * h);
      for (int r = 0; r < MT; ++r) {
        const int64_t i = (m0 + r) * groups + g;
        const __m256 dot = _mm256_cvtepi32_ps(acc[h][r]);
        const __m256 t = _mm256_fnmadd_ps(z, _mm256_set1_ps(float(xsum[i])), dot);
        total[h][r] = _mm256_fmadd_ps(t, _mm256_mul_ps(s, _mm256_set1_ps(dx[i])), total[h][r]);
      }
    }
  }
  for (int h = 0; h < 2; ++h) {
    const int64_t col = nb * 16 + 8 * h, left = n - col;
    if (left <= 0) break;
    for (int r = 0; r < MT; ++r) {
      alignas(32) float v[8];
      _mm256_store_ps(v, total[h][r]);
      const int64_t at = (m0 + r) * n + col;
      for (int64_t i = 0; i < 8 && i < left; ++i) {
        if (out_bf16) {
          static_cast<bf16*>(out)[at + i] = from_float<bf16>(v[i]);
        } else {
          static_cast<float*>(out)[at + i] = v[i];
        }
      }
    }
  }
}

}  // namespace

bool w4a8_supported() { return true; }

void w4a8_gemm(const int8_t* xq, const float* dx, const int32_t* xsum, int64_t m, int64_t k,
               const uint8_t* packed, int64_t group_size, void* out, bool out_bf16, int64_t n,
               int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    int64_t m0 = 0;
    for (; m0 + 2 <= m; m0 += 2)
      w4a8_block_avx2<2>(xq, dx, xsum, k, packed, groups, group_size, out, out_bf16, n, nb, m0);
    if (m0 < m)
      w4a8_block_avx2<1>(xq, dx, xsum, k, packed, groups, group_size, out, out_bf16, n, nb, m0);
  }
}
#else
bool w4a8_supported() { return false; }
void w4a8_gemm(const int8_t*, const float*, const int32_t*, int64_t, int64_t, const uint8_t*,
               int64_t, void*, bool, int64_t, int64_t, int64_t) {}
#endif

// The packed weight's column blocks [nb_begin, nb_end) as bf16 (q - z) s into out [n, k].
void w4a8_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, uint16_t* out,
                     int64_t n, int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size, stride = 64 + 8 * group_size;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* p = packed + (nb * groups + g) * stride;
      const uint16_t* s = reinterpret_cast<const uint16_t*>(p);
      const uint16_t* z = reinterpret_cast<const uint16_t*>(p + 32);
      for (int i = 0; i < 16; ++i) {
        const int64_t col = nb * 16 + i;
        if (col >= n) break;
        const float sv = to_float(bf16{s[i]}), zv = to_float(bf16{z[i]});
        for (int64_t kk = 0; kk < group_size; ++kk) {
          const uint8_t byte = p[64 + 64 * (kk / 8) + 4 * i + kk % 4];
          const int code = (kk % 8) < 4 ? byte & 15 : byte >> 4;
          out[col * k + g * group_size + kk] = from_float<bf16>((float(code) - zv) * sv).bits;
        }
      }
    }
  }
}

// Row r, group g of x [m, k]: dx = amax / 127, xq = round-half-even(x / dx) (in [-127, 127]
// since |x| <= amax), xsum = sum of the group's xq; a group of zeros gets dx = 0, xq = 0.
// Float32 division as the reference's (sglang.ops.gemm_w4a8) in its compute dtype.
#if SGL_W4A8
namespace {
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const bf16* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}
}  // namespace
#endif

template <typename T>
void w4a8_quantize(const T* x, int64_t m, int64_t k, int64_t group_size, int8_t* xq, float* dx,
                   int32_t* xsum) {
  const int64_t groups = k / group_size;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const T* xr = x + r * k + g * group_size;
#if SGL_W4A8
      if (group_size % 16 == 0) {  // the same operations, 16 lanes at a time
        __m512 vmax = _mm512_setzero_ps();
        for (int64_t j = 0; j < group_size; j += 16)
          vmax = _mm512_max_ps(vmax, _mm512_abs_ps(load16(xr + j)));
        const float d = _mm512_reduce_max_ps(vmax) / 127.0f;
        const __m512 div = _mm512_set1_ps(d > 0.0f ? d : 1.0f);
        const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        __m512i sum = _mm512_setzero_si512();
        int8_t* q = xq + r * k + g * group_size;
        for (int64_t j = 0; j < group_size; j += 16) {
          __m512 v = _mm512_roundscale_ps(_mm512_div_ps(load16(xr + j), div),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          const __m512i iv = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
          _mm_storeu_si128((__m128i*)(q + j), _mm512_cvtepi32_epi8(iv));
          sum = _mm512_add_epi32(sum, iv);
        }
        dx[r * groups + g] = d;
        xsum[r * groups + g] = _mm512_reduce_add_epi32(sum);
        continue;
      }
#endif
      float amax = 0.0f;
      for (int64_t j = 0; j < group_size; ++j) amax = std::fmax(amax, std::fabs(to_float(xr[j])));
      const float d = amax / 127.0f;
      const float div = d > 0.0f ? d : 1.0f;
      int32_t sum = 0;
      int8_t* q = xq + r * k + g * group_size;
      for (int64_t j = 0; j < group_size; ++j) {
        const float v = std::nearbyint(to_float(xr[j]) / div);
        q[j] = int8_t(std::fmax(-127.0f, std::fmin(127.0f, v)));
        sum += q[j];
      }
      dx[r * groups + g] = d;
      xsum[r * groups + g] = sum;
    }
  }
}

template void w4a8_quantize<float>(const float*, int64_t, int64_t, int64_t, int8_t*, float*,
                                   int32_t*);
template void w4a8_quantize<bf16>(const bf16*, int64_t, int64_t, int64_t, int8_t*, float*,
                                  int32_t*);

}  // namespace sgl
