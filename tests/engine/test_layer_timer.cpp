// Per-layer timing (engine/layer_timer.hpp) and the per-layer times `dtsim profile` measures with
// it (engine/profile.hpp): every lap names a layer of ModelInfo::layers in execution order, a timer
// changes no number of the step, and the measured per-layer medians add up to the pass medians.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/layer_timer.hpp"
#include "engine/ops.hpp"
#include "engine/profile.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_layer_timer_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace layer_timer_test {

// Records every call, in order.
struct Recorder final : LayerTimer {
  std::vector<std::pair<Pass, long>> calls;  // layer -1: begin
  void begin(Pass p) override { calls.push_back({p, -1}); }
  void lap(Pass p, size_t layer) override { calls.push_back({p, static_cast<long>(layer)}); }
};

struct Case {
  json spec;
  SampleShape input;
  int classes;
};

std::vector<Case> cases() {
  return {{{{"kind", "mlp"}, {"hidden", {16, 8}}}, SampleShape{1, 4, 4}, 3},
          {{{"kind", "lenet5"}}, SampleShape{1, 28, 28}, 10},
          {{{"kind", "resnet8"}}, SampleShape{3, 8, 8}, 4}};  // residual adds, BatchNorm, 1x1 shortcuts
}

std::vector<LayerCost> layers_of(const Case& c) {
  json s = c.spec;
  ObjectReader r(s, JsonOrigin{"test.json", "model"});
  return model_info(r, c.input, c.classes).layers;
}

std::unique_ptr<Model> build(const Case& c, Device d) {
  json s = c.spec;
  ObjectReader r(s, JsonOrigin{"test.json", "model"});
  return make_model(r, c.input, c.classes, ComputeOptions{d, 1});
}

std::vector<float> host_copy(const Vec& v) {
  Vec h(v.size(), Device::Cpu);
  ops::copy(h.view(), v.view());
  return {h.data(), h.data() + h.size()};
}

std::vector<Device> devices() {
  std::vector<Device> d{Device::Reference, Device::Cpu};
  if (cuda::available()) d.push_back(Device::Cuda);  // synchronizes per layer while timed
  return d;
}

void write_text(const std::string& file, const std::string& text) { std::ofstream(file) << text; }

std::string error_of(const std::string& file) {
  try {
    read_compute_profile(file);
  } catch (const InputError& e) {
    return e.path() + ": " + e.reason();
  }
  return "";
}

}  // namespace layer_timer_test

using namespace layer_timer_test;

TEST_CASE("layer timer: laps name the model's layers in execution order and change no number of the step") {
  for (const Case& c : cases())
    for (Device d : devices()) {
      CAPTURE(c.spec.dump());
      CAPTURE(device_name(d));
      const std::vector<LayerCost> layers = layers_of(c);
      const long L = static_cast<long>(layers.size());
      auto m = build(c, d);
      Vec w(m->num_params(), d), g0(m->num_params(), d), g1(m->num_params(), d);
      Vec s0(m->num_state(), d), s1(m->num_state(), d);
      m->init_params(w.view(), 3);
      if (m->num_state()) {
        m->init_state(s0.view());
        m->init_state(s1.view());
      }
      const Batch b = test::random_batch(4, c.input, c.classes, 9);
      const float loss0 = m->forward_backward(w.view(), s0.view(), b, g0.view());
      Recorder rec;
      m->set_layer_timer(&rec);
      const float loss1 = m->forward_backward(w.view(), s1.view(), b, g1.view());
      // The same step, bit for bit.
      CHECK(std::memcmp(&loss0, &loss1, sizeof loss0) == 0);
      CHECK(host_copy(g0) == host_copy(g1));
      CHECK(host_copy(s0) == host_copy(s1));
      // begin(forward), forward laps covering 0 .. L-1 in order, begin(backward), backward laps
      // covering L-1 .. 0 in order (the loss: the output layer's), then one more lap of layer 0
      // (the tied gradients' sums).
      std::vector<long> fwd, bwd;
      size_t begins = 0;
      for (const auto& [pass, layer] : rec.calls) {
        if (layer < 0) {
          CHECK(pass == (begins++ ? Pass::Backward : Pass::Forward));
          continue;
        }
        CHECK(pass == (begins == 1 ? Pass::Forward : Pass::Backward));
        (pass == Pass::Forward ? fwd : bwd).push_back(layer);
      }
      CHECK(begins == 2);
      CHECK(rec.calls.front() == std::make_pair(Pass::Forward, -1L));
      REQUIRE(fwd.size() >= static_cast<size_t>(L));
      REQUIRE(bwd.size() >= static_cast<size_t>(L) + 1);
      CHECK(std::is_sorted(fwd.begin(), fwd.end()));
      CHECK(std::is_sorted(bwd.rbegin(), bwd.rend()));
      CHECK(fwd.front() == 0);
      CHECK(fwd.back() == L - 1);
      CHECK(bwd.front() == L - 1);
      CHECK(bwd.back() == 0);
      CHECK(bwd[bwd.size() - 2] == 0);
      for (long l = 0; l < L; ++l) {  // every layer, none skipped
        CAPTURE(layers[static_cast<size_t>(l)].name);
        CHECK(std::find(fwd.begin(), fwd.end(), l) != fwd.end());
        CHECK(std::find(bwd.begin(), bwd.end(), l) != bwd.end());
      }
      // Evaluation is not timed; unset, the model calls nothing.
      Split sp;
      sp.x = b.x;
      sp.y = b.y;
      rec.calls.clear();
      m->evaluate(w.view(), s1.view(), sp, 0, 4);
      CHECK(rec.calls.empty());
      m->set_layer_timer(nullptr);
      m->forward_backward(w.view(), s1.view(), b, g1.view());
      CHECK(rec.calls.empty());
    }
}

