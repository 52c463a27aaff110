// CUDA parity of the transformer layers, the gpt model and AdamW (engine/cuda/transformer*.{cpp,cu}).
// Without a usable GPU every case skips (exit 77 under ctest; test_cuda_common.hpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json_reader.hpp"
#include "engine/adamw.hpp"
#include "engine/model.hpp"
#include "engine/transformer.hpp"
#include "helpers.hpp"
#include "test_cuda_common.hpp"

namespace test_gpt_cuda_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

std::unique_ptr<Model> gpt(Device d, double dropout = 0) {
  json spec = {{"kind", "gpt"}, {"n_layer", 2}, {"n_head", 2}, {"n_embd", 32}, {"dropout", dropout}};
  ObjectReader r(spec, JsonOrigin{"t", "model"});
  return make_model(r, SampleShape{16, 1, 1}, 13, ComputeOptions{d, 1});
}

Batch tokens(size_t n, int len, int vocab) {
  Rng r(5, Stream::Algorithm, {});
  Batch b;
  b.shape = SampleShape{len, 1, 1};
  b.targets = static_cast<size_t>(len);
  for (size_t i = 0; i < n * static_cast<size_t>(len); ++i) {
    b.x.push_back(static_cast<float>(r.below(static_cast<uint64_t>(vocab))));
    b.y.push_back(static_cast<int32_t>(r.below(static_cast<uint64_t>(vocab))));
  }
  return b;
}

}  // namespace

TEST_CASE("cuda gpt: loss and every gradient match the cpu model, evaluation matches, repeated steps are bitwise equal") {
  DTSIM_REQUIRE_CUDA();
  auto host = gpt(Device::Cpu);
  auto dev = gpt(Device::Cuda);
  Vec p(host->num_params()), g(host->num_params());
  host->init_params(p.view(), 3);
  const Batch b = tokens(4, 16, 13);
  const float lh = host->forward_backward(p.view(), b, g.view());
  const Vec pd = test::to_device(std::vector<float>(p.data(), p.data() + p.size()));
  Vec gd(p.size(), Device::Cuda), gd2(p.size(), Device::Cuda);
  const float ld = dev->forward_backward(pd.view(), b, gd.view());
  CHECK(ld == doctest::Approx(lh).epsilon(1e-5));
  const std::vector<float> gh = test::to_host(gd);
  CHECK(test::max_rel_diff(gh.data(), g.data(), gh.size()) <= 1e-4);
  CHECK(dev->forward_backward(pd.view(), b, gd2.view()) == ld);
  CHECK(test::to_host(gd2) == gh);
  Split s;
  s.x = b.x;
  s.y = b.y;
  s.targets = 16;
  CHECK(dev->evaluate(pd.view(), s, 0, 4).loss() == doctest::Approx(host->evaluate(p.view(), s, 0, 4).loss()).epsilon(1e-5));
}

TEST_CASE("cuda gpt: dropout masks are the host's (same seed and call), so a dropout step matches the cpu one") {
  DTSIM_REQUIRE_CUDA();
  auto host = gpt(Device::Cpu, 0.2);
  auto dev = gpt(Device::Cuda, 0.2);
  Vec p(host->num_params()), g(host->num_params());
  host->init_params(p.view(), 3);
  Vec pd(p.size(), Device::Cuda), gd(p.size(), Device::Cuda);
  dev->init_params(pd.view(), 3);  // also seeds the dropout layers
  CHECK(test::to_host(pd) == std::vector<float>(p.data(), p.data() + p.size()));
  const Batch b = tokens(2, 16, 13);
  const float lh = host->forward_backward(p.view(), b, g.view());
  const float ld = dev->forward_backward(pd.view(), b, gd.view());
  CHECK(ld == doctest::Approx(lh).epsilon(1e-5));
  const std::vector<float> gh = test::to_host(gd);
  CHECK(test::max_rel_diff(gh.data(), g.data(), gh.size()) <= 1e-4);
}

TEST_CASE("cuda AdamW: a step on device buffers gives the host's bits") {
  DTSIM_REQUIRE_CUDA();
  const size_t n = 10007;
  const auto w0 = test::random_floats(n, 1), g0 = test::random_floats(n, 2, -0.01f, 0.01f);
  const AdamWConfig cfg{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  Vec wh(n), gh(n);
  std::copy(w0.begin(), w0.end(), wh.data());
  std::copy(g0.begin(), g0.end(), gh.data());
  AdamW host(cfg, n, Device::Cpu), dev(cfg, n, Device::Cuda);
  Vec wd = test::to_device(w0), gd = test::to_device(g0);
  for (int step = 0; step < 3; ++step) {
    host.step(wh.view(), gh.view());
    dev.step(wd.view(), gd.view());
  }
  CHECK(test::to_host(wd) == std::vector<float>(wh.data(), wh.data() + n));
  CHECK(test::to_host(dev.first_moment()) == std::vector<float>(host.first_moment().data(), host.first_moment().data() + n));
  Vec mixed(n);
  CHECK_THROWS_AS(dev.step(mixed.view(), gd.view()), RuntimeError);
}

}  // namespace test_gpt_cuda_cpp
