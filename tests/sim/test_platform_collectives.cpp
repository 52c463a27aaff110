// Collectives and PS placement (issue 5): closed forms in the exact network model for the
// hierarchical, recursive-doubling and tree all-reduces (ring: tests/sim/test_collectives.cpp) and
// for a sharded parameter server with co-located shards (dedicated shards: test_foundation.cpp).
// The formulas are derived in docs/platforms.md.
#include <cmath>

#include "engine/ops.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/sim/test_alg_helpers.hpp"  // sim_time
#include "tests/rel.hpp"

namespace test_platform_collectives_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// Each worker: `rounds` times { compute (fixed time); all-reduce a model-sized buffer filled with
// rank + 1 }, checking the reduced mean in real mode.
class AllreduceProbe final : public algo::Algorithm {
 public:
  explicit AllreduceProbe(int rounds) : rounds_(rounds) {}
  bool needs_servers() const override { return false; }
  void worker(algo::Worker& w) override {
    const size_t P = w.num_params();
    auto mine = std::make_shared<engine::Vec>(w.real() ? P : 0);
    if (w.real()) engine::ops::fill(mine->view(), static_cast<float>(w.rank() + 1));
    for (int r = 0; r < rounds_; ++r) {
      w.compute(w.initial_params() ? w.initial_params()->view() : engine::ConstVecView{});
      auto avg = w.allreduce(algo::Payload::whole(mine, P));
      if (w.real()) {
        float v = 0;
        engine::ops::to_host(avg->view(P - 1, 1), &v);
        if (std::fabs(v - (w.workers() + 1) / 2.0) > 1e-5) throw RuntimeError("wrong all-reduce value");
      }
    }
  }

 private:
  int rounds_;
};

// |W| = 30*64 + 64*30 + 64 = 3904 = 61 * 64 elements: chunks are equal for every split used here.
constexpr double kP = 3904, kS = 4 * kP, kB = 1e9 / 8, kLat = 50e-6, kCompute = 0.01;

json probe_config(int N, const json& platform_extra, bool real = false) {
  json cfg = small_config(N, 0);
  cfg["algorithm"]["comm"] = "allreduce";
  cfg["compute"]["mode"] = real ? "real" : "timing-only";
  cfg["training"]["samples"] = 1000000;
  cfg["dataset"]["features"] = 63;
  cfg["dataset"]["classes"] = 64;
  cfg["platform"]["servers"] = {{"count", 0}};
  cfg["platform"].update(platform_extra);
  return cfg;
}

ChildRun run_probe(const json& cfg, int rounds = 2) {
  sim::RunHooks hooks;
  hooks.make_algorithm = [=] { return std::make_unique<AllreduceProbe>(rounds); };
  return run_forked(load(cfg), hooks);
}

// Hierarchical all-reduce with R groups of m ranks: group reduce (ring reduce-scatter + gather to
// the leader), ring all-reduce among the leaders over (alpha_x, B_x), broadcast back (scatter +
// ring all-gather). alpha, B: inside a group.
double hierarchical(int m, int R, double alpha, double B, double alpha_x, double Bx) {
  const double group = (m - 1) * (alpha + kS / (m * B)) + alpha + (m - 1) * kS / (m * B);
  return 2 * group + 2.0 * (R - 1) * (alpha_x + kS / (R * Bx));
}

}  // namespace

TEST_CASE("hierarchical all-reduce on 2 racks of 4: closed form with the uplink as the leaders' bottleneck") {
  const double up_bw = 0.5e9 / 8, up_lat = 7e-6;
  json extra = json::parse(R"({"topology": {"kind": "racks", "racks": 2, "uplink": {"bandwidth": "0.5Gbps", "latency": "7us"}},
                                "collective": "hierarchical"})");
  const auto r = run_probe(probe_config(8, extra));
  REQUIRE(r.exit_code == 0);
  const double t = hierarchical(4, 2, 2 * kLat, kB, 2 * kLat + 2 * up_lat, up_bw);
  CHECK(sim_time(r) == dtsim_test::Rel(2 * (kCompute + t)).epsilon(1e-9));
  // Bytes: per group 2 (m-1)/m S for the two ring phases + 2 (m-1)/m S gather/scatter; leaders
  // 2 (R-1)/R S each.
  const double bytes = 2 * (2 * 4 * 0.75 * kS + 2 * 0.75 * kS) + 2 * 2 * 0.5 * kS;
  CHECK(r.summary["bytes_on_wire"].get<double>() == dtsim_test::Rel(2 * bytes).epsilon(1e-12));
}

