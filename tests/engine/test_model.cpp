#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_model_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

// ------------------------------------------------------------ a double-precision MLP oracle
// Independent of the engine: same parameter layout (per Linear: W[out][in] row-major, then b),
// ReLU between Linears, mean softmax cross-entropy.
struct DoubleMlp {
  std::vector<size_t> widths;  // input, hidden..., classes

  size_t num_params() const {
    size_t n = 0;
    for (size_t l = 0; l + 1 < widths.size(); ++l) n += widths[l + 1] * widths[l] + widths[l + 1];
    return n;
  }

  // Mean loss; when grad is non-null, d(loss)/d(params). min_abs_pre: smallest |pre-activation|
  // of a hidden unit (how far the inputs are from a ReLU kink).
  double loss(const std::vector<double>& p, const std::vector<float>& x, const std::vector<int32_t>& y,
              std::vector<double>* grad = nullptr, double* min_abs_pre = nullptr) const {
    const size_t n = y.size(), layers = widths.size() - 1;
    std::vector<std::vector<double>> acts(layers + 1);
    acts[0].assign(x.begin(), x.end());
    std::vector<size_t> offs;
    size_t off = 0;
    double min_pre = std::numeric_limits<double>::infinity();
    for (size_t l = 0; l < layers; ++l) {
      offs.push_back(off);
      const size_t in = widths[l], out = widths[l + 1];
      const double* w = p.data() + off;
      const double* b = w + out * in;
      off += out * in + out;
      acts[l + 1].assign(n * out, 0.0);
      for (size_t s = 0; s < n; ++s)
        for (size_t o = 0; o < out; ++o) {
          double z = b[o];
          for (size_t i = 0; i < in; ++i) z += w[o * in + i] * acts[l][s * in + i];
          if (l + 1 < layers) {
            min_pre = std::min(min_pre, std::abs(z));
            z = z > 0 ? z : 0;
          }
          acts[l + 1][s * out + o] = z;
        }
    }
    if (min_abs_pre) *min_abs_pre = min_pre;
    const size_t k = widths.back();
    double total = 0;
    std::vector<double> d(n * k);
    for (size_t s = 0; s < n; ++s) {
      const double* z = &acts[layers][s * k];
      double m = z[0];
      for (size_t j = 1; j < k; ++j) m = std::max(m, z[j]);
      double sum = 0;
      for (size_t j = 0; j < k; ++j) sum += std::exp(z[j] - m);
      total += std::log(sum) + m - z[y[s]];
      for (size_t j = 0; j < k; ++j)
        d[s * k + j] = (std::exp(z[j] - m) / sum - (static_cast<int32_t>(j) == y[s] ? 1.0 : 0.0)) / double(n);
    }
    if (grad) {
      grad->assign(p.size(), 0.0);
      for (size_t l = layers; l-- > 0;) {
        const size_t in = widths[l], out = widths[l + 1];
        const double* w = p.data() + offs[l];
        double* gw = grad->data() + offs[l];
        double* gb = gw + out * in;
        std::vector<double> dx(n * in, 0.0);
        for (size_t s = 0; s < n; ++s)
          for (size_t o = 0; o < out; ++o) {
            const double g = d[s * out + o];
            gb[o] += g;
            for (size_t i = 0; i < in; ++i) {
              gw[o * in + i] += g * acts[l][s * in + i];
              dx[s * in + i] += g * w[o * in + i];
            }
          }
        if (l > 0)  // through the ReLU that produced acts[l]
          for (size_t i = 0; i < dx.size(); ++i) dx[i] = acts[l][i] > 0 ? dx[i] : 0.0;
        d = std::move(dx);
      }
    }
    return total / double(n);
  }
};

std::vector<double> to_double(const Vec& v) { return std::vector<double>(v.data(), v.data() + v.size()); }

