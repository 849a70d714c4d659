// gemm.int4 for a few rows of bf16 activations (decode batches): the weight stays 4-bit in
// memory; its codes (0..15, exact in bf16) are widened in registers, 32 at a time, and dotted
// with x by AVX-512 BF16 dot products (vdpbf16ps: pairs of k, float32 accumulation); scale and
// offset apply once per group (see block_rows), so no weight is ever rounded to bf16. The same
// kernel reads MXFP4 (e2m1 codes, one power-of-two scale per 32 along K, no offset): only the
// table the codes are looked up in differs (`codes` 1; code_values).
//
// Packed layout (made by sglang_xeon.kernels.gemm_int4.native_form), for 16 output columns
// ("block" nb) and one group g of G input features (G a multiple of 4), KP = G / 2 pairs of k
// (w = (q - z) s):
//
//   [s: 16 x bf16][z: 16 x bf16][KP / 2 x 32 bytes]          (64 + 8 G bytes, blocks nb-major)
//
// MXFP4 (codes 1) has no zero points: its header is s alone (32 + 8 G bytes; head_bytes).
//
// 32 lanes are laid out as dot-product pairs: lane 2i + p = column i, k = 2 kp + p (16
// columns, i < 16). Byte j of chunk c holds lane j of pair 2c (low nibble) and lane j of pair
// 2c + 1 (high nibble): one 32-byte load widened to words gives both pairs' codes (the low one
// as it is, the high one shifted by 4), a lookup each.
#include <algorithm>
#include <cstring>
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

// What a code stands for, as bf16 bits: the integers 0..15 (int4: w = (q - z) s), or the e2m1
// values (MXFP4: sign, 2 exponent bits, 1 mantissa bit; 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their
// negatives; w = e2m1(q) s, z = 0). Both exact in bf16.
alignas(64) const uint16_t kIntegers[16] = {0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0,
                                            0x40c0, 0x40e0, 0x4100, 0x4110, 0x4120, 0x4130,
                                            0x4140, 0x4150, 0x4160, 0x4170};
alignas(64) const uint16_t kE2m1[16] = {0x0000, 0x3f00, 0x3f80, 0x3fc0, 0x4000, 0x4040,
                                        0x4080, 0x40c0, 0x8000, 0xbf00, 0xbf80, 0xbfc0,
                                        0xc000, 0xc040, 0xc080, 0xc0c0};

inline const uint16_t* code_values(int codes) { return codes == 1 ? kE2m1 : kIntegers; }
inline int64_t head_bytes(int codes) { return codes == 1 ? 32 : 64; }

// The 16 values, twice: vpermw reads the low 5 bits of each index lane, so a code with a stray
// bit 4 (the next nibble) still finds its value.
inline __m512i code_table(int codes) {
  const __m256i half = _mm256_load_si256((const __m256i*)code_values(codes));
  return _mm512_inserti64x4(_mm512_castsi256_si512(half), half, 1);
}

// The codes of one chunk (32 bytes: pairs 2c and 2c + 1) as two bf16 vectors: the bytes widened
// to words, looked up as they are (low nibble; the table ignores bit 4 of the high one) and
// shifted by 4 (high nibble). Exact: codes are small integers.
struct Codes {
  __m512bh lo, hi;
};
inline Codes unpack_chunk(const uint8_t* q, __m512i table) {
  const __m512i words = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)q));
  return {(__m512bh)_mm512_permutexvar_epi16(words, table),
          (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(words, 4), table)};
}

