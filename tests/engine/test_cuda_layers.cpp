// Every layer's cuda path against the reference backend (forward output, input and parameter
// gradients, BatchNorm running statistics), the bitwise repeatability of each, and whole models
// (MLP, CNNs) on the GPU against the reference model. Skips (exit code 77 under ctest) without a
// usable CUDA device: see test_cuda_common.hpp.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/layers.hpp"
#include "engine/ops.hpp"
#include "helpers.hpp"
#include "test_cuda_common.hpp"

namespace test_cuda_layers_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;
using test::to_device;
using test::to_host;

namespace {

struct LayerRun {
  std::vector<float> y, dx, dx2, dparams, state;
};

// The vector with `off` leading zeros (a buffer whose data starts `off` floats in).
std::vector<float> shifted(const std::vector<float>& v, size_t off) {
  std::vector<float> s(off, 0.0f);
  s.insert(s.end(), v.begin(), v.end());
  return s;
}

// One training (or eval) forward + backward of `l` on n samples: on the host with the reference
// backend, or on the GPU with the cuda backend, from the same inputs. On the GPU, parameters,
// their gradient and the state start `off` floats into their buffers (as inside a model's flat
// buffers, where they need not be 16-byte aligned).
LayerRun run_layer(const Layer& l, Backend be, size_t n, const std::vector<float>& params, const std::vector<float>& x,
                   const std::vector<float>& x2, const std::vector<float>& dy, const std::vector<float>& state0,
                   bool training, bool use_state, size_t off = 0) {
  const size_t out = n * l.out_size(), in = n * l.in_size();
  const bool two = l.num_inputs() == 2;
  LayerRun r;
  if (be == Backend::Reference) {
    std::vector<float> p = params, state = state0, y(out), dx(in), dx2(two ? in : 0), dp(l.num_params());
    FwdArgs f;
    f.params = p.data();
    f.x = x.data();
    f.x2 = two ? x2.data() : nullptr;
    f.y = y.data();
    f.state = use_state ? state.data() : nullptr;
    f.training = training;
    f.n = n;
    l.forward(be, f);
    BwdArgs b;
    b.params = p.data();
    b.x = x.data();
    b.x2 = f.x2;
    b.y = y.data();
    b.dy = dy.data();
    b.dx = dx.data();
    b.dx2 = two ? dx2.data() : nullptr;
    b.dparams = dp.data();
    b.state = use_state ? state.data() : nullptr;
    b.training = training;
    b.n = n;
    l.backward(be, b);
    return {y, dx, dx2, dp, state};
  }
  Vec p = to_device(shifted(params, off)), dxv = to_device(x), dx2v = to_device(two ? x2 : std::vector<float>{}),
      ddy = to_device(dy), state = to_device(shifted(state0, off));
  Vec y(out, Device::Cuda), gx(in, Device::Cuda), gx2(two ? in : 0, Device::Cuda),
      dp(off + l.num_params(), Device::Cuda);
  FwdArgs f;
  f.params = p.data() + off;
  f.x = dxv.data();
  f.x2 = two ? dx2v.data() : nullptr;
  f.y = y.data();
  f.state = use_state ? state.data() + off : nullptr;
  f.training = training;
  f.n = n;
  l.forward(be, f);
  BwdArgs b;
  b.params = p.data() + off;
  b.x = dxv.data();
  b.x2 = f.x2;
  b.y = y.data();
  b.dy = ddy.data();
  b.dx = gx.data();
  b.dx2 = two ? gx2.data() : nullptr;
  b.dparams = dp.data() + off;
  b.state = use_state ? state.data() + off : nullptr;
  b.training = training;
  b.n = n;
  l.backward(be, b);
  auto tail = [off](std::vector<float> v) { return std::vector<float>(v.begin() + static_cast<ptrdiff_t>(off), v.end()); };
  return {to_host(y), to_host(gx), two ? to_host(gx2) : std::vector<float>{}, tail(to_host(dp)), tail(to_host(state))};
}

void check_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const char* what) {
  CAPTURE(what);
  REQUIRE(got.size() == want.size());
  if (want.empty()) return;
  const double d = test::max_rel_diff(got.data(), want.data(), want.size());
  CAPTURE(d);
  CHECK(d <= tol);
}