TEST_CASE("layer timer: LayerClock sums each layer's laps per pass, clear() resets, an unknown layer throws") {
  LayerClock clock(3, false);
  clock.begin(Pass::Forward);
  clock.lap(Pass::Forward, 0);
  clock.lap(Pass::Forward, 2);
  clock.lap(Pass::Forward, 2);
  clock.begin(Pass::Backward);
  clock.lap(Pass::Backward, 1);
  CHECK(clock.forward()[0] >= 0);
  CHECK(clock.forward()[1] == 0);
  CHECK(clock.backward()[0] == 0);
  CHECK(clock.backward()[2] == 0);
  CHECK_THROWS_AS(clock.lap(Pass::Backward, 3), RuntimeError);
  clock.clear();
  for (size_t l = 0; l < 3; ++l) CHECK(clock.forward()[l] + clock.backward()[l] == 0);
  // The thread's CPU time: a busy lap takes some.
  LayerClock cpu(1, true);
  cpu.begin(Pass::Forward);
  volatile double x = 0;
  for (int i = 0; i < 2000000; ++i) x = x + std::sqrt(static_cast<double>(i));
  cpu.lap(Pass::Forward, 0);
  CHECK(cpu.forward()[0] > 0);
}

TEST_CASE("profile: per-layer medians follow the model's layer list and add up to the forward and backward medians") {
  test::TempDir dir;
  for (const Case& c : cases()) {
    CAPTURE(c.spec.dump());
    const std::vector<LayerCost> layers = layers_of(c);
    const ComputeProfile p = measure_compute_profile(c.spec, JsonOrigin{"MODEL", ""}, c.input, c.classes, 4,
                                                     ComputeOptions{Device::Cpu, 1}, 3, 1);
    REQUIRE(p.layers.size() == layers.size());
    double f = 0, bw = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      CHECK(p.layers[l].name == layers[l].name);
      CHECK(p.layers[l].type == layers[l].type);
      CHECK(p.layers[l].forward_s >= 0);
      CHECK(p.layers[l].backward_s >= 0);
      f += p.layers[l].forward_s;
      bw += p.layers[l].backward_s;
    }
    CHECK(f == dtsim_test::Rel(p.forward_s).epsilon(1e-12));
    CHECK(bw == dtsim_test::Rel(p.backward_s).epsilon(1e-12));
    CHECK(p.layer_scale_forward > 0);
    CHECK(p.layer_scale_backward > 0);
    // Written and read back: the same layers, and they fit the model they were measured on.
    io::atomic_write(dir.file("p.json"), to_json(p).dump(2));
    const ComputeProfile q = read_compute_profile(dir.file("p.json"));
    REQUIRE(q.layers.size() == p.layers.size());
    for (size_t l = 0; l < q.layers.size(); ++l) {
      CHECK(q.layers[l].name == p.layers[l].name);
      CHECK(q.layers[l].forward_s == p.layers[l].forward_s);
      CHECK(q.layers[l].backward_s == p.layers[l].backward_s);
    }
    CHECK(q.layer_scale_forward == p.layer_scale_forward);
    CHECK_NOTHROW(check_profile_layers(q.layers, layers, q.model_kind, "p.json"));
  }
}

