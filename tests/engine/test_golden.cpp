// Golden values from PyTorch (tests/engine/data/make_golden.py, float64): a tiny fixed net with
// every layer kind (conv with bias, BatchNorm, ReLU, max pool, option-A and option-B residual
// blocks, global average pool, linear) must give the same loss, gradients, running statistics and
// eval-mode loss, to 1e-5, on every host backend.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/backend.hpp"
#include "engine/graph.hpp"
#include "tests/rel.hpp"

namespace test_golden_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

void block(Graph& g, int& t, const std::string& p, int out, char shortcut) {
  const int x = t;
  const SampleShape xs = g.shape(x);
  t = g.add(std::make_unique<Conv2d>(p + ".c1", xs, out, 3, 2, 1, false), t);
  t = g.add(std::make_unique<BatchNorm2d>(p + ".b1", g.shape(t)), t);
  t = g.add(std::make_unique<ReLU>(p + ".r1", g.shape(t)), t);
  t = g.add(std::make_unique<Conv2d>(p + ".c2", g.shape(t), out, 3, 1, 1, false), t);
  const int main = g.add(std::make_unique<BatchNorm2d>(p + ".b2", g.shape(t)), t);
  int sc;
  if (shortcut == 'B') {
    sc = g.add(std::make_unique<Conv2d>(p + ".sc0", xs, out, 1, 2, 0, false), x);
    sc = g.add(std::make_unique<BatchNorm2d>(p + ".sc1", g.shape(sc)), sc);
  } else {
    sc = g.add(std::make_unique<SubsamplePad>(p + ".sc", xs, 2, out), x);
  }
  t = g.add(std::make_unique<Add>(p + ".add", g.shape(main)), main, sc);
  t = g.add(std::make_unique<ReLU>(p + ".r2", g.shape(t)), t);
}

Graph golden_net() {
  Graph g(SampleShape{3, 16, 16});
  int t = g.add(std::make_unique<Conv2d>("conv1", g.shape(0), 4, 3, 1, 1, true), 0);
  t = g.add(std::make_unique<BatchNorm2d>("bn1", g.shape(t)), t);
  t = g.add(std::make_unique<ReLU>("relu", g.shape(t)), t);
  t = g.add(max_pool("pool", g.shape(t), 2, 2), t);
  block(g, t, "blockB", 8, 'B');
  block(g, t, "blockA", 16, 'A');
  t = g.add(global_avg_pool("gap", g.shape(t)), t);
  t = g.add(std::make_unique<Flatten>("flatten", g.shape(t)), t);
  g.add(std::make_unique<Linear>("fc", g.shape(t), 5), t);
  return g;
}

double rel_diff(const float* got, const std::vector<double>& want, size_t off, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[off + i]));
    scale = std::max(scale, std::abs(want[off + i]));
  }
  return scale > 0 ? err / scale : err;
}

}  // namespace

TEST_CASE("golden: loss, gradients and running statistics of a tiny ResNet match PyTorch to 1e-5") {
  std::ifstream in(std::string(DTSIM_SOURCE_DIR) + "/tests/engine/data/golden_tiny_resnet.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const json gold = json::parse(ss.str());
  const size_t n = gold.at("batch").get<size_t>();
  const auto grads = gold.at("grads").get<std::vector<double>>();
  const auto state = gold.at("state").get<std::vector<double>>();

  std::vector<Device> devices{Device::Reference};
  if (onednn_available()) devices.push_back(Device::Cpu);
  for (Device d : devices) {
    CAPTURE(std::string(device_name(d)));
    auto m = make_graph_model("golden", golden_net(), 5, ComputeOptions{d, 1});
    REQUIRE(m->num_params() == gold.at("num_params").get<size_t>());
    REQUIRE(m->num_state() == state.size());
    Vec p(m->num_params()), g(m->num_params()), st(m->num_state());
    for (size_t i = 0; i < p.size(); ++i) p.data()[i] = static_cast<float>(0.3 * std::sin(1.3 * double(i) + 0.5));
    m->init_state(st.view());
    Batch b;
    b.shape = SampleShape{3, 16, 16};
    b.x.resize(n * 768);
    for (size_t i = 0; i < b.x.size(); ++i)
      b.x[i] = static_cast<float>(std::sin(0.9 * double(i)) + 0.5 * std::cos(0.31 * double(i)));
    for (size_t i = 0; i < n; ++i) b.y.push_back(static_cast<int32_t>(i % 5));

    const float loss = m->forward_backward(p.view(), st.view(), b, g.view());
    CHECK(loss == dtsim_test::Rel(gold.at("loss").get<double>()).epsilon(1e-5));
    // All gradients to 1e-5 of their largest magnitude; every tensor to 1e-4 of its own (conv1's
    // bias feeds a BatchNorm: its exact gradient is 0, both sides hold rounding noise only).
    const double global = rel_diff(g.data(), grads, 0, grads.size());
    MESSAGE(std::string(device_name(d)), ": max |gradient - PyTorch| / max |gradient| = ", global);
    CHECK(global <= 1e-5);
    double gscale = 0;
    for (double v : grads) gscale = std::max(gscale, std::abs(v));
    for (const ParamTensor& t : m->param_tensors()) {
      CAPTURE(t.name);
      double scale = 0;
      for (size_t i = 0; i < t.size; ++i) scale = std::max(scale, std::abs(grads[t.offset + i]));
      if (t.name == "conv1.bias") CHECK(scale < 1e-12 * gscale);
      else CHECK(rel_diff(g.data() + t.offset, grads, t.offset, t.size) <= 1e-4);
    }
    CHECK(rel_diff(st.data(), state, 0, state.size()) <= 1e-5);
    Split split;
    split.x = b.x;
    split.y = b.y;
    CHECK(m->evaluate(p.view(), st.view(), split, 0, n).loss() ==
          dtsim_test::Rel(gold.at("eval_loss").get<double>()).epsilon(1e-5));
  }
}

}  // namespace test_golden_cpp
