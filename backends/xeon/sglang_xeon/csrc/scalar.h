// Element types and the float math the kernels share. No torch headers: the kernel units
// compile in a few seconds and are plain loops over float rows, which gcc vectorises
// (-O3 -march=native). Every kernel widens its inputs to float32, computes in float32 and
// rounds once to the output type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace sgl {

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float to_float(float v) { return v; }

inline float to_float(bf16 v) {
  uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float to_float(f16 v) {
#if defined(__F16C__)
  return _cvtsh_ss(v.bits);
#else
  _Float16 h;
  std::memcpy(&h, &v.bits, 2);
  return float(h);
#endif
}

template <typename T>
inline T from_float(float f);

template <>
inline float from_float<float>(float f) {
  return f;
}

// Round to nearest even; NaN stays a (quiet) NaN. Branch-free so loops vectorise.
template <>
inline bf16 from_float<bf16>(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  uint32_t nan = (u >> 16) | 0x40u;
  return {uint16_t(((u & 0x7fffffffu) > 0x7f800000u) ? nan : rounded)};
}

template <>
inline f16 from_float<f16>(float f) {
#if defined(__F16C__)
  return {uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT))};
#else
  _Float16 h = _Float16(f);
  f16 out;
  std::memcpy(&out.bits, &h, 2);
  return out;
#endif
}

// exp(x) for float32: Cephes' range reduction and degree-6 polynomial (relative error about
// 2e-7 over the float range, 0 below -87.3 where float underflows; clamped at exp(88)), written
// without calls or branches so that loops over it vectorise.
inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.33654f), 88.0f);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  int32_t e = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return x <= -87.33654f ? 0.0f : y * scale;
}

// tanh through exp, exact enough for float32 (|error| < 1e-6) and vectorisable.
inline float fast_tanh(float x) {
  float a = std::min(std::abs(x), 9.0f);
  float e = fast_exp(-2.0f * a);
  float t = (1.0f - e) / (1.0f + e);
  return std::copysign(t, x);
}

}  // namespace sgl
