// Host implementations of the vector ops. Every loop is a plain element-wise loop over
// contiguous floats (GCC vectorises them at -O2/-O3, adding a runtime overlap check where
// arguments may alias); reductions use a fixed number of independent double accumulators
// combined in a fixed order, so results never depend on threads, alignment or scheduling.
#include "engine/ops.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"

namespace dtsim::engine::ops {

namespace {

void require_host(Device d, const char* op) {
  if (!is_host(d)) throw RuntimeError(std::string("ops::") + op + ": CUDA backend not built");
}

void require_same(size_t a, size_t b, const char* op) {
  if (a != b)
    throw RuntimeError(std::string("ops::") + op + ": size mismatch (" + std::to_string(a) + " vs " +
                       std::to_string(b) + ")");
}

// Fixed-order double reduction: 8 lanes, lane l sums elements i with i % 8 == l (for the
// bulk), then the lanes are combined pairwise and the tail is added in order.
template <class F>
double reduce8(size_t n, F term) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const size_t bulk = n - n % 8;
  for (size_t i = 0; i < bulk; i += 8)
    for (size_t l = 0; l < 8; ++l) acc[l] += term(i + l);
  double s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (size_t i = bulk; i < n; ++i) s += term(i);
  return s;
}

}  // namespace

void copy(VecView dst, ConstVecView src) {
  if (dst.device == Device::Cuda || src.device == Device::Cuda) {  // any direction
    require_same(dst.size, src.size, "copy");
    return cuda::copy(dst.ptr, dst.device, src.ptr, src.device, dst.size);
  }
  require_host(dst.device, "copy");
  require_host(src.device, "copy");
  require_same(dst.size, src.size, "copy");
  if (dst.size && dst.ptr != src.ptr) std::memmove(dst.ptr, src.ptr, dst.size * sizeof(float));
}

void fill(VecView dst, float value) {
  if (dst.device == Device::Cuda) return cuda::fill(dst, value);
  require_host(dst.device, "fill");
  float* y = dst.ptr;
  for (size_t i = 0; i < dst.size; ++i) y[i] = value;
}

void scale(VecView y, float a) {
  if (y.device == Device::Cuda) return cuda::scale(y, a);
  require_host(y.device, "scale");
  float* p = y.ptr;
  for (size_t i = 0; i < y.size; ++i) p[i] *= a;
}

void axpy(VecView y, float a, ConstVecView x) {
  if (y.device == Device::Cuda || x.device == Device::Cuda) return cuda::axpy(y, a, x);
  require_host(y.device, "axpy");
  require_host(x.device, "axpy");
  require_same(y.size, x.size, "axpy");
  float* py = y.ptr;
  const float* px = x.ptr;
  for (size_t i = 0; i < y.size; ++i) py[i] += a * px[i];
}

void axpby(VecView y, float a, ConstVecView x, float b) {
  if (y.device == Device::Cuda || x.device == Device::Cuda) return cuda::axpby(y, a, x, b);
  require_host(y.device, "axpby");
  require_host(x.device, "axpby");
  require_same(y.size, x.size, "axpby");
  float* py = y.ptr;
  const float* px = x.ptr;
  for (size_t i = 0; i < y.size; ++i) py[i] = a * px[i] + b * py[i];
}

void sub(VecView out, ConstVecView a, ConstVecView b) {
  if (out.device == Device::Cuda || a.device == Device::Cuda || b.device == Device::Cuda)
    return cuda::sub(out, a, b);
  require_host(out.device, "sub");
  require_host(a.device, "sub");
  require_host(b.device, "sub");
  require_same(out.size, a.size, "sub");
  require_same(out.size, b.size, "sub");
  float* po = out.ptr;
  const float* pa = a.ptr;
  const float* pb = b.ptr;
  for (size_t i = 0; i < out.size; ++i) po[i] = pa[i] - pb[i];
}