TEST_CASE("profile: per-layer lists that do not fit the model or the totals are input errors, old files read as before") {
  test::TempDir dir;
  ComputeProfile p;
  p.model_kind = "mlp";
  p.model = {{"kind", "mlp"}, {"hidden", {16}}};
  p.input = SampleShape{1, 4, 4};
  p.classes = 3;
  p.batch = 4;
  p.device = "cpu";
  p.forward_s = 0.004;
  p.backward_s = 0.008;
  p.update_s = 0.001;
  p.step_s = 0.013;
  // Without layers the file is what it always was: no new key, nothing per layer read back.
  const json old = to_json(p);
  CHECK_FALSE(old.contains("layers"));
  CHECK_FALSE(old.contains("layer_scale"));
  io::atomic_write(dir.file("old.json"), old.dump());
  CHECK(read_compute_profile(dir.file("old.json")).layers.empty());
  CHECK_NOTHROW(check_profile_layers({}, {}, "mlp", "old.json"));

  const Case mlp{p.model, p.input, p.classes};
  const std::vector<LayerCost> layers = layers_of(mlp);  // flatten, fc1, relu1, fc2
  REQUIRE(layers.size() == 4);
  for (size_t l = 0; l < layers.size(); ++l) p.layers.push_back({layers[l].name, layers[l].type, 0.001, 0.002});
  json good = to_json(p);
  CHECK(good["layers"].size() == 4);
  CHECK_FALSE(good.contains("layer_scale"));  // a hand-written file need not have one
  io::atomic_write(dir.file("good.json"), good.dump());
  CHECK_NOTHROW(check_profile_layers(read_compute_profile(dir.file("good.json")).layers, layers, "mlp", "good.json"));

  auto err = [&](json j) {
    io::atomic_write(dir.file("bad.json"), j.dump());
    return error_of(dir.file("bad.json"));
  };
  json j = good;
  j["layers"][1]["forward_s"] = 0.0011;  // the layers now add up to 4.1 ms, 2.5 % off
  CHECK(err(j).find("layers: the layers' forward_s add up to 0.0041 s, the profile's forward_s is 0.004 s") == 0);
  j = good;
  j["layers"][1]["backward_s"] = 0.00202;  // 0.25 % off: rounding in a hand-edited file
  CHECK(err(j) == "");
  j = good;
  j["layers"][2]["backward_s"] = -0.001;
  CHECK(err(j).find("layers[2].backward_s: must be a finite, non-negative time") == 0);
  j = good;
  j["layers"][0]["fwd_s"] = 0;
  CHECK(err(j).find("layers[0].fwd_s: unknown key 'fwd_s'") == 0);
  j = good;
  j["layers"] = json::array();
  CHECK(err(j).find("layers: needs at least one layer") == 0);
  j = good;
  j["layer_scale"] = {{"forward", 0}, {"backward", 1}};
  CHECK(err(j).find("layer_scale.forward: must be a finite, positive factor") == 0);
  // Found by a robustness matrix: layer_scale without layers was an "unknown key" (the known keys
  // listed without it), and a negative step count was accepted.
  j = old;
  j["layer_scale"] = {{"forward", 1}, {"backward", 1}};
  CHECK(err(j).find("layer_scale: scales per-layer times: it needs \"layers\"") == 0);
  j = old;
  j["steps"] = -1;
  CHECK(err(j).find("steps: must be in [0, 100000000], got -1") == 0);

  // The model's layers, by count and by name.
  const Case wider{{{"kind", "mlp"}, {"hidden", {16, 16}}}, p.input, p.classes};
  try {
    check_profile_layers(p.layers, layers_of(wider), "mlp", "good.json");
    FAIL("a profile of 4 layers for a model of 6 was accepted");
  } catch (const InputError& e) {
    CHECK(e.file() == "good.json");
    CHECK(e.path() == "layers");
    CHECK(e.reason().find("lists 4 layers, the model 'mlp' has 6 (flatten, fc1, relu1, fc2, relu2, fc3)") == 0);
  }
  p.layers[2].name = "relu";
  try {
    check_profile_layers(p.layers, layers, "mlp", "good.json");
    FAIL("a misnamed layer was accepted");
  } catch (const InputError& e) {
    CHECK(e.path() == "layers[2].name");
    CHECK(e.reason().find("'relu', but the model's layer 2 is 'relu1'") == 0);
  }
}

}  // namespace test_layer_timer_cpp
