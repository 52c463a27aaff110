// The aggregated ring (platform.collective.transfers "aggregated", sim/collectives.hpp): one batched
// event per all-reduce instead of 2N(N-1) transfers. In exact mode, with ranks that arrive together
// and alike routes, it is the step-by-step ring: the same simulated times (to 1e-9), bytes,
// messages, per-link records and parameters, with and without a shared backbone, for whole-vector
// and DDP-bucketed all-reduces. Where it does not apply (latency jitter, CPU workers' layer-wise
// reductions, Horovod's negotiated cycles) the ring runs step by step, with a warning; other
// collectives refuse it.
#include <cmath>
#include <string>
#include <vector>

#include "sim/preflight.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace dtsim::test {
namespace test_aggregated_ring_cpp {  // one namespace per test file: the test targets are unity builds
namespace {

// A ring whose vector splits evenly over N: MLP 64-34-10 has 2560 parameters.
json ring_config(int workers, bool backbone, bool real) {
  json j = small_config(workers, 1);
  j["model"] = {{"kind", "mlp"}, {"hidden", {34}}};
  j["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "none"}}}};
  j["training"]["samples"] = workers * 16 * 3;
  j["output"]["trace"] = true;
  if (backbone) j["platform"]["topology"] = {{"kind", "star"}, {"backbone", {{"bandwidth", "2Gbps"}, {"latency", "5us"}}}};
  if (!real) j["compute"]["mode"] = "timing-only";
  return j;
}

ChildRun run_ring(json doc, bool aggregated) {
  doc["platform"]["collective"] = {{"algorithm", "ring"}, {"transfers", aggregated ? "aggregated" : "step-by-step"}};
  const ChildRun r = run_forked(load(std::move(doc)));
  REQUIRE(r.exit_code == 0);
  return r;
}

void check_same(const ChildRun& step, const ChildRun& agg) {
  const double a = step.summary["simulated_time_s"].get<double>(), b = agg.summary["simulated_time_s"].get<double>();
  CHECK(std::fabs(a - b) <= 1e-9 * a);
  CHECK(step.summary["messages"] == agg.summary["messages"]);
  CHECK(step.summary["bytes_on_wire"].get<double>() == dtsim_test::Rel(agg.summary["bytes_on_wire"].get<double>()).epsilon(1e-12));
  CHECK(step.params_npy == agg.params_npy);
  CHECK(metrics_without_wall(step.metrics) == metrics_without_wall(agg.metrics));
  const auto& pa = step.summary["per_worker"];
  const auto& pb = agg.summary["per_worker"];
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i]["gradients"] == pb[i]["gradients"]);
    for (const char* k : {"compute_s", "comm_wait_s", "exposed_comm_s"})
      CHECK(pa[i][k].get<double>() == dtsim_test::Rel(pb[i][k].get<double>()).epsilon(1e-9));
  }
  // links.csv: the same bytes and transfers on every link, busy for the same time.
  const auto ra = csv_rows(step.links), rb = csv_rows(agg.links);
  REQUIRE(ra.size() == rb.size());
  REQUIRE(ra.size() > 1);
  for (size_t i = 1; i < ra.size(); ++i) {
    CAPTURE(ra[i][0]);
    REQUIRE(ra[i].size() == rb[i].size());
    for (size_t c = 0; c < 5; ++c) CHECK(ra[i][c] == rb[i][c]);  // link, bandwidth, latency, bytes, transfers
    CHECK(std::stod(ra[i][5]) == dtsim_test::Rel(std::stod(rb[i][5])).epsilon(1e-9));  // busy_s
  }
}

}  // namespace

TEST_CASE("aggregated ring: equals the step-by-step ring in exact mode (4, 8, 16 workers, private links and a shared backbone)") {
  for (int N : {4, 8, 16})
    for (bool backbone : {false, true})
      for (bool real : {true, false}) {
        CAPTURE(N);
        CAPTURE(backbone);
        CAPTURE(real);
        const json doc = ring_config(N, backbone, real);
        check_same(run_ring(doc, false), run_ring(doc, true));
      }
}

