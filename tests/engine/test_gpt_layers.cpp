// The transformer layers (engine/transformer.hpp), each checked three ways, as the CNN layers are
// in test_layers.cpp:
//  1. finite differences in double on tiny shapes against the reference kernels' backward
//     (engine/transformer_ref.hpp, the same templated code the reference backend runs in float);
//  2. the float reference Layer equals those double kernels (parameter wiring, shapes);
//  3. the cpu Layer (dnnl_sgemm + vectorised loops) equals the reference Layer.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/fastmath.hpp"
#include "engine/transformer.hpp"
#include "engine/transformer_ref.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_gpt_layers_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using DVec = std::vector<double>;

DVec random_doubles(size_t n, uint64_t key, double lo = -1, double hi = 1) {
  Rng r(4242, Stream::Algorithm, {key});
  DVec v(n);
  for (double& x : v) x = r.uniform(lo, hi);
  return v;
}
std::vector<float> to_float(const DVec& v) { return std::vector<float>(v.begin(), v.end()); }

using Fwd = std::function<void(const DVec& p, const DVec& x, DVec& y)>;
using Bwd = std::function<void(const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx)>;

// L = sum(r * f(p, x)); dL/dp and dL/dx from `b` against central differences, entry by entry.
void fd_check(const Fwd& f, const Bwd& b, DVec p, DVec x, size_t ny, uint64_t key, bool check_x = true,
              double tol = 1e-6) {
  const DVec r = random_doubles(ny, key + 1000);
  DVec y(ny), dp(p.size()), dx(x.size());
  b(p, x, r, dp, dx);
  auto loss = [&](const DVec& pp, const DVec& xx) {
    f(pp, xx, y);
    double s = 0;
    for (size_t i = 0; i < ny; ++i) s += r[i] * y[i];
    return s;
  };
  const double h = 1e-6;
  size_t checked = 0;
  auto check = [&](DVec& v, const DVec& grad, const char* what, bool is_p) {
    for (size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double lp = is_p ? loss(v, x) : loss(p, v);
      v[i] = keep - h;
      const double lm = is_p ? loss(v, x) : loss(p, v);
      v[i] = keep;
      const double fd = (lp - lm) / (2 * h);
      ++checked;
      if (std::abs(fd - grad[i]) > tol * std::max(1.0, std::abs(grad[i]))) {
        CAPTURE(what);
        CAPTURE(i);
        CAPTURE(fd);
        CAPTURE(grad[i]);
        FAIL_CHECK("finite difference mismatch");
        return;
      }
    }
  };
  check(p, dp, "params", true);
  if (check_x) check(x, dx, "input", false);
  CHECK(checked > 0);
}

double max_abs_rel(const std::vector<float>& got, const DVec& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-30);
}

// The float reference Layer against the double kernels (forward and backward), then the cpu
// Layer against the float reference. `x` is given (token ids for the embedding).
void layer_checks(Layer& l, const DVec& p, const DVec& x, size_t n, const Fwd& f, const Bwd& b, uint64_t key,
                  bool has_dx = true, double tol = 2e-5) {
  CAPTURE(l.name());
  const size_t nx = n * l.in_size(), ny = n * l.out_size();
  REQUIRE(p.size() == l.num_params());
  REQUIRE(x.size() == nx);
  const DVec dyd = random_doubles(ny, key + 7);
  DVec yd(ny), dpd(p.size()), dxd(nx);
  f(p, x, yd);
  b(p, x, dyd, dpd, dxd);
  const auto pf = to_float(p), xf = to_float(x), dy = to_float(dyd);
  std::vector<float> y(ny), dx(nx), dp(p.size());
  l.forward(Backend::Reference, pf.data(), xf.data(), y.data(), n);
  l.backward(Backend::Reference, pf.data(), xf.data(), y.data(), dy.data(), dx.data(), dp.data(), has_dx, n);
  CHECK(max_abs_rel(y, yd) <= 1e-5);
  if (!dp.empty()) CHECK(max_abs_rel(dp, dpd) <= 1e-5);
  if (has_dx) CHECK(max_abs_rel(dx, dxd) <= 1e-5);
  if (!onednn_available()) {
    MESSAGE("oneDNN not built: cpu == reference skipped");
    return;
  }
  std::vector<float> yc(ny, 7.0f), dxc(nx, 7.0f), dpc(p.size(), 7.0f);
  l.forward(Backend::OneDnn, pf.data(), xf.data(), yc.data(), n);
  l.backward(Backend::OneDnn, pf.data(), xf.data(), yc.data(), dy.data(), dxc.data(), dpc.data(), has_dx, n);
  CHECK(test::max_rel_diff(yc.data(), y.data(), ny) <= tol);
  if (!dp.empty()) CHECK(test::max_rel_diff(dpc.data(), dp.data(), dp.size()) <= tol);
  if (has_dx) CHECK(test::max_rel_diff(dxc.data(), dx.data(), nx) <= tol);
}

}  // namespace

