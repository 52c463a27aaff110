// Convergence smoke tests: every algorithm trains the small MLP on the synthetic data set
// (64 features, 10 classes, 2048 training samples; tests/sim/helpers.hpp) to at least 80 % test
// accuracy within a budget of 8192 samples (4 epochs) on 4 workers of batch 16. The untrained
// model is at ~10 %, and SSGD reaches ~86 % here. Hyper-parameters are stated per algorithm.
#include "tests/sim/test_alg_helpers.hpp"

namespace test_alg_convergence_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

constexpr uint64_t kBudget = 8192;
constexpr double kTarget = 0.80;

void converges(const json& algorithm, int servers = 1) {
  CAPTURE(algorithm.dump());
  json cfg = alg_config(algorithm, 4, servers, kBudget);
  cfg["training"]["target_accuracy"] = {kTarget};
  cfg["training"]["eval_every_samples"] = 2048;
  const auto r = run_ok(cfg);
  CHECK(r.summary["samples"].get<uint64_t>() >= kBudget);
  CHECK(r.summary["samples"].get<uint64_t>() < kBudget + 4 * 16);
  CHECK(r.summary["final_test_accuracy"].get<double>() >= kTarget);
  CHECK(r.summary["time_to_accuracy_s"]["0.8"].is_number());
}

}  // namespace

TEST_CASE("convergence: ssgd (ps) reaches 80% within 8192 samples") { converges({{"name", "ssgd"}}); }
TEST_CASE("convergence: ssgd (allreduce) reaches 80% within 8192 samples") {
  converges({{"name", "ssgd"}, {"comm", "allreduce"}}, 0);
}
TEST_CASE("convergence: asgd reaches 80% within 8192 samples") { converges({{"name", "asgd"}}); }
TEST_CASE("convergence: pipe-sgd (allreduce) reaches 80% within 8192 samples") { converges({{"name", "pipe-sgd"}}, 0); }
TEST_CASE("convergence: pipe-sgd (ps) reaches 80% within 8192 samples") {
  converges({{"name", "pipe-sgd"}, {"comm", "ps"}});
}
TEST_CASE("convergence: ssp (s=3, lr 0.2) reaches 80% within 8192 samples") {
  converges({{"name", "ssp"}, {"staleness", 3}, {"lr", 0.2}});
}
TEST_CASE("convergence: dc-asgd (constant and adaptive) reaches 80% within 8192 samples") {
  converges({{"name", "dc-asgd"}});
  converges({{"name", "dc-asgd"}, {"adaptive", true}});
}
TEST_CASE("convergence: easgd (async and sync, lr 0.2) reaches 80% within 8192 samples") {
  converges({{"name", "easgd"}, {"lr", 0.2}});
  converges({{"name", "easgd"}, {"lr", 0.2}, {"sync", true}});
}
TEST_CASE("convergence: od-sgd (warm-up 20, lr 0.05, local_lr 0.2) reaches 80% within 8192 samples") {
  converges({{"name", "od-sgd"}, {"warmup_steps", 20}, {"lr", 0.05}, {"local_lr", 0.2}});
}
TEST_CASE("convergence: ssd-sgd (warm-up 20, lr 0.05, local_lr 0.2, GLU and dc-asgd-adaptive) reaches 80% within 8192 samples") {
  converges({{"name", "ssd-sgd"}, {"warmup_steps", 20}, {"lr", 0.05}, {"local_lr", 0.2}});
  converges({{"name", "ssd-sgd"}, {"warmup_steps", 20}, {"lr", 0.05}, {"local_lr", 0.2},
             {"local_optimizer", "dc-asgd-adaptive"}});
}
TEST_CASE("convergence: local-sgd (H=4, all-reduce and PS) reaches 80% within 8192 samples") {
  converges({{"name", "local-sgd"}}, 0);
  converges({{"name", "local-sgd"}, {"comm", "ps"}});
}
TEST_CASE("convergence: cocod-sgd (k=4) reaches 80% within 8192 samples") { converges({{"name", "cocod-sgd"}}, 0); }
TEST_CASE("convergence: dasgd (AdamW lr 0.01, convex and replace merges) reaches 80% within 8192 samples") {
  converges({{"name", "dasgd"}}, 0);
  converges({{"name", "dasgd"}, {"merge", "replace"}}, 0);
}
TEST_CASE("convergence: hpsgd (lr 0.2) reaches 80% within 8192 samples") { converges({{"name", "hpsgd"}, {"lr", 0.2}}, 0); }
TEST_CASE("convergence: diloco (H=8, inner AdamW lr 0.003) reaches 80% within 8192 samples") {
  converges({{"name", "diloco"}, {"period", 8}, {"local_lr", 0.003}}, 0);
}
TEST_CASE("convergence: streaming-diloco (H=8, P=2, 4-bit, inner AdamW lr 0.003) reaches 80% within 8192 samples") {
  converges({{"name", "streaming-diloco"}, {"period", 8}, {"local_lr", 0.003}, {"quantize", true}}, 0);
}

}  // namespace test_alg_convergence_cpp