TEST_CASE("aggregated ring: equals the step-by-step ring for DDP buckets on accelerator workers (exact)") {
  json doc = ring_config(8, true, true);
  doc["platform"]["workers"]["speed"] = "V100";  // a device: the reductions do not load a CPU
  // Two buckets that split evenly over 8 ranks: {fc2.bias, fc2.weight, fc1.bias} (384 floats:
  // 1536 B >= the first bucket's 1499 B) and {fc1.weight} (2176 floats). With uneven chunks the
  // step-by-step ranks drift apart by a chunk's last element and the aggregated form (one step
  // time for all) is slower by that much (~1e-6 s here).
  doc["algorithm"]["overlap"] = {{"kind", "ddp"}, {"bucket_cap_mb", 0.001}, {"first_bucket_mb", 0.00143}};
  const ChildRun step = run_ring(doc, false), agg = run_ring(doc, true);
  check_same(step, agg);
  CHECK(step.summary["messages"].get<int>() > 2 * 8 * 7 * 3);  // more than one all-reduce per step
}

TEST_CASE("aggregated ring: under lv08 with a straggler the two forms stay within 1 percent") {
  json doc = ring_config(16, true, false);
  doc["platform"]["network"] = {{"model", "lv08"}};
  doc["platform"]["stragglers"] = json::parse(R"([{"workers": [3], "slowdown": 1.5}])");
  const ChildRun step = run_ring(doc, false), agg = run_ring(doc, true);
  const double a = step.summary["simulated_time_s"].get<double>(), b = agg.summary["simulated_time_s"].get<double>();
  CHECK(std::fabs(a - b) <= 0.01 * a);
  CHECK(step.summary["messages"] == agg.summary["messages"]);
}

TEST_CASE("aggregated ring: latency jitter, CPU workers' layer-wise reductions and Horovod keep the ring step by step, with a warning") {
  json jitter = ring_config(4, false, false);
  jitter["platform"]["stragglers"] =
      json::parse(R"([{"links": "*-nic", "latency_jitter": {"kind": "uniform", "max": "200us", "every_s": "3ms"}}])");
  json cpu = ring_config(4, false, false);
  cpu["algorithm"]["overlap"] = {{"kind", "ddp"}};
  json horovod = ring_config(4, false, false);
  horovod["platform"]["workers"]["speed"] = "V100";
  horovod["algorithm"]["overlap"] = {{"kind", "horovod"}};
  for (const json& doc : {jitter, cpu, horovod}) {
    json d = doc;
    d["platform"]["collective"] = {{"transfers", "aggregated"}};
    const Experiment x = load(d);
    bool warned = false;
    for (const auto& w : x.warnings) warned |= w.find("platform.collective.transfers") != std::string::npos;
    CHECK(warned);
    const ChildRun step = run_ring(doc, false), agg = run_ring(doc, true);
    CHECK(step.summary["simulated_time_s"] == agg.summary["simulated_time_s"]);  // bitwise: the same code ran
  }
}

TEST_CASE("aggregated ring: other collectives and unknown values are refused at platform.collective.transfers") {
  json doc = ring_config(4, false, false);
  doc["platform"]["collective"] = {{"algorithm", "tree"}, {"transfers", "aggregated"}};
  CHECK_THROWS_WITH_AS(load(doc), doctest::Contains("applies to the ring"), InputError);
  doc["platform"]["collective"] = {{"transfers", "aggregate"}};
  CHECK_THROWS_WITH_AS(load(doc), doctest::Contains("aggregated"), InputError);
  doc["platform"]["collective"] = {{"transfers", "aggregated"}};
  doc["platform"]["workers"]["count"] = 1000;
  doc["training"]["samples"] = 1000 * 16 * 10;
  const sim::RunCost agg = sim::estimate_cost(load(doc));
  doc["platform"]["collective"] = {{"transfers", "step-by-step"}};
  const sim::RunCost step = sim::estimate_cost(load(doc));
  CHECK(agg.transfers * 1998 == dtsim_test::Rel(step.transfers));  // N instead of 2N(N-1) per all-reduce
  CHECK(step.hint.find("aggregated") != std::string::npos);
  CHECK(agg.hint.empty());
}

}  // namespace test_aggregated_ring_cpp
}  // namespace dtsim::test
