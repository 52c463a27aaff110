#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/ops.hpp"
#include "engine/vec.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_vec_ops_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

TEST_CASE("Vec is zero-initialised, 64-byte aligned, deep-cloned and move-only") {
  for (size_t n : {size_t{1}, size_t{3}, size_t{17}, size_t{1000}}) {
    Vec v(n, Device::Cpu);
    REQUIRE(v.size() == n);
    CHECK(reinterpret_cast<uintptr_t>(v.data()) % 64 == 0);
    for (size_t i = 0; i < n; ++i) CHECK(v.data()[i] == 0.0f);
  }
  Vec a(5, Device::Reference);
  CHECK(a.device() == Device::Reference);
  for (size_t i = 0; i < 5; ++i) a.data()[i] = static_cast<float>(i) + 0.5f;
  Vec c = a.clone();
  CHECK(c.data() != a.data());
  CHECK(c.device() == Device::Reference);
  a.data()[0] = 42.0f;
  CHECK(c.data()[0] == 0.5f);
  CHECK(c.data()[4] == 4.5f);

  Vec m = std::move(c);
  CHECK(m.size() == 5);
  CHECK(c.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified (empty)
  CHECK(c.data() == nullptr);
  Vec e;
  CHECK(e.empty());
  Vec z(0);
  CHECK(z.empty());
}

TEST_CASE("Vec and ops reject the CUDA device in a build without it") {
  if (!cuda::built()) {  // with the backend: tests/engine/test_cuda.cpp
    CHECK_THROWS_AS(Vec(4, Device::Cuda), RuntimeError);
    float buf[4] = {};
    CHECK_THROWS_AS(ops::fill(VecView{buf, 4, Device::Cuda}, 1.0f), RuntimeError);
  }
  CHECK(std::string(device_name(Device::Reference)) == "reference");
  CHECK(std::string(device_name(Device::Cpu)) == "cpu");
  CHECK(std::string(device_name(Device::Cuda)) == "cuda");
  CHECK(is_host(Device::Cpu));
  CHECK(is_host(Device::Reference));
  CHECK_FALSE(is_host(Device::Cuda));
}

TEST_CASE("element-wise ops compute their documented formulas on every length") {
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{100}, size_t{1031}}) {
    const auto xs = test::random_floats(n, 1);
    const auto ys = test::random_floats(n, 2);
    Vec x(n), y(n), out(n);
    ops::copy(x.view(), ConstVecView(xs.data(), n, Device::Cpu));
    ops::copy(y.view(), ConstVecView(ys.data(), n, Device::Cpu));
    for (size_t i = 0; i < n; ++i) REQUIRE(x.data()[i] == xs[i]);

    ops::axpy(y.view(), 0.5f, x.view());
    for (size_t i = 0; i < n; ++i) CHECK(y.data()[i] == ys[i] + 0.5f * xs[i]);

    ops::copy(y.view(), ConstVecView(ys.data(), n, Device::Cpu));
    ops::axpby(y.view(), 2.0f, x.view(), -3.0f);
    for (size_t i = 0; i < n; ++i) CHECK(y.data()[i] == 2.0f * xs[i] + -3.0f * ys[i]);

    ops::copy(y.view(), ConstVecView(ys.data(), n, Device::Cpu));
    ops::sub(out.view(), x.view(), y.view());
    for (size_t i = 0; i < n; ++i) CHECK(out.data()[i] == xs[i] - ys[i]);

    ops::add(out.view(), y.view());
    for (size_t i = 0; i < n; ++i) CHECK(out.data()[i] == (xs[i] - ys[i]) + ys[i]);

    ops::scale(out.view(), 0.25f);
    for (size_t i = 0; i < n; ++i) CHECK(out.data()[i] == ((xs[i] - ys[i]) + ys[i]) * 0.25f);

    ops::fill(out.view(2 % n, n - 2 % n), -7.0f);
    for (size_t i = 2 % n; i < n; ++i) CHECK(out.data()[i] == -7.0f);

    std::vector<float> host(n);
    ops::to_host(x.view(), host.data());
    CHECK(host == xs);
  }
}

