#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/error.hpp"
#include "engine/dataset.hpp"
#include "engine/optim.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_optim_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

struct Run {
  Vec w, g;
  explicit Run(std::vector<float> w0) : w(w0.size()), g(w0.size()) {
    for (size_t i = 0; i < w0.size(); ++i) w.data()[i] = w0[i];
  }
  void set_grad(std::vector<float> g0) {
    for (size_t i = 0; i < g0.size(); ++i) g.data()[i] = g0[i];
  }
};

}  // namespace

TEST_CASE("Sgd matches hand-computed PyTorch steps: plain, weight decay, momentum, nesterov") {
  SUBCASE("plain") {
    Run r({1.0f, -2.0f});
    Sgd opt(SgdConfig{0.1, 0.0, 0.0, false}, 2, Device::Cpu);
    CHECK(opt.momentum_buffer().empty());  // no state without momentum
    r.set_grad({0.5f, 0.25f});
    opt.step(r.w.view(), r.g.view());
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.95).epsilon(1e-7));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.025).epsilon(1e-7));
    opt.step(r.w.view(), r.g.view(), 1.0);  // explicit learning rate
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.45).epsilon(1e-6));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.275).epsilon(1e-7));
  }
  SUBCASE("weight decay") {
    Run r({1.0f, -2.0f});
    Sgd opt(SgdConfig{0.1, 0.0, 0.01, false}, 2, Device::Cpu);
    r.set_grad({0.5f, 0.25f});
    opt.step(r.w.view(), r.g.view());  // g' = [0.51, 0.23]
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.949).epsilon(1e-7));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.023).epsilon(1e-7));
  }
  SUBCASE("momentum + weight decay, two steps") {
    Run r({1.0f, -2.0f});
    Sgd opt(SgdConfig{0.1, 0.9, 0.01, false}, 2, Device::Cpu);
    r.set_grad({0.5f, 0.25f});
    opt.step(r.w.view(), r.g.view());  // v = g' = [0.51, 0.23]; w = [0.949, -2.023]
    CHECK(opt.momentum_buffer().data()[0] == dtsim_test::Rel(0.51).epsilon(1e-7));
    CHECK(opt.momentum_buffer().data()[1] == dtsim_test::Rel(0.23).epsilon(1e-7));
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.949).epsilon(1e-7));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.023).epsilon(1e-7));
    opt.step(r.w.view(), r.g.view());  // g' = [0.50949, 0.22977]; v = [0.96849, 0.43677]
    CHECK(opt.momentum_buffer().data()[0] == dtsim_test::Rel(0.96849).epsilon(1e-6));
    CHECK(opt.momentum_buffer().data()[1] == dtsim_test::Rel(0.43677).epsilon(1e-6));
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.852151).epsilon(1e-6));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.066677).epsilon(1e-6));
  }
  SUBCASE("nesterov + weight decay, two steps") {
    Run r({1.0f, -2.0f});
    Sgd opt(SgdConfig{0.1, 0.9, 0.01, true}, 2, Device::Cpu);
    r.set_grad({0.5f, 0.25f});
    opt.step(r.w.view(), r.g.view());  // d = g' + 0.9 v = [0.969, 0.437]
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.9031).epsilon(1e-6));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.0437).epsilon(1e-6));
    opt.step(r.w.view(), r.g.view());  // g' = [0.509031, 0.229563]; v = [0.968031, 0.436563]
    CHECK(r.w.data()[0] == dtsim_test::Rel(0.76507411).epsilon(1e-6));
    CHECK(r.w.data()[1] == dtsim_test::Rel(-2.10594697).epsilon(1e-6));
  }
  SUBCASE("size mismatch") {
    Vec w(3), g(4);
    Sgd opt(SgdConfig{}, 3, Device::Cpu);
    CHECK_THROWS_AS(opt.step(w.view(), g.view()), RuntimeError);
  }
}

TEST_CASE("Sgd follows its documented formula over many random steps") {
  const size_t n = 1001;
  for (bool nesterov : {false, true}) {
    CAPTURE(nesterov);
    const SgdConfig cfg{0.05, 0.8, 1e-3, nesterov};
    Vec w(n), g(n);
    const auto w0 = test::random_floats(n, 1);
    std::copy(w0.begin(), w0.end(), w.data());
    std::vector<double> wd(w0.begin(), w0.end()), v(n, 0.0);
    Sgd opt(cfg, n, Device::Cpu);
    for (int step = 0; step < 6; ++step) {
      const auto gs = test::random_floats(n, 100 + static_cast<uint64_t>(step));
      std::copy(gs.begin(), gs.end(), g.data());
      const double lr = step < 3 ? cfg.lr : 0.02;
      if (step < 3) opt.step(w.view(), g.view());
      else opt.step(w.view(), g.view(), lr);
      for (size_t i = 0; i < n; ++i) {
        const double gp = gs[i] + cfg.weight_decay * wd[i];
        v[i] = step == 0 ? gp : cfg.momentum * v[i] + gp;
        wd[i] -= lr * (nesterov ? gp + cfg.momentum * v[i] : v[i]);
      }
    }
    for (size_t i = 0; i < n; ++i) REQUIRE(std::abs(w.data()[i] - wd[i]) <= 1e-5 * (1 + std::abs(wd[i])));
  }
}

TEST_CASE("a small MLP trained with plain SGD on synthetic data exceeds 80% test accuracy") {
  const Dataset ds = make_synthetic(4000, 1000, 32, 10, 11);
  auto model = test::make_mlp({64}, ds.shape, ds.classes, Device::Cpu);
  Vec w(model->num_params()), g(model->num_params());
  model->init_params(w.view(), 11);
  Sgd opt(SgdConfig{0.1, 0.0, 0.0, false}, w.size(), Device::Cpu);
  SampleOrder order(ds.train.size(), 11);
  std::vector<size_t> idx;
  Batch batch;
  const EvalResult before = model->evaluate(w.view(), ds.test, 0, ds.test.size());
  float first_loss = 0, last_loss = 0;
  for (uint64_t step = 0; step < 400; ++step) {
    order.worker_batch(0, 1, step, 32, idx);
    gather(ds.train, ds.shape, idx, batch);
    const float loss = model->forward_backward(w.view(), batch, g.view());
    if (step == 0) first_loss = loss;
    last_loss = loss;
    opt.step(w.view(), g.view());
  }
  const EvalResult after = model->evaluate(w.view(), ds.test, 0, ds.test.size());
  MESSAGE("test accuracy " << before.accuracy() << " -> " << after.accuracy() << ", loss " << before.loss() << " -> "
                           << after.loss() << " (train batch loss " << first_loss << " -> " << last_loss << ")");
  CHECK(before.accuracy() < 0.5);
  CHECK(after.accuracy() > 0.80);
  CHECK(after.loss() < before.loss());
}

}  // namespace test_optim_cpp
