// Python bindings of the native kernels: argument checks, output allocation, dtype dispatch,
// and the split of rows between torch's OpenMP threads (at::parallel_for, so the kernels share
// torch's thread pool and its thread count). Small calls run on the calling thread: at decode
// sizes a parallel region costs more than the work.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include "kernels.h"

namespace {

using sgl::bf16;
using sgl::f16;

// Float ops below which a call stays on one thread: waking torch's OpenMP workers costs a few
// microseconds on an idle machine and tens when another process holds the other cores.
constexpr int64_t PARALLEL_WORK = 1 << 18;

template <typename F>
void for_rows(int64_t n, int64_t work_per_row, const F& f) {
  if (n <= 0) return;
  const int64_t grain = std::max<int64_t>(1, PARALLEL_WORK / std::max<int64_t>(1, work_per_row));
  if (grain >= n || at::get_num_threads() == 1) {
    f(0, n);
  } else {
    at::parallel_for(0, n, grain, f);
  }
}

// Calls body.template operator()<T>() with T the element type of `dtype`.
template <typename Body>
void by_dtype(at::ScalarType dtype, const char* op, Body&& body) {
  switch (dtype) {
    case at::kFloat: body(float{}); break;
    case at::kBFloat16: body(bf16{}); break;
    case at::kHalf: body(f16{}); break;
    default: TORCH_CHECK(false, op, ": unsupported dtype ", dtype);
  }
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

void check_rows(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 2 && t.stride(1) == 1, what, " must be 2-D with contiguous rows");
}

// t itself when it already has `dtype` and is contiguous (the usual case: a no-op `to` and
// `contiguous` still cost a dispatch each, and a decode step makes hundreds of these calls).
at::Tensor as(const at::Tensor& t, at::ScalarType dtype) {
  if (t.scalar_type() == dtype && t.is_contiguous()) return t;
  return t.to(dtype).contiguous();
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  check_rows(x, "x");
  auto w = as(weight, x.scalar_type());
  auto out = at::empty(x.sizes(), x.options());
  const int64_t dim = x.size(1);
  by_dtype(x.scalar_type(), "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    for_rows(x.size(0), 3 * dim, [&](int64_t b, int64_t e) {
      sgl::rms_norm<T>(ptr<T>(x), x.stride(0), nullptr, 0, ptr<T>(w), ptr<T>(out), nullptr, dim,
                       float(eps), b, e);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> add_rms_norm(const at::Tensor& x, const at::Tensor& residual,
                                                const at::Tensor& weight, double eps) {
  check_rows(x, "x");
  auto r = residual.scalar_type() == x.scalar_type() ? residual : residual.to(x.scalar_type());
  check_rows(r, "residual");
  TORCH_CHECK(r.sizes() == x.sizes(), "residual shape differs from x");
  auto w = as(weight, x.scalar_type());
  auto out = at::empty(x.sizes(), x.options());
  auto h = at::empty(x.sizes(), x.options());
  const int64_t dim = x.size(1);
  by_dtype(x.scalar_type(), "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    for_rows(x.size(0), 4 * dim, [&](int64_t b, int64_t e) {
      sgl::rms_norm<T>(ptr<T>(x), x.stride(0), ptr<T>(r), r.stride(0), ptr<T>(w), ptr<T>(out),
                       ptr<T>(h), dim, float(eps), b, e);
    });
  });
  return {out, h};
}

