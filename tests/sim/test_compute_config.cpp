// The compute side of the config (issue 3): device names as host speeds, timing-only model
// descriptors, measured compute profiles, the CIFAR-10 dataset kind with augmentation, and the
// compute backend/ISA in summary.json.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/devices.hpp"
#include "engine/profile.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_compute_config_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

std::string error_of(const json& doc) {
  try {
    load(doc);
  } catch (const InputError& e) {
    return e.path() + ": " + e.reason();
  }
  return "";
}

}  // namespace

TEST_CASE("platform speeds may name a device of traces/devices.json, typos suggest the nearest") {
  json doc = small_config();
  doc["platform"]["workers"]["speed"] = "V100";
  const Experiment x = load(doc);
  CHECK(x.platform.workers.speed == dtsim_test::Rel(engine::find_device("v100")->speed()));
  CHECK(x.platform.workers.speed == dtsim_test::Rel(15.7e12 * 0.57));
  CHECK(x.resolved["platform"]["workers"]["speed"] == "V100");
  doc["platform"]["workers"]["speed"] = "h10";
  const std::string err = error_of(doc);
  CHECK(err.find("platform.workers.speed: unknown device 'h10'") != std::string::npos);
  CHECK(err.find("did you mean 'h100'") != std::string::npos);
  doc["platform"]["workers"]["speed"] = "2Tf";  // units still work
  CHECK(load(doc).platform.workers.speed == 2e12);
}

TEST_CASE("timing-only descriptors: resnet50 runs in timing-only mode, real mode is refused") {
  json doc = small_config();
  doc["model"] = {{"kind", "resnet50"}};
  doc["compute"] = {{"mode", "timing-only"}};
  const Experiment x = load(doc);
  const ChildRun r = run_forked(x);
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["model_parameters"] == 25557032);
  CHECK(r.summary["flops_per_sample"].get<double>() == dtsim_test::Rel(3 * 2 * 4.09e9).epsilon(0.01));
  // Simulated compute = FLOPs / host speed (1 Tf): one worker's steps at least that long.
  CHECK(r.summary["simulated_time_s"].get<double>() >= 2048 / 4 / 16 * 16 * 3 * 2 * 4.09e9 / 1e12 * 0.99);
  doc["compute"]["mode"] = "real";
  const std::string err = error_of(doc);
  CHECK(err.find("model.kind") == 0);
  CHECK(err.find("timing-only") != std::string::npos);
}

