// gemm.int4 for a few rows of bf16 activations (decode batches): the weight stays 4-bit in
// memory; its codes (0..15, exact in bf16) are widened in registers, 32 at a time, and dotted
// with x by AVX-512 BF16 dot products (vdpbf16ps: pairs of k, float32 accumulation); scale and
// offset apply once per group (see block_rows), so no weight is ever rounded to bf16.
//
// Packed layout (made by sglang_xeon.kernels.gemm_int4.native_form), for 16 output columns
// ("block" nb) and one group g of G input features, KP = G / 2 pairs of k (w = (q - z) s):
//
//   [s: 16 x bf16][z: 16 x bf16][KP x 16 bytes]          (64 + 8 G bytes, blocks nb-major)
//
// byte j of pair kp holds lane j (low nibble) and lane j + 16 (high nibble) of 32 lanes laid out
// as dot-product pairs: lane 2i + p = column i, k = 2 kp + p (i < 8); lane 16 + 2i + p = column
// 8 + i. Low lanes widened are the low half of the bf16 operand, high lanes the high half.
#include <utility>

#include "kernels.h"

#if defined(__AVX512BF16__) && defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define SGL_INT4_BF16 1
#endif

namespace sgl {

#if SGL_INT4_BF16
namespace {

inline __m512 bf16x16(const uint16_t* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}

// The 16 bf16 values 0..15, twice: vpermw reads the low 5 bits of each index lane, so a code
// with a stray bit 4 (the next nibble) still finds its value.
inline __m512i code_table() {
  alignas(64) static const uint16_t table[32] = {
      0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0, 0x40e0,
      0x4100, 0x4110, 0x4120, 0x4130, 0x4140, 0x4150, 0x4160, 0x4170,
      0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0, 0x40e0,
      0x4100, 0x4110, 0x4120, 0x4130, 0x4140, 0x4150, 0x4160, 0x4170};
  return _mm512_load_si512(table);
}

// The 32 codes of one pair of k (16 bytes: lane j low nibble, lane j + 16 high nibble) as
// bf16: each byte widened into both halves of a 32-lane word vector, the upper half shifted by
// 4, then looked up (exact: codes are small integers).
inline __m512bh unpack_codes(const uint8_t* q, __m512i shifts, __m512i table) {
  const __m256i bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)q));
  const __m512i words = _mm512_srlv_epi16(_mm512_cvtepu8_epi16(bytes), shifts);
  return (__m512bh)_mm512_permutexvar_epi16(words, table);
}

// Rows [m0, m0 + MT) of x against column block nb. Per group, the codes q (small integers,
// exact in bf16) are dotted with x in float32, then scaled: sum_k x (q - z) s = s (x . q) -
// z s sum_k x, so the only roundings are float32 ones (xsum [m, groups] = per-group
// sums of x). With few rows, NA accumulators per row take alternate pairs of k, so that
// consecutive dot products do not wait on each other (their latency, not the arithmetic,
// bounded a one-row GEMV).
template <int MT>
void block_rows(const uint16_t* x, const float* xsum, int64_t k, const uint8_t* packed,
                int64_t groups, int64_t group_size, uint16_t* out, int64_t n, int64_t nb,
                int64_t m0) {
  constexpr int NA = MT >= 4 ? 1 : (MT >= 2 ? 2 : 4);
  alignas(64) float total[MT][16] = {};
  const __m512i table = code_table();
  const __m512i shifts = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
  const int64_t pairs = group_size / 2, stride = 64 + 16 * pairs;
  const int64_t whole = pairs - pairs % NA;
  const uint8_t* blk = packed + nb * groups * stride;
  const uint32_t* xp = reinterpret_cast<const uint32_t*>(x + m0 * k);  // bf16 pairs
  const int64_t xrow = k / 2;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p = blk + g * stride;
    const uint8_t* q = p + 64;
    const int64_t kp0 = g * pairs;
    __m512 acc[MT][NA];
    for (int r = 0; r < MT; ++r)
      for (int a = 0; a < NA; ++a) acc[r][a] = _mm512_setzero_ps();
    int64_t kp = 0;
    for (; kp < whole; kp += NA) {
      for (int a = 0; a < NA; ++a) {
        const __m512bh w = unpack_codes(q + 16 * (kp + a), shifts, table);
        for (int r = 0; r < MT; ++r) {
          const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(xp[r * xrow + kp0 + kp + a]));
          acc[r][a] = _mm512_dpbf16_ps(acc[r][a], xv, w);
        }
      }
    }
    for (; kp < pairs; ++kp) {
      const __m512bh w = unpack_codes(q + 16 * kp, shifts, table);
      for (int r = 0; r < MT; ++r) {
        const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(xp[r * xrow + kp0 + kp]));
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xv, w);
      }
    }
    const __m512 s = bf16x16(reinterpret_cast<const uint16_t*>(p));
    const __m512 sz = _mm512_mul_ps(s, bf16x16(reinterpret_cast<const uint16_t*>(p + 32)));
    for (int r = 0; r < MT; ++r) {
      __m512 sum = acc[r][0];
      for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[r][a]);
      __m512 t = _mm512_fmadd_ps(sum, s, _mm512_load_ps(total[r]));
      t = _mm512_fnmadd_ps(_mm512_set1_ps(xsum[(m0 + r) * groups + g]), sz, t);
      _mm512_store_ps(total[r], t);
    }
  }
  const int64_t left = n - nb * 16;
  const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
  for (int r = 0; r < MT; ++r) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(total[r]));
    _mm256_mask_storeu_epi16(out + (m0 + r) * n + nb * 16, mask, h);
  }
}