void check_gemm(Backend be, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, float beta) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  // Padded leading dimensions, to catch any lda/ldb/ldc mix-up.
  const size_t a_rows = ta ? k : m, a_cols = ta ? m : k, lda = a_cols + 3;
  const size_t b_rows = tb ? n : k, b_cols = tb ? k : n, ldb = b_cols + 5;
  const size_t ldc = n + 2;
  const auto A = test::random_floats(a_rows * lda, 11);
  const auto B = test::random_floats(b_rows * ldb, 12);
  auto C0 = test::random_floats(m * ldc, 13);
  if (beta == 0.0f)  // beta == 0: C must not be read (BLAS), so garbage must not leak through
    for (auto& v : C0) v = std::numeric_limits<float>::quiet_NaN();
  // Double-precision oracle.
  std::vector<double> want(m * n);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t kk = 0; kk < k; ++kk) {
        const double a = ta ? A[kk * lda + i] : A[i * lda + kk];
        const double b = tb ? B[j * ldb + kk] : B[kk * ldb + j];
        s += a * b;
      }
      want[i * n + j] = alpha * s + (beta == 0.0f ? 0.0 : beta * double(C0[i * ldc + j]));
    }
  auto C = C0;
  gemm(be, ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  double err = 0, scale = 0;
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      err = std::max(err, std::abs(double(C[i * ldc + j]) - want[i * n + j]));
      scale = std::max(scale, std::abs(want[i * n + j]));
    }
    for (size_t j = n; j < ldc; ++j)  // padding untouched
      REQUIRE((std::isnan(C0[i * ldc + j]) ? std::isnan(C[i * ldc + j]) : C[i * ldc + j] == C0[i * ldc + j]));
  }
  CHECK(err <= 1e-5 * std::max(scale, 1.0));
}

}  // namespace

TEST_CASE("gemm: reference and oneDNN match a double oracle for every transpose, stride and beta") {
  std::vector<Backend> backends{Backend::Reference};
  if (onednn_available()) backends.push_back(Backend::OneDnn);
  else MESSAGE("oneDNN not built: only the reference GEMM is checked");
  for (Backend be : backends) {
    CAPTURE(std::string(backend_name(be)));
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_gemm(be, ta, tb, 7, 13, 5, 1.0f, 0.0f);
        check_gemm(be, ta, tb, 33, 17, 65, 0.5f, 0.25f);
        check_gemm(be, ta, tb, 4, 1, 9, 1.0f, 1.0f);
        check_gemm(be, ta, tb, 64, 256, 100, 1.0f, 0.0f);
      }
  }
}

TEST_CASE("MLP + softmax cross-entropy gradients match central finite differences") {
  // Tiny shapes: 2x3 images (through Flatten), hidden [5, 4], 3 classes, batch 6.
  const SampleShape shape{1, 2, 3};
  const DoubleMlp ref{{6, 5, 4, 3}};
  for (Device d : {Device::Reference, Device::Cpu}) {
    CAPTURE(std::string(device_name(d)));
    auto model = test::make_mlp({5, 4}, shape, 3, d);
    REQUIRE(model->num_params() == ref.num_params());
    Vec params(model->num_params()), grads(model->num_params());
    model->init_params(params.view(), 3);
    const Batch batch = test::random_batch(6, shape, 3, 21);
    const float loss = model->forward_backward(params.view(), batch, grads.view());

    const std::vector<double> p = to_double(params);
    std::vector<double> analytic;
    double min_pre = 0;
    const double ref_loss = ref.loss(p, batch.x, batch.y, &analytic, &min_pre);
    REQUIRE(min_pre > 1e-4);  // no ReLU kink within the finite-difference step
    CHECK(std::abs(double(loss) - ref_loss) <= 1e-6 * std::max(1.0, ref_loss));

    const double eps = 1e-6;
    double worst = 0, worst_oracle = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      auto q = p;
      q[i] = p[i] + eps;
      const double up = ref.loss(q, batch.x, batch.y);
      q[i] = p[i] - eps;
      const double down = ref.loss(q, batch.x, batch.y);
      const double fd = (up - down) / (2 * eps);
      const double tol = 1e-5 + 1e-3 * std::abs(fd);
      CAPTURE(i);
      CHECK(std::abs(double(grads.data()[i]) - fd) <= tol);
      worst = std::max(worst, std::abs(double(grads.data()[i]) - fd));
      worst_oracle = std::max(worst_oracle, std::abs(analytic[i] - fd));
    }
    CHECK(worst_oracle < 1e-7);  // the oracle's own backward agrees with its finite differences
    MESSAGE(std::string(device_name(d)) << ": max |grad - finite difference| = " << worst);
    double gnorm = 0;
    for (double g : analytic) gnorm += g * g;
    CHECK(gnorm > 1e-6);  // the check is not vacuous
  }
}