TEST_CASE("dot and sum_squares accumulate in double and are deterministic") {
  const size_t n = 100003;
  const auto xs = test::random_floats(n, 3);
  const auto ys = test::random_floats(n, 4);
  ConstVecView x(xs.data(), n, Device::Cpu), y(ys.data(), n, Device::Cpu);
  long double ref_dot = 0, ref_ss = 0;
  for (size_t i = 0; i < n; ++i) {
    ref_dot += static_cast<long double>(xs[i]) * ys[i];
    ref_ss += static_cast<long double>(xs[i]) * xs[i];
  }
  const double d = ops::dot(x, y);
  const double s = ops::sum_squares(x);
  // A float accumulator would be off by ~1e-4 relative here; double is ~1e-13.
  CHECK(std::abs(d - static_cast<double>(ref_dot)) <= 1e-10 * static_cast<double>(ref_ss));
  CHECK(std::abs(s - static_cast<double>(ref_ss)) <= 1e-12 * static_cast<double>(ref_ss));
  CHECK(ops::dot(x, y) == d);
  CHECK(ops::sum_squares(x) == s);
  CHECK(ops::dot(x, x) == dtsim_test::Rel(s).epsilon(1e-14));
  CHECK(ops::dot(x.sub(0, 0), y.sub(0, 0)) == 0.0);
}

TEST_CASE("all_finite finds NaN and infinities anywhere, including the tail") {
  std::vector<float> v(37, 1.0f);
  ConstVecView view(v.data(), v.size(), Device::Cpu);
  CHECK(ops::all_finite(view));
  v[36] = std::numeric_limits<float>::max();
  CHECK(ops::all_finite(view));
  for (size_t pos : {size_t{0}, size_t{9}, size_t{36}}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      auto w = v;
      w[pos] = bad;
      CHECK_FALSE(ops::all_finite(ConstVecView(w.data(), w.size(), Device::Cpu)));
    }
  }
}

TEST_CASE("ops reject views of different sizes") {
  Vec a(4), b(5);
  CHECK_THROWS_AS(ops::copy(a.view(), b.view()), RuntimeError);
  CHECK_THROWS_AS(ops::axpy(a.view(), 1.0f, b.view()), RuntimeError);
  CHECK_THROWS_AS(ops::dot(a.view(), b.view()), RuntimeError);
  CHECK_THROWS_AS(ops::sub(a.view(), a.view(), b.view()), RuntimeError);
}

// The server's mean and the all-reduce's weighted sum (engine/ops.hpp): one streaming pass over up
// to 8 inputs at a time must give the bits of the element-wise ops applied one input at a time, for
// any number of inputs (across the 8-input groups) and any length (vector body and tail).
TEST_CASE("sum_scaled and weighted_sum give bitwise the bits of copy, add/axpy and scale, one input at a time") {
  uint64_t state = 12345;
  auto next = [&] {  // values of mixed magnitude: a different order of the additions would show
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>(state >> 11) / 9007199254740992.0;
    return static_cast<float>((u - 0.5) * std::pow(10.0, static_cast<int>(state % 7) - 3));
  };
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{33}, size_t{1000}, size_t{4099}}) {
    for (size_t count : {size_t{1}, size_t{2}, size_t{3}, size_t{8}, size_t{9}, size_t{16}, size_t{17}, size_t{20}}) {
      CAPTURE(n);
      CAPTURE(count);
      std::vector<Vec> in;
      std::vector<ConstVecView> xs;
      std::vector<float> w;
      for (size_t k = 0; k < count; ++k) {
        in.emplace_back(n);
        for (float& v : in.back().view().host()) v = next();
        w.push_back(next() * 3.0f);
      }
      for (const auto& v : in) xs.push_back(v.view());
      const float scale = 1.0f / static_cast<float>(count);

      Vec ref(n), got(n);
      ops::copy(ref.view(), xs[0]);
      for (size_t k = 1; k < count; ++k) ops::add(ref.view(), xs[k]);
      ops::scale(ref.view(), scale);
      ops::sum_scaled(got.view(), xs, scale);
      CHECK((n == 0 || std::memcmp(ref.view().ptr, got.view().ptr, n * sizeof(float)) == 0));  // (memcmp of null: UB)

      Vec wref(n), wgot(n);
      for (size_t i = 0; i < n; ++i) wref.view().host()[i] = w[0] * xs[0].ptr[i];
      for (size_t k = 1; k < count; ++k) ops::axpy(wref.view(), w[k], xs[k]);
      ops::weighted_sum(wgot.view(), xs, w);
      CHECK((n == 0 || std::memcmp(wref.view().ptr, wgot.view().ptr, n * sizeof(float)) == 0));
    }
  }
  Vec a(8), b(8);
  CHECK_THROWS_AS(ops::sum_scaled(a.view(), {a.view(), b.view()}, 0.5f), RuntimeError);  // output overlaps an input
  CHECK_THROWS_AS(ops::weighted_sum(a.view(), {b.view()}, {1.0f, 2.0f}), RuntimeError);  // one weight per input
  CHECK_THROWS_AS(ops::sum_scaled(a.view(), {}, 1.0f), RuntimeError);
}

}  // namespace test_vec_ops_cpp
