// The cuda backend's memory, vector ops, SGD update, GEMM and loss against the host code.
// Every test case but the first skips (exit code 77 under ctest) without a usable CUDA device:
// see test_cuda_common.hpp. Layers and models: test_cuda_layers.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/layers.hpp"
#include "engine/ops.hpp"
#include "engine/optim.hpp"
#include "helpers.hpp"
#include "test_cuda_common.hpp"
#if DTSIM_HAVE_CUDA
#include "engine/cuda/common.hpp"  // cublas(): the lazily opened cuBLAS
#endif

namespace test_cuda_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;
using test::to_device;
using test::to_host;

TEST_CASE("cuda: a build or machine without it says why, and device 'cuda' is refused cleanly") {
  // Runs everywhere (never skips): what users see without CUDA.
  if (!cuda::built()) {
    CHECK_FALSE(cuda::available());
    CHECK(cuda::unavailable_reason() == "this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
    CHECK_THROWS_AS(Vec(4, Device::Cuda), RuntimeError);
    try {
      compute_backend(Device::Cuda);
      FAIL("no error");
    } catch (const InputError& e) {
      CHECK(std::string(e.what()) ==
            "compute.device: this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
    }
  } else if (!cuda::available()) {
    CHECK_FALSE(cuda::unavailable_reason().empty());
    CHECK_THROWS_AS(Vec(4, Device::Cuda), RuntimeError);
    CHECK_THROWS_AS(cuda::device_description(), RuntimeError);
    try {
      compute_backend(Device::Cuda);
      FAIL("no error");
    } catch (const InputError& e) {
      CHECK(std::string(e.what()).rfind("compute.device: no usable CUDA device: ", 0) == 0);
    }
  } else {
    CHECK(cuda::unavailable_reason().empty());
    CHECK(compute_backend(Device::Cuda) == Backend::Cuda);
    const std::string d = cuda::device_description();
    MESSAGE("CUDA device: " << d);
    CHECK(d.find("sm_") != std::string::npos);
  }
  CHECK(std::string(backend_name(Backend::Cuda)) == "cuda");
  CHECK(compute_backend(Device::Cpu) == host_backend(Device::Cpu));
  CHECK(compute_backend(Device::Reference) == Backend::Reference);
}

#if DTSIM_HAVE_CUDA
TEST_CASE("cuda: cuBLAS is opened on first use with every entry point the context calls (no device needed)") {
  const cuda::Cublas& b = cuda::cublas();
  CHECK(static_cast<bool>(b.create));
  CHECK(static_cast<bool>(b.set_stream));
  CHECK(static_cast<bool>(b.set_math_mode));
  CHECK(static_cast<bool>(b.set_atomics_mode));
  CHECK(static_cast<bool>(b.set_pointer_mode));
  CHECK(static_cast<bool>(b.sgemm));
  CHECK(std::string(b.status_name(CUBLAS_STATUS_NOT_INITIALIZED)) == "CUBLAS_STATUS_NOT_INITIALIZED");
  CHECK_FALSE(std::string(b.status_string(CUBLAS_STATUS_NOT_INITIALIZED)).empty());
  CHECK(&cuda::cublas() == &b);  // opened once
}
#endif

TEST_CASE("cuda: device Vecs are zeroed (also when reused), deep-cloned, moved, copied every way") {
  DTSIM_REQUIRE_CUDA();
  for (size_t n : {size_t{1}, size_t{5}, size_t{1000}, size_t{(1 << 20) + 3}}) {
    CAPTURE(n);
    {
      Vec v(n, Device::Cuda);
      CHECK(v.device() == Device::Cuda);
      ops::fill(v.view(), 7.0f);  // then freed into the allocator's cache...
    }
    Vec w(n, Device::Cuda);  // ...and most likely handed out again: must be zeroed anyway
    for (float x : to_host(w)) REQUIRE(x == 0.0f);
    const auto h = test::random_floats(n, 3);
    Vec a = to_device(h);
    Vec c = a.clone();
    CHECK(c.data() != a.data());
    CHECK(c.device() == Device::Cuda);
    ops::fill(a.view(), 1.0f);
    CHECK(test::bitwise_equal(to_host(c), h));
    Vec m = std::move(c);
    CHECK(c.empty());  // NOLINT(bugprone-use-after-move)
    CHECK(test::bitwise_equal(to_host(m), h));
    // host -> device -> device (sub-range) -> host
    Vec d(n, Device::Cuda);
    ops::copy(d.view(), m.view());
    Vec back(n, Device::Cpu);
    ops::copy(back.view(), d.view());
    CHECK(test::bitwise_equal(std::vector<float>(back.data(), back.data() + n), h));
    if (n > 4) {
      Vec part(n - 2, Device::Cuda);
      ops::copy(part.view(), d.view(1, n - 2));
      const auto p = to_host(part);
      CHECK(test::bitwise_equal(p, std::vector<float>(h.begin() + 1, h.end() - 1)));
    }
  }
  Vec e(0, Device::Cuda);
  CHECK(e.empty());
}

TEST_CASE("cuda: element-wise ops are bitwise equal to the host ops, reductions agree and repeat exactly") {
  DTSIM_REQUIRE_CUDA();
  for (size_t n : {size_t{1}, size_t{7}, size_t{256}, size_t{1031}, size_t{65536 * 3 + 5}}) {
    CAPTURE(n);
    const auto xs = test::random_floats(n, 1, -3.0f, 3.0f);
    const auto ys = test::random_floats(n, 2, -3.0f, 3.0f);
    Vec hx(n), hy(n), hout(n);
    ops::copy(hx.view(), ConstVecView(xs.data(), n, Device::Cpu));
    ops::copy(hy.view(), ConstVecView(ys.data(), n, Device::Cpu));
    Vec dx = to_device(xs), dy = to_device(ys), dout(n, Device::Cuda);
    auto same = [&](const Vec& h, const Vec& d) {
      return test::bitwise_equal(std::vector<float>(h.data(), h.data() + h.size()), to_host(d));
    };

    ops::axpy(hy.view(), 0.37f, hx.view());
    ops::axpy(dy.view(), 0.37f, dx.view());
    CHECK(same(hy, dy));
    ops::axpby(hy.view(), -1.25f, hx.view(), 0.8f);
    ops::axpby(dy.view(), -1.25f, dx.view(), 0.8f);
    CHECK(same(hy, dy));
    ops::scale(hy.view(), 1.0f / 3.0f);
    ops::scale(dy.view(), 1.0f / 3.0f);
    CHECK(same(hy, dy));
    ops::sub(hout.view(), hx.view(), hy.view());
    ops::sub(dout.view(), dx.view(), dy.view());
    CHECK(same(hout, dout));
    ops::add(hout.view(), hy.view());
    ops::add(dout.view(), dy.view());
    CHECK(same(hout, dout));

    const double hd = ops::dot(hx.view(), hy.view()), dd = ops::dot(dx.view(), dy.view());
    CHECK(dd == doctest::Approx(hd).epsilon(1e-12));
    CHECK(ops::dot(dx.view(), dy.view()) == dd);  // bitwise repeatable
    const double hs = ops::sum_squares(hx.view()), ds = ops::sum_squares(dx.view());
    CHECK(ds == doctest::Approx(hs).epsilon(1e-12));
    CHECK(ops::sum_squares(dx.view()) == ds);
    CHECK(ops::all_finite(dx.view()));

    ops::fill(dout.view(), -2.5f);
    for (float v : to_host(dout)) REQUIRE(v == -2.5f);
  }
  // all_finite finds one bad value anywhere, also in a sub-view
  const size_t n = 100003;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()})
    for (size_t at : {size_t{0}, size_t{4097}, n - 1}) {
      auto h = test::random_floats(n, 9);
      h[at] = bad;
      Vec d = to_device(h);
      CHECK_FALSE(ops::all_finite(d.view()));
      if (at > 0) CHECK(ops::all_finite(d.view(0, at)));
    }
  // Mixing a host and a device buffer is an error, not a silent host read.
  Vec h(4), d(4, Device::Cuda);
  CHECK_THROWS_AS(ops::axpy(d.view(), 1.0f, h.view()), RuntimeError);
  CHECK_THROWS_AS(ops::add(h.view(), d.view()), RuntimeError);
  Vec d5(5, Device::Cuda);
  CHECK_THROWS_AS(ops::add(d5.view(), d.view()), RuntimeError);
  CHECK_THROWS_AS(ops::copy(d5.view(), h.view()), RuntimeError);
}

