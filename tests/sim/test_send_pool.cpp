// Issue 14: a server shard's sends past SendPool::kDirect outstanding ones are made by helper actors
// (sim/send_pool.hpp) so that SimGrid never scans a list of N comms per finished send. The network
// must see exactly what it saw before: every output byte equals the run in which every node makes
// all its sends itself (RunHooks::direct_sends).
#include <algorithm>
#include <sstream>

#include "sim/send_pool.hpp"
#include "tests/sim/helpers.hpp"

namespace test_send_pool_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// The timeline without the wait spans that end at its last instant, its events in a canonical order:
// spans recorded at one simulated instant by different actors (a shard waiting for its sends, a
// helper finishing them) may be listed in another order.
json without_final_waits(const std::string& trace) {
  json t = json::parse(trace);
  double end = 0;
  for (const auto& e : t["traceEvents"])
    if (e.value("ph", "") == "X") end = std::max(end, e["ts"].get<double>() + e["dur"].get<double>());
  json kept = json::array();
  for (const auto& e : t["traceEvents"])
    if (!(e.value("ph", "") == "X" && e.value("cat", "") == "wait" && e["ts"].get<double>() + e["dur"].get<double>() >= end - 1e-6))
      kept.push_back(e);
  std::sort(kept.begin(), kept.end(), [](const json& a, const json& b) { return a.dump() < b.dump(); });
  t["traceEvents"] = kept;
  return t;
}

void check_same(const json& doc, const std::vector<std::string>& sets) {
  const Experiment x = load(doc, sets);
  sim::RunHooks direct;
  direct.direct_sends = true;
  const ChildRun a = run_forked(x);
  const ChildRun b = run_forked(x, direct);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  json sa = a.summary, sb = b.summary;
  for (json* s : {&sa, &sb})
    for (const char* k : {"wall_time_s", "wall_time_per_step_s"}) s->erase(k);
  CHECK(sa == sb);
  CHECK(a.params_npy == b.params_npy);
  // One difference is allowed: a server still waiting for its last sends when the last worker
  // returns (the run's end) records that wait only when it waits for the comms itself.
  CHECK(without_final_waits(a.trace) == without_final_waits(b.trace));
  const size_t spans_a = json::parse(a.trace)["traceEvents"].size(), spans_b = json::parse(b.trace)["traceEvents"].size();
  CHECK(spans_a <= spans_b);
  CHECK(spans_a + static_cast<size_t>(x.platform.servers.count) >= spans_b);
  CHECK(a.links == b.links);
  CHECK(metrics_without_wall(a.metrics) == metrics_without_wall(b.metrics));
  // The shards' replies did go through helpers: more than kDirect workers.
  CHECK(x.platform.workers.count > static_cast<int>(sim::detail::SendPool::kDirect));
}

json many_workers(int workers) {
  json j = small_config(workers, 2);
  j["dataset"]["train"] = workers * 16 * 4;
  j["training"]["samples"] = workers * 16 * 3;
  j["output"]["trace"] = true;
  return j;
}

}  // namespace

TEST_CASE("send pool: 200 workers on 2 shards give the same outputs with and without helper actors (ssgd, real, exact)") {
  check_same(many_workers(200), {});
}

TEST_CASE("send pool: the same outputs under lv08, timing-only, per-tensor overlap and asynchronous servers") {
  for (const auto& sets : std::vector<std::vector<std::string>>{
           {"platform.network.model=lv08", "compute.mode=timing-only"},
           {"platform.network.model=lv08", "algorithm.overlap.kind=per-tensor"},
           {"algorithm.name=asgd"},
           {"algorithm.name=od-sgd", "algorithm.warmup_steps=1", "compute.mode=timing-only"}}) {
    std::string what;
    for (const auto& s : sets) what += s + " ";
    CAPTURE(what);
    check_same(many_workers(80), sets);  // 80 > kDirect (64) replies per shard: the helpers send
  }
}

}  // namespace test_send_pool_cpp