TEST_CASE("fast exp and tanh: relative error below 2e-7 on -80..80, tanh within 3e-7") {
  double worst_exp = 0, worst_tanh = 0;
  for (int i = -80000; i <= 80000; ++i) {
    const float x = static_cast<float>(i) * 1e-3f;
    const double want = std::exp(static_cast<double>(x));
    worst_exp = std::max(worst_exp, std::abs(fast::exp(x) - want) / want);
  }
  for (int i = -12000; i <= 12000; ++i) {
    const float u = static_cast<float>(i) * 1e-3f;
    worst_tanh = std::max(worst_tanh, std::abs(fast::tanh(u) - std::tanh(static_cast<double>(u))));
  }
  MESSAGE("fast::exp max relative error ", worst_exp, ", fast::tanh max absolute error ", worst_tanh);
  CHECK(worst_exp < 2e-7);
  CHECK(worst_tanh < 3e-7);
  CHECK(fast::exp(-200.0f) < 1e-37f);
  CHECK(fast::exp(-200.0f) >= 0.0f);
}

TEST_CASE("Embedding: finite differences, float wiring, cpu == reference, bad token ids") {
  const size_t n = 3, len = 4, vocab = 5, block = 6, e = 3;
  DVec tok(n * len);
  for (size_t i = 0; i < tok.size(); ++i) tok[i] = static_cast<double>((i * 7 + 1) % vocab);
  tok[5] = tok[9] = 2;  // a repeated token accumulates
  const std::vector<float> tokf = to_float(tok);
  Fwd f = [&](const DVec& p, const DVec&, DVec& y) {
    ref::embedding_forward(tokf.data(), p.data(), p.data() + vocab * e, y.data(), n, len, e);
  };
  Bwd b = [&](const DVec&, const DVec&, const DVec& dy, DVec& dp, DVec&) {
    ref::embedding_backward(tokf.data(), dy.data(), dp.data(), dp.data() + vocab * e, n, len, e, vocab, block);
  };
  const DVec p = random_doubles((vocab + block) * e, 1);
  fd_check(f, b, p, tok, n * len * e, 1, false);
  Embedding l("transformer", SampleShape{static_cast<int>(len), 1, 1}, vocab, block, e);
  CHECK(l.out_shape().c == 4);
  CHECK(l.out_shape().h == 3);
  CHECK(l.backward_input_flops() == 0);
  layer_checks(l, p, tok, n, f, b, 1, false);
  std::vector<ParamTensor> t;
  l.param_tensors(10, t);
  REQUIRE(t.size() == 2);
  CHECK(t[0].name == "transformer.wte.weight");
  CHECK(t[1].offset == 10 + vocab * e);
  CHECK(t[1].size == block * e);
  std::vector<float> y(len * e);
  for (float bad : {-1.0f, 5.0f, 1.5f, NAN}) {
    std::vector<float> ids{0, 1, bad, 2};
    std::vector<float> pf(l.num_params());
    CHECK_THROWS_AS(l.forward(Backend::Reference, pf.data(), ids.data(), y.data(), 1), RuntimeError);
    CHECK_THROWS_AS(l.forward(Backend::OneDnn, pf.data(), ids.data(), y.data(), 1), RuntimeError);
  }
  CHECK_THROWS_AS(Embedding("e", SampleShape{8, 1, 1}, 5, 7, 3), RuntimeError);  // block < T
}