// cuda vs reference for one layer, in training mode (and eval mode when asked), plus the
// bitwise repeatability of the cuda run, also with misaligned parameter/gradient/state pointers.
void check_layer(const Layer& l, size_t n, uint64_t key, bool eval_too = false, double tol = 2e-5) {
  CAPTURE(l.name());
  CAPTURE(l.type());
  CAPTURE(n);
  std::vector<float> params = test::random_floats(l.num_params(), key, -0.5f, 0.5f);
  if (l.type() == "batchnorm2d")  // gamma around 1
    for (size_t i = 0; i < params.size() / 2; ++i) params[i] += 1.0f;
  const auto x = test::random_floats(n * l.in_size(), key + 1, -1.0f, 1.0f);
  const auto x2 = test::random_floats(l.num_inputs() == 2 ? n * l.in_size() : 0, key + 2);
  const auto dy = test::random_floats(n * l.out_size(), key + 3);
  std::vector<float> state(l.num_state());
  if (!state.empty()) l.init_state(state.data());
  for (int mode = 0; mode < (eval_too ? 2 : 1); ++mode) {
    const bool training = mode == 0;
    CAPTURE(training);
    if (!training)  // plausible running statistics: mean ~ 0.1, var in [0.5, 1.5]
      for (size_t i = 0; i < state.size(); ++i)
        state[i] = i < state.size() / 2 ? 0.1f * static_cast<float>(i % 3) : 0.5f + 0.25f * static_cast<float>(i % 5);
    const bool use_state = !state.empty();
    const LayerRun ref = run_layer(l, Backend::Reference, n, params, x, x2, dy, state, training, use_state);
    const LayerRun gpu = run_layer(l, Backend::Cuda, n, params, x, x2, dy, state, training, use_state);
    check_close(gpu.y, ref.y, tol, "forward output");
    check_close(gpu.dx, ref.dx, tol, "input gradient");
    check_close(gpu.dx2, ref.dx2, tol, "second input gradient");
    check_close(gpu.dparams, ref.dparams, 10 * tol, "parameter gradient");
    check_close(gpu.state, ref.state, tol, "running statistics");
    for (size_t off : {size_t{0}, size_t{1}, size_t{3}}) {
      CAPTURE(off);
      const LayerRun again = run_layer(l, Backend::Cuda, n, params, x, x2, dy, state, training, use_state, off);
      CHECK(test::bitwise_equal(again.y, gpu.y));
      CHECK(test::bitwise_equal(again.dx, gpu.dx));
      CHECK(test::bitwise_equal(again.dx2, gpu.dx2));
      CHECK(test::bitwise_equal(again.dparams, gpu.dparams));
      CHECK(test::bitwise_equal(again.state, gpu.state));
    }
  }
}

}  // namespace

TEST_CASE("cuda layers: Linear and ReLU match the reference backend") {
  DTSIM_REQUIRE_CUDA();
  check_layer(Linear("fc", SampleShape{12, 1, 1}, 7), 5, 100);
  check_layer(Linear("fc_big", SampleShape{3, 16, 16}, 33), 64, 110);
  check_layer(ReLU("relu", SampleShape{3, 5, 5}), 4, 120);
}

TEST_CASE("cuda layers: Conv2d (cuDNN) matches the reference for strides, paddings, kernel sizes, bias") {
  DTSIM_REQUIRE_CUDA();
  check_layer(Conv2d("c3x3", SampleShape{3, 9, 9}, 4, 3, 1, 1, true), 4, 200);
  check_layer(Conv2d("c3x3s2", SampleShape{4, 8, 8}, 6, 3, 2, 1, false), 3, 210);
  check_layer(Conv2d("c1x1", SampleShape{5, 7, 7}, 3, 1, 1, 0, true), 2, 220);
  check_layer(Conv2d("c1x1s2", SampleShape{8, 8, 8}, 16, 1, 2, 0, false), 2, 225);
  check_layer(Conv2d("lenet_c1", SampleShape{1, 12, 12}, 6, 5, 1, 2, true), 5, 230);
  check_layer(Conv2d("k2s2", SampleShape{2, 6, 7}, 3, 2, 2, 0, true), 3, 240);
  check_layer(Conv2d("resnet", SampleShape{16, 16, 16}, 32, 3, 2, 1, false), 8, 250);
}

TEST_CASE("cuda layers: max and average pooling (cuDNN) match the reference") {
  DTSIM_REQUIRE_CUDA();
  check_layer(*max_pool("max2", SampleShape{3, 8, 8}, 2, 2), 4, 300);
  check_layer(*max_pool("max3s2p1", SampleShape{3, 9, 9}, 3, 2, 1), 3, 310);
  check_layer(*avg_pool("avg2", SampleShape{3, 8, 8}, 2, 2), 4, 320);
  check_layer(*avg_pool("avg3s2p1", SampleShape{2, 7, 7}, 3, 2, 1), 3, 330);
  check_layer(*global_avg_pool("gap", SampleShape{4, 8, 8}), 5, 340);
}

TEST_CASE("cuda layers: BatchNorm2d (cuDNN) matches the reference in training and eval mode, with running stats") {
  DTSIM_REQUIRE_CUDA();
  check_layer(BatchNorm2d("bn", SampleShape{4, 5, 5}), 6, 400, /*eval_too=*/true);
  check_layer(BatchNorm2d("bn_flat", SampleShape{8, 1, 1}, 1e-3, 0.3), 16, 410, true);
  check_layer(BatchNorm2d("bn_big", SampleShape{16, 16, 16}), 8, 420, true);
}

TEST_CASE("cuda layers: residual Add and the option-A SubsamplePad shortcut match the reference") {
  DTSIM_REQUIRE_CUDA();
  check_layer(Add("add", SampleShape{3, 4, 4}), 5, 500);
  check_layer(SubsamplePad("sp", SampleShape{4, 8, 8}, 2, 8), 3, 510);
  check_layer(SubsamplePad("sp_odd", SampleShape{3, 7, 7}, 2, 7), 2, 520);
  check_layer(SubsamplePad("sp_same", SampleShape{4, 6, 6}, 1, 4), 2, 530);
}

TEST_CASE("cuda layers: a layer without a CUDA implementation fails naming itself") {
  DTSIM_REQUIRE_CUDA();
  Reorder r("reorder", SampleShape{16, 2, 2}, Layout::Plain, Layout::Block16);
  Vec x(64, Device::Cuda), y(64, Device::Cuda);
  try {
    r.forward(Backend::Cuda, nullptr, x.data(), y.data(), 1);
    FAIL("no error");
  } catch (const RuntimeError& e) {
    CHECK(std::string(e.what()).find("'reorder'") != std::string::npos);
  }
}

}  // namespace test_cuda_layers_cpp
