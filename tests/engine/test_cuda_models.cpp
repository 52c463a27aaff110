// Whole models on the cuda backend: forward_backward (loss, gradients, BatchNorm running
// statistics) and evaluate against the reference model; bitwise reproducibility of training on the
// GPU, also when other models use the device in between; end-to-end training. Skips (exit code 77
// under ctest) without a usable CUDA device: see test_cuda_common.hpp.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json_reader.hpp"
#include "engine/dataset.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "engine/optim.hpp"
#include "helpers.hpp"
#include "test_cuda_common.hpp"

namespace test_cuda_models_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;
using test::to_host;

namespace {

std::unique_ptr<Model> build(const json& spec, SampleShape in, int classes, Device d) {
  ObjectReader r(spec, JsonOrigin{"test.json", "model"});
  auto m = make_model(r, in, classes, ComputeOptions{d, 1});
  r.finish();
  return m;
}

Split split_of(const Batch& b) {
  Split s;
  s.x = b.x;
  s.y = b.y;
  return s;
}

// Reference and cuda models of one spec from the same initial parameters and state: one training
// step's loss, gradients and updated running statistics, then evaluation with that state.
void compare_with_reference(const json& spec, SampleShape in, int classes, size_t n, double tol) {
  CAPTURE(spec.dump());
  auto ref = build(spec, in, classes, Device::Reference);
  auto gpu = build(spec, in, classes, Device::Cuda);
  REQUIRE(gpu->device() == Device::Cuda);
  REQUIRE(gpu->num_params() == ref->num_params());
  REQUIRE(gpu->num_state() == ref->num_state());
  const size_t P = ref->num_params(), S = ref->num_state();
  Vec hp(P, Device::Cpu), dp(P, Device::Cuda), hs(S, Device::Cpu), ds(S, Device::Cuda);
  ref->init_params(hp.view(), 5);
  gpu->init_params(dp.view(), 5);  // initialised on the host, copied: the same bits
  CHECK(test::bitwise_equal(std::vector<float>(hp.data(), hp.data() + P), to_host(dp)));
  ref->init_state(hs.view());
  gpu->init_state(ds.view());

  const Batch batch = test::random_batch(n, in, classes, 77);
  Vec hg(P, Device::Cpu), dg(P, Device::Cuda);
  const float lref = ref->forward_backward(hp.view(), hs.view(), batch, hg.view());
  const float lgpu = gpu->forward_backward(dp.view(), ds.view(), batch, dg.view());
  CHECK(lgpu == doctest::Approx(lref).epsilon(1e-5));
  const auto g = to_host(dg);
  const double dgrad = test::max_rel_diff(g.data(), hg.data(), P);
  CAPTURE(dgrad);
  CHECK(dgrad <= tol);
  if (S) {
    const auto st = to_host(ds);
    CHECK(test::max_rel_diff(st.data(), hs.data(), S) <= 1e-5);
  }
  const Split split = split_of(batch);
  const EvalResult eref = ref->evaluate(hp.view(), hs.view(), split, 0, n);
  const EvalResult egpu = gpu->evaluate(dp.view(), ds.view(), split, 0, n);
  CHECK(egpu.count == n);
  CHECK(egpu.loss() == doctest::Approx(eref.loss()).epsilon(1e-4));
  // A near-tie between two logits may flip one argmax between devices; no more than that.
  CHECK(std::abs(static_cast<double>(egpu.correct) - static_cast<double>(eref.correct)) <= 1.0);
}

// n SGD steps (momentum, weight decay) of a cuda model from seed 5; returns the final
// parameters, state and the losses.
struct Trained {
  std::vector<float> params, state, losses;
};
Trained train_on_gpu(Model& m, int steps, SampleShape in, int classes, size_t n, uint64_t data_key,
                     Model* other = nullptr) {
  Vec p(m.num_params(), Device::Cuda), g(m.num_params(), Device::Cuda), s(m.num_state(), Device::Cuda);
  m.init_params(p.view(), 5);
  m.init_state(s.view());
  Sgd opt(SgdConfig{0.05, 0.9, 5e-4, false}, p.size(), Device::Cuda);
  Trained t;
  for (int k = 0; k < steps; ++k) {
    const Batch b = test::random_batch(n, in, classes, data_key + static_cast<uint64_t>(k));
    t.losses.push_back(m.forward_backward(p.view(), s.view(), b, g.view()));
    opt.step(p.view(), g.view());
    if (other) {  // another model (another batch size too) uses the device, its caches and workspace
      Vec op(other->num_params(), Device::Cuda), og(other->num_params(), Device::Cuda);
      other->init_params(op.view(), 9);
      other->forward_backward(op.view(), test::random_batch(n + 3, in, classes, 999), og.view());
    }
  }
  t.params = to_host(p);
  t.state = to_host(s);
  return t;
}

}  // namespace