TEST_CASE("cuda: Sgd on device is bitwise the host Sgd (momentum, weight decay, nesterov)") {
  DTSIM_REQUIRE_CUDA();
  const size_t n = 4099;
  for (const SgdConfig& cfg : {SgdConfig{0.1, 0.0, 0.0, false}, SgdConfig{0.05, 0.0, 5e-4, false},
                              SgdConfig{0.05, 0.9, 5e-4, false}, SgdConfig{0.02, 0.9, 1e-4, true},
                              SgdConfig{0.1, 0.5, 0.0, true}}) {
    CAPTURE(cfg.momentum);
    CAPTURE(cfg.weight_decay);
    CAPTURE(cfg.nesterov);
    const auto w0 = test::random_floats(n, 11);
    Vec hw(n);
    ops::copy(hw.view(), ConstVecView(w0.data(), n, Device::Cpu));
    Vec dw = to_device(w0);
    Sgd host(cfg, n, Device::Cpu);
    Sgd dev(cfg, n, Device::Cuda);
    for (int step = 0; step < 4; ++step) {
      const auto g = test::random_floats(n, 100 + static_cast<uint64_t>(step));
      Vec hg(n);
      ops::copy(hg.view(), ConstVecView(g.data(), n, Device::Cpu));
      Vec dg = to_device(g);
      const double lr = step == 2 ? 0.3 : cfg.lr;
      host.step(hw.view(), hg.view(), lr);
      dev.step(dw.view(), dg.view(), lr);
      REQUIRE(test::bitwise_equal(std::vector<float>(hw.data(), hw.data() + n), to_host(dw)));
      if (cfg.momentum != 0.0) {
        CHECK(dev.momentum_buffer().device() == Device::Cuda);
        const Vec& hv = host.momentum_buffer();
        REQUIRE(test::bitwise_equal(std::vector<float>(hv.data(), hv.data() + n), to_host(dev.momentum_buffer())));
      }
    }
  }
  // An optimizer made for the host follows device weights (its state moves to the device).
  const auto w0 = test::random_floats(8, 1);
  Vec dw = to_device(w0), dg = to_device(test::random_floats(8, 2));
  Sgd opt(SgdConfig{0.1, 0.9, 0.0, false}, 8, Device::Cpu);
  opt.step(dw.view(), dg.view());
  CHECK(opt.momentum_buffer().device() == Device::Cuda);
  CHECK(test::bitwise_equal(to_host(opt.momentum_buffer()), to_host(dg)));
}