using BlockFn = void (*)(const uint16_t*, const float*, int64_t, const uint8_t*, int64_t,
                         int64_t, uint16_t*, int64_t, int64_t, int64_t);

template <int... MT>
constexpr BlockFn pick(int rows, std::integer_sequence<int, MT...>) {
  BlockFn fns[] = {block_rows<MT + 1>...};
  return fns[rows - 1];
}

}  // namespace

bool int4_bf16_supported() { return true; }

void int4_bf16_gemm(const uint16_t* x, const float* xsum, int64_t m, int64_t k,
                    const uint8_t* packed, int64_t group_size, uint16_t* out, int64_t n,
                    int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    for (int64_t m0 = 0; m0 < m; m0 += 16) {
      const int rows = int(std::min<int64_t>(16, m - m0));
      pick(rows, std::make_integer_sequence<int, 16>{})(x, xsum, k, packed, groups, group_size,
                                                         out, n, nb, m0);
    }
  }
}
void int4_bf16_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, uint16_t* out,
                          int64_t n, int64_t nb_begin, int64_t nb_end) {
  const int64_t groups = k / group_size, pairs = group_size / 2, stride = 64 + 16 * pairs;
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* p = packed + (nb * groups + g) * stride;
      const uint16_t* s = reinterpret_cast<const uint16_t*>(p);
      const uint16_t* z = reinterpret_cast<const uint16_t*>(p + 32);
      for (int64_t kp = 0; kp < pairs; ++kp) {
        const uint8_t* q = p + 64 + 16 * kp;
        for (int j = 0; j < 16; ++j) {
          const int64_t kk = g * group_size + 2 * kp + (j & 1);
          const int cols[2] = {j >> 1, 8 + (j >> 1)};
          const int codes[2] = {q[j] & 15, q[j] >> 4};
          for (int h = 0; h < 2; ++h) {
            const int64_t col = nb * 16 + cols[h];
            if (col >= n) continue;
            const float sv = to_float(bf16{s[cols[h]]}), zv = to_float(bf16{z[cols[h]]});
            out[col * k + kk] = from_float<bf16>((float(codes[h]) - zv) * sv).bits;
          }
        }
      }
    }
  }
}
#else
bool int4_bf16_supported() { return false; }

void int4_bf16_dequantize(const uint8_t*, int64_t, int64_t, uint16_t*, int64_t, int64_t,
                          int64_t) {}

void int4_bf16_gemm(const uint16_t*, const float*, int64_t, int64_t, const uint8_t*, int64_t,
                    uint16_t*, int64_t, int64_t, int64_t) {}
#endif

}  // namespace sgl