TEST_CASE("LayerNorm: finite differences, float wiring and cpu == reference") {
  for (size_t e : {5, 16, 37}) {
    CAPTURE(e);
    const size_t n = 2, len = 3, rows = n * len;
    Fwd f = [&](const DVec& p, const DVec& x, DVec& y) {
      ref::layernorm_forward(x.data(), p.data(), p.data() + e, y.data(), rows, e, 1e-5);
    };
    Bwd b = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
      ref::layernorm_backward(x.data(), p.data(), dy.data(), dx.data(), dp.data(), dp.data() + e, rows, e, 1e-5);
    };
    const DVec p = random_doubles(2 * e, 2, 0.5, 1.5), x = random_doubles(rows * e, 3, -2, 2);
    fd_check(f, b, p, x, rows * e, 2);
    LayerNorm l("ln", SampleShape{static_cast<int>(len), static_cast<int>(e), 1});
    CHECK(l.features() == e);
    layer_checks(l, p, x, n, f, b, 2);
  }
}

TEST_CASE("GELU (tanh form): finite differences, float wiring and cpu == reference") {
  const size_t n = 2;
  const SampleShape s{3, 7, 1};
  Fwd f = [&](const DVec&, const DVec& x, DVec& y) { ref::gelu_forward(x.data(), y.data(), x.size()); };
  Bwd b = [&](const DVec&, const DVec& x, const DVec& dy, DVec&, DVec& dx) {
    ref::gelu_backward(x.data(), dy.data(), dx.data(), x.size());
  };
  const DVec x = random_doubles(n * s.size(), 4, -5, 5);
  fd_check(f, b, {}, x, x.size(), 4);
  Gelu l("gelu", s);
  layer_checks(l, {}, x, n, f, b, 4);
  // PyTorch's values: F.gelu(torch.tensor([-3., -1., 0., 0.5, 2.]), approximate='tanh')
  const std::vector<float> in{-3.f, -1.f, 0.f, 0.5f, 2.f};
  const std::vector<double> want{-0.0036373921, -0.1588080094, 0.0, 0.3457140098, 1.9545976941};
  std::vector<float> out(5);
  Gelu g5("g", SampleShape{5, 1, 1});
  // The reference path to a relative 1e-6. The cpu path takes 0.5 x (1 + tanh(u)) in float as
  // PyTorch's and llm.c's kernels do: where tanh(u) is near -1 the sum cancels (x = -3: 1.4e-7 off
  // an output of -0.0036), so it is held to 1e-6 of max(|output|, 1).
  g5.forward(Backend::Reference, nullptr, in.data(), out.data(), 1);
  for (size_t i = 0; i < 5; ++i) CHECK(out[i] == dtsim_test::Rel(want[i]).epsilon(1e-6));
  g5.forward(Backend::OneDnn, nullptr, in.data(), out.data(), 1);
  for (size_t i = 0; i < 5; ++i) CHECK(std::fabs(out[i] - want[i]) <= 1e-6 * std::max(std::fabs(want[i]), 1.0));
}

TEST_CASE("TokenLinear and the tied head: finite differences, float wiring and cpu == reference") {
  const size_t n = 2, len = 3, in = 5, out = 4, rows = n * len;
  {
    Fwd f = [&](const DVec& p, const DVec& x, DVec& y) {
      ref::rows_linear_forward(x.data(), p.data(), p.data() + in * out, y.data(), rows, in, out);
    };
    Bwd b = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
      ref::rows_linear_backward(x.data(), p.data(), dy.data(), dx.data(), dp.data(), dp.data() + in * out, rows, in,
                                out);
    };
    const DVec p = random_doubles(in * out + out, 5), x = random_doubles(rows * in, 6);
    fd_check(f, b, p, x, rows * out, 5);
    TokenLinear l("mlp.c_fc", SampleShape{static_cast<int>(len), static_cast<int>(in), 1}, out);
    CHECK(l.forward_flops() == 2.0 * len * in * out);
    layer_checks(l, p, x, n, f, b, 5);
  }
  {
    const size_t vocab = 6, e = in;
    Embedding emb("transformer", SampleShape{static_cast<int>(len), 1, 1}, vocab, len, e);
    TiedHead head("lm_head", SampleShape{static_cast<int>(len), static_cast<int>(e), 1}, emb);
    CHECK(head.num_params() == 0);
    CHECK(head.tied_to() == &emb);
    CHECK(head.tied_size() == vocab * e);
    CHECK(head.out_shape().h == static_cast<int>(vocab));
    CHECK(head.backward_weight_flops() == head.forward_flops());
    Fwd f = [&](const DVec& p, const DVec& x, DVec& y) {
      ref::rows_linear_forward<double>(x.data(), p.data(), nullptr, y.data(), rows, e, vocab);
    };
    Bwd b = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
      ref::rows_linear_backward<double>(x.data(), p.data(), dy.data(), dx.data(), dp.data(), nullptr, rows, e, vocab);
    };
    const DVec w = random_doubles(vocab * e, 8), x = random_doubles(rows * e, 9);
    fd_check(f, b, w, x, rows * vocab, 8);
    // The head takes the embedding's wte as its parameters (num_params() == 0 for the model).
    const size_t ny = rows * vocab;
    const DVec dyd = random_doubles(ny, 10);
    DVec yd(ny), dwd(w.size()), dxd(x.size());
    f(w, x, yd);
    b(w, x, dyd, dwd, dxd);
    const auto wf = to_float(w), xf = to_float(x), dy = to_float(dyd);
    for (Backend be : {Backend::Reference, Backend::OneDnn}) {
      std::vector<float> y(ny), dx(x.size()), dw(w.size());
      head.forward(be, wf.data(), xf.data(), y.data(), n);
      head.backward(be, wf.data(), xf.data(), y.data(), dy.data(), dx.data(), dw.data(), true, n);
      CHECK(max_abs_rel(y, yd) <= 2e-6);
      CHECK(max_abs_rel(dw, dwd) <= 2e-6);
      CHECK(max_abs_rel(dx, dxd) <= 2e-6);
    }
  }
}

