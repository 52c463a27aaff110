// Per-layer checks:
//  1. finite differences in double on tiny shapes against the reference kernels' backward (the
//     same templated code the reference backend runs in float);
//  2. the float reference Layer equals those double kernels (parameter/bias wiring);
//  3. the cpu (oneDNN) Layer equals the reference Layer, in every activation layout.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/layers.hpp"
#include "engine/ref_kernels.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_layers_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using DVec = std::vector<double>;

DVec random_doubles(size_t n, uint64_t key, double lo = -1, double hi = 1) {
  Rng r(99, Stream::Algorithm, {key});
  DVec v(n);
  for (double& x : v) x = r.uniform(lo, hi);
  return v;
}

std::vector<float> to_float(const DVec& v) { return std::vector<float>(v.begin(), v.end()); }
DVec to_double(const std::vector<float>& v) { return DVec(v.begin(), v.end()); }

double dot(const DVec& a, const DVec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// L(p, x) = sum(r * f(p, x)); checks dL/dp and dL/dx from `bwd` (with dy = r) against central
// differences, entry by entry: |fd - analytic| <= tol * max(1, |analytic|).
using Fwd = std::function<void(const DVec& p, const DVec& x, DVec& y)>;
using Bwd = std::function<void(const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx)>;

void fd_check(const Fwd& f, const Bwd& b, DVec p, DVec x, size_t ny, uint64_t key, double tol = 1e-7) {
  const DVec r = random_doubles(ny, key + 1000);
  DVec y(ny), dp(p.size()), dx(x.size());
  b(p, x, r, dp, dx);
  auto loss = [&](const DVec& pp, const DVec& xx) {
    f(pp, xx, y);
    return dot(r, y);
  };
  const double h = 1e-6;
  auto check = [&](DVec& v, const DVec& grad, const char* what, bool is_p) {
    for (size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double lp = is_p ? loss(v, x) : loss(p, v);
      v[i] = keep - h;
      const double lm = is_p ? loss(v, x) : loss(p, v);
      v[i] = keep;
      const double fd = (lp - lm) / (2 * h);
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
  check(x, dx, "input", false);
}

ref::Geom conv_geom(int c, int h, int w, int oc, int k, int s, int p) {
  ref::Geom g{c, h, w, oc, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1, k, k, s, s, p, p};
  return g;
}

// Compares the float reference Layer with the double kernels' forward (one call form each way).
void same_as_double(const std::vector<float>& got, const DVec& want, double tol = 1e-5) {
  REQUIRE(got.size() == want.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  CHECK(err <= tol * std::max(1.0, scale));
}

// Runs the cpu backend of `l` with input layout `in` against the reference backend in plain NCHW
// (inputs converted into the layout, outputs converted back): forward, backward (dx, dparams).
void cpu_matches_reference(Layer& l, Layout in, size_t n, uint64_t key, double tol = 2e-5,
                           bool propagate_down = true) {
  if (!onednn_available()) {
    MESSAGE("oneDNN not built: cpu == reference");
    return;
  }
  CAPTURE(l.name());
  CAPTURE(std::string(layout_name(in)));
  REQUIRE(l.cpu_accepts(in));
  const Layout out = l.cpu_out_layout(in);
  l.set_cpu_layouts(in, out);
  const SampleShape si = l.in_shape(), so = l.out_shape();
  const auto params = test::random_floats(l.num_params(), key, -0.5f, 0.5f);
  const auto x = test::random_floats(n * si.size(), key + 1);
  const auto dy = test::random_floats(n * so.size(), key + 2);

  std::vector<float> y_ref(n * so.size()), dx_ref(n * si.size()), dp_ref(l.num_params());
  l.forward(Backend::Reference, params.data(), x.data(), y_ref.data(), n);
  l.backward(Backend::Reference, params.data(), x.data(), y_ref.data(), dy.data(), dx_ref.data(), dp_ref.data(),
             propagate_down, n);

  std::vector<float> xb(n * layout_size(si, in)), yb(n * layout_size(so, out), 7.0f), dyb(n * layout_size(so, out));
  std::vector<float> dxb(n * layout_size(si, in), 7.0f), dp(l.num_params(), 7.0f);
  convert_layout(si, Layout::Plain, x.data(), in, xb.data(), n);
  convert_layout(so, Layout::Plain, dy.data(), out, dyb.data(), n);
  l.forward(Backend::OneDnn, params.data(), xb.data(), yb.data(), n);
  l.backward(Backend::OneDnn, params.data(), xb.data(), yb.data(), dyb.data(), dxb.data(), dp.data(), propagate_down,
             n);
  std::vector<float> y(n * so.size()), dx(n * si.size());
  convert_layout(so, out, yb.data(), Layout::Plain, y.data(), n);
  convert_layout(si, in, dxb.data(), Layout::Plain, dx.data(), n);
  CHECK(test::max_rel_diff(y.data(), y_ref.data(), y.size()) <= tol);
  if (propagate_down) CHECK(test::max_rel_diff(dx.data(), dx_ref.data(), dx.size()) <= tol);
  if (!dp.empty()) CHECK(test::max_rel_diff(dp.data(), dp_ref.data(), dp.size()) <= tol);
  // Padding of blocked outputs stays zero.
  if (layout_size(so, out) > so.size()) {
    std::vector<float> y2(yb.size());
    convert_layout(so, Layout::Plain, y.data(), out, y2.data(), n);
    CHECK(y2 == yb);
  }
  l.set_cpu_layouts(Layout::Plain, Layout::Plain);
}

}  // namespace

TEST_CASE("layouts: offsets, sizes, round trips and same-memory cases") {
  const SampleShape s{6, 3, 2};
  CHECK(layout_size(s, Layout::Plain) == 36);
  CHECK(layout_size(s, Layout::Block8) == 48);
  CHECK(layout_size(s, Layout::Block16) == 96);
  CHECK(layout_offset(s, Layout::Plain, 5, 2, 1) == 5 * 6 + 2 * 2 + 1);
  CHECK(layout_offset(s, Layout::Block8, 5, 2, 1) == (2 * 2 + 1) * 8 + 5);
  const SampleShape s20{20, 2, 2};
  CHECK(layout_offset(s20, Layout::Block16, 17, 1, 0) == (1 * 4 + 2) * 16 + 1);
  const auto x = test::random_floats(3 * s20.size(), 5);
  for (Layout l : {Layout::Block8, Layout::Block16}) {
    std::vector<float> b(3 * layout_size(s20, l), 9.0f), back(x.size());
    convert_layout(s20, Layout::Plain, x.data(), l, b.data(), 3);
    for (int c = 20; c < static_cast<int>(layout_size(s20, l) / 4); ++c)  // padding channels are zero
      CHECK(b[layout_offset(s20, l, c, 1, 1)] == 0.0f);
    CHECK(b[layout_size(s20, l) + layout_offset(s20, l, 13, 1, 0)] == x[s20.size() + 13 * 4 + 2]);
    convert_layout(s20, l, b.data(), Layout::Plain, back.data(), 3);
    CHECK(back == x);
  }
  CHECK(same_memory(SampleShape{32, 1, 1}, Layout::Block16, Layout::Plain));
  CHECK(same_memory(SampleShape{32, 1, 1}, Layout::Block8, Layout::Block16));
  CHECK_FALSE(same_memory(SampleShape{10, 1, 1}, Layout::Block16, Layout::Plain));
  CHECK_FALSE(same_memory(SampleShape{32, 2, 1}, Layout::Block16, Layout::Plain));
}

TEST_CASE("Conv2d: finite differences, float wiring and cpu == reference for strides, padding, bias") {
  struct Case {
    int c, h, w, oc, k, s, p;
    bool bias;
  };
  const std::vector<Case> cases{{2, 5, 6, 3, 3, 1, 1, true},  {3, 7, 7, 4, 3, 2, 1, false},
                                {2, 6, 5, 3, 1, 2, 0, false}, {1, 6, 6, 2, 5, 1, 2, true},
                                {2, 5, 5, 2, 2, 2, 0, true}};
  uint64_t key = 1;
  for (const Case& c : cases) {
    CAPTURE(c.k);
    CAPTURE(c.s);
    CAPTURE(c.p);
    const ref::Geom g = conv_geom(c.c, c.h, c.w, c.oc, c.k, c.s, c.p);
    const size_t n = 2, nw = static_cast<size_t>(g.oc) * g.c * g.kh * g.kw, np = nw + (c.bias ? g.oc : 0);
    Fwd f = [&](const DVec& p, const DVec& x, DVec& y) {
      ref::conv_forward(g, p.data(), c.bias ? p.data() + nw : nullptr, x.data(), y.data(), n);
    };
    Bwd b = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
      ref::conv_backward_weights(g, x.data(), dy.data(), dp.data(), c.bias ? dp.data() + nw : nullptr, n);
      ref::conv_backward_data(g, p.data(), dy.data(), dx.data(), n);
    };
    const DVec p = random_doubles(np, key), x = random_doubles(n * g.in_size(), key + 1);
    fd_check(f, b, p, x, n * g.out_size(), key);

    Conv2d l("conv", SampleShape{c.c, c.h, c.w}, c.oc, c.k, c.s, c.p, c.bias);
    REQUIRE(l.num_params() == np);
    REQUIRE(l.out_shape().h == g.oh);
    REQUIRE(l.out_shape().w == g.ow);
    std::vector<float> y(n * g.out_size());
    const auto pf = to_float(p), xf = to_float(x);
    l.forward(Backend::Reference, pf.data(), xf.data(), y.data(), n);
    DVec yd(y.size());
    f(to_double(pf), to_double(xf), yd);
    same_as_double(y, yd);
    cpu_matches_reference(l, Layout::Plain, 3, key + 7);
    key += 10;
  }
}

TEST_CASE("Conv2d cpu path in blocked layouts, without dx for a first layer, at several batch sizes") {
  Conv2d a("c16", SampleShape{16, 8, 8}, 32, 3, 1, 1, false);
  for (Layout in : {Layout::Plain, Layout::Block8, Layout::Block16}) cpu_matches_reference(a, in, 4, 11);
  Conv2d b("c16s2", SampleShape{16, 9, 9}, 16, 3, 2, 1, true);
  cpu_matches_reference(b, Layout::Block16, 3, 12);
  cpu_matches_reference(b, Layout::Block16, 5, 13);  // a second batch size: its own primitives
  cpu_matches_reference(b, Layout::Block16, 3, 14);  // back to the first
  Conv2d first("first", SampleShape{3, 12, 12}, 16, 3, 1, 1, false);
  cpu_matches_reference(first, Layout::Plain, 2, 15, 2e-5, false);
  Conv2d lenet("lenet", SampleShape{6, 14, 14}, 16, 5, 1, 0, true);  // 6 channels padded to 8
  cpu_matches_reference(lenet, Layout::Block8, 3, 16);
  Conv2d proj("proj", SampleShape{16, 8, 8}, 32, 1, 2, 0, false);
  cpu_matches_reference(proj, Layout::Block16, 2, 17);
}

TEST_CASE("MaxPool2d and AvgPool2d: finite differences, float wiring and cpu == reference") {
  struct Case {
    bool max;
    int c, h, w, k, s, p;
  };
  const std::vector<Case> cases{{true, 2, 6, 6, 2, 2, 0},  {true, 2, 7, 7, 3, 2, 1}, {true, 1, 5, 6, 3, 1, 1},
                                {false, 2, 6, 6, 2, 2, 0}, {false, 2, 7, 7, 3, 2, 1}, {false, 3, 4, 5, 4, 1, 0}};
  uint64_t key = 100;
  for (const Case& c : cases) {
    CAPTURE(c.max);
    CAPTURE(c.k);
    CAPTURE(c.p);
    Pool2d l("pool", SampleShape{c.c, c.h, c.w}, c.max ? Pool2d::Kind::Max : Pool2d::Kind::Avg, c.k, c.k, c.s, c.s,
             c.p, c.p);
    const ref::Geom g = l.geom();
    const size_t n = 2;
    Fwd f = [&](const DVec&, const DVec& x, DVec& y) {
      if (c.max) ref::maxpool_forward(g, x.data(), y.data(), n);
      else ref::avgpool_forward(g, x.data(), y.data(), n);
    };
    Bwd b = [&](const DVec&, const DVec& x, const DVec& dy, DVec&, DVec& dx) {
      if (c.max) ref::maxpool_backward(g, x.data(), dy.data(), dx.data(), n);
      else ref::avgpool_backward(g, dy.data(), dx.data(), n);
    };
    const DVec x = random_doubles(n * g.in_size(), key);
    fd_check(f, b, {}, x, n * static_cast<size_t>(g.c) * g.oh * g.ow, key);
    std::vector<float> y(n * l.out_size());
    const auto xf = to_float(x);
    l.forward(Backend::Reference, nullptr, xf.data(), y.data(), n);
    DVec yd(y.size());
    f({}, to_double(xf), yd);
    same_as_double(y, yd);
    cpu_matches_reference(l, Layout::Plain, 3, key + 5);
    key += 10;
  }
  auto gp = global_avg_pool("gap", SampleShape{32, 4, 4});
  CHECK(gp->out_shape().h == 1);
  for (Layout in : {Layout::Plain, Layout::Block16}) cpu_matches_reference(*gp, in, 3, 140);
  auto mp = max_pool("mp", SampleShape{16, 8, 8}, 2, 2);
  for (Layout in : {Layout::Block8, Layout::Block16}) cpu_matches_reference(*mp, in, 3, 141);
  auto mp6 = max_pool("mp6", SampleShape{6, 10, 10}, 2, 2);  // padded channels
  cpu_matches_reference(*mp6, Layout::Block8, 2, 142);
}

TEST_CASE("max pooling routes the gradient to the first maximum (PyTorch's tie rule)") {
  Pool2d l("mp", SampleShape{1, 2, 2}, Pool2d::Kind::Max, 2, 2, 2, 2);
  const std::vector<float> x{0.5f, 0.5f, 0.5f, 0.5f}, dy{1.0f};
  std::vector<float> y(1), dx(4);
  l.forward(Backend::Reference, nullptr, x.data(), y.data(), 1);
  l.backward(Backend::Reference, nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, true, 1);
  CHECK(dx == std::vector<float>{1, 0, 0, 0});
}

TEST_CASE("BatchNorm2d: finite differences (train and eval), running statistics, cpu == reference") {
  const int C = 3;
  const SampleShape s{C, 3, 2};
  const size_t n = 4, hw = 6;
  const double eps = 1e-5;
  // Train mode: p = gamma, beta; the batch statistics depend on x.
  Fwd ft = [&](const DVec& p, const DVec& x, DVec& y) {
    DVec m(C), v(C);
    ref::bn_stats(C, hw, x.data(), n, m.data(), v.data());
    ref::bn_apply(C, hw, x.data(), n, p.data(), p.data() + C, m.data(), v.data(), eps, y.data());
  };
  Bwd bt = [&](const DVec& p, const DVec& x, const DVec& dy, DVec& dp, DVec& dx) {
    DVec m(C), v(C);
    ref::bn_backward_train(C, hw, x.data(), dy.data(), n, p.data(), eps, dx.data(), dp.data(), dp.data() + C, m.data(),
                           v.data());
  };
  DVec p = random_doubles(2 * C, 300, 0.5, 1.5);
  const DVec x = random_doubles(n * s.size(), 301, -2, 3);
  fd_check(ft, bt, p, x, n * s.size(), 302);
  // Eval mode: fixed running statistics.
  const DVec rm{0.1, -0.2, 0.3}, rv{0.5, 1.5, 2.0};
  Fwd fe = [&](const DVec& pp, const DVec& xx, DVec& y) {
    ref::bn_apply(C, hw, xx.data(), n, pp.data(), pp.data() + C, rm.data(), rv.data(), eps, y.data());
  };
  Bwd be = [&](const DVec& pp, const DVec& xx, const DVec& dy, DVec& dp, DVec& dx) {
    ref::bn_backward_eval(C, hw, xx.data(), dy.data(), n, pp.data(), rm.data(), rv.data(), eps, dx.data(), dp.data(),
                          dp.data() + C);
  };
  fd_check(fe, be, p, x, n * s.size(), 303);

  // The layer: training normalises each channel to mean beta, std gamma; state update as PyTorch.
  BatchNorm2d l("bn", s);
  CHECK(l.num_params() == 2 * C);
  CHECK(l.num_state() == 2 * C);
  std::vector<float> params(2 * C), state(2 * C);
  l.init_params(params.data(), 1, 0);
  l.init_state(state.data());
  CHECK(params == std::vector<float>{1, 1, 1, 0, 0, 0});
  CHECK(state == std::vector<float>{0, 0, 0, 1, 1, 1});
  const auto xf = to_float(x);
  for (Backend be2 : {Backend::Reference, Backend::OneDnn}) {
    if (be2 == Backend::OneDnn && !onednn_available()) continue;
    CAPTURE(std::string(backend_name(be2)));
    std::vector<float> y(xf.size()), st = state;
    FwdArgs a;
    a.params = params.data();
    a.x = xf.data();
    a.y = y.data();
    a.state = st.data();
    a.n = n;
    l.forward(be2, a);
    DVec mean(C), var(C);
    ref::bn_stats(C, hw, x.data(), n, mean.data(), var.data());
    for (int ch = 0; ch < C; ++ch) {
      double m = 0, q = 0;
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < hw; ++j) m += y[(i * C + ch) * hw + j];
      m /= double(n * hw);
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < hw; ++j) q += (y[(i * C + ch) * hw + j] - m) * (y[(i * C + ch) * hw + j] - m);
      CHECK(std::abs(m) < 1e-5);
      CHECK(q / double(n * hw) == dtsim_test::Rel(var[ch] / (var[ch] + eps)).epsilon(1e-4));
      CHECK(st[ch] == dtsim_test::Rel(0.1 * mean[ch]).epsilon(1e-5));
      const double unbiased = var[ch] * double(n * hw) / double(n * hw - 1);
      CHECK(st[C + ch] == dtsim_test::Rel(0.9 + 0.1 * unbiased).epsilon(1e-5));
    }
    // Eval mode uses the state and leaves it alone.
    const std::vector<float> st_before = st;
    a.training = false;
    l.forward(be2, a);
    CHECK(st == st_before);
    CHECK(y[0] == dtsim_test::Rel((xf[0] - st[0]) / std::sqrt(st[C] + 1e-5)).epsilon(1e-5));
    a.state = nullptr;
    CHECK_THROWS_AS(l.forward(be2, a), RuntimeError);
  }

  // cpu == reference, train and eval, plain and blocked.
  if (onednn_available()) {
    for (Layout lay : {Layout::Plain, Layout::Block8, Layout::Block16})
      for (bool training : {true, false}) {
        CAPTURE(std::string(layout_name(lay)));
        CAPTURE(training);
        BatchNorm2d b("bn20", SampleShape{20, 3, 3});
        b.set_cpu_layouts(lay, lay);
        const SampleShape sh = b.in_shape();
        const size_t m = 3;
        const auto pr = test::random_floats(40, 310, 0.5f, 1.5f);
        auto st = test::random_floats(40, 311, 0.5f, 1.5f);
        const auto xx = test::random_floats(m * sh.size(), 312, -1, 2);
        const auto dy = test::random_floats(m * sh.size(), 313);
        std::vector<float> y_ref(xx.size()), dx_ref(xx.size()), dp_ref(40), st_ref = st;
        FwdArgs fa;
        fa.params = pr.data();
        fa.x = xx.data();
        fa.y = y_ref.data();
        fa.state = st_ref.data();
        fa.training = training;
        fa.n = m;
        b.forward(Backend::Reference, fa);
        BwdArgs ba;
        ba.params = pr.data();
        ba.x = xx.data();
        ba.y = y_ref.data();
        ba.dy = dy.data();
        ba.dx = dx_ref.data();
        ba.dparams = dp_ref.data();
        ba.state = st_ref.data();
        ba.training = training;
        ba.n = m;
        b.backward(Backend::Reference, ba);

        std::vector<float> xb(m * layout_size(sh, lay)), yb(xb.size()), dyb(xb.size()), dxb(xb.size()), dp(40);
        std::vector<float> st_cpu = st;
        convert_layout(sh, Layout::Plain, xx.data(), lay, xb.data(), m);
        convert_layout(sh, Layout::Plain, dy.data(), lay, dyb.data(), m);
        fa.x = xb.data();
        fa.y = yb.data();
        fa.state = st_cpu.data();
        b.forward(Backend::OneDnn, fa);
        ba.x = xb.data();
        ba.y = yb.data();
        ba.dy = dyb.data();
        ba.dx = dxb.data();
        ba.dparams = dp.data();
        ba.state = st_cpu.data();
        b.backward(Backend::OneDnn, ba);
        std::vector<float> y(xx.size()), dx(xx.size());
        convert_layout(sh, lay, yb.data(), Layout::Plain, y.data(), m);
        convert_layout(sh, lay, dxb.data(), Layout::Plain, dx.data(), m);
        CHECK(test::max_rel_diff(y.data(), y_ref.data(), y.size()) <= 2e-5);
        CHECK(test::max_rel_diff(dx.data(), dx_ref.data(), dx.size()) <= 2e-5);
        CHECK(test::max_rel_diff(dp.data(), dp_ref.data(), dp.size()) <= 2e-5);
        CHECK(test::max_rel_diff(st_cpu.data(), st_ref.data(), st.size()) <= 1e-6);
      }
  }
}