at::Tensor rope_one(const at::Tensor& x, const at::Tensor& pos, const at::Tensor& cache,
                    bool neox) {
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1, "rope: q / k must be [T, H, D], D contiguous");
  auto out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t heads = x.size(1), dim = x.size(2), rotary = cache.size(1);
  by_dtype(x.scalar_type(), "rope", [&](auto tag) {
    using T = decltype(tag);
    for_rows(x.size(0), 4 * heads * dim, [&](int64_t b, int64_t e) {
      sgl::rope<T>(ptr<T>(x), x.stride(0), x.stride(1), ptr<T>(out), heads, dim,
                   ptr<int64_t>(pos), ptr<float>(cache), rotary, neox, b, e);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> rope(const at::Tensor& positions, const at::Tensor& q,
                                        const at::Tensor& k, const at::Tensor& cos_sin_cache,
                                        bool is_neox) {
  auto pos = as(positions, at::kLong);
  auto cache = as(cos_sin_cache, at::kFloat);
  TORCH_CHECK(cache.dim() == 2 && cache.size(1) % 2 == 0 && cache.size(1) <= q.size(-1),
              "rope: cos_sin_cache must be [max_pos, r] with r even and r <= head_dim");
  TORCH_CHECK(pos.numel() == q.size(0) && pos.numel() == k.size(0), "rope: positions != tokens");
  const int64_t* pp = pos.data_ptr<int64_t>();
  for (int64_t t = 0; t < pos.numel(); ++t) {
    TORCH_CHECK(pp[t] >= 0 && pp[t] < cache.size(0), "rope: position ", pp[t],
                " outside the cos/sin cache");
  }
  return {rope_one(q, pos, cache, is_neox), rope_one(k, pos, cache, is_neox)};
}

at::Tensor gated_act(const at::Tensor& x, int64_t act) {
  auto x2 = x.reshape({-1, x.size(-1)});
  if (x2.stride(-1) != 1) x2 = x2.contiguous();
  const int64_t inter = x2.size(1) / 2;
  auto sizes = x.sizes().vec();
  sizes.back() = inter;
  auto out = at::empty(sizes, x.options().memory_format(at::MemoryFormat::Contiguous));
  by_dtype(x.scalar_type(), "gated_act", [&](auto tag) {
    using T = decltype(tag);
    for_rows(x2.size(0), 16 * inter, [&](int64_t b, int64_t e) {
      sgl::gated_act<T>(ptr<T>(x2), x2.stride(0), ptr<T>(out), inter, int(act), b, e);
    });
  });
  return out;
}

at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k_cache,
                            const at::Tensor& v_cache, const at::Tensor& kv_indptr,
                            const at::Tensor& kv_indices, double sm_scale, int64_t window,
                            double softcap) {
  TORCH_CHECK(q.dim() == 3 && q.stride(2) == 1, "decode: q must be [B, H, D], D contiguous");
  TORCH_CHECK(k_cache.stride(2) == 1 && v_cache.stride(2) == 1, "decode: cache rows strided");
  TORCH_CHECK(k_cache.scalar_type() == q.scalar_type() &&
                  v_cache.scalar_type() == q.scalar_type(),
              "decode: q and the caches must share a dtype");
  const int64_t batch = q.size(0), heads = q.size(1), kv_heads = k_cache.size(1);
  TORCH_CHECK(heads % kv_heads == 0, "decode: heads must be a multiple of kv heads");
  // kv_indptr as int64 host values: an int32 one (as the scheduler builds it: B + 1 values) is
  // widened into a small vector, not into a converted tensor (a dispatch and an allocation).
  TORCH_CHECK(kv_indptr.dim() == 1 && kv_indptr.numel() >= batch + 1,
              "decode: kv_indptr must hold B + 1 offsets");
  auto indptr = kv_indptr.is_contiguous() ? kv_indptr : kv_indptr.contiguous();
  std::vector<int64_t> widened;
  const int64_t* ip = nullptr;
  if (indptr.scalar_type() == at::kInt) {
    const int32_t* p32 = indptr.data_ptr<int32_t>();
    widened.assign(p32, p32 + batch + 1);
    ip = widened.data();
  } else {
    TORCH_CHECK(indptr.scalar_type() == at::kLong, "decode: kv_indptr must be int32/int64");
    ip = indptr.data_ptr<int64_t>();
  }
  auto indices = kv_indices.is_contiguous() ? kv_indices : kv_indices.contiguous();
  sgl::DecodeShape s{heads, kv_heads, q.size(2), v_cache.size(2), q.stride(0), q.stride(1),
                     k_cache.stride(0), k_cache.stride(1), v_cache.stride(0), v_cache.stride(1),
                     float(sm_scale), float(softcap), window};
  auto out = at::empty({batch, heads, s.v_dim}, q.options());
  if (batch == 0) return out;
  const int64_t keys = ip[batch] - ip[0];
  const int64_t work_per_item =
      (keys / batch + 1) * (heads / kv_heads) * (s.dim + s.v_dim) * 2;
  by_dtype(q.scalar_type(), "decode_attention", [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto itag) {
      using I = decltype(itag);
      for_rows(batch, work_per_item * kv_heads, [&](int64_t b, int64_t e) {
        sgl::decode_attention<T, I>(ptr<T>(q), ptr<T>(k_cache), ptr<T>(v_cache), ip,
                                    ptr<I>(indices), ptr<T>(out), s, b, e);
      });
    };
    if (indices.scalar_type() == at::kInt) {
      run(int32_t{});
    } else {
      TORCH_CHECK(indices.scalar_type() == at::kLong, "decode: kv_indices must be int32/int64");
      run(int64_t{});
    }
  });
  return out;
}

// cache[loc[i]] = x[i] for x [N, Hkv, D] (any head / token stride, D contiguous).
void store_one(const at::Tensor& cache, const at::Tensor& loc, const at::Tensor& x_in) {
  auto x = x_in.scalar_type() == cache.scalar_type() ? x_in : x_in.to(cache.scalar_type());
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1 && cache.stride(2) == 1 &&
                  x.size(1) == cache.size(1) && x.size(2) == cache.size(2),
              "kv_store: k / v must be [N, Hkv, D] matching the cache");
  const int64_t n = x.size(0), heads = x.size(1), row = x.size(2) * x.element_size();
  const int64_t slots = cache.size(0);
  const int64_t* lp = loc.data_ptr<int64_t>();
  char* dst = reinterpret_cast<char*>(cache.data_ptr());
  const char* src = reinterpret_cast<const char*>(x.data_ptr());
  const int64_t es = x.element_size();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(lp[i] >= 0 && lp[i] < slots, "kv_store: slot ", lp[i], " outside the cache");
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(dst + (lp[i] * cache.stride(0) + h * cache.stride(1)) * es,
                  src + (i * x.stride(0) + h * x.stride(1)) * es, row);
    }
  }
}

