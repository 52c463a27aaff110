// Learning-rate schedules in the algorithms (algorithm.schedule, docs/config.md): every registered
// algorithm reads the key (typos are InputErrors naming algorithm.schedule.<key>) and applies it;
// SSGD's effective learning rate per step is the schedule's, checked in closed form from plain-SGD
// steps: W_{t+1} − W_t = −lr_t ḡ_t, so two runs that share W_t and differ only in lr_t move by
// exactly the ratio of their rates.
#include "algorithms/api.hpp"
#include "tests/sim/test_alg_helpers.hpp"

namespace test_alg_schedule_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// The small experiment: N = 4, batch 16, train 2048 -> 64 samples per synchronous step,
// 32 steps per epoch (step t starts at epoch t/32).
constexpr double kStepsPerEpoch = 32;

json plain_ssgd(const json& schedule = nullptr) {
  json a = {{"name", "ssgd"}, {"lr", 0.05}, {"momentum", 0.0}};
  if (!schedule.is_null()) a["schedule"] = schedule;
  return a;
}

json steps(int t) {  // a config of exactly t synchronous steps
  json cfg = alg_config(plain_ssgd());
  cfg["training"]["samples"] = t * 64;
  return cfg;
}

// x − y elementwise.
std::vector<float> minus(const std::vector<float>& x, const std::vector<float>& y) {
  REQUIRE(x.size() == y.size());
  std::vector<float> d(x.size());
  for (size_t i = 0; i < x.size(); ++i) d[i] = x[i] - y[i];
  return d;
}

bool needs_ps(const algo::AlgorithmInfo& a) {
  const json none = json::object();
  ObjectReader r(none, JsonOrigin{"test.json", "algorithm"});
  return a.make(r)->needs_servers();
}

std::vector<float> times(std::vector<float> v, double f) {
  for (auto& x : v) x = static_cast<float>(x * f);
  return v;
}

}  // namespace

TEST_CASE("schedule: every registered algorithm accepts algorithm.schedule and a typo inside it is an InputError") {
  const json good = {{"kind", "step"}, {"milestones_epochs", {0.5}}, {"gamma", 0.1}, {"warmup_epochs", 0.25}};
  for (const auto& a : algo::registry()) {
    CAPTURE(a.name);
    json alg = {{"name", a.name}, {"schedule", good}};
    const auto x = load(alg_config(alg));
    CHECK(x.algorithm_spec["schedule"]["kind"] == "step");  // recorded in the resolved config
    bool documented = false;
    for (const auto& p : a.params) documented = documented || p.key == "schedule";
    CHECK(documented);
    // Absent: nothing is added to the resolved config (constant learning rate).
    CHECK_FALSE(load(alg_config({{"name", a.name}})).algorithm_spec.contains("schedule"));
    for (const auto& [bad, path, reason] : std::vector<std::tuple<json, std::string, std::string>>{
             {{{"kind", "step"}, {"milestones_epoch", {0.5}}}, "algorithm.schedule", "milestones_epochs"},
             {{{"kind", "cosin"}}, "algorithm.schedule.kind", "cosine"},
             {{{"kind", "step"}, {"milestones_epochs", {2, 1}}}, "algorithm.schedule.milestones_epochs[1]", "increasing"},
             {json("cosine"), "algorithm.schedule", "object"}}) {
      CAPTURE(bad.dump());
      alg["schedule"] = bad;
      try {
        load(alg_config(alg));
        FAIL("expected an InputError");
      } catch (const InputError& e) {
        CHECK(std::string(e.path()).rfind(path, 0) == 0);
        CHECK_MESSAGE(std::string(e.what()).find(reason) != std::string::npos, e.what());
      }
    }
  }
}

