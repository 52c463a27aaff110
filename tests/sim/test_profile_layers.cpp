// compute.time.kind "profile" with per-layer times (engine/profile.hpp, docs/profiles.md): the
// layer-wise phases take the profile's measured times; a profile without them splits the step by
// FLOPs as before, and its runs do not change; a per-layer list of another model is refused.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/profile.hpp"
#include "helpers.hpp"
#include "sim/overlap_plan.hpp"
#include "tests/rel.hpp"

namespace test_profile_layers_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace profile_layers_test {

// The small experiment's model (MLP 64-30-10): flatten, fc1, relu1, fc2.
const std::vector<std::string> kLayers = {"flatten", "fc1", "relu1", "fc2"};
// Chosen per-layer times at batch 16 (flatten's backward: none, so no phase).
const std::vector<double> kForward = {0.0005, 0.002, 0.0005, 0.001};   // 4 ms
const std::vector<double> kBackward = {0.0, 0.003, 0.001, 0.002};      // 6 ms

engine::ComputeProfile profile(bool per_layer) {
  engine::ComputeProfile p;
  p.model_kind = "mlp";
  p.model = {{"kind", "mlp"}, {"hidden", {30}}};
  p.input = engine::SampleShape{1, 1, 64};
  p.classes = 10;
  p.batch = 16;
  p.device = "cpu";
  p.forward_s = 0.004;
  p.backward_s = 0.006;
  p.update_s = 0.001;
  p.step_s = 0.011;
  if (per_layer)
    for (size_t l = 0; l < kLayers.size(); ++l) p.layers.push_back({kLayers[l], "", kForward[l], kBackward[l]});
  return p;
}

// 2 accelerator workers (a device: their collectives do not slow the compute), SSGD with DDP's
// buckets, timing-only, compute from the profile file, the trace on.
json config(const std::string& profile_file, const std::string& overlap = "ddp") {
  json cfg = small_config(2, 0);
  cfg["platform"]["workers"]["speed"] = "v100";
  cfg["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", overlap}}}};
  cfg["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "profile"}, {"file", profile_file}}}};
  cfg["training"]["samples"] = 16 * 2 * 4;
  cfg["output"]["trace"] = true;
  return cfg;
}

// Every layer phase's durations in the trace (seconds), by span name ("forward fc1").
std::map<std::string, std::vector<double>> phase_durations(const std::string& trace) {
  std::map<std::string, std::vector<double>> out;
  const json doc = json::parse(trace);
  for (const auto& e : doc["traceEvents"]) {
    if (e.value("cat", "") != "compute" || !e.contains("dur")) continue;
    const std::string name = e.value("name", "");
    if (name.rfind("forward ", 0) == 0 || name.rfind("backward ", 0) == 0) out[name].push_back(e["dur"].get<double>() * 1e-6);
  }
  return out;
}

