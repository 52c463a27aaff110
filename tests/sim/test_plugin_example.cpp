// The example plugin (examples/plugin/post_local_sgd.cpp, compiled into this test and registered
// through its DTSIM_PLUGIN entry point) checked with the invariant helpers dtsim's own algorithm
// tests use (tests/sim/test_alg_helpers.hpp): the way docs/plugins.md shows a plugin author to test
// an algorithm. Reductions to built-ins (bitwise), closed-form simulated time in the exact network
// model, the global model being the workers' average (Node::observe is not needed here: the
// published model is checked against a run of the built-in).
#include "algorithms/plugin_loader.hpp"
#include "tests/sim/test_alg_helpers.hpp"
#include "tests/rel.hpp"

namespace test_plugin_example_cpp {  // one namespace per test file: the test targets are unity builds

extern "C" int dtsim_plugin_register(int abi, void* registry);  // examples/plugin/post_local_sgd.cpp

using namespace dtsim;
using namespace dtsim::test;

namespace {

void register_example() {
  algo::register_plugin(&dtsim_plugin_register, "examples/plugin/post_local_sgd.cpp", "test", "");
  REQUIRE(algo::find_algorithm("post-local-sgd") != nullptr);
}

// 4 workers, no server, 32 steps of 4 x 16 samples.
json ar(const json& algorithm) { return alg_config(algorithm, 4, 0, 2048); }

json timing_only(json cfg) {
  cfg["compute"]["mode"] = "timing-only";
  return cfg;
}

}  // namespace

TEST_CASE("plugin example: post-local SGD with warmup 0 is Local SGD and with warmup >= T is SSGD, bitwise") {
  register_example();
  const auto local = run_ok(ar({{"name", "local-sgd"}, {"period", 4}, {"momentum", 0.9}}));
  const auto post0 = run_ok(ar({{"name", "post-local-sgd"}, {"warmup", 0}, {"period", 4}, {"momentum", 0.9}}));
  CHECK(post0.params == local.params);
  CHECK(sim_time(post0) == sim_time(local));
  CHECK(bytes(post0) == bytes(local));
  const auto ssgd = run_ok(ar({{"name", "ssgd"}, {"comm", "allreduce"}, {"momentum", 0.9}}));
  const auto postT = run_ok(ar({{"name", "post-local-sgd"}, {"warmup", 32}, {"period", 4}, {"momentum", 0.9}}));
  CHECK(postT.params == ssgd.params);
  CHECK(sim_time(postT) == sim_time(ssgd));
  // In between it is neither.
  const auto mid = run_ok(ar({{"name", "post-local-sgd"}, {"warmup", 8}, {"period", 4}, {"momentum", 0.9}}));
  CHECK(max_rel(mid.params, local.params) > 1e-4);
  CHECK(max_rel(mid.params, ssgd.params) > 1e-4);
}

// An overlap kind a plugin algorithm does not use warns like a built-in's, but a plugin has no
// page under docs/algorithms/ to cite (it cited docs/algorithms/post-local-sgd.md).
TEST_CASE("plugin example: an overlap it does not use warns without citing a built-in's page") {
  register_example();
  auto warning = [](const json& algorithm) {
    const auto x = sim::load_experiment_json(ar(algorithm), "test.json", DTSIM_SOURCE_DIR "/tests");
    for (const auto& w : x.warnings)
      if (w.find("has no effect") != std::string::npos) return w;
    return std::string();
  };
  const std::string plugin = warning({{"name", "post-local-sgd"}, {"overlap", {{"kind", "ddp"}}}});
  CHECK(plugin.find("'post-local-sgd' schedules its own exchanges") != std::string::npos);
  CHECK(plugin.find("docs/algorithms/") == std::string::npos);
  CHECK(warning({{"name", "local-sgd"}, {"overlap", {{"kind", "ddp"}}}}).find("docs/algorithms/local-sgd.md") != std::string::npos);
}

TEST_CASE("plugin example: simulated time is W (T_c + ring + U) + (T - W)(T_c + U) + R ring in the exact network model") {
  register_example();
  const int N = 4, T = 32;
  const double Uw = worker_update(), comm = ring(N);
  for (int W : {0, 8, 13, 32}) {
    for (int k : {1, 4}) {
      CAPTURE(W);
      CAPTURE(k);
      const int R = (T - W + k - 1) / k;  // averagings after the warm-up (the last step always averages)
      const auto r = run_ok(timing_only(ar({{"name", "post-local-sgd"}, {"warmup", W}, {"period", k}})));
      CHECK(sim_time(r) == dtsim_test::Rel(W * (kTc + comm + Uw) + (T - W) * (kTc + Uw) + R * comm).epsilon(1e-9));
      CHECK(bytes(r) == dtsim_test::Rel(bytes(run_ok(timing_only(ar({{"name", "ssgd"}, {"comm", "allreduce"}})))) *
                                        (W + R) / T));
    }
  }
}

}  // namespace test_plugin_example_cpp