TEST_CASE("CausalSelfAttention: finite differences, float wiring, cpu == reference, causality") {
  struct Case {
    size_t len, e, heads;
  };
  for (const Case c : {Case{4, 6, 2}, Case{5, 8, 1}, Case{7, 12, 3}}) {
    CAPTURE(c.len);
    CAPTURE(c.heads);
    const size_t n = 2, len = c.len, e = c.e, heads = c.heads, d = e / heads, rows = n * len;
    const size_t np = 4 * e * e + 4 * e;
    auto run_fwd = [&](const DVec& p, const DVec& x, DVec& y, DVec* qkv_out, DVec* heads_out) {
      DVec qkv(rows * 3 * e), hv(rows * e);
      ref::rows_linear_forward(x.data(), p.data(), p.data() + 3 * e * e, qkv.data(), rows, e, 3 * e);
      for (size_t s = 0; s < n; ++s)
        ref::attention_core_forward(qkv.data() + s * len * 3 * e, hv.data() + s * len * e, len, heads, d, nullptr);
      const double* wp = p.data() + 3 * e * e + 3 * e;
      ref::rows_linear_forward(hv.data(), wp, wp + e * e, y.data(), rows, e, e);
      if (qkv_out) *qkv_out = qkv;
      if (heads_out) *heads_out = hv;
    };
    Fwd f = [&](const DVec& p, const DVec& x, DVec& y) { run_fwd(p, x, y, nullptr, nullptr); };
    Bwd b = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
      DVec y(rows * e), qkv, hv, dh(rows * e), dqkv(rows * 3 * e);
      run_fwd(p, x, y, &qkv, &hv);
      const double* wp = p.data() + 3 * e * e + 3 * e;
      double* dwp = dp.data() + 3 * e * e + 3 * e;
      ref::rows_linear_backward(hv.data(), wp, dy.data(), dh.data(), dwp, dwp + e * e, rows, e, e);
      for (size_t s = 0; s < n; ++s)
        ref::attention_core_backward(qkv.data() + s * len * 3 * e, dh.data() + s * len * e,
                                     dqkv.data() + s * len * 3 * e, len, heads, d, nullptr);
      ref::rows_linear_backward(x.data(), p.data(), dqkv.data(), dx.data(), dp.data(), dp.data() + 3 * e * e, rows, e,
                                3 * e);
    };
    const DVec p = random_doubles(np, 11, -0.5, 0.5), x = random_doubles(rows * e, 12);
    fd_check(f, b, p, x, rows * e, 11);
    CausalSelfAttention l("attn", SampleShape{static_cast<int>(len), static_cast<int>(e), 1}, static_cast<int>(heads));
    REQUIRE(l.num_params() == np);
    layer_checks(l, p, x, n, f, b, 11);
    // Causality: changing the last position's input leaves every earlier output unchanged.
    auto xc = to_float(x);
    const auto pf = to_float(p);
    std::vector<float> y1(rows * e), y2(rows * e);
    for (Backend be : {Backend::Reference, Backend::OneDnn}) {
      l.forward(be, pf.data(), xc.data(), y1.data(), n);
      auto x2 = xc;
      for (size_t j = 0; j < e; ++j) x2[(len - 1) * e + j] += 1.0f;  // sample 0, position T-1
      l.forward(be, pf.data(), x2.data(), y2.data(), n);
      for (size_t i = 0; i < (len - 1) * e; ++i) CHECK(y1[i] == y2[i]);
      bool changed = false;
      for (size_t j = 0; j < e; ++j) changed |= y1[(len - 1) * e + j] != y2[(len - 1) * e + j];
      CHECK(changed);
    }
  }
  // FLOPs: projections 8 T E^2, the causal core 2 T (T+1) E; backward: inputs 2x the core.
  CausalSelfAttention l("attn", SampleShape{128, 128, 1}, 4);
  CHECK(l.projection_flops() == 8.0 * 128 * 128 * 128);
  CHECK(l.core_flops() == 2.0 * 128 * 129 * 128);
  CHECK(l.backward_input_flops() == l.projection_flops() + 2 * l.core_flops());
  CHECK(l.backward_weight_flops() == l.projection_flops());
  CHECK_THROWS_AS(CausalSelfAttention("a", SampleShape{4, 6, 1}, 4), RuntimeError);  // 6 % 4 != 0
}