TEST_CASE("compute.time.kind profile: a measured profile sets the compute time, scaled by batch size") {
  TempDir dir;
  engine::ComputeProfile p;
  p.model_kind = "mlp";
  p.model = {{"kind", "mlp"}, {"hidden", {30}}};
  p.input = engine::SampleShape{64, 1, 1};
  p.classes = 10;
  p.batch = 8;  // measured at 8; the run uses 16: twice the time
  p.device = "cpu";
  p.forward_s = 0.01;
  p.backward_s = 0.03;
  p.update_s = 0.001;
  p.step_s = 0.041;
  io::atomic_write(dir.file("prof.json"), engine::to_json(p).dump());
  json doc = small_config(1, 1);
  doc["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "profile"}, {"file", dir.file("prof.json")}}}};
  doc["training"]["samples"] = 16 * 10;
  const Experiment x = load(doc);
  CHECK(x.compute.time == sim::ComputeSpec::Time::Profile);
  CHECK(x.compute.profile_batch == 8);
  const ChildRun r = run_forked(x);
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["per_worker"][0]["compute_s"].get<double>() == dtsim_test::Rel(10 * 0.08).epsilon(1e-9));
  // A profile of another model, a missing file, a malformed profile.
  doc["model"] = {{"kind", "resnet50"}};
  CHECK(error_of(doc).find("compute.time.file: the profile") == 0);
  doc = small_config(1, 1);
  doc["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "profile"}, {"file", dir.file("none.json")}}}};
  CHECK(error_of(doc).find("does not exist") != std::string::npos);
  io::atomic_write(dir.file("bad.json"), R"({"format": "dtsim-compute-profile/1", "model_kind": "mlp"})");
  doc["compute"]["time"]["file"] = dir.file("bad.json");
  CHECK(error_of(doc).find("compute.time.file") == 0);
}

TEST_CASE("cifar10 dataset: a tiny generated set trains LeNet-5 with augmentation, summary records backend and ISA") {
  TempDir dir;
  write_cifar(dir.str(), 8);
  json doc = small_config(2, 1);
  doc["dataset"] = {{"kind", "cifar10"}, {"path", dir.str()}, {"augment", true}};
  doc["model"] = {{"kind", "lenet5"}};
  doc["training"] = {{"batch_size", 4}, {"epochs", 1}, {"eval_every_samples", 0}};
  const Experiment x = load(doc);
  CHECK(x.training.train_size == 40);
  CHECK(x.dataset.augment);
  const ChildRun a = run_forked(x), b = run_forked(x);
  REQUIRE(a.exit_code == 0);
  CHECK(a.summary["samples"] == 40);
  CHECK(a.params == b.params);  // augmentation keyed by (seed, worker, step): deterministic
  CHECK(a.summary["compute_backend"].is_string());
  CHECK(a.summary["compute_isa"].is_string());
  doc["dataset"]["augment"] = false;
  const ChildRun c = run_forked(load(doc));
  REQUIRE(c.exit_code == 0);
  CHECK(c.params != a.params);
  // Errors: a missing file names the path; augmentation of non-image data is refused.
  std::filesystem::remove(dir.file("data_batch_4.bin"));
  CHECK(error_of(doc).find("dataset.path") == 0);
  CHECK(error_of(doc).find("data_batch_4.bin") != std::string::npos);
  json syn = small_config();
  syn["dataset"]["augment"] = true;
  CHECK(error_of(syn).find("dataset.augment") == 0);
}

TEST_CASE("config.resolved.json loads again as a config and resolves to itself (examples, epochs or samples)") {
  // dtsim run --resume DIR loads DIR/config.resolved.json: it must be a valid config on its own.
  for (const char* f : {"quickstart.json", "compare-algorithms.json"})
    for (const std::vector<std::string>& sets :
         {std::vector<std::string>{}, {"training.epochs=0.5"}, {"training.samples=1000"}}) {
      const std::string file = std::string(DTSIM_SOURCE_DIR) + "/examples/" + f;
      CAPTURE(file);
      const sim::Experiment a = sim::load_experiment(file, sets);
      const sim::Experiment b =
          sim::load_experiment_json(a.resolved, "config.resolved.json", DTSIM_SOURCE_DIR "/examples", {});
      CHECK(b.resolved == a.resolved);
      CHECK(b.training.samples == a.training.samples);
      CHECK(!a.resolved["training"].contains("epochs"));
    }
  // Neither epochs nor samples: the default of 1 epoch is recorded as samples only (both were
  // recorded, and the resolved config was refused: "give either 'epochs' or 'samples', not both").
  json doc = json::parse(std::ifstream(std::string(DTSIM_SOURCE_DIR) + "/examples/quickstart.json"));
  doc["training"].erase("epochs");
  const sim::Experiment a = sim::load_experiment_json(doc, "q.json", DTSIM_SOURCE_DIR "/examples", {});
  CHECK(a.training.samples == 60000);
  CHECK(!a.resolved["training"].contains("epochs"));
  const sim::Experiment b = sim::load_experiment_json(a.resolved, "config.resolved.json", DTSIM_SOURCE_DIR "/examples", {});
  CHECK(b.resolved == a.resolved);
}

TEST_CASE("paths in the resolved config are absolute: it loads again from any working directory") {
  // dtsim run --resume DIR may run anywhere; relative paths resolve against the config's directory
  // and are recorded absolute.
  const auto here = std::filesystem::current_path();
  std::filesystem::current_path(DTSIM_SOURCE_DIR);
  CHECK(io::resolve_relative("examples", "../traces/x.trace") == (std::filesystem::path(DTSIM_SOURCE_DIR) / "traces/x.trace").lexically_normal().string());
  json j = json::parse(io::read_file("examples/quickstart.json"));
  j["platform"] = json::parse(io::read_file("platforms/star-10g.json"));
  j["platform"]["stragglers"] = json::array({{{"workers", {1}}, {"trace", "../traces/thermal-throttle.trace"}}});
  const sim::Experiment a = sim::load_experiment_json(j, "examples/x.json", "examples", {});
  const std::string trace = a.resolved["platform"]["stragglers"][0]["trace"].get<std::string>();
  CHECK(std::filesystem::path(trace).is_absolute());
  std::filesystem::current_path("/");
  const sim::Experiment b = sim::load_experiment_json(a.resolved, "/tmp/run/config.resolved.json", "/tmp/run", {});
  CHECK(b.resolved == a.resolved);
  std::filesystem::current_path(here);
}

}  // namespace test_compute_config_cpp