TEST_CASE("schedule: SSGD's step t uses the step schedule's rate at epoch t*N*b/train_size (closed form)") {
  // The milestone at epoch 12/32 decays step 12 (epoch 0.375) and not step 11: runs of 12 and 13
  // steps share W_12; the 13th step moves W by gamma times the constant run's 13th step.
  const double m = 12 / kStepsPerEpoch, gamma = 0.1;
  const auto w12 = run_ok(steps(12));
  const auto constant = run_ok(steps(13));
  json cfg = steps(13);
  cfg["algorithm"] = plain_ssgd({{"kind", "step"}, {"milestones_epochs", {m}}, {"gamma", gamma}});
  const auto decayed = run_ok(cfg);
  const auto step_c = minus(constant.params, w12.params), step_d = minus(decayed.params, w12.params);
  CHECK(max_rel(step_d, times(step_c, gamma)) < 1e-3);  // float rounding of W_13 − W_12 only
  CHECK(max_rel(step_d, step_c) > 0.5);
  // The steps before the milestone ran at the base rate: 12 steps of the scheduled run are W_12.
  cfg["training"]["samples"] = 12 * 64;
  CHECK(run_ok(cfg).params_npy == w12.params_npy);
  // On a parameter server (the shard's optimizer) and with all-reduce (every replica's) alike.
  json ar = cfg;
  ar["training"]["samples"] = 13 * 64;
  ar["algorithm"]["comm"] = "allreduce";
  ar["platform"]["servers"]["count"] = 0;
  CHECK(rel_diff(run_ok(ar).params, decayed.params) < 1e-5);  // another summation order
}

TEST_CASE("schedule: a linear warm-up scales step 0 by warmup_start_factor (0 leaves the initial model)") {
  // W_1 − W_0 = −f·lr·ḡ_0: f = 0 gives W_0 itself, which measures the constant run's first step.
  const json warm0 = {{"kind", "constant"}, {"warmup_epochs", 1}, {"warmup_start_factor", 0.0}};
  json cfg = steps(1);
  cfg["algorithm"] = plain_ssgd(warm0);
  const auto w0 = run_ok(cfg);
  const auto constant = run_ok(steps(1));
  REQUIRE(rel_diff(constant.params, w0.params) > 1e-6);
  cfg["algorithm"]["schedule"]["warmup_start_factor"] = 0.5;
  const auto half = run_ok(cfg);
  CHECK(max_rel(minus(half.params, w0.params), times(minus(constant.params, w0.params), 0.5)) < 1e-3);
}

TEST_CASE("schedule: every algorithm applies it - gamma 1 is bitwise the constant run, gamma 0.1 from epoch 0.25 another model") {
  for (const auto& a : algo::registry()) {
    CAPTURE(a.name);
    json alg = {{"name", a.name}};
    if (a.name == "diloco") alg["period"] = 8;  // the schedule drives the inner lr; sync within the run
    const int K = needs_ps(a) ? 1 : 0;
    const auto constant = run_ok(alg_config(alg, 4, K));
    alg["schedule"] = {{"kind", "step"}, {"milestones_epochs", {0.25}}, {"gamma", 1.0}};
    CHECK(run_ok(alg_config(alg, 4, K)).params_npy == constant.params_npy);
    alg["schedule"]["gamma"] = 0.1;
    const auto decayed = run_ok(alg_config(alg, 4, K));
    for (float v : decayed.params) REQUIRE(std::isfinite(v));
    CHECK(rel_diff(decayed.params, constant.params) > 1e-4);
  }
}

TEST_CASE("schedule: an asynchronous update counts the samples computed when it is applied, its own included") {
  // N = 1, batch 16: ASGD equals SSGD (invariant 4). SSGD's step k runs at epoch k*16/2048, ASGD's
  // k-th update at (k+1)*16/2048, so a milestone one minibatch later gives the same trajectory.
  json sgd = alg_config({{"name", "ssgd"}, {"lr", 0.05}, {"momentum", 0.9}}, 1, 1, 512);  // 32 steps
  sgd["algorithm"]["schedule"] = {{"kind", "step"}, {"milestones_epochs", {12 * 16 / 2048.0}}, {"gamma", 0.1}};
  json asgd = sgd;
  asgd["algorithm"]["name"] = "asgd";
  asgd["algorithm"]["schedule"]["milestones_epochs"] = {13 * 16 / 2048.0};
  const auto a = run_ok(sgd), b = run_ok(asgd);
  CHECK(a.params_npy == b.params_npy);
  asgd["algorithm"]["schedule"]["milestones_epochs"] = {12 * 16 / 2048.0};  // one update earlier: another model
  CHECK(run_ok(asgd).params_npy != a.params_npy);
}

}  // namespace test_alg_schedule_cpp