TEST_CASE("attention dropout: masks reused by backward, finite differences with the mask, reference == cpu") {
  const size_t n = 2, len = 5, e = 4, heads = 2, d = 2, rows = n * len;
  CausalSelfAttention l("attn", SampleShape{static_cast<int>(len), static_cast<int>(e), 1}, static_cast<int>(heads),
                        0.3);
  std::vector<float> pf(l.num_params());
  l.init_params(pf.data(), 7, 3);
  const auto x = to_float(random_doubles(rows * e, 13));
  std::vector<float> y(rows * e), dy = to_float(random_doubles(rows * e, 14));
  l.forward(Backend::Reference, pf.data(), x.data(), y.data(), n);
  const std::vector<float> keep = l.dropout_keep();
  REQUIRE(keep.size() == n * heads * len * len);
  size_t dropped = 0;
  for (float k : keep) {
    CHECK((k == 0.0f || std::abs(k - 1.0f / 0.7f) < 1e-6f));
    dropped += k == 0.0f;
  }
  CHECK(dropped > 0);
  CHECK(dropped < keep.size());
  // The double kernels with the same keep factors give the same output and gradients.
  const DVec xd(x.begin(), x.end()), pd(pf.begin(), pf.end());
  auto core_fwd = [&](const DVec& p, const DVec& xx, DVec& yy, DVec& qkv, DVec& hv) {
    qkv.assign(rows * 3 * e, 0);
    hv.assign(rows * e, 0);
    ref::rows_linear_forward(xx.data(), p.data(), p.data() + 3 * e * e, qkv.data(), rows, e, 3 * e);
    for (size_t s = 0; s < n; ++s)
      ref::attention_core_forward(qkv.data() + s * len * 3 * e, hv.data() + s * len * e, len, heads, d,
                                  keep.data() + s * heads * len * len);
    const double* wp = p.data() + 3 * e * e + 3 * e;
    ref::rows_linear_forward(hv.data(), wp, wp + e * e, yy.data(), rows, e, e);
  };
  Fwd f = [&](const DVec& p, const DVec& xx, DVec& yy) {
    DVec q, h;
    core_fwd(p, xx, yy, q, h);
  };
  Bwd b = [&](const DVec& p, const DVec& xx, const DVec& g, DVec& dp, DVec& dx) {
    DVec yy(rows * e), qkv, hv, dh(rows * e), dqkv(rows * 3 * e);
    core_fwd(p, xx, yy, qkv, hv);
    const double* wp = p.data() + 3 * e * e + 3 * e;
    double* dwp = dp.data() + 3 * e * e + 3 * e;
    ref::rows_linear_backward(hv.data(), wp, g.data(), dh.data(), dwp, dwp + e * e, rows, e, e);
    for (size_t s = 0; s < n; ++s)
      ref::attention_core_backward(qkv.data() + s * len * 3 * e, dh.data() + s * len * e, dqkv.data() + s * len * 3 * e,
                                   len, heads, d, keep.data() + s * heads * len * len);
    ref::rows_linear_backward(xx.data(), p.data(), dqkv.data(), dx.data(), dp.data(), dp.data() + 3 * e * e, rows, e,
                              3 * e);
  };
  fd_check(f, b, pd, xd, rows * e, 15);
  DVec yd(rows * e);
  f(pd, xd, yd);
  CHECK(max_abs_rel(y, yd) <= 1e-5);
  std::vector<float> dx(rows * e), dp(l.num_params());
  l.backward(Backend::Reference, pf.data(), x.data(), y.data(), dy.data(), dx.data(), dp.data(), true, n);
  // The cpu path draws the next masks: re-seed both to the same call and compare.
  CausalSelfAttention l2("attn", SampleShape{static_cast<int>(len), static_cast<int>(e), 1}, static_cast<int>(heads),
                         0.3);
  std::vector<float> p2(l2.num_params());
  l2.init_params(p2.data(), 7, 3);
  CHECK(p2 == pf);
  std::vector<float> yc(rows * e), dxc(rows * e), dpc(l2.num_params());
  l2.forward(Backend::OneDnn, p2.data(), x.data(), yc.data(), n);
  CHECK(l2.dropout_keep() == keep);
  l2.backward(Backend::OneDnn, p2.data(), x.data(), yc.data(), dy.data(), dxc.data(), dpc.data(), true, n);
  CHECK(test::max_rel_diff(yc.data(), y.data(), y.size()) <= 2e-5);
  CHECK(test::max_rel_diff(dxc.data(), dx.data(), dx.size()) <= 2e-5);
  CHECK(test::max_rel_diff(dpc.data(), dp.data(), dp.size()) <= 2e-5);
  // Evaluation never drops.
  FwdArgs a;
  a.params = pf.data();
  a.x = x.data();
  a.y = yc.data();
  a.n = n;
  a.training = false;
  l.forward(Backend::Reference, a);
  DVec y_nodrop(rows * e);
  {
    DVec qkv(rows * 3 * e), hv(rows * e);
    ref::rows_linear_forward(xd.data(), pd.data(), pd.data() + 3 * e * e, qkv.data(), rows, e, 3 * e);
    for (size_t s = 0; s < n; ++s)
      ref::attention_core_forward(qkv.data() + s * len * 3 * e, hv.data() + s * len * e, len, heads, d, nullptr);
    const double* wp = pd.data() + 3 * e * e + 3 * e;
    ref::rows_linear_forward(hv.data(), wp, wp + e * e, y_nodrop.data(), rows, e, e);
  }
  CHECK(max_abs_rel(yc, y_nodrop) <= 1e-5);
}

