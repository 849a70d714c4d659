// norm.rms: one pass for the sum (and residual), one for the scaled output, in float32.
#include "kernels.h"

namespace sgl {

template <typename T>
void rms_norm(const T* x, int64_t x_stride, const T* residual, int64_t r_stride, const T* w,
              T* out, T* h_out, int64_t dim, float eps, int64_t begin, int64_t end) {
  float h[dim];  // the unrounded residual sum, normalised as the spec does (VLA: dim <= 64k)
  for (int64_t t = begin; t < end; ++t) {
    const T* xr = x + t * x_stride;
    float sq = 0.0f;
    if (residual) {
      const T* rr = residual + t * r_stride;
      T* hr = h_out + t * dim;
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < dim; ++i) {
        h[i] = to_float(xr[i]) + to_float(rr[i]);
        hr[i] = from_float<T>(h[i]);
        sq += h[i] * h[i];
      }
    } else {
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < dim; ++i) {
        h[i] = to_float(xr[i]);
        sq += h[i] * h[i];
      }
    }
    float inv = 1.0f / std::sqrt(sq / float(dim) + eps);
    T* o = out + t * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = from_float<T>(h[i] * inv * to_float(w[i]));
  }
}

#define SGL_NORM(T)                                                                          \
  template void rms_norm<T>(const T*, int64_t, const T*, int64_t, const T*, T*, T*, int64_t, \
                            float, int64_t, int64_t);
SGL_NORM(float)
SGL_NORM(bf16)
SGL_NORM(f16)

}  // namespace sgl