TEST_CASE("cuda models: MLP and LeNet-5 on the GPU match the reference model") {
  DTSIM_REQUIRE_CUDA();
  compare_with_reference({{"kind", "mlp"}, {"hidden", {64, 32}}}, SampleShape{1, 8, 8}, 10, 16, 1e-4);
  compare_with_reference({{"kind", "mlp"}, {"hidden", {256, 256}}}, SampleShape{1, 28, 28}, 10, 64, 1e-4);
  compare_with_reference({{"kind", "lenet5"}}, SampleShape{1, 28, 28}, 10, 8, 1e-4);
}

TEST_CASE("cuda models: ResNet-8/20 (BatchNorm, residual shortcuts A and B) match the reference model") {
  DTSIM_REQUIRE_CUDA();
  // BatchNorm divides by per-batch deviations: float rounding differences grow through the depth.
  compare_with_reference({{"kind", "resnet8"}}, SampleShape{3, 32, 32}, 10, 4, 2e-3);
  compare_with_reference({{"kind", "resnet20"}, {"shortcut", "B"}}, SampleShape{3, 16, 16}, 10, 3, 2e-3);
  compare_with_reference({{"kind", "resnet20"}}, SampleShape{3, 16, 16}, 10, 3, 2e-3);
}

TEST_CASE("cuda models: GPU training is bitwise reproducible, also with other work on the device in between") {
  DTSIM_REQUIRE_CUDA();
  const SampleShape in{3, 32, 32};
  const json spec = {{"kind", "resnet8"}};
  auto a = build(spec, in, 10, Device::Cuda);
  auto b = build(spec, in, 10, Device::Cuda);
  auto other = build({{"kind", "resnet20"}}, in, 10, Device::Cuda);
  const Trained t1 = train_on_gpu(*a, 3, in, 10, 32, 100);
  const Trained t2 = train_on_gpu(*b, 3, in, 10, 32, 100);
  const Trained t3 = train_on_gpu(*a, 3, in, 10, 32, 100, other.get());
  CHECK(test::bitwise_equal(t1.losses, t2.losses));
  CHECK(test::bitwise_equal(t1.params, t2.params));
  CHECK(test::bitwise_equal(t1.state, t2.state));
  CHECK(test::bitwise_equal(t1.losses, t3.losses));
  CHECK(test::bitwise_equal(t1.params, t3.params));
  CHECK(test::bitwise_equal(t1.state, t3.state));
  CHECK(t1.losses.back() != t1.losses.front());  // it did train
  const Trained t4 = train_on_gpu(*a, 3, in, 10, 32, 200);  // other data: other result
  CHECK_FALSE(test::bitwise_equal(t1.params, t4.params));
}

TEST_CASE("cuda models: an MLP trained on the GPU exceeds 80% test accuracy, host buffers are refused") {
  DTSIM_REQUIRE_CUDA();
  const Dataset ds = make_synthetic(4000, 1000, 32, 10, 11);
  auto model = test::make_mlp({64}, ds.shape, ds.classes, Device::Cuda);
  Vec w(model->num_params(), Device::Cuda), g(model->num_params(), Device::Cuda);
  model->init_params(w.view(), 11);
  Sgd opt(SgdConfig{0.1, 0.0, 0.0, false}, w.size(), Device::Cuda);
  SampleOrder order(ds.train.size(), 11);
  std::vector<size_t> idx;
  Batch batch;
  const EvalResult before = model->evaluate(w.view(), ds.test, 0, ds.test.size());
  for (uint64_t step = 0; step < 400; ++step) {
    order.worker_batch(0, 1, step, 32, idx);
    gather(ds.train, ds.shape, idx, batch);
    model->forward_backward(w.view(), batch, g.view());
    opt.step(w.view(), g.view());
  }
  const EvalResult after = model->evaluate(w.view(), ds.test, 0, ds.test.size());
  MESSAGE("GPU MLP test accuracy " << before.accuracy() << " -> " << after.accuracy());
  CHECK(before.accuracy() < 0.5);
  CHECK(after.accuracy() > 0.80);
  // The same training on the host reference model gives (to rounding) the same accuracy.
  auto host = test::make_mlp({64}, ds.shape, ds.classes, Device::Reference);
  const auto wh = to_host(w);
  Vec hw(wh.size(), Device::Cpu);
  ops::copy(hw.view(), ConstVecView(wh.data(), wh.size(), Device::Cpu));
  CHECK(std::abs(host->evaluate(hw.view(), ds.test, 0, ds.test.size()).accuracy() - after.accuracy()) <= 0.002);
  // Host buffers for a GPU model (and the reverse) are errors, not silent host reads.
  CHECK_THROWS_AS(model->forward_backward(hw.view(), batch, g.view()), RuntimeError);
  Vec hg(model->num_params(), Device::Cpu);
  CHECK_THROWS_AS(host->forward_backward(w.view(), batch, hg.view()), RuntimeError);
}

}  // namespace test_cuda_models_cpp
