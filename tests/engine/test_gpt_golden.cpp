// Golden values from PyTorch (tests/engine/data/make_golden_gpt.py, float64): a tiny GPT written
// as nanoGPT's model.py must give the same loss and parameter gradients, and one AdamW step the
// same parameters, to 1e-5, on both host backends.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/adamw.hpp"
#include "engine/backend.hpp"
#include "engine/model.hpp"
#include "tests/rel.hpp"

namespace test_gpt_golden_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

json load_golden() {
  std::ifstream in(std::string(DTSIM_SOURCE_DIR) + "/tests/engine/data/golden_tiny_gpt.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

double max_abs(const float* got, const std::vector<double>& want, size_t off, size_t n) {
  double err = 0;
  for (size_t i = 0; i < n; ++i) err = std::max(err, std::abs(double(got[i]) - want[off + i]));
  return err;
}

}  // namespace

TEST_CASE("golden: a tiny GPT's loss, gradients and one AdamW step match PyTorch to 1e-5") {
  const json gold = load_golden();
  const size_t T = gold.at("block_size"), V = gold.at("vocab"), B = gold.at("batch");
  const auto grads = gold.at("grads").get<std::vector<double>>();
  const auto after = gold.at("params_after").get<std::vector<double>>();
  const json& aw = gold.at("adamw");
  const AdamWConfig cfg{aw.at("lr"), aw.at("beta1"), aw.at("beta2"), aw.at("eps"), aw.at("weight_decay")};
  double gscale = 0;
  for (double v : grads) gscale = std::max(gscale, std::abs(v));

  std::vector<Device> devices{Device::Reference};
  if (onednn_available()) devices.push_back(Device::Cpu);
  for (Device d : devices) {
    CAPTURE(std::string(device_name(d)));
    json spec = {{"kind", "gpt"}, {"n_layer", gold.at("n_layer")}, {"n_head", gold.at("n_head")},
                 {"n_embd", gold.at("n_embd")}};
    ObjectReader r(spec, JsonOrigin{"golden", "model"});
    auto m = make_model(r, SampleShape{static_cast<int>(T), 1, 1}, static_cast<int>(V), ComputeOptions{d, 1});
    REQUIRE(m->num_params() == gold.at("num_params").get<size_t>());
    Vec p(m->num_params()), g(m->num_params());
    for (size_t i = 0; i < p.size(); ++i) p.data()[i] = static_cast<float>(0.3 * std::sin(1.3 * double(i) + 0.5));
    const Vec p0 = p.clone();
    Batch b;
    b.shape = SampleShape{static_cast<int>(T), 1, 1};
    b.targets = T;
    for (int t : gold.at("tokens").get<std::vector<int>>()) b.x.push_back(static_cast<float>(t));
    b.y = gold.at("targets").get<std::vector<int32_t>>();
    REQUIRE(b.size() == B);

    const float loss = m->forward_backward(p.view(), b, g.view());
    CHECK(loss == dtsim_test::Rel(gold.at("loss").get<double>()).epsilon(1e-5));
    const double gerr = max_abs(g.data(), grads, 0, grads.size()) / gscale;
    MESSAGE(std::string(device_name(d)), ": max |gradient - PyTorch| / max |gradient| = ", gerr);
    CHECK(gerr <= 1e-5);
    for (const ParamTensor& t : m->param_tensors()) {
      CAPTURE(t.name);
      double scale = 0;
      for (size_t i = 0; i < t.size; ++i) scale = std::max(scale, std::abs(grads[t.offset + i]));
      CHECK(max_abs(g.data() + t.offset, grads, t.offset, t.size) <= 1e-5 * std::max(scale, 1e-3 * gscale));
    }

    // AdamW on PyTorch's gradients (rounded to float): every parameter to 1e-5.
    {
      Vec w = p0.clone(), gg(grads.size());
      for (size_t i = 0; i < grads.size(); ++i) gg.data()[i] = static_cast<float>(grads[i]);
      AdamW opt(cfg, w.size(), Device::Cpu);
      opt.step(w.view(), gg.view());
      CHECK(max_abs(w.data(), after, 0, after.size()) <= 1e-5);
    }
    // AdamW on dtsim's own gradients: the same, except where the exact gradient is 0 and both
    // sides hold rounding noise only (the key bias: a constant added to every score of a row
    // leaves the softmax unchanged), where Adam's normalised step amplifies the noise.
    {
      Vec w = p0.clone();
      AdamW opt(cfg, w.size(), Device::Cpu);
      opt.step(w.view(), g.view());
      size_t noisy = 0;
      double err = 0;
      for (size_t i = 0; i < after.size(); ++i) {
        if (std::abs(grads[i]) < 1e-9 * gscale) {
          ++noisy;
          continue;
        }
        err = std::max(err, std::abs(double(w.data()[i]) - after[i]));
      }
      MESSAGE(std::string(device_name(d)), ": AdamW step on dtsim's gradients, max |param - PyTorch| = ", err, " (", noisy,
              " zero-gradient entries skipped)");
      CHECK(err <= 1e-5);
      CHECK(noisy * 100 < after.size());  // a few: the key biases (n_layer x n_embd) and the like
    }
  }
}

}  // namespace test_gpt_golden_cpp