TEST_CASE("Dropout layer: inverted scaling, the mask reused by backward, identity in evaluation") {
  Dropout l("drop", SampleShape{4, 8, 1}, 0.25);
  l.init_params(nullptr, 3, 1);
  const auto x = test::random_floats(2 * 32, 21);
  std::vector<float> y(x.size()), dx(x.size()), dy(x.size(), 1.0f);
  l.forward(Backend::Reference, nullptr, x.data(), y.data(), 2);
  size_t zeros = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0f) ++zeros;
    else CHECK(y[i] == dtsim_test::Rel(x[i] / 0.75f));
  }
  CHECK(zeros > 0);
  CHECK(zeros < x.size() / 2);
  l.backward(Backend::Reference, nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, true, 2);
  for (size_t i = 0; i < x.size(); ++i) CHECK(dx[i] == dtsim_test::Rel(y[i] == 0.0f ? 0.0f : 1.0f / 0.75f));
  FwdArgs a;
  a.x = x.data();
  a.y = y.data();
  a.n = 2;
  a.training = false;
  l.forward(Backend::Reference, a);
  CHECK(y == x);
  // Same seed, layer and call number: the same mask (another layer object, the cpu path).
  Dropout l2("drop", SampleShape{4, 8, 1}, 0.25);
  l2.init_params(nullptr, 3, 1);
  std::vector<float> y2(x.size());
  l2.forward(Backend::OneDnn, nullptr, x.data(), y2.data(), 2);
  CHECK(l2.keep() == l.keep());
}

}  // namespace test_gpt_layers_cpp
