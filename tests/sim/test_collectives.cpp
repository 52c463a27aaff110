// All-reduce: closed-form ring timing in the exact network model, the reduction's math, overlap.
#include "engine/ops.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_collectives_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// Each worker: `rounds` times { compute (fixed time); all-reduce its model-sized buffer }.
// Worker i contributes a buffer filled with (i+1) and checks the reduced value.
class RingProbe final : public algo::Algorithm {
 public:
  RingProbe(int rounds, bool overlap, algo::Reduce op, bool weighted) : rounds_(rounds), overlap_(overlap), op_(op), weighted_(weighted) {}
  bool needs_servers() const override { return false; }
  void worker(algo::Worker& w) override {
    const size_t P = w.num_params();
    auto mine = std::make_shared<engine::Vec>(w.real() ? P : 0);
    if (w.real()) engine::ops::fill(mine->view(), static_cast<float>(w.rank() + 1));
    const double weight = weighted_ ? w.rank() + 1.0 : 1.0;
    for (int r = 0; r < rounds_; ++r) {
      std::shared_ptr<const engine::Vec> avg;
      if (overlap_) {  // start the all-reduce, compute meanwhile, then wait
        auto pending = w.allreduce_async(algo::Payload::whole(mine, P), op_, weight);
        w.compute(w.initial_params() ? w.initial_params()->view() : engine::ConstVecView{});
        avg = pending.wait();
      } else {
        w.compute(w.initial_params() ? w.initial_params()->view() : engine::ConstVecView{});
        avg = w.allreduce(algo::Payload::whole(mine, P), op_, weight);
      }
      if (w.real()) {
        const int N = w.workers();
        double expect = op_ == algo::Reduce::Sum ? N * (N + 1) / 2.0 : (N + 1) / 2.0;
        if (weighted_) expect = (N * (N + 1) * (2.0 * N + 1) / 6.0) / (N * (N + 1) / 2.0);  // Σi² / Σi
        float v = 0;
        engine::ops::to_host(avg->view(0, 1), &v);
        if (std::fabs(v - expect) > 1e-5 * std::fabs(expect)) throw RuntimeError("wrong all-reduce value");
      }
    }
  }

 private:
  int rounds_;
  bool overlap_;
  algo::Reduce op_;
  bool weighted_;
};

ChildRun run_probe(int N, bool real, bool overlap, algo::Reduce op = algo::Reduce::Mean, bool weighted = false) {
  json cfg = small_config(N, 1);
  cfg["compute"]["mode"] = real ? "real" : "timing-only";
  cfg["training"]["samples"] = 1000000;
  // 63 features, 30 hidden, 64 classes: |W| = 30*64 + 64*30 + 64 = 3904 = 61 * 64 elements, so the
  // ring's chunks are equal for N = 4, 16, 64 and the closed form is exact.
  cfg["dataset"]["features"] = 63;
  cfg["dataset"]["classes"] = 64;
  sim::RunHooks hooks;
  hooks.make_algorithm = [=] { return std::make_unique<RingProbe>(3, overlap, op, weighted); };
  return run_forked(load(cfg), hooks);
}

constexpr double kP = 3904, kS = 4 * kP, kB = 1e9 / 8, kLat = 2 * 50e-6;

}  // namespace

TEST_CASE("ring all-reduce: time = 2(N-1)(lat + S/(N B)) per collective (N = 4, 16, 64)") {
  for (int N : {4, 16, 64}) {
    CAPTURE(N);
    const auto r = run_probe(N, false, false);
    REQUIRE(r.exit_code == 0);
    const double ring = 2.0 * (N - 1) * (kLat + kS / (N * kB));
    CHECK(r.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(3 * (0.01 + ring)).epsilon(1e-9));
    // Traffic: each worker sends 2(N-1)/N |W| per collective.
    CHECK(r.summary["bytes_on_wire"].get<double>() == dtsim_test::Rel(3.0 * N * 2 * (N - 1) * kS / N).epsilon(1e-12));
  }
}

TEST_CASE("ring all-reduce overlaps computation started after it: max(compute, ring)") {
  const int N = 16;
  const auto r = run_probe(N, false, true);
  REQUIRE(r.exit_code == 0);
  const double ring = 2.0 * (N - 1) * (kLat + kS / (N * kB));
  CHECK(r.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(3 * std::max(0.01, ring)).epsilon(1e-9));
}

TEST_CASE("all-reduce math: mean, sum and weighted mean are computed once and shared") {
  CHECK(run_probe(5, true, false, algo::Reduce::Mean).exit_code == 0);
  CHECK(run_probe(5, true, true, algo::Reduce::Sum).exit_code == 0);
  CHECK(run_probe(5, true, false, algo::Reduce::Mean, true).exit_code == 0);
}

TEST_CASE("all-reduce with one worker costs nothing") {
  const auto r = run_probe(1, true, false);
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(0.03).epsilon(1e-12));
  CHECK(r.summary["bytes_on_wire"].get<double>() == 0);
}

}  // namespace test_collectives_cpp