void kv_store(const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& loc,
              const at::Tensor& k, const at::Tensor& v) {
  auto l = as(loc, at::kLong);
  store_one(k_cache, l, k);
  store_one(v_cache, l, v);
}

// x [M, K] bf16 @ the packed int4 weight of gemm_int4.cpp -> [M, n] bf16 (codes: 0 integers,
// 1 e2m1).
at::Tensor int4_gemm(const at::Tensor& x_in, const at::Tensor& packed, int64_t group_size,
                     int64_t n, int64_t codes) {
  TORCH_CHECK(sgl::int4_bf16_supported(), "int4_gemm: built without AVX-512 BF16");
  TORCH_CHECK(x_in.dim() == 2 && x_in.scalar_type() == at::kBFloat16, "int4_gemm: x must be bf16 [M, K]");
  TORCH_CHECK(codes == 0 || codes == 1, "int4_gemm: codes must be 0 or 1");
  auto x = x_in.is_contiguous() ? x_in : x_in.contiguous();
  const int64_t m = x.size(0), k = x.size(1), blocks = (n + 15) / 16;
  TORCH_CHECK(group_size % 4 == 0 && k % group_size == 0, "int4_gemm: K must be whole groups of a multiple of 4");
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.is_contiguous() &&
                  packed.numel() == blocks * (k / group_size) * ((codes == 1 ? 32 : 64) + 8 * group_size),
              "int4_gemm: packed weight does not match K, n and the group size");
  auto out = at::empty({m, n}, x.options());
  if (m == 0) return out;
  const auto* xp = reinterpret_cast<const uint16_t*>(x.data_ptr());
  const auto* wp = packed.data_ptr<uint8_t>();
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr());
  const int64_t groups = k / group_size;
  std::vector<float> xsum(m * groups, 0.0f);
  for (int64_t i = 0; i < m * k; ++i) xsum[i / group_size] += sgl::to_float(sgl::bf16{xp[i]});
  for_rows(blocks, 16 * k * (m + 8), [&](int64_t b, int64_t e) {
    sgl::int4_bf16_gemm(xp, xsum.data(), m, k, wp, group_size, op, n, b, e, int(codes));
  });
  return out;
}

