// Host implementations of the vector ops. Every loop is a plain element-wise loop over
// contiguous floats (GCC vectorises them at -O2/-O3, adding a runtime overlap check where
// arguments may alias); reductions use a fixed number of independent double accumulators
// combined in a fixed order, so results never depend on threads, alignment or scheduling.
#include "engine/ops.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/parallel.hpp"

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
  if (!dst.size || dst.ptr == src.ptr) return;
  if (dst.ptr + dst.size <= src.ptr || src.ptr + src.size <= dst.ptr)  // disjoint: in parts (engine/parallel.hpp)
    parallel_elementwise(dst.size, [&](size_t lo, size_t hi) {
      std::memcpy(dst.ptr + lo, src.ptr + lo, (hi - lo) * sizeof(float));
    });
  else
    std::memmove(dst.ptr, src.ptr, dst.size * sizeof(float));
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

namespace {

// One streaming pass over up to 8 inputs: o[i] = ((acc ? o[i] : x[0][i]) + x[...][i] + ...) * scale,
// the additions left to right per element. Every input is read once, in parallel streams (the
// hardware prefetcher follows them), and `o` is written once: no partial sums round-trip memory.
template <int K, bool Acc, bool Last>
void sum_pass(float* __restrict o, const float* const* x, size_t n, float scale) {
  const float* __restrict in[K];
  for (int k = 0; k < K; ++k) in[k] = x[k];
  for (size_t i = 0; i < n; ++i) {
    float v = Acc ? o[i] : in[0][i];
    for (int k = Acc ? 0 : 1; k < K; ++k) v += in[k][i];
    o[i] = Last ? v * scale : v;
  }
}

template <int K>
void sum_pass(float* o, bool acc, const float* const* x, size_t n, bool last, float scale) {
  if (acc) last ? sum_pass<K, true, true>(o, x, n, scale) : sum_pass<K, true, false>(o, x, n, scale);
  else last ? sum_pass<K, false, true>(o, x, n, scale) : sum_pass<K, false, false>(o, x, n, scale);
}

// The weighted form of sum_pass: o[i] = (acc ? o[i] : w[0]*x[0][i]) + w[k]*x[k][i] + ..., in order.
template <int K, bool Acc>
void weighted_pass(float* __restrict o, const float* const* x, const float* w, size_t n) {
  const float* __restrict in[K];
  float wk[K];
  for (int k = 0; k < K; ++k) in[k] = x[k], wk[k] = w[k];
  for (size_t i = 0; i < n; ++i) {
    float v = Acc ? o[i] : wk[0] * in[0][i];
    for (int k = Acc ? 0 : 1; k < K; ++k) v += wk[k] * in[k][i];
    o[i] = v;
  }
}

template <int K>
void weighted_pass(float* o, bool acc, const float* const* x, const float* w, size_t n) {
  acc ? weighted_pass<K, true>(o, x, w, n) : weighted_pass<K, false>(o, x, w, n);
}

// f(std::integral_constant<int, K>) for K = k in 1..8: the passes' input count as a constant.
template <class F>
void with_count(size_t k, F&& f) {
  switch (k) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

// The inputs of a multi-input pass: host views of out's size, none overlapping `out`.
std::vector<const float*> host_inputs(VecView out, const std::vector<ConstVecView>& xs, const char* op) {
  require_host(out.device, op);
  std::vector<const float*> ptrs;
  ptrs.reserve(xs.size());
  for (const auto& x : xs) {
    require_host(x.device, op);
    require_same(out.size, x.size, op);
    if (x.size && x.ptr < out.ptr + out.size && out.ptr < x.ptr + x.size)
      throw RuntimeError(std::string("ops::") + op + ": the output overlaps an input");
    ptrs.push_back(x.ptr);
  }
  return ptrs;
}

// Runs pass(K, o, x, first, last, n) over `out` for each group of up to 8 inputs (x: the group's
// pointers, first: its first input's index, last: whether it is the last group), the first group
// writing `out` and the later ones adding to it. Element-wise, so cut across the compute pool in
// scope (engine/parallel.hpp).
template <class Pass>
void grouped_passes(VecView out, const std::vector<const float*>& ptrs, Pass pass) {
  parallel_elementwise(out.size, [&](size_t lo, size_t hi) {
    std::vector<const float*> part(ptrs.size());
    for (size_t i = 0; i < ptrs.size(); ++i) part[i] = ptrs[i] + lo;
    for (size_t first = 0; first < part.size();) {
      const size_t k = std::min<size_t>(8, part.size() - first);
      with_count(k, [&](auto K) { pass(K, out.ptr + lo, part.data() + first, first, first + k == part.size(), hi - lo); });
      first += k;
    }
  });
}

}  // namespace

void sum_scaled(VecView out, const std::vector<ConstVecView>& xs, float scale) {
  if (xs.empty()) throw RuntimeError("ops::sum_scaled: no inputs");
  // The same additions in the same order as copy(xs[0]), add(xs[1]), ..., scale.
  grouped_passes(out, host_inputs(out, xs, "sum_scaled"),
                 [scale](auto K, float* o, const float* const* x, size_t first, bool last, size_t n) {
                   sum_pass<decltype(K)::value>(o, first > 0, x, n, last, scale);
                 });
}

void weighted_sum(VecView out, const std::vector<ConstVecView>& xs, const std::vector<float>& weights) {
  if (xs.empty() || xs.size() != weights.size()) throw RuntimeError("ops::weighted_sum: need one weight per input");
  grouped_passes(out, host_inputs(out, xs, "weighted_sum"),
                 [&weights](auto K, float* o, const float* const* x, size_t first, bool, size_t n) {
                   weighted_pass<decltype(K)::value>(o, first > 0, x, weights.data() + first, n);
                 });
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