namespace {

// C = alpha op(A) op(B) + beta C in double, row-major with strides.
void gemm_oracle(bool ta, bool tb, size_t m, size_t n, size_t k, double alpha, const std::vector<float>& a, size_t lda,
                 const std::vector<float>& b, size_t ldb, double beta, std::vector<float>& c, size_t ldc) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t p = 0; p < k; ++p)
        s += static_cast<double>(ta ? a[p * lda + i] : a[i * lda + p]) *
             static_cast<double>(tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = static_cast<float>(alpha * s + (beta == 0.0 ? 0.0 : beta * c[i * ldc + j]));
    }
}

void check_cuda_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, float beta) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  CAPTURE(beta);
  const size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  const auto a = test::random_floats((ta ? k : m) * lda, 21);
  const auto b = test::random_floats((tb ? n : k) * ldb, 22);
  auto c = test::random_floats(m * ldc, 23);
  if (beta == 0.0f)
    for (size_t i = 0; i < c.size(); i += 3) c[i] = std::numeric_limits<float>::quiet_NaN();  // beta 0: not read
  Vec da = to_device(a), db = to_device(b), dc = to_device(c);
  gemm(Backend::Cuda, ta, tb, m, n, k, alpha, da.data(), lda, db.data(), ldb, beta, dc.data(), ldc);
  gemm_oracle(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  const auto got = to_host(dc);
  double num = 0, den = 0;
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      num = std::max(num, std::abs(static_cast<double>(got[i * ldc + j]) - c[i * ldc + j]));
      den = std::max(den, std::abs(static_cast<double>(c[i * ldc + j])));
    }
  CHECK(num <= 1e-5 * std::max(den, 1.0));
  for (size_t i = 0; i < m; ++i)  // the padding between rows is untouched
    for (size_t j = n; j < ldc; ++j) CHECK(test::bitwise_equal({got[i * ldc + j]}, {c[i * ldc + j]}));
}

}  // namespace