void sum_scaled(VecView out, const std::vector<ConstVecView>& xs, float scale) {
  require_host(out.device, "sum_scaled");
  if (xs.empty()) throw RuntimeError("ops::sum_scaled: no inputs");
  for (const auto& x : xs) {
    require_host(x.device, "sum_scaled");
    require_same(out.size, x.size, "sum_scaled");
  }
  constexpr size_t kBlock = 2048;  // 8 KiB per input: the block of `out` stays in L1
  float* o = out.ptr;
  for (size_t b = 0; b < out.size; b += kBlock) {
    const size_t n = std::min(kBlock, out.size - b);
    std::memcpy(o + b, xs[0].ptr + b, n * sizeof(float));
    for (size_t i = 1; i < xs.size(); ++i) {
      const float* __restrict x = xs[i].ptr + b;
      float* __restrict y = o + b;
      for (size_t j = 0; j < n; ++j) y[j] += x[j];
    }
    if (scale != 1.0f)
      for (size_t j = 0; j < n; ++j) o[b + j] *= scale;
  }
}

void weighted_sum(VecView out, const std::vector<ConstVecView>& xs, const std::vector<float>& weights) {
  require_host(out.device, "weighted_sum");
  if (xs.empty() || xs.size() != weights.size()) throw RuntimeError("ops::weighted_sum: need one weight per input");
  for (const auto& x : xs) {
    require_host(x.device, "weighted_sum");
    require_same(out.size, x.size, "weighted_sum");
  }
  constexpr size_t kBlock = 2048;
  float* o = out.ptr;
  for (size_t b = 0; b < out.size; b += kBlock) {
    const size_t n = std::min(kBlock, out.size - b);
    {
      const float* __restrict x = xs[0].ptr + b;
      float* __restrict y = o + b;
      const float w = weights[0];
      for (size_t j = 0; j < n; ++j) y[j] = w * x[j];
    }
    for (size_t i = 1; i < xs.size(); ++i) {
      const float* __restrict x = xs[i].ptr + b;
      float* __restrict y = o + b;
      const float w = weights[i];
      for (size_t j = 0; j < n; ++j) y[j] += w * x[j];
    }
  }
}

void add(VecView y, ConstVecView x) {
  if (y.device == Device::Cuda || x.device == Device::Cuda) return cuda::add(y, x);
  require_host(y.device, "add");
  require_host(x.device, "add");
  require_same(y.size, x.size, "add");
  float* py = y.ptr;
  const float* px = x.ptr;
  for (size_t i = 0; i < y.size; ++i) py[i] += px[i];
}

double dot(ConstVecView a, ConstVecView b) {
  if (a.device == Device::Cuda || b.device == Device::Cuda) return cuda::dot(a, b);
  require_host(a.device, "dot");
  require_host(b.device, "dot");
  require_same(a.size, b.size, "dot");
  const float* pa = a.ptr;
  const float* pb = b.ptr;
  return reduce8(a.size, [&](size_t i) { return static_cast<double>(pa[i]) * static_cast<double>(pb[i]); });
}

double sum_squares(ConstVecView a) {
  if (a.device == Device::Cuda) return cuda::sum_squares(a);
  require_host(a.device, "sum_squares");
  const float* pa = a.ptr;
  return reduce8(a.size, [&](size_t i) {
    const double v = pa[i];
    return v * v;
  });
}

bool all_finite(ConstVecView a) {
  if (a.device == Device::Cuda) return cuda::all_finite(a);
  require_host(a.device, "all_finite");
  // Exponent bits all ones <=> inf or NaN. Branch-free so the loop vectorises.
  const float* p = a.ptr;
  uint32_t bad = 0;
  for (size_t i = 0; i < a.size; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7F800000u) == 0x7F800000u);
  }
  return bad == 0;
}

void to_host(ConstVecView src, float* dst) {
  if (src.device == Device::Cuda) return cuda::copy(dst, Device::Cpu, src.ptr, src.device, src.size);
  require_host(src.device, "to_host");
  if (src.size) std::memcpy(dst, src.ptr, src.size * sizeof(float));
}

}  // namespace dtsim::engine::ops