TEST_CASE("cpu (oneDNN) and reference forward_backward agree to 1e-5 relative on MLP 784-256-128-10") {
  if (!onednn_available()) MESSAGE("oneDNN not built: cpu is the reference backend here");
  const SampleShape shape{1, 28, 28};
  auto ref = test::make_mlp({256, 128}, shape, 10, Device::Reference);
  auto cpu = test::make_mlp({256, 128}, shape, 10, Device::Cpu);
  Vec params(ref->num_params()), g_ref(ref->num_params()), g_cpu(ref->num_params());
  ref->init_params(params.view(), 5);
  const Batch batch = test::random_batch(32, shape, 10, 99);
  const float l_ref = ref->forward_backward(params.view(), batch, g_ref.view());
  const float l_cpu = cpu->forward_backward(params.view(), batch, g_cpu.view());
  CHECK(std::abs(l_ref - l_cpu) <= 1e-5f * std::abs(l_ref));
  for (const ParamTensor& t : ref->param_tensors()) {
    CAPTURE(t.name);
    CHECK(test::max_rel_diff(g_cpu.data() + t.offset, g_ref.data() + t.offset, t.size) <= 1e-5);
  }
  Split split;
  split.x = batch.x;
  split.y = batch.y;
  const EvalResult er = ref->evaluate(params.view(), split, 0, 32);
  const EvalResult ec = cpu->evaluate(params.view(), split, 0, 32);
  CHECK(er.correct == ec.correct);
  CHECK(er.loss() == dtsim_test::Rel(ec.loss()).epsilon(1e-5));
  CHECK(er.loss() == dtsim_test::Rel(l_ref).epsilon(1e-5));
}

TEST_CASE("MLP layout: parameter tensors, counts, FLOPs and PyTorch-style init") {
  auto m = test::make_mlp({256, 128}, SampleShape{1, 28, 28}, 10, Device::Cpu);
  CHECK(m->kind() == "mlp");
  CHECK(m->device() == Device::Cpu);
  const size_t expect = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10;
  CHECK(m->num_params() == expect);
  CHECK(m->flops_per_sample() == 3.0 * 2.0 * (784.0 * 256 + 256.0 * 128 + 128.0 * 10));
  const auto ts = m->param_tensors();
  const std::vector<std::string> names{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"};
  const std::vector<size_t> sizes{784 * 256, 256, 256 * 128, 128, 128 * 10, 10};
  REQUIRE(ts.size() == names.size());
  size_t off = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    CHECK(ts[i].name == names[i]);
    CHECK(ts[i].size == sizes[i]);
    CHECK(ts[i].offset == off);
    off += ts[i].size;
  }
  CHECK(off == m->num_params());

  Vec a(m->num_params()), b(m->num_params()), c(m->num_params());
  m->init_params(a.view(), 1);
  m->init_params(b.view(), 1);
  m->init_params(c.view(), 2);
  CHECK(std::equal(a.data(), a.data() + a.size(), b.data()));
  CHECK_FALSE(std::equal(a.data(), a.data() + a.size(), c.data()));
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases: bounded, mean ~0, var bound^2/3.
  const std::vector<double> fan_in{784, 784, 256, 256, 128, 128};
  for (size_t i = 0; i < ts.size(); ++i) {
    CAPTURE(ts[i].name);
    const double bound = 1.0 / std::sqrt(fan_in[i]);
    double sum = 0, sq = 0, mx = 0;
    for (size_t j = 0; j < ts[i].size; ++j) {
      const double v = a.data()[ts[i].offset + j];
      sum += v;
      sq += v * v;
      mx = std::max(mx, std::abs(v));
    }
    const double n = double(ts[i].size);
    CHECK(mx <= bound);
    if (ts[i].size >= 128) {
      CHECK(mx > 0.9 * bound);
      CHECK(std::abs(sum / n) < 4 * bound / std::sqrt(3 * n));
      CHECK(sq / n == dtsim_test::Rel(bound * bound / 3).epsilon(0.25));
    }
  }
  // model_info agrees without building buffers.
  const json spec = {{"kind", "mlp"}, {"hidden", {256, 128}}};
  ObjectReader r(spec, JsonOrigin{"t.json", "model"});
  const ModelInfo info = model_info(r, SampleShape{1, 28, 28}, 10);
  r.finish();
  CHECK(info.num_params == m->num_params());
  CHECK(info.flops_per_sample == m->flops_per_sample());
}