// Rows [m0, m0 + MT) of x against NB column blocks from nb. Per group, the codes q (small
// integers, exact in bf16) are dotted with x in float32, then scaled: sum_k x (q - z) s =
// s (x . q) - z s sum_k x, so the only roundings are float32 ones (xsum [m, groups] = per-group
// sums of x). With few rows, NA accumulators per row take alternate pairs of k (pair kp into
// accumulator kp % NA), so that consecutive dot products do not wait on each other (their
// latency, not the arithmetic, bounded a one-row GEMV); a one-row GEMV also runs NB blocks
// side by side (x's broadcasts shared, more independent chains). Each column's sums are the
// same, in the same order, whatever NB.
template <int MT, int NB>
void block_rows(const uint16_t* x, const float* xsum, int64_t k, const uint8_t* packed,
                int64_t groups, int64_t group_size, uint16_t* out, int64_t n, int64_t nb,
                int64_t m0, __m512i table, int64_t head) {
  constexpr int NA = MT >= 4 ? 1 : (MT >= 2 ? 2 : 4);
  __m512 total[NB][MT];
  for (int b = 0; b < NB; ++b)
    for (int r = 0; r < MT; ++r) total[b][r] = _mm512_setzero_ps();
  const int64_t pairs = group_size / 2, stride = head + 16 * pairs;
  const uint32_t* xp = reinterpret_cast<const uint32_t*>(x + m0 * k);  // bf16 pairs
  const int64_t xrow = k / 2;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* p0 = packed + (nb * groups + g) * stride;
    const int64_t kp0 = g * pairs;
    __m512 acc[NB][MT][NA];
    for (int b = 0; b < NB; ++b)
      for (int r = 0; r < MT; ++r)
        for (int a = 0; a < NA; ++a) acc[b][r][a] = _mm512_setzero_ps();
    // Pair kp into accumulator kp % NA (chunks of two pairs, STEP pairs a pass); a tail of
    // pairs short of NA goes to accumulator 0, in order.
    constexpr int STEP = NA > 2 ? NA : 2;
    const int64_t whole = pairs - pairs % STEP;
    int64_t kp = 0;
    for (; kp < whole; kp += STEP) {
      for (int b = 0; b < NB; ++b) {
        for (int c = 0; c < STEP / 2; ++c) {
          const Codes w = unpack_chunk(p0 + b * groups * stride + head + 16 * (kp + 2 * c), table);
          constexpr int one = NA > 1 ? 1 : 0;
          for (int r = 0; r < MT; ++r) {
            const uint32_t* xr = xp + r * xrow + kp0 + kp + 2 * c;
            __m512& lo = acc[b][r][(2 * c) % NA];
            lo = _mm512_dpbf16_ps(lo, (__m512bh)_mm512_set1_epi32(int(xr[0])), w.lo);
            __m512& hi = acc[b][r][(2 * c + one) % NA];
            hi = _mm512_dpbf16_ps(hi, (__m512bh)_mm512_set1_epi32(int(xr[1])), w.hi);
          }
        }
      }
    }
    for (; kp < pairs; kp += 2) {
      for (int b = 0; b < NB; ++b) {
        const Codes w = unpack_chunk(p0 + b * groups * stride + head + 16 * kp, table);
        for (int r = 0; r < MT; ++r) {
          const uint32_t* xr = xp + r * xrow + kp0 + kp;
          __m512& a0 = acc[b][r][0];
          a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_set1_epi32(int(xr[0])), w.lo);
          a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_set1_epi32(int(xr[1])), w.hi);
        }
      }
    }
    for (int b = 0; b < NB; ++b) {
      const uint8_t* p = p0 + b * groups * stride;
      const __m512 s = bf16x16(reinterpret_cast<const uint16_t*>(p));
      const __m512 sz = head == 64
                            ? _mm512_mul_ps(s, bf16x16(reinterpret_cast<const uint16_t*>(p + 32)))
                            : _mm512_setzero_ps();
      for (int r = 0; r < MT; ++r) {
        __m512 sum = acc[b][r][0];
        for (int a = 1; a < NA; ++a) sum = _mm512_add_ps(sum, acc[b][r][a]);
        __m512 t = _mm512_fmadd_ps(sum, s, total[b][r]);
        total[b][r] = _mm512_fnmadd_ps(_mm512_set1_ps(xsum[(m0 + r) * groups + g]), sz, t);
      }
    }
  }
  for (int b = 0; b < NB; ++b) {
    const int64_t left = n - (nb + b) * 16;
    const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    for (int r = 0; r < MT; ++r) {
      __m256i h = (__m256i)_mm512_cvtneps_pbh(total[b][r]);
      _mm256_mask_storeu_epi16(out + (m0 + r) * n + (nb + b) * 16, mask, h);
    }
  }
}

using BlockFn = void (*)(const uint16_t*, const float*, int64_t, const uint8_t*, int64_t,
                         int64_t, uint16_t*, int64_t, int64_t, int64_t, __m512i, int64_t);

template <int... MT>
constexpr BlockFn pick(int rows, std::integer_sequence<int, MT...>) {
  BlockFn fns[] = {block_rows<MT + 1, 1>...};
  return fns[rows - 1];
}

}  // namespace

bool int4_bf16_supported() { return true; }