TEST_CASE("cuda: cuBLAS gemm matches a double oracle for every transpose, stride and beta") {
  DTSIM_REQUIRE_CUDA();
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_cuda_gemm(ta, tb, 7, 13, 5, 1.0f, 0.0f);
      check_cuda_gemm(ta, tb, 33, 17, 65, 0.5f, 0.25f);
      check_cuda_gemm(ta, tb, 4, 1, 9, 1.0f, 1.0f);
      check_cuda_gemm(ta, tb, 128, 256, 784, 1.0f, 0.0f);
    }
}

TEST_CASE("cuda: softmax cross-entropy matches the host: loss, gradient, hits, ties, bad labels") {
  DTSIM_REQUIRE_CUDA();
  for (size_t classes : {size_t{2}, size_t{10}, size_t{33}, size_t{100}})
    for (size_t n : {size_t{1}, size_t{64}, size_t{1000}}) {
      CAPTURE(classes);
      CAPTURE(n);
      auto logits = test::random_floats(n * classes, 31, -8.0f, 8.0f);
      for (size_t j = 0; j < classes; ++j) logits[j] = 1.5f;  // sample 0: all tied, argmax = 0
      std::vector<int32_t> labels(n);
      for (size_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 7 + 3) % classes);
      labels[0] = 0;
      std::vector<float> hgrad(n * classes);
      size_t hcorrect = 5;
      const double hloss = softmax_cross_entropy(logits.data(), labels.data(), n, classes, hgrad.data(), &hcorrect);
      Vec dlogits = to_device(logits), dgrad(n * classes, Device::Cuda);
      size_t dcorrect = 5;
      const double dloss =
          cuda::softmax_cross_entropy(dlogits.data(), labels.data(), n, classes, dgrad.data(), &dcorrect);
      CHECK(dloss == doctest::Approx(hloss).epsilon(1e-12));
      CHECK(dcorrect == hcorrect);
      CHECK(test::max_rel_diff(to_host(dgrad).data(), hgrad.data(), n * classes) < 1e-6);
      // Without a gradient: same loss, bitwise repeatable.
      size_t c2 = 0;
      CHECK(cuda::softmax_cross_entropy(dlogits.data(), labels.data(), n, classes, nullptr, &c2) == dloss);
      CHECK(c2 + 5 == dcorrect);
    }
  Vec d(20, Device::Cuda);
  std::vector<int32_t> bad{0, 10};
  CHECK_THROWS_AS(cuda::softmax_cross_entropy(d.data(), bad.data(), 2, 10, nullptr, nullptr), RuntimeError);
  bad[1] = -1;
  CHECK_THROWS_AS(cuda::softmax_cross_entropy(d.data(), bad.data(), 2, 10, nullptr, nullptr), RuntimeError);
}

}  // namespace test_cuda_cpp