TEST_CASE("hierarchical all-reduce with collective.group_size on a star: leaders talk over the NICs") {
  json extra = json::parse(R"({"collective": {"algorithm": "hierarchical", "group_size": 3}})");
  const auto r = run_probe(probe_config(9, extra));
  REQUIRE(r.exit_code == 0);
  // |W| = 3904 is not a multiple of 3: chunks differ by one element, so compare with 1e-3.
  const double t = hierarchical(3, 3, 2 * kLat, kB, 2 * kLat, kB);
  CHECK(sim_time(r) == dtsim_test::Rel(2 * (kCompute + t)).epsilon(1e-3));
  // ... and the exact form with groups of 4 (8 ranks, 2 groups).
  json e4 = json::parse(R"({"collective": {"algorithm": "hierarchical", "group_size": 4}})");
  const auto r4 = run_probe(probe_config(8, e4));
  REQUIRE(r4.exit_code == 0);
  CHECK(sim_time(r4) == dtsim_test::Rel(2 * (kCompute + hierarchical(4, 2, 2 * kLat, kB, 2 * kLat, kB))).epsilon(1e-9));
}

TEST_CASE("recursive doubling: log2(N) exchanges of |W|, a non-power of two folds in and out") {
  for (int N : {8, 6}) {
    CAPTURE(N);
    const auto r = run_probe(probe_config(N, json::parse(R"({"collective": "recursive-doubling"})")));
    REQUIRE(r.exit_code == 0);
    const double steps = N == 8 ? 3 : 2 + 2;  // N = 6: fold + log2(4) exchanges + unfold
    CHECK(sim_time(r) == dtsim_test::Rel(2 * (kCompute + steps * (2 * kLat + kS / kB))).epsilon(1e-9));
    const double msgs = N == 8 ? 8 * 3 : 4 * 2 + 2 + 2;  // exchanges + folds + unfolds, per round
    CHECK(r.summary["bytes_on_wire"].get<double>() == dtsim_test::Rel(2 * msgs * kS).epsilon(1e-12));
  }
}

TEST_CASE("tree: binomial reduce then broadcast, 2 ceil(log2 N) hops of |W| on the critical path") {
  for (int N : {8, 5}) {
    CAPTURE(N);
    const auto r = run_probe(probe_config(N, json::parse(R"({"collective": "tree"})")));
    REQUIRE(r.exit_code == 0);
    CHECK(sim_time(r) == dtsim_test::Rel(2 * (kCompute + 6 * (2 * kLat + kS / kB))).epsilon(1e-9));
    CHECK(r.summary["bytes_on_wire"].get<double>() == dtsim_test::Rel(2 * 2.0 * (N - 1) * kS).epsilon(1e-12));
  }
}

TEST_CASE("every all-reduce algorithm returns the same reduced values (the math is done once)") {
  for (const char* a : {"ring", "tree", "recursive-doubling"}) {
    CAPTURE(a);
    json extra = {{"collective", a}};
    CHECK(run_probe(probe_config(5, extra, true), 1).exit_code == 0);
  }
  json h = json::parse(R"({"collective": {"algorithm": "hierarchical", "group_size": 2}})");
  CHECK(run_probe(probe_config(5, h, true), 1).exit_code == 0);
}

TEST_CASE("sharded PS with co-located shards: a phase is lat + max((N-1) S/(K B), remote shards x S/(K B))") {
  // SSGD, N = 8 workers, K = 4 or 8 shards on workers floor(k N / K); same-host traffic uses the
  // loopback (100 GB/s: S/K there is far shorter than the remote transfers).
  for (int K : {4, 8}) {
    CAPTURE(K);
    const int N = 8, steps = 3, b = 16;
    json cfg = small_config(N, K);
    cfg["platform"]["servers"] = {{"count", K}, {"placement", "colocated"}};
    cfg["compute"]["mode"] = "timing-only";
    cfg["dataset"]["features"] = 63;
    cfg["dataset"]["classes"] = 64;
    cfg["training"]["samples"] = steps * N * b;
    const auto r = run_forked(load(cfg));
    REQUIRE(r.exit_code == 0);
    const double remote = K;  // a worker that hosts no shard pushes to all K remotely (K = 4)
    const double phase = 2 * kLat + std::max((N - 1) * kS / (K * kB), (K == 8 ? K - 1 : remote) * kS / (K * kB));
    const double update = (kP / K) * (4 + N - 1) / 1e12;
    CHECK(sim_time(r) == dtsim_test::Rel(steps * (kCompute + phase + update + phase)).epsilon(1e-9));
  }
}

}  // namespace test_platform_collectives_cpp