void int4_bf16_gemm(const uint16_t* x, const float* xsum, int64_t m, int64_t k,
                    const uint8_t* packed, int64_t group_size, uint16_t* out, int64_t n,
                    int64_t nb_begin, int64_t nb_end, int codes) {
  const int64_t groups = k / group_size;
  const __m512i table = code_table(codes);
  const int64_t head = head_bytes(codes);
  constexpr int NB1 = 4;  // column blocks side by side in a one-row GEMV
  int64_t nb = nb_begin;
  if (m == 1) {
    for (; nb + NB1 <= nb_end; nb += NB1)
      block_rows<1, NB1>(x, xsum, k, packed, groups, group_size, out, n, nb, 0, table, head);
  }
  for (; nb < nb_end; ++nb) {
    for (int64_t m0 = 0; m0 < m; m0 += 16) {
      const int rows = int(std::min<int64_t>(16, m - m0));
      pick(rows, std::make_integer_sequence<int, 16>{})(x, xsum, k, packed, groups, group_size,
                                                         out, n, nb, m0, table, head);
    }
  }
}
// float32 -> bf16 bits, round to nearest even: from_float<bf16>'s integer formula, 16 lanes
// (VCVTNEPS2BF16 would flush subnormals; this keeps the scalar results bit for bit, NaN aside).
inline __m256i bf16_bits(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

inline __m512 widen(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

// One chunk's 32 lanes (lane 2i + p: column i, k = 2 kp + p) are looked up as the GEMV does
// (unpack_chunk), scaled 16 lanes at a time with each lane's column's s and z, rounded to bf16,
// and written as 4 consecutive k of each column (the chunk's low pair, then its high pair).
void int4_bf16_dequantize(const uint8_t* packed, int64_t k, int64_t group_size, uint16_t* out,
                          int64_t n, int64_t nb_begin, int64_t nb_end, int codes) {
  const int64_t head = head_bytes(codes);
  const int64_t groups = k / group_size, pairs = group_size / 2, stride = head + 16 * pairs;
  const __m512i table = code_table(codes);
  const __m512i cols_a = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i cols_b = _mm512_add_epi32(cols_a, _mm512_set1_epi32(8));
  alignas(64) uint32_t lo[16], hi[16];
  for (int64_t nb = nb_begin; nb < nb_end; ++nb) {
    const int64_t live = std::min<int64_t>(16, n - nb * 16);
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* p = packed + (nb * groups + g) * stride;
      const __m512 s = bf16x16(reinterpret_cast<const uint16_t*>(p));
      const __m512 z =
          head == 64 ? bf16x16(reinterpret_cast<const uint16_t*>(p + 32)) : _mm512_setzero_ps();
      const __m512 sa = _mm512_permutexvar_ps(cols_a, s), sb = _mm512_permutexvar_ps(cols_b, s);
      const __m512 za = _mm512_permutexvar_ps(cols_a, z), zb = _mm512_permutexvar_ps(cols_b, z);
      for (int64_t c = 0; c < pairs / 2; ++c) {
        const Codes w = unpack_chunk(p + head + 32 * c, table);
        const __m512i wl = (__m512i)w.lo, wh = (__m512i)w.hi;
        auto scaled = [](__m256i half, __m512 zz, __m512 ss) {
          return bf16_bits(_mm512_mul_ps(_mm512_sub_ps(widen(half), zz), ss));
        };
        _mm256_store_si256((__m256i*)lo, scaled(_mm512_castsi512_si256(wl), za, sa));
        _mm256_store_si256((__m256i*)(lo + 8), scaled(_mm512_extracti64x4_epi64(wl, 1), zb, sb));
        _mm256_store_si256((__m256i*)hi, scaled(_mm512_castsi512_si256(wh), za, sa));
        _mm256_store_si256((__m256i*)(hi + 8), scaled(_mm512_extracti64x4_epi64(wh, 1), zb, sb));
        uint16_t* dst = out + nb * 16 * k + g * group_size + 4 * c;
        for (int64_t i = 0; i < live; ++i) {
          const uint64_t four = uint64_t(lo[i]) | (uint64_t(hi[i]) << 32);
          std::memcpy(dst + i * k, &four, 8);
        }
      }
    }
  }
}
#else
bool int4_bf16_supported() { return false; }

void int4_bf16_dequantize(const uint8_t*, int64_t, int64_t, uint16_t*, int64_t, int64_t,
                          int64_t, int) {}

void int4_bf16_gemm(const uint16_t*, const float*, int64_t, int64_t, const uint8_t*, int64_t,
                    uint16_t*, int64_t, int64_t, int64_t, int) {}
#endif

}  // namespace sgl
