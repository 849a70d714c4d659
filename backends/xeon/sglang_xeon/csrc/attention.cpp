// attention.decode straight from the paged cache: no gather, no padding. One work item is one
// sequence: each K/V row read from the cache serves its KV head's `group` query heads, scores
// come a block of keys at a time, and the softmax is online (running max and sum, float32).
// Head sizes 64 and 128 with small query groups take kv_head_avx512, one (sequence, KV head)
// at a time with the group's queries and accumulators in registers; others seq_avx512. Builds
// for AVX2 without AVX-512 take kv_head_avx2 (head sizes that are multiples of 8, up to 256);
// other builds and shapes the plain loops.
//
//   keys of sequence b: kv_indices[kv_indptr[b] + j], j in [first, L), first = L - window
//   (sliding window) or 0;  s = scale * q.k, then s = cap * tanh(s / cap) with a soft-cap.
#include <vector>

#include "kernels.h"
#include "vec256.h"
#include "vec512.h"

namespace sgl {

namespace {

constexpr int64_t BLOCK = 32;  // keys per softmax update

// The keys of work item (b, kvh): [start + first, start + length) in kv_indices.
struct Keys {
  int64_t start, first, length;
};

Keys keys_of(const int64_t* kv_indptr, int64_t b, int64_t window) {
  const int64_t start = kv_indptr[b], length = kv_indptr[b + 1] - start;
  return {start, window > 0 ? std::max<int64_t>(0, length - window) : 0, length};
}

// Plain loops: any CPU, any head size.
template <typename T, typename I>
void item_generic(const T* q, const T* k_cache, const T* v_cache, const I* kv_indices, T* out,
                  const DecodeShape& s, int64_t b, int64_t kvh, Keys keys, float* qf,
                  float* acc, float* scores, float* row, float* m, float* l) {
  const int64_t group = s.heads / s.kv_heads, dim = s.dim, v_dim = s.v_dim;
  for (int64_t g = 0; g < group; ++g) {
    const T* qr = q + b * s.q_b + (kvh * group + g) * s.q_h;
    for (int64_t d = 0; d < dim; ++d) qf[g * dim + d] = to_float(qr[d]) * s.scale;
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  std::fill(acc, acc + group * v_dim, 0.0f);
  for (int64_t j0 = keys.first; j0 < keys.length; j0 += BLOCK) {
    const int64_t n = std::min(BLOCK, keys.length - j0);
    for (int64_t j = 0; j < n; ++j) {
      const T* kr = k_cache + int64_t(kv_indices[keys.start + j0 + j]) * s.k_s + kvh * s.k_h;
      for (int64_t d = 0; d < dim; ++d) row[d] = to_float(kr[d]);
      for (int64_t g = 0; g < group; ++g) {
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < dim; ++d) dot += qf[g * dim + d] * row[d];
        if (s.softcap > 0.0f) dot = s.softcap * fast_tanh(dot / s.softcap);
        scores[g * BLOCK + j] = dot;
      }
    }
    for (int64_t g = 0; g < group; ++g) {
      float* sg = scores + g * BLOCK;
      float m_new = m[g];
      for (int64_t j = 0; j < n; ++j) m_new = std::max(m_new, sg[j]);
      const float correction = fast_exp(m[g] - m_new);  // 0 on the first block
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        sg[j] = fast_exp(sg[j] - m_new);
        sum += sg[j];
      }
      l[g] = l[g] * correction + sum;
      m[g] = m_new;
      for (int64_t d = 0; d < v_dim; ++d) acc[g * v_dim + d] *= correction;
    }
    for (int64_t j = 0; j < n; ++j) {
      const T* vr = v_cache + int64_t(kv_indices[keys.start + j0 + j]) * s.v_s + kvh * s.v_h;
      for (int64_t d = 0; d < v_dim; ++d) row[d] = to_float(vr[d]);
      for (int64_t g = 0; g < group; ++g) {
        const float p = scores[g * BLOCK + j];
#pragma omp simd
        for (int64_t d = 0; d < v_dim; ++d) acc[g * v_dim + d] += p * row[d];
      }
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    const float inv = l[g] > 0.0f ? 1.0f / l[g] : 0.0f;  // no keys: zeros
    T* o = out + (b * s.heads + kvh * group + g) * v_dim;
    for (int64_t d = 0; d < v_dim; ++d) o[d] = from_float<T>(acc[g * v_dim + d] * inv);
  }
}

#if SGL_AVX2 || SGL_AVX512
constexpr int64_t AHEAD = 8;        // keys between a row's prefetch and its use

// Cache rows are scattered by slot: the hardware prefetcher cannot follow them, and right
// after the layer's GEMMs they are rarely in cache.
template <typename T>
inline void prefetch_row(const T* row, int64_t n) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t off = 0; off < n * int64_t(sizeof(T)); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}
#endif

#if SGL_AVX2
// One block's online-softmax update on 8 lanes (softmax_block's steps): the n scores at s
// become exp(score - m_new) in place; returns the accumulators' correction factor.
inline float softmax_block8(float* s, int64_t n, float& m, float& l) {
  __m256 mx = _mm256_set1_ps(m);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j));
  float m_new = hmax8(mx);
  for (; j < n; ++j) m_new = std::max(m_new, s[j]);
  const __m256 mv = _mm256_set1_ps(m_new);
  __m256 sum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = hsum8(sum);
  for (; j < n; ++j) {
    s[j] = fast_exp(s[j] - m_new);
    total += s[j];
  }
  const float correction = fast_exp(m - m_new);  // 0 on the first block
  l = l * correction + total;
  m = m_new;
  return correction;
}