// The packed int4 weight of gemm_int4.cpp -> [n, K] bf16 (codes as int4_gemm's).
at::Tensor int4_dequantize(const at::Tensor& packed, int64_t group_size, int64_t n, int64_t k,
                           int64_t codes) {
  TORCH_CHECK(sgl::int4_bf16_supported(), "int4_dequantize: built without AVX-512 BF16");
  TORCH_CHECK(group_size % 4 == 0 && k % group_size == 0, "int4_dequantize: K must be whole groups of a multiple of 4");
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.is_contiguous() &&
                  packed.numel() == (n + 15) / 16 * (k / group_size) * ((codes == 1 ? 32 : 64) + 8 * group_size),
              "int4_dequantize: packed weight does not match K, n and the group size");
  TORCH_CHECK(codes == 0 || codes == 1, "int4_dequantize: codes must be 0 or 1");
  auto out = at::empty({n, k}, packed.options().dtype(at::kBFloat16));
  for_rows((n + 15) / 16, 64 * k, [&](int64_t b, int64_t e) {
    sgl::int4_bf16_dequantize(packed.data_ptr<uint8_t>(), k, group_size,
                              reinterpret_cast<uint16_t*>(out.data_ptr()), n, b, e, int(codes));
  });
  return out;
}

// x [M, K] (bf16 or float32) quantized to int8 per row and group, @ the packed 4-bit weight
// of gemm_w4a8.cpp -> [M, n] in x's dtype.
at::Tensor w4a8_gemm(const at::Tensor& x_in, const at::Tensor& packed, int64_t group_size,
                     int64_t n) {
  TORCH_CHECK(sgl::w4a8_supported(), "w4a8_gemm: built without AVX-512 VNNI or AVX2");
  const auto dtype = x_in.scalar_type();
  TORCH_CHECK(x_in.dim() == 2 && (dtype == at::kBFloat16 || dtype == at::kFloat),
              "w4a8_gemm: x must be bf16 or float32 [M, K]");
  auto x = x_in.is_contiguous() ? x_in : x_in.contiguous();
  const int64_t m = x.size(0), k = x.size(1), blocks = (n + 15) / 16;
  TORCH_CHECK(group_size % 8 == 0 && k % group_size == 0, "w4a8_gemm: K must be whole groups of a multiple of 8");
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.is_contiguous() &&
                  packed.numel() == blocks * (k / group_size) * (64 + 8 * group_size),
              "w4a8_gemm: packed weight does not match K, n and the group size");
  auto out = at::empty({m, n}, x.options());
  if (m == 0) return out;
  const int64_t groups = k / group_size;
  std::vector<int8_t> xq(m * k);
  std::vector<float> dx(m * groups);
  std::vector<int32_t> xsum(m * groups);
  if (dtype == at::kBFloat16) {
    sgl::w4a8_quantize(reinterpret_cast<const bf16*>(x.data_ptr()), m, k, group_size, xq.data(),
                       dx.data(), xsum.data());
  } else {
    sgl::w4a8_quantize(x.data_ptr<float>(), m, k, group_size, xq.data(), dx.data(), xsum.data());
  }
  const auto* wp = packed.data_ptr<uint8_t>();
  void* op = out.data_ptr();
  const bool out_bf16 = dtype == at::kBFloat16;
  for_rows(blocks, 16 * k * (m + 8), [&](int64_t b, int64_t e) {
    sgl::w4a8_gemm(xq.data(), dx.data(), xsum.data(), m, k, wp, group_size, op, out_bf16, n, b, e);
  });
  return out;
}