TEST_CASE("make_model: defaults, unknown kinds with suggestions, bad options and devices") {
  {
    const json spec = {{"kind", "mlp"}};
    json resolved;
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"}, &resolved);
    auto m = make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{});
    r.finish();
    CHECK(m->num_params() == 3 * 256 + 256 + 256 * 128 + 128 + 128 * 2 + 2);  // hidden defaults to [256,128]
    CHECK(resolved.dump().find("256") != std::string::npos);
  }
  {
    const json spec = {{"kind", "mlp"}, {"hidden", json::array()}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    auto m = make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{});
    CHECK(m->num_params() == 3 * 2 + 2);  // logistic regression
  }
  {
    const json spec = {{"kind", "mlpp"}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    try {
      make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{});
      FAIL("no error for an unknown kind");
    } catch (const InputError& e) {
      const std::string what = e.what();
      CHECK(e.file() == "cfg.json");
      CHECK(e.path() == "model.kind");
      CHECK(what.find("did you mean 'mlp'") != std::string::npos);
    }
  }
  {
    const json spec = {{"kind", "mlp"}, {"hidden", {16, 0}}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    CHECK_THROWS_AS(make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{}), InputError);
  }
  if (!cuda::available()) {  // the cuda device itself: tests/engine/test_cuda*.cpp
    const json spec = {{"kind", "mlp"}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    try {
      make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{Device::Cuda, 1});
      FAIL("no error for the cuda device");
    } catch (const InputError& e) {
      CHECK(e.path() == "compute.device");
      CHECK(e.reason().find(cuda::built() ? "no usable CUDA device" : "built without CUDA") != std::string::npos);
    }
  }
  {
    const json spec = {{"kind", "mlp"}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    CHECK_THROWS_AS(make_model(r, SampleShape{3, 1, 1}, 2, ComputeOptions{Device::Cpu, 0}), InputError);
  }
}