std::string error_of(const json& doc) {
  try {
    load(doc);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace profile_layers_test

using namespace profile_layers_test;

TEST_CASE("profile per-layer times: each layer-wise phase lasts the profile's time for it, scaled by batch size") {
  TempDir dir;
  io::atomic_write(dir.file("p.json"), engine::to_json(profile(true)).dump());
  for (int batch : {16, 32}) {
    CAPTURE(batch);
    json cfg = config(dir.file("p.json"));
    cfg["training"]["batch_size"] = batch;
    cfg["training"]["samples"] = batch * 2 * 4;
    const ChildRun r = run_forked(load(cfg));
    REQUIRE(r.exit_code == 0);
    const auto d = phase_durations(r.trace);
    const double scale = batch / 16.0;
    for (size_t l = 0; l < kLayers.size(); ++l)
      for (const auto& [dir_name, t] : {std::pair<std::string, double>{"forward", kForward[l]}, {"backward", kBackward[l]}}) {
        const std::string name = dir_name + " " + kLayers[l];
        CAPTURE(name);
        if (t == 0) {
          CHECK(d.count(name) == 0);  // no time, no phase
          continue;
        }
        REQUIRE(d.count(name) == 1);
        CHECK(d.at(name).size() == 2 * 4);  // 2 workers x 4 steps
        for (double got : d.at(name)) CHECK(got == dtsim_test::Rel(t * scale).epsilon(1e-9));
      }
    // The whole compute of a worker is the profile's forward + backward, as without layers.
    CHECK(r.summary["per_worker"][0]["compute_s"].get<double>() == dtsim_test::Rel(4 * 0.010 * scale).epsilon(1e-9));
  }
}

TEST_CASE("profile per-layer times: a profile without them splits by FLOPs as before, whole-vector runs do not change") {
  TempDir dir;
  io::atomic_write(dir.file("old.json"), engine::to_json(profile(false)).dump());
  io::atomic_write(dir.file("new.json"), engine::to_json(profile(true)).dump());
  // Old file, layer-wise: each phase is its FLOPs' share of the 10 ms step (phase_shares, Flops).
  const ChildRun old = run_forked(load(config(dir.file("old.json"))));
  REQUIRE(old.exit_code == 0);
  json spec = {{"kind", "mlp"}, {"hidden", {30}}};
  ObjectReader mr(spec, {"test.json", "model"});
  const engine::ModelInfo mi = engine::model_info(mr, engine::SampleShape{1, 1, 64}, 10);
  const sim::PhaseShares flops = sim::phase_shares({mi.layers, mi.param_tensors}, sim::ShareBasis::Flops);
  const auto d = phase_durations(old.trace);
  size_t phases = 0;
  for (size_t l = 0; l < mi.layers.size(); ++l)
    for (const auto& [dir_name, share] :
         {std::pair<std::string, double>{"forward", flops.forward[l]}, {"backward", flops.backward[l]}}) {
      const std::string name = dir_name + " " + mi.layers[l].name;
      CAPTURE(name);
      if (share <= 0) {
        CHECK(d.count(name) == 0);
        continue;
      }
      ++phases;
      REQUIRE(d.count(name) == 1);
      // trace.json's durations are in microseconds with 6 decimals: whole picoseconds
      for (double got : d.at(name)) CHECK(std::fabs(got - 0.010 * share) <= 1e-12);
    }
  CHECK(phases == d.size());
  // The same run with per-layer times is timed differently...
  const ChildRun measured = run_forked(load(config(dir.file("new.json"))));
  REQUIRE(measured.exit_code == 0);
  CHECK(measured.trace != old.trace);
  // ...but without layer-wise timing per-layer times change nothing, bit for bit.
  const ChildRun a = run_forked(load(config(dir.file("old.json"), "none")));
  const ChildRun b = run_forked(load(config(dir.file("new.json"), "none")));
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  CHECK(a.trace == b.trace);
  CHECK(metrics_without_wall(a.metrics) == metrics_without_wall(b.metrics));
  CHECK(a.summary["simulated_time_s"] == b.summary["simulated_time_s"]);
}

TEST_CASE("profile per-layer times: a list that is not the model's layers is an input error naming the profile's key") {
  TempDir dir;
  engine::ComputeProfile p = profile(true);
  // Another count: the config's model has two hidden layers (6 layers).
  io::atomic_write(dir.file("p.json"), engine::to_json(p).dump());
  json cfg = config(dir.file("p.json"));
  cfg["model"]["hidden"] = {30, 30};
  std::string err = error_of(cfg);
  CAPTURE(err);
  CHECK(err.find("test.json: compute.time.file: " + dir.file("p.json") + ": layers: lists 4 layers, the model 'mlp' has 6") == 0);
  // Another name.
  p.layers[2].name = "act1";
  io::atomic_write(dir.file("q.json"), engine::to_json(p).dump());
  err = error_of(config(dir.file("q.json")));
  CHECK(err.find("test.json: compute.time.file: " + dir.file("q.json") +
                 ": layers[2].name: 'act1', but the model's layer 2 is 'relu1'") == 0);
  // Times that do not add up to the profile's totals.
  p = profile(true);
  p.forward_s = 0.005;
  io::atomic_write(dir.file("r.json"), engine::to_json(p).dump());
  err = error_of(config(dir.file("r.json")));
  CHECK(err.find("test.json: compute.time.file: " + dir.file("r.json") + ": layers: the layers' forward_s add up to") == 0);
}

}  // namespace test_profile_layers_cpp