// The packed weight of gemm_w4a8.cpp -> [n, K] bf16.
at::Tensor w4a8_dequantize(const at::Tensor& packed, int64_t group_size, int64_t n, int64_t k) {
  TORCH_CHECK(group_size % 8 == 0 && k % group_size == 0, "w4a8_dequantize: K must be whole groups of a multiple of 8");
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.is_contiguous() &&
                  packed.numel() == (n + 15) / 16 * (k / group_size) * (64 + 8 * group_size),
              "w4a8_dequantize: packed weight does not match K, n and the group size");
  auto out = at::empty({n, k}, packed.options().dtype(at::kBFloat16));
  for_rows((n + 15) / 16, 64 * k, [&](int64_t b, int64_t e) {
    sgl::w4a8_dequantize(packed.data_ptr<uint8_t>(), k, group_size,
                         reinterpret_cast<uint16_t*>(out.data_ptr()), n, b, e);
  });
  return out;
}

int64_t w8_packed_bytes(int64_t n, int64_t k, int64_t group_size, bool zeros) {
  return (n + 15) / 16 * (k / group_size) * ((zeros ? 128 : 64) + 16 * group_size);
}

void check_w8(const at::Tensor& packed, int64_t n, int64_t k, int64_t group_size, bool zeros) {
  TORCH_CHECK(sgl::w8_supported(), "w8a16: built without AVX-512 or AVX2");
  TORCH_CHECK(group_size % 4 == 0 && k % group_size == 0, "w8a16: K must be whole groups of 4k");
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.is_contiguous() &&
                  packed.numel() == w8_packed_bytes(n, k, group_size, zeros),
              "w8a16: packed weight does not match n, K and the group size");
}

// x [M, K] (any float type) @ the packed int8 weight of gemm_w8a16.cpp -> [M, n] float32.
at::Tensor w8_gemm(const at::Tensor& x_in, const at::Tensor& packed, int64_t group_size,
                   int64_t n, bool zeros) {
  TORCH_CHECK(x_in.dim() == 2, "w8_gemm: x must be [M, K]");
  auto x = as(x_in, at::kFloat);
  const int64_t m = x.size(0), k = x.size(1), blocks = (n + 15) / 16;
  check_w8(packed, n, k, group_size, zeros);
  auto out = at::empty({m, n}, x.options());
  if (m == 0) return out;
  const int64_t groups = k / group_size;
  std::vector<float> xsum(zeros ? m * groups : 0, 0.0f);
  const float* xp = x.data_ptr<float>();
  if (zeros)
    for (int64_t i = 0; i < m * k; ++i) xsum[i / group_size] += xp[i];
  for_rows(blocks, 16 * k * (m + 4), [&](int64_t b, int64_t e) {
    sgl::w8_gemm(xp, xsum.data(), m, k, packed.data_ptr<uint8_t>(), group_size, zeros,
                 out.data_ptr<float>(), n, b, e);
  });
  return out;
}

// The packed int8 weight -> [n, K] float32.
at::Tensor w8_dequantize(const at::Tensor& packed, int64_t n, int64_t k, int64_t group_size,
                         bool zeros) {
  check_w8(packed, n, k, group_size, zeros);
  auto out = at::empty({n, k}, packed.options().dtype(at::kFloat));
  for_rows((n + 15) / 16, 32 * k, [&](int64_t b, int64_t e) {
    sgl::w8_dequantize(packed.data_ptr<uint8_t>(), k, group_size, zeros, out.data_ptr<float>(),
                       n, b, e);
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rms_norm", &rms_norm);
  m.def("add_rms_norm", &add_rms_norm);
  m.def("rope", &rope);
  m.def("gated_act", &gated_act);
  m.def("decode_attention", &decode_attention);
  m.def("kv_store", &kv_store);
  m.def("int4_gemm", &int4_gemm);
  m.def("int4_gemm_supported", &sgl::int4_bf16_supported);
  m.def("int4_dequantize", &int4_dequantize);
  m.def("w8_gemm", &w8_gemm);
  m.def("w8_dequantize", &w8_dequantize);
  m.def("w8_supported", &sgl::w8_supported);
  m.def("w4a8_gemm", &w4a8_gemm);
  m.def("w4a8_supported", &sgl::w4a8_supported);
  m.def("w4a8_dequantize", &w4a8_dequantize);
}