TEST_CASE("forward_backward: any batch size, workspace reuse, determinism and evaluate consistency") {
  const SampleShape shape{12, 1, 1};
  auto m = test::make_mlp({16, 8}, shape, 4, Device::Cpu);
  Vec params(m->num_params()), g1(m->num_params()), g2(m->num_params());
  m->init_params(params.view(), 8);
  const Batch b32 = test::random_batch(32, shape, 4, 1);
  const float l1 = m->forward_backward(params.view(), b32, g1.view());
  for (size_t n : {size_t{1}, size_t{7}, size_t{100}, size_t{3}}) {  // grow and shrink
    const Batch b = test::random_batch(n, shape, 4, 100 + n);
    const float l = m->forward_backward(params.view(), b, g2.view());
    CHECK(std::isfinite(l));
    CHECK(ops::all_finite(g2.view()));
  }
  ops::fill(g2.view(), 123.0f);  // grads are overwritten, not accumulated
  const float l2 = m->forward_backward(params.view(), b32, g2.view());
  CHECK(l1 == l2);  // bitwise
  CHECK(std::equal(g1.data(), g1.data() + g1.size(), g2.data()));

  // A fresh model instance gives the same bits.
  auto m2 = test::make_mlp({16, 8}, shape, 4, Device::Cpu);
  const float l3 = m2->forward_backward(params.view(), b32, g2.view());
  CHECK(l3 == l1);
  CHECK(std::equal(g1.data(), g1.data() + g1.size(), g2.data()));

  // The gradient of a batch is the mean of its halves' gradients (mean loss over the batch).
  Batch lo, hi;
  lo.shape = hi.shape = shape;
  lo.x.assign(b32.x.begin(), b32.x.begin() + 16 * 12);
  hi.x.assign(b32.x.begin() + 16 * 12, b32.x.end());
  lo.y.assign(b32.y.begin(), b32.y.begin() + 16);
  hi.y.assign(b32.y.begin() + 16, b32.y.end());
  Vec gl(m->num_params()), gh(m->num_params());
  const float ll = m->forward_backward(params.view(), lo, gl.view());
  const float lh = m->forward_backward(params.view(), hi, gh.view());
  CHECK((ll + lh) / 2 == dtsim_test::Rel(l1).epsilon(1e-5));
  for (size_t i = 0; i < g1.size(); ++i)
    REQUIRE(std::abs((gl.data()[i] + gh.data()[i]) / 2 - g1.data()[i]) <= 1e-5f);

  // evaluate works in chunks over [begin, begin+n) and agrees with forward_backward's loss.
  Split split;
  const Batch big = test::random_batch(2500, shape, 4, 7);
  split.x = big.x;
  split.y = big.y;
  const EvalResult all = m->evaluate(params.view(), split, 0, 2500);
  const EvalResult a = m->evaluate(params.view(), split, 0, 1234);
  const EvalResult b = m->evaluate(params.view(), split, 1234, 1266);
  CHECK(all.count == 2500);
  CHECK(all.correct == a.correct + b.correct);
  CHECK(all.loss_sum == dtsim_test::Rel(a.loss_sum + b.loss_sum).epsilon(1e-12));
  Batch head;
  head.shape = shape;
  head.x.assign(big.x.begin() + 1234 * 12, big.x.begin() + 1334 * 12);
  head.y.assign(big.y.begin() + 1234, big.y.begin() + 1334);
  const float lhd = m->forward_backward(params.view(), head, g2.view());
  const EvalResult e = m->evaluate(params.view(), split, 1234, 100);
  CHECK(e.loss() == dtsim_test::Rel(lhd).epsilon(1e-6));
  CHECK(e.accuracy() >= 0.0);
  CHECK(e.accuracy() <= 1.0);
  CHECK(m->evaluate(params.view(), split, 2500, 0).count == 0);
  CHECK_THROWS_AS(m->evaluate(params.view(), split, 2000, 501), RuntimeError);

  // Wrong buffer sizes are rejected.
  Vec small(m->num_params() - 1);
  CHECK_THROWS_AS(m->forward_backward(small.view(), b32, g1.view()), RuntimeError);
  Batch bad = b32;
  bad.x.pop_back();
  CHECK_THROWS_AS(m->forward_backward(params.view(), bad, g1.view()), RuntimeError);
  bad = b32;
  bad.y[3] = 4;
  CHECK_THROWS_AS(m->forward_backward(params.view(), bad, g1.view()), RuntimeError);
}

TEST_CASE("two compute threads give the same loss and gradients as one, to rounding") {
  if (!onednn_available()) {
    MESSAGE("oneDNN not built: threads have no effect");
    return;
  }
  const SampleShape shape{1, 28, 28};
  auto m1 = test::make_mlp({256, 128}, shape, 10, Device::Cpu, 1);
  auto m2 = test::make_mlp({256, 128}, shape, 10, Device::Cpu, 2);
  Vec params(m1->num_params()), g1(m1->num_params()), g2(m1->num_params());
  m1->init_params(params.view(), 5);
  const Batch batch = test::random_batch(64, shape, 10, 3);
  const float l1 = m1->forward_backward(params.view(), batch, g1.view());
  const float l2 = m2->forward_backward(params.view(), batch, g2.view());
  CHECK(l1 == dtsim_test::Rel(l2).epsilon(1e-6));
  CHECK(test::max_rel_diff(g2.data(), g1.data(), g1.size()) <= 1e-5);
  set_compute_threads(1);
}

}  // namespace test_model_cpp