// One (sequence, KV head) on 8-lane vectors, the head size a multiple of 8 (nc = dim / 8 chunks,
// K and V alike): the group's pre-scaled queries and accumulators as vectors (in L1 where the
// 16 registers run out), scores a key at a time (a horizontal sum), the block's softmax on 8
// lanes. The plain loops' arithmetic, in vector form.
template <typename T, typename I>
void kv_head_avx2(const T* q, const T* k_cache, const T* v_cache, const I* kv_indices, T* out,
                  const DecodeShape& s, int64_t b, int64_t kvh, Keys keys, __m256* qv,
                  __m256* acc, float* scores, float* m, float* l) {
  const int64_t group = s.heads / s.kv_heads, nc = s.dim / 8;
  const __m256 scale = _mm256_set1_ps(s.scale);
  for (int64_t g = 0; g < group; ++g) {
    const T* qr = q + b * s.q_b + (kvh * group + g) * s.q_h;
    for (int64_t c = 0; c < nc; ++c) {
      qv[g * nc + c] = _mm256_mul_ps(load8(qr + 8 * c), scale);
      acc[g * nc + c] = _mm256_setzero_ps();
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  const I* idx = kv_indices + keys.start;
  const T* kbase = k_cache + kvh * s.k_h;
  const T* vbase = v_cache + kvh * s.v_h;
  __m256 row[32];
  for (int64_t j0 = keys.first; j0 < keys.length; j0 += BLOCK) {
    const int64_t n = std::min(BLOCK, keys.length - j0);
    for (int64_t j = 0; j < n; ++j) {
      const T* kr = kbase + int64_t(idx[j0 + j]) * s.k_s;
      for (int64_t c = 0; c < nc; ++c) row[c] = load8(kr + 8 * c);
      for (int64_t g = 0; g < group; ++g) {
        const __m256* qg = qv + g * nc;
        __m256 d0 = _mm256_mul_ps(qg[0], row[0]), d1 = _mm256_setzero_ps();
        for (int64_t c = 1; c + 1 < nc; c += 2) {
          d1 = _mm256_fmadd_ps(qg[c], row[c], d1);
          d0 = _mm256_fmadd_ps(qg[c + 1], row[c + 1], d0);
        }
        if (nc % 2 == 0) d1 = _mm256_fmadd_ps(qg[nc - 1], row[nc - 1], d1);
        float dot = hsum8(_mm256_add_ps(d0, d1));
        if (s.softcap > 0.0f) dot = s.softcap * fast_tanh(dot / s.softcap);
        scores[g * BLOCK + j] = dot;
      }
    }
    for (int64_t g = 0; g < group; ++g) {
      const float correction = softmax_block8(scores + g * BLOCK, n, m[g], l[g]);
      if (correction != 1.0f) {
        const __m256 cv = _mm256_set1_ps(correction);
        for (int64_t c = 0; c < nc; ++c) acc[g * nc + c] = _mm256_mul_ps(acc[g * nc + c], cv);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const T* vr = vbase + int64_t(idx[j0 + j]) * s.v_s;
      for (int64_t c = 0; c < nc; ++c) row[c] = load8(vr + 8 * c);
      for (int64_t g = 0; g < group; ++g) {
        const __m256 p = _mm256_set1_ps(scores[g * BLOCK + j]);
        __m256* ag = acc + g * nc;
        for (int64_t c = 0; c < nc; ++c) ag[c] = _mm256_fmadd_ps(p, row[c], ag[c]);
      }
    }
  }
  for (int64_t g = 0; g < group; ++g) {
    const __m256 inv = _mm256_set1_ps(l[g] > 0.0f ? 1.0f / l[g] : 0.0f);  // no keys: zeros
    T* o = out + (b * s.heads + kvh * group + g) * s.dim;
    for (int64_t c = 0; c < nc; ++c) store8(o + 8 * c, _mm256_mul_ps(acc[g * nc + c], inv), 8);
  }
}

// kv_head_avx2 with the head size (NC chunks of 8) and the group (G heads) known at compile
// time, laid out for 16 registers: the key pass keeps the group's G dot products in registers
// (queries from L1), 8 keys' dots summed at once (hsum8x8), and prefetches the block's value
// rows; the value pass runs W chunks of the head at a time with their G x W accumulators in
// registers.
template <int NC, int G, typename T, typename I>
void kv_head_avx2_fixed(const T* q, const T* k_cache, const T* v_cache, const I* kv_indices,
                        T* out, const DecodeShape& s, int64_t b, int64_t kvh, Keys keys,
                        __m256* dots) {
  constexpr int W0 = 15 / (G + 1), W = W0 >= 4 ? 4 : (W0 >= 2 ? 2 : 1);
  static_assert(NC % W == 0, "the value pass's chunk groups must tile the head");
  __m256 qv[G][NC], acc[G][NC];
  float m[G], l[G];
  alignas(32) float scores[G][BLOCK];
  const __m256 scale = _mm256_set1_ps(s.scale);
  for (int g = 0; g < G; ++g) {
    const T* qr = q + b * s.q_b + (kvh * G + g) * s.q_h;
    for (int c = 0; c < NC; ++c) {
      qv[g][c] = _mm256_mul_ps(load8(qr + 8 * c), scale);
      acc[g][c] = _mm256_setzero_ps();
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  const I* idx = kv_indices + keys.start;
  const T* kbase = k_cache + kvh * s.k_h;
  const T* vbase = v_cache + kvh * s.v_h;
  for (int64_t j0 = keys.first; j0 < keys.length; j0 += BLOCK) {
    const int64_t n = std::min(BLOCK, keys.length - j0);
    for (int64_t j = 0; j < n; ++j) {
      if (j0 + j + AHEAD < keys.length)
        prefetch_row(kbase + int64_t(idx[j0 + j + AHEAD]) * s.k_s, 8 * NC);
      prefetch_row(vbase + int64_t(idx[j0 + j]) * s.v_s, 8 * NC);  // for the value pass
      const T* kr = kbase + int64_t(idx[j0 + j]) * s.k_s;
      __m256 dot[G];
      const __m256 r0 = load8(kr);
      for (int g = 0; g < G; ++g) dot[g] = _mm256_mul_ps(qv[g][0], r0);
      for (int c = 1; c < NC; ++c) {
        const __m256 r = load8(kr + 8 * c);
        for (int g = 0; g < G; ++g) dot[g] = _mm256_fmadd_ps(qv[g][c], r, dot[g]);
      }
      for (int g = 0; g < G; ++g) dots[g * BLOCK + j] = dot[g];
    }
    for (int g = 0; g < G; ++g) {
      float* sg = scores[g];
      for (int64_t j = 0; j < n; j += 8) _mm256_store_ps(sg + j, hsum8x8(dots + g * BLOCK + j));
      if (s.softcap > 0.0f) {
        for (int64_t j = 0; j < n; ++j) sg[j] = s.softcap * fast_tanh(sg[j] / s.softcap);
      }
      const float correction = softmax_block8(sg, n, m[g], l[g]);
      if (correction != 1.0f) {
        const __m256 cv = _mm256_set1_ps(correction);
        for (int c = 0; c < NC; ++c) acc[g][c] = _mm256_mul_ps(acc[g][c], cv);
      }
    }
    for (int c0 = 0; c0 < NC; c0 += W) {
      __m256 a[G][W];
      for (int g = 0; g < G; ++g)
        for (int w = 0; w < W; ++w) a[g][w] = acc[g][c0 + w];
      for (int64_t j = 0; j < n; ++j) {
        const T* vr = vbase + int64_t(idx[j0 + j]) * s.v_s + 8 * c0;
        __m256 r[W];
        for (int w = 0; w < W; ++w) r[w] = load8(vr + 8 * w);
        for (int g = 0; g < G; ++g) {
          const __m256 p = _mm256_broadcast_ss(&scores[g][j]);
          for (int w = 0; w < W; ++w) a[g][w] = _mm256_fmadd_ps(p, r[w], a[g][w]);
        }
      }
      for (int g = 0; g < G; ++g)
        for (int w = 0; w < W; ++w) acc[g][c0 + w] = a[g][w];
    }
  }
  for (int g = 0; g < G; ++g) {
    const __m256 inv = _mm256_set1_ps(l[g] > 0.0f ? 1.0f / l[g] : 0.0f);  // no keys: zeros
    T* o = out + (b * s.heads + kvh * G + g) * (8 * NC);
    for (int c = 0; c < NC; ++c) store8(o + 8 * c, _mm256_mul_ps(acc[g][c], inv), 8);
  }
}

template <typename T, typename I>
using KvHeadFn2 = void (*)(const T*, const T*, const T*, const I*, T*, const DecodeShape&,
                           int64_t, int64_t, Keys, __m256*);

// The fixed-shape kernel for head sizes 64 and 128 and groups up to 8, or null.
template <typename T, typename I>
KvHeadFn2<T, I> kv_head_kernel_avx2(const DecodeShape& s) {
  if (s.dim != s.v_dim || (s.dim != 64 && s.dim != 128)) return nullptr;
  const bool wide = s.dim == 128;
  switch (s.heads / s.kv_heads) {
    case 1: return wide ? kv_head_avx2_fixed<16, 1, T, I> : kv_head_avx2_fixed<8, 1, T, I>;
    case 2: return wide ? kv_head_avx2_fixed<16, 2, T, I> : kv_head_avx2_fixed<8, 2, T, I>;
    case 3: return wide ? kv_head_avx2_fixed<16, 3, T, I> : kv_head_avx2_fixed<8, 3, T, I>;
    case 4: return wide ? kv_head_avx2_fixed<16, 4, T, I> : kv_head_avx2_fixed<8, 4, T, I>;
    case 5: return wide ? kv_head_avx2_fixed<16, 5, T, I> : kv_head_avx2_fixed<8, 5, T, I>;
    case 6: return wide ? kv_head_avx2_fixed<16, 6, T, I> : kv_head_avx2_fixed<8, 6, T, I>;
    case 7: return wide ? kv_head_avx2_fixed<16, 7, T, I> : kv_head_avx2_fixed<8, 7, T, I>;
    case 8: return wide ? kv_head_avx2_fixed<16, 8, T, I> : kv_head_avx2_fixed<8, 8, T, I>;
    default: return nullptr;
  }
}
#endif

#if SGL_AVX512
constexpr int64_t MAX_CHUNKS = 16;  // head sizes up to 256 on this path
// r[j] = the sum of v[j]'s 16 lanes, for 16 vectors at once: a transpose folded into the adds,
// in the same order as _mm512_reduce_add_ps (halves, quarters, pairs, lanes), so the sums are
// those of 16 separate reductions, at a third of the instructions.
inline __m512 hsum16(const __m512* v) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)  // quarters 0-1: key i, 2-3: key i + 8
    a[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[i], v[i + 8], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(v[i], v[i + 8], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int i = 0; i < 4; ++i)  // quarters: keys i, i + 8, i + 4, i + 12
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 4], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(a[i], a[i + 4], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int i = 0; i < 2; ++i)  // per quarter: two lanes of b[i]'s key, two of b[i + 2]'s
    c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[i], b[i + 2], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(b[i], b[i + 2], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 d = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  // d's lane L holds key order[L] (an involution), so the same index puts key j in lane j.
  const __m512i order = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
  return _mm512_permutexvar_ps(order, d);
}

// One block's online-softmax update: the n (<= BLOCK) scores at s become exp(score - m_new)
// in place, m and l (running max and sum) move on; returns the factor the accumulators must be
// scaled by (0 on the first block, 1 when the max did not move).
inline float softmax_block(float* s, int64_t n, float& m, float& l) {
  const __mmask16 m0 = tail_mask(n), m1 = tail_mask(n - 16);
  __m512 s0 = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m0, s);
  __m512 s1 = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m1, s + 16);
  const float m_new = std::max(m, _mm512_reduce_max_ps(_mm512_max_ps(s0, s1)));
  const __m512 mv = _mm512_set1_ps(m_new);
  s0 = exp16(_mm512_sub_ps(s0, mv));
  s1 = exp16(_mm512_sub_ps(s1, mv));
  _mm512_storeu_ps(s, s0);
  _mm512_storeu_ps(s + 16, s1);
  const float correction = fast_exp(m - m_new);
  l = l * correction + _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  m = m_new;
  return correction;
}

// One (sequence, KV head) with the head size (NC chunks of 16, K and V alike) and the query
// group (G heads) known at compile time, so the group's queries and accumulators live in
// registers (seq_avx512 keeps them in memory: a load and a store around every multiply-add
// of the value pass). Same arithmetic, in the same order, as seq_avx512.
template <int NC, int G, typename T, typename I>
void kv_head_avx512(const T* q, const T* k_cache, const T* v_cache, const I* kv_indices, T* out,
                    const DecodeShape& s, int64_t b, int64_t kvh, Keys keys, __m512* dots) {
  constexpr int64_t dim = 16 * NC;
  __m512 qv[G][NC], acc[G][NC];
  float m[G], l[G];
  alignas(64) float scores[G][BLOCK];
  const __m512 scale = _mm512_set1_ps(s.scale);
  for (int g = 0; g < G; ++g) {
    const T* qr = q + b * s.q_b + (kvh * G + g) * s.q_h;
    for (int c = 0; c < NC; ++c) {
      qv[g][c] = _mm512_mul_ps(load16(qr + 16 * c, __mmask16(0xffff)), scale);
      acc[g][c] = _mm512_setzero_ps();
    }
    m[g] = -INFINITY;
    l[g] = 0.0f;
  }
  const I* idx = kv_indices + keys.start;
  const T* kbase = k_cache + kvh * s.k_h;
  const T* vbase = v_cache + kvh * s.v_h;
  for (int64_t j0 = keys.first; j0 < keys.length; j0 += BLOCK) {
    const int64_t n = std::min(BLOCK, keys.length - j0);
    for (int64_t j = 0; j < n; ++j) {
      if (j0 + j + AHEAD < keys.length)
        prefetch_row(kbase + int64_t(idx[j0 + j + AHEAD]) * s.k_s, dim);
      const T* kr = kbase + int64_t(idx[j0 + j]) * s.k_s;
      __m512 row[NC];
      for (int c = 0; c < NC; ++c) row[c] = load16(kr + 16 * c, __mmask16(0xffff));
      for (int g = 0; g < G; ++g) {
        __m512 dot = _mm512_mul_ps(qv[g][0], row[0]);
        for (int c = 1; c < NC; ++c) dot = _mm512_fmadd_ps(qv[g][c], row[c], dot);
        dots[g * BLOCK + j] = dot;
      }
    }
    for (int g = 0; g < G; ++g) {
      float* sg = scores[g];
      for (int64_t j = 0; j < n; j += 16) _mm512_store_ps(sg + j, hsum16(dots + g * BLOCK + j));
      if (s.softcap > 0.0f) {
        for (int64_t j = 0; j < n; ++j) sg[j] = s.softcap * fast_tanh(sg[j] / s.softcap);
      }
      const float correction = softmax_block(sg, n, m[g], l[g]);
      if (correction != 1.0f) {
        const __m512 cv = _mm512_set1_ps(correction);
        for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_mul_ps(acc[g][c], cv);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      if (j0 + j + AHEAD < keys.length)
        prefetch_row(vbase + int64_t(idx[j0 + j + AHEAD]) * s.v_s, dim);
      const T* vr = vbase + int64_t(idx[j0 + j]) * s.v_s;
      __m512 row[NC];
      for (int c = 0; c < NC; ++c) row[c] = load16(vr + 16 * c, __mmask16(0xffff));
      for (int g = 0; g < G; ++g) {
        const __m512 p = _mm512_set1_ps(scores[g][j]);
        for (int c = 0; c < NC; ++c) acc[g][c] = _mm512_fmadd_ps(p, row[c], acc[g][c]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const __m512 inv = _mm512_set1_ps(l[g] > 0.0f ? 1.0f / l[g] : 0.0f);  // no keys: zeros
    T* o = out + (b * s.heads + kvh * G + g) * dim;
    for (int c = 0; c < NC; ++c)
      store16(o + 16 * c, _mm512_mul_ps(acc[g][c], inv), __mmask16(0xffff));
  }
}

template <typename T, typename I>
using KvHeadFn = void (*)(const T*, const T*, const T*, const I*, T*, const DecodeShape&,
                          int64_t, int64_t, Keys, __m512*);

// The register kernel for this head size and group, or null: head sizes 64 and 128 (K and V),
// groups up to what keeps queries and accumulators in the 32 vector registers.
template <typename T, typename I>
KvHeadFn<T, I> kv_head_kernel(const DecodeShape& s) {
  if (s.dim != s.v_dim) return nullptr;
  const int64_t group = s.heads / s.kv_heads;
  if (s.dim == 64) {
    switch (group) {
      case 1: return kv_head_avx512<4, 1, T, I>;
      case 2: return kv_head_avx512<4, 2, T, I>;
      case 3: return kv_head_avx512<4, 3, T, I>;
      case 4: return kv_head_avx512<4, 4, T, I>;
      case 5: return kv_head_avx512<4, 5, T, I>;
      case 6: return kv_head_avx512<4, 6, T, I>;
      default: return nullptr;
    }
  }
  if (s.dim == 128) {
    switch (group) {
      case 1: return kv_head_avx512<8, 1, T, I>;
      case 2: return kv_head_avx512<8, 2, T, I>;
      case 3: return kv_head_avx512<8, 3, T, I>;
      default: return nullptr;
    }
  }
  return nullptr;
}

// The same computation on 16-lane vectors for all heads of sequence b at once: each cache row
// (all KV heads, contiguous) is read in order, once, and shared by each KV head's query group;
// q (pre-scaled) and the accumulators stay as vectors.
template <typename T, typename I>
void seq_avx512(const T* q, const T* k_cache, const T* v_cache, const I* kv_indices, T* out,
                const DecodeShape& s, int64_t b, Keys keys, __m512* qv, __m512* acc,
                float* scores, float* m, float* l) {
  const int64_t heads = s.heads, group = s.heads / s.kv_heads, dim = s.dim, v_dim = s.v_dim;
  const int64_t nc = (dim + 15) / 16, nv = (v_dim + 15) / 16;
  const int64_t k_span = (s.kv_heads - 1) * s.k_h + dim, v_span = (s.kv_heads - 1) * s.v_h + v_dim;
  const __m512 scale = _mm512_set1_ps(s.scale);
  for (int64_t h = 0; h < heads; ++h) {
    const T* qr = q + b * s.q_b + h * s.q_h;
    for (int64_t c = 0; c < nc; ++c)
      qv[h * nc + c] = _mm512_mul_ps(load16(qr + 16 * c, tail_mask(dim - 16 * c)), scale);
    for (int64_t c = 0; c < nv; ++c) acc[h * nv + c] = _mm512_setzero_ps();
    m[h] = -INFINITY;
    l[h] = 0.0f;
  }
  const I* idx = kv_indices + keys.start;
  __m512 row[MAX_CHUNKS];
  for (int64_t j0 = keys.first; j0 < keys.length; j0 += BLOCK) {
    const int64_t n = std::min(BLOCK, keys.length - j0);
    for (int64_t j = 0; j < n; ++j) {
      if (j0 + j + AHEAD < keys.length)
        prefetch_row(k_cache + int64_t(idx[j0 + j + AHEAD]) * s.k_s, k_span);
      const T* krow = k_cache + int64_t(idx[j0 + j]) * s.k_s;
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
        const T* kr = krow + kvh * s.k_h;
        for (int64_t c = 0; c < nc; ++c) row[c] = load16(kr + 16 * c, tail_mask(dim - 16 * c));
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          __m512 dot = _mm512_mul_ps(qv[h * nc], row[0]);
          for (int64_t c = 1; c < nc; ++c) dot = _mm512_fmadd_ps(qv[h * nc + c], row[c], dot);
          float sc = _mm512_reduce_add_ps(dot);
          if (s.softcap > 0.0f) sc = s.softcap * fast_tanh(sc / s.softcap);
          scores[h * BLOCK + j] = sc;
        }
      }
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* sh = scores + h * BLOCK;
      const float correction = softmax_block(sh, n, m[h], l[h]);
      if (correction != 1.0f) {
        const __m512 cv = _mm512_set1_ps(correction);
        for (int64_t c = 0; c < nv; ++c) acc[h * nv + c] = _mm512_mul_ps(acc[h * nv + c], cv);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      if (j0 + j + AHEAD < keys.length)
        prefetch_row(v_cache + int64_t(idx[j0 + j + AHEAD]) * s.v_s, v_span);
      const T* vrow = v_cache + int64_t(idx[j0 + j]) * s.v_s;
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
        const T* vr = vrow + kvh * s.v_h;
        for (int64_t c = 0; c < nv; ++c) row[c] = load16(vr + 16 * c, tail_mask(v_dim - 16 * c));
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          const __m512 p = _mm512_set1_ps(scores[h * BLOCK + j]);
          for (int64_t c = 0; c < nv; ++c)
            acc[h * nv + c] = _mm512_fmadd_ps(p, row[c], acc[h * nv + c]);
        }
      }
    }
  }
  for (int64_t h = 0; h < heads; ++h) {
    const __m512 inv = _mm512_set1_ps(l[h] > 0.0f ? 1.0f / l[h] : 0.0f);  // no keys: zeros
    T* o = out + (b * heads + h) * v_dim;
    for (int64_t c = 0; c < nv; ++c)
      store16(o + 16 * c, _mm512_mul_ps(acc[h * nv + c], inv), tail_mask(v_dim - 16 * c));
  }
}
#endif

}  // namespace

template <typename T, typename I>
void decode_attention(const T* q, const T* k_cache, const T* v_cache, const int64_t* kv_indptr,
                      const I* kv_indices, T* out, const DecodeShape& s, int64_t begin,
                      int64_t end) {
  const int64_t group = s.heads / s.kv_heads;
#if SGL_AVX512
  if (const auto kernel = kv_head_kernel<T, I>(s)) {
    struct alignas(64) Lanes {
      __m512 v;
    };
    std::vector<Lanes> dots(group * BLOCK);  // zeroed: lanes past a short block stay finite
    for (int64_t b = begin; b < end; ++b) {
      const Keys keys = keys_of(kv_indptr, b, s.window);
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh)
        kernel(q, k_cache, v_cache, kv_indices, out, s, b, kvh, keys, &dots[0].v);
    }
    return;
  }
  if ((s.dim + 15) / 16 <= MAX_CHUNKS && (s.v_dim + 15) / 16 <= MAX_CHUNKS) {
    struct alignas(64) Lanes {
      __m512 v;
    };
    std::vector<Lanes> qv(s.heads * ((s.dim + 15) / 16)), acc(s.heads * ((s.v_dim + 15) / 16));
    std::vector<float> scores(s.heads * BLOCK), m(s.heads), l(s.heads);
    for (int64_t b = begin; b < end; ++b) {
      seq_avx512(q, k_cache, v_cache, kv_indices, out, s, b, keys_of(kv_indptr, b, s.window),
                 &qv[0].v, &acc[0].v, scores.data(), m.data(), l.data());
    }
    return;
  }
#endif
#if SGL_AVX2
  if (const auto kernel = kv_head_kernel_avx2<T, I>(s)) {
    struct alignas(32) Lanes {
      __m256 v;
    };
    std::vector<Lanes> dots(group * BLOCK);  // zeroed: lanes past a short block stay finite
    for (int64_t b = begin; b < end; ++b) {
      const Keys keys = keys_of(kv_indptr, b, s.window);
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh)
        kernel(q, k_cache, v_cache, kv_indices, out, s, b, kvh, keys, &dots[0].v);
    }
    return;
  }
  if (s.dim == s.v_dim && s.dim % 8 == 0 && s.dim <= 256) {
    struct alignas(32) Lanes {
      __m256 v;
    };
    const int64_t nc = s.dim / 8;
    std::vector<Lanes> qv(group * nc), acc(group * nc);
    std::vector<float> scores(group * BLOCK), m(group), l(group);
    for (int64_t b = begin; b < end; ++b) {
      const Keys keys = keys_of(kv_indptr, b, s.window);
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh)
        kv_head_avx2(q, k_cache, v_cache, kv_indices, out, s, b, kvh, keys, &qv[0].v, &acc[0].v,
                     scores.data(), m.data(), l.data());
    }
    return;
  }
#endif
  std::vector<float> scores(group * BLOCK), m(group), l(group);
  std::vector<float> qf(group * s.dim), acc(group * s.v_dim), row(std::max(s.dim, s.v_dim));
  for (int64_t b = begin; b < end; ++b) {
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      item_generic(q, k_cache, v_cache, kv_indices, out, s, b, kvh,
                   keys_of(kv_indptr, b, s.window), qf.data(), acc.data(), scores.data(),
                   row.data(), m.data(), l.data());
    }
  }
}

#define SGL_DECODE(T, I)                                                                   \
  template void decode_attention<T, I>(const T*, const T*, const T*, const int64_t*, const I*, T*, \
                                       const DecodeShape&, int64_t, int64_t);
SGL_DECODE(float, int32_t)
SGL_DECODE(float, int64_t)
SGL_DECODE(bf16, int32_t)
SGL_DECODE(bf16, int64_t)
SGL_DECODE(f16, int32_t)
SGL_DECODE(f16, int64_t)

}  // namespace sgl
