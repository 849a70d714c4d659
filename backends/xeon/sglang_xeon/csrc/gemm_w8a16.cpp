// gemm.w8a16 for a few rows of activations (decode batches, the LM head): the weight stays
// int8 in memory; its codes are widened in registers, 16 at a time, and multiplied with x in
// float32 (FMA); scale and zero apply once per group, so the only roundings are float32 ones:
// sum_k x (q - z) s = s (x . q) - s z sum_k x (xsum [m, groups] = per-group sums of x).
//
// Packed layout (made by sglang_xeon.kernels.gemm_w8a16.native_form), for 16 output columns
// ("block" nb) and one group g of G input features:
//
//   [s: 16 x f32][z: 16 x f32, with zeros only][G x 16 int8: k-major, column j at byte j]
//
// blocks nb-major, groups in order within a block: one block's whole K (16 K bytes) stays in
// L1 while every row of x passes over it.
#include <algorithm>
#include <utility>

#include "kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define SGL_W8_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
// AVX2: a block's 16 columns as two halves of 8 lanes, the same FMAs in the same order per
// column, so the sums are the AVX-512 kernel's bit for bit.
#include <immintrin.h>
#define SGL_W8_AVX2 1
#endif

namespace sgl {

#if SGL_W8_AVX512
namespace {

inline __m512 widen(const int8_t* q) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)q)));
}

// Rows [m0, m0 + MT) of x (float32) against column block nb, into out (float32 [m, n]). With
// few rows, NA accumulators per row take alternate k, so consecutive FMAs do not wait on each
// other (their latency, not the arithmetic, bounds a one-row GEMV).
template <int MT, bool ZEROS>
void block_rows(const float* x, const float* xsum, int64_t k, const uint8_t* packed,
                int64_t groups, int64_t group_size, float* out, int64_t n, int64_t nb,
                int64_t m0) {
  constexpr int NA = MT >= 4 ? 1 : (MT >= 2 ? 2 : 4);
  constexpr int64_t head = ZEROS ? 128 : 64;
  const int64_t stride = head + 16 * group_size;
  const uint8_t* blk = packed + nb * groups * stride;
  __m512 total[MT];
  for (int r = 0; r < MT; ++r) total[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p = blk + g * stride;
    const int8_t* q = reinterpret_cast<const int8_t*>(p + head);
    const float* xg = x + m0 * k + g * group_size;
    __m512 acc[MT][NA];
    for (int r = 0; r < MT; ++r)
      for (int a = 0; a < NA; ++a) acc[r][a] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < group_size; kk += NA) {
      for (int a = 0; a < NA; ++a) {
        const __m512 w = widen(q + 16 * (kk + a));
        for (int r = 0; r < MT; ++r)
          acc[r][a] = _mm512_fmadd_ps(_mm512_set1_ps(xg[r * k + kk + a]), w, acc[r][a]);
      }
    }
    const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    __m512 sz = _mm512_setzero_ps();
    if (ZEROS) sz = _mm512_mul_ps(s, _mm512_loadu_ps(reinterpret_cast<const float*>(p + 64)));
    for (int r = 0; r < MT; ++r) {
      __m512 sum = acc[r][0];
      for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[r][a]);
      total[r] = _mm512_fmadd_ps(sum, s, total[r]);
      if (ZEROS)
        total[r] = _mm512_fnmadd_ps(_mm512_set1_ps(xsum[(m0 + r) * groups + g]), sz, total[r]);
    }
  }
  const int64_t left = n - nb * 16;
  const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
  for (int r = 0; r < MT; ++r) _mm512_mask_storeu_ps(out + (m0 + r) * n + nb * 16, mask, total[r]);
}

}  // namespace

void w8_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, bool zeros, float* out,
                   int64_t n, int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size, head = zeros ? 128 : 64;
  const int64_t stride = head + 16 * group_size;
  alignas(64) float col[16];
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    const int64_t cols = std::min<int64_t>(16, n - nb * 16);
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* p = packed + (nb * groups + g) * stride;
      const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(p));
      const __m512 z =
          zeros ? _mm512_loadu_ps(reinterpret_cast<const float*>(p + 64)) : _mm512_setzero_ps();
      const int8_t* q = reinterpret_cast<const int8_t*>(p + head);
      for (int64_t kk = 0; kk < group_size; ++kk) {
        _mm512_store_ps(col, _mm512_mul_ps(_mm512_sub_ps(widen(q + 16 * kk), z), s));
        for (int64_t j = 0; j < cols; ++j) out[(nb * 16 + j) * k + g * group_size + kk] = col[j];
      }
    }
  }
}
#elif SGL_W8_AVX2
namespace {

inline __m256 widen8(const int8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)q)));
}