TEST_CASE("Add, ReLU and the option-A shortcut: finite differences and cpu == reference") {
  // Add: dx = dx2 = dy.
  {
    Add l("add", SampleShape{2, 2, 2});
    const auto x = test::random_floats(16, 400), x2 = test::random_floats(16, 401), dy = test::random_floats(16, 402);
    std::vector<float> y(16), dx(16), dx2(16);
    FwdArgs a;
    a.x = x.data();
    a.x2 = x2.data();
    a.y = y.data();
    a.n = 2;
    l.forward(Backend::Reference, a);
    for (size_t i = 0; i < 16; ++i) CHECK(y[i] == x[i] + x2[i]);
    BwdArgs b;
    b.dy = dy.data();
    b.dx = dx.data();
    b.dx2 = dx2.data();
    b.n = 2;
    l.backward(Backend::Reference, b);
    CHECK(dx == dy);
    CHECK(dx2 == dy);
    CHECK_THROWS_AS(l.forward(Backend::Reference, nullptr, x.data(), y.data(), 2), RuntimeError);
  }
  // ReLU: FD away from the kink.
  {
    ReLU l("relu", SampleShape{3, 2, 2});
    auto x = test::random_floats(24, 410);
    for (float& v : x)
      if (std::abs(v) < 0.05f) v = 0.3f;
    const auto dy = test::random_floats(24, 411);
    std::vector<float> y(24), dx(24);
    l.forward(Backend::Reference, nullptr, x.data(), y.data(), 2);
    l.backward(Backend::Reference, nullptr, x.data(), y.data(), dy.data(), dx.data(), nullptr, true, 2);
    for (size_t i = 0; i < 24; ++i) {
      CHECK(y[i] == std::max(x[i], 0.0f));
      CHECK(dx[i] == (x[i] > 0 ? dy[i] : 0.0f));
    }
    cpu_matches_reference(l, Layout::Block8, 2, 412, 0);
  }
  // Option-A shortcut: x[:, :, ::2, ::2] with zero channels around.
  {
    SubsamplePad l("sc", SampleShape{4, 5, 5}, 2, 8);
    CHECK(l.out_shape().c == 8);
    CHECK(l.out_shape().h == 3);
    const ref::Geom g{4, 5, 5, 8, 3, 3, 1, 1, 2, 2, 0, 0};
    Fwd f = [&](const DVec&, const DVec& x, DVec& y) { ref::subsample_pad_forward(g, 2, x.data(), y.data(), 2); };
    Bwd b = [&](const DVec&, const DVec&, const DVec& dy, DVec&, DVec& dx) {
      ref::subsample_pad_backward(g, 2, dy.data(), dx.data(), 2);
    };
    fd_check(f, b, {}, random_doubles(2 * 100, 420), 2 * 72, 421);
    const auto x = test::random_floats(100, 422);
    std::vector<float> y(72);
    l.forward(Backend::Reference, nullptr, x.data(), y.data(), 1);
    CHECK(y[0] == 0.0f);                     // channel 0: padding (2 channels before)
    CHECK(y[2 * 9 + 0] == x[0]);             // channel 2 <- input channel 0, (0,0)
    CHECK(y[2 * 9 + 4] == x[2 * 5 + 2]);     // (1,1) <- (2,2)
    CHECK(y[5 * 9 + 8] == x[3 * 25 + 24]);   // channel 5 <- input channel 3, (2,2) <- (4,4)
    CHECK(y[7 * 9 + 8] == 0.0f);
    SubsamplePad l16("sc16", SampleShape{16, 8, 8}, 2, 32);
    for (Layout in : {Layout::Plain, Layout::Block16}) cpu_matches_reference(l16, in, 2, 430, 0);
  }
}

}  // namespace test_layers_cpp
