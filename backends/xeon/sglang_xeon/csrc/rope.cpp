// rope: each pair (x1, x2) of the first rotary_dim dims -> (x1 cos - x2 sin, x2 cos + x1 sin),
// pairs (i, i + r/2) for neox and (2i, 2i + 1) for gpt-j; the other dims are copied.
#include "kernels.h"

namespace sgl {

template <typename T>
void rope(const T* x, int64_t t_stride, int64_t h_stride, T* out, int64_t heads, int64_t dim,
          const int64_t* positions, const float* cache, int64_t rotary_dim, bool neox,
          int64_t begin, int64_t end) {
  const int64_t half = rotary_dim / 2;
  for (int64_t t = begin; t < end; ++t) {
    const float* cos = cache + positions[t] * rotary_dim;
    const float* sin = cos + half;
    for (int64_t h = 0; h < heads; ++h) {
      const T* xr = x + t * t_stride + h * h_stride;
      T* o = out + (t * heads + h) * dim;
      if (neox) {
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          float x1 = to_float(xr[i]), x2 = to_float(xr[i + half]);
          o[i] = from_float<T>(x1 * cos[i] - x2 * sin[i]);
          o[i + half] = from_float<T>(x2 * cos[i] + x1 * sin[i]);
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          float x1 = to_float(xr[2 * i]), x2 = to_float(xr[2 * i + 1]);
          o[2 * i] = from_float<T>(x1 * cos[i] - x2 * sin[i]);
          o[2 * i + 1] = from_float<T>(x2 * cos[i] + x1 * sin[i]);
        }
      }
      for (int64_t i = rotary_dim; i < dim; ++i) o[i] = xr[i];
    }
  }
}

#define SGL_ROPE(T)                                                                         \
  template void rope<T>(const T*, int64_t, int64_t, T*, int64_t, int64_t, const int64_t*, \
                        const float*, int64_t, bool, int64_t, int64_t);
SGL_ROPE(float)
SGL_ROPE(bf16)
SGL_ROPE(f16)

}  // namespace sgl