template <int MT, bool ZEROS>
void block_rows(const float* x, const float* xsum, int64_t k, const uint8_t* packed,
                int64_t groups, int64_t group_size, float* out, int64_t n, int64_t nb,
                int64_t m0) {
  constexpr int NA = MT >= 4 ? 1 : (MT >= 2 ? 2 : 4);
  constexpr int64_t head = ZEROS ? 128 : 64;
  const int64_t stride = head + 16 * group_size;
  const uint8_t* blk = packed + nb * groups * stride;
  __m256 total[MT][2];
  for (int r = 0; r < MT; ++r) total[r][0] = total[r][1] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p = blk + g * stride;
    const int8_t* q = reinterpret_cast<const int8_t*>(p + head);
    const float* xg = x + m0 * k + g * group_size;
    __m256 acc[MT][NA][2];
    for (int r = 0; r < MT; ++r)
      for (int a = 0; a < NA; ++a) acc[r][a][0] = acc[r][a][1] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < group_size; kk += NA) {
      for (int a = 0; a < NA; ++a) {
        const __m256 w0 = widen8(q + 16 * (kk + a)), w1 = widen8(q + 16 * (kk + a) + 8);
        for (int r = 0; r < MT; ++r) {
          const __m256 xv = _mm256_set1_ps(xg[r * k + kk + a]);
          acc[r][a][0] = _mm256_fmadd_ps(xv, w0, acc[r][a][0]);
          acc[r][a][1] = _mm256_fmadd_ps(xv, w1, acc[r][a][1]);
        }
      }
    }
    for (int h = 0; h < 2; ++h) {
      const float* sp = reinterpret_cast<const float*>(p) + 8 * h;
      const __m256 s = _mm256_loadu_ps(sp);
      __m256 sz = _mm256_setzero_ps();
      if (ZEROS) sz = _mm256_mul_ps(s, _mm256_loadu_ps(sp + 16));
      for (int r = 0; r < MT; ++r) {
        __m256 sum = acc[r][0][h];
        for (int a = 1; a < NA; ++a) sum = _mm256_add_ps(sum, acc[r][a][h]);
        total[r][h] = _mm256_fmadd_ps(sum, s, total[r][h]);
        if (ZEROS)
          total[r][h] =
              _mm256_fnmadd_ps(_mm256_set1_ps(xsum[(m0 + r) * groups + g]), sz, total[r][h]);
      }
    }
  }
  const int64_t left = n - nb * 16;
  for (int r = 0; r < MT; ++r) {
    float* o = out + (m0 + r) * n + nb * 16;
    if (left >= 16) {
      _mm256_storeu_ps(o, total[r][0]);
      _mm256_storeu_ps(o + 8, total[r][1]);
    } else {
      alignas(32) float v[16];
      _mm256_store_ps(v, total[r][0]);
      _mm256_store_ps(v + 8, total[r][1]);
      for (int64_t j = 0; j < left; ++j) o[j] = v[j];
    }
  }
}

}  // namespace

void w8_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, bool zeros, float* out,
                   int64_t n, int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size, head = zeros ? 128 : 64;
  const int64_t stride = head + 16 * group_size;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    const int64_t cols = std::min<int64_t>(16, n - nb * 16);
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* p = packed + (nb * groups + g) * stride;
      const float* s = reinterpret_cast<const float*>(p);
      const float* z = reinterpret_cast<const float*>(p + 64);
      const int8_t* q = reinterpret_cast<const int8_t*>(p + head);
      for (int64_t kk = 0; kk < group_size; ++kk)
        for (int64_t j = 0; j < cols; ++j)
          out[(nb * 16 + j) * k + g * group_size + kk] =
              (float(q[16 * kk + j]) - (zeros ? z[j] : 0.0f)) * s[j];
    }
  }
}
#endif

#if SGL_W8_AVX512 || SGL_W8_AVX2
namespace {

using BlockFn = void (*)(const float*, const float*, int64_t, const uint8_t*, int64_t, int64_t,
                         float*, int64_t, int64_t, int64_t);

template <bool ZEROS, int... MT>
constexpr BlockFn pick(int rows, std::integer_sequence<int, MT...>) {
  BlockFn fns[] = {block_rows<MT + 1, ZEROS>...};
  return fns[rows - 1];
}

constexpr int ROWS = 4;  // rows per pass over a block (its weights stay in L1 between passes)

}  // namespace

bool w8_supported() { return true; }

void w8_gemm(const float* x, const float* xsum, int64_t m, int64_t k, const uint8_t* packed,
             int64_t group_size, bool zeros, float* out, int64_t n, int64_t nb_begin,
             int64_t nb_end) {
  const int64_t groups = k / group_size;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    for (int64_t m0 = 0; m0 < m; m0 += ROWS) {
      const int rows = int(std::min<int64_t>(ROWS, m - m0));
      const auto seq = std::make_integer_sequence<int, ROWS>{};
      const BlockFn fn = zeros ? pick<true>(rows, seq) : pick<false>(rows, seq);
      fn(x, xsum, k, packed, groups, group_size, out, n, nb, m0);
    }
  }
}

#else
bool w8_supported() { return false; }

void w8_gemm(const float*, const float*, int64_t, int64_t, const uint8_t*, int64_t, bool, float*,
             int64_t, int64_t, int64_t) {}

void w8_dequantize(const uint8_t*, int64_t, int64_t, bool, float*, int64_t, int64_t, int64_t) {}
#endif

}  // namespace sgl
