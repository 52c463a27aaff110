// Identical workers simulated once (platform.workers.grouping "identical", sim/grouping.hpp): SSGD
// on a PS with N alike workers on a star runs one worker on a platform whose shared links have 1/N
// of their bandwidth. Its outputs must be the ungrouped run's: simulated time, per-worker rows,
// counters, metrics, every links.csv row and the trace's spans, to 1e-9, in exact mode and under
// lv08, with one and several shards, with a backbone, whole-gradient and per-tensor. Where workers
// differ or the algorithm does not treat them alike, every worker is simulated, with a warning.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "sim/preflight.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace dtsim::test {
namespace test_grouping_cpp {  // one namespace per test file: the test targets are unity builds
namespace {

json ps_config(int workers, int shards, bool backbone, const std::string& network, const std::string& overlap) {
  json j = small_config(workers, shards);
  j["platform"]["network"] = {{"model", network}};
  j["platform"]["servers"]["link"] = {{"bandwidth", "4Gbps"}, {"latency", "20us"}};
  if (backbone) j["platform"]["topology"] = {{"kind", "star"}, {"backbone", {{"bandwidth", "3Gbps"}, {"latency", "5us"}}}};
  j["algorithm"] = {{"name", "ssgd"}, {"comm", "ps"}, {"overlap", {{"kind", overlap}}}};
  j["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "fixed"}, {"seconds", 0.002}}}};
  j["training"]["samples"] = workers * 16 * 3;
  j["training"]["eval_every_samples"] = workers * 16;
  j["output"]["trace"] = true;
  return j;
}

ChildRun run_grouping(json doc, bool grouped) {
  doc["platform"]["workers"]["grouping"] = grouped ? "identical" : "none";
  const ChildRun r = run_forked(load(std::move(doc)));
  REQUIRE(r.exit_code == 0);
  return r;
}

// The trace's events as a multiset: (phase, host, name, start, duration), flow ids and track
// numbers left out (the grouped trace lists a shard's overlapping spans in another order).
std::vector<std::tuple<std::string, int, std::string, double, double>> trace_events(const std::string& text) {
  const json d = json::parse(text);
  const json& ev = d.is_object() ? d["traceEvents"] : d;
  std::vector<std::tuple<std::string, int, std::string, double, double>> out;
  for (const auto& e : ev) {
    const std::string ph = e.value("ph", "");
    if (ph == "M") continue;
    out.emplace_back(ph, e.value("pid", -1), e.value("name", ""), e.value("ts", 0.0), e.value("dur", 0.0));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void check_same(const ChildRun& all, const ChildRun& one, int N) {
  CHECK(all.summary["workers_simulated"] == N);
  CHECK(one.summary["workers_simulated"] == 1);
  check_json(all.summary, one.summary, "");
  check_csv(all.metrics, one.metrics, 1);  // metrics.csv: sim_time_s, wall_time_s, ...
  check_csv(all.links, one.links, -1);
  REQUIRE(all.trace.empty() == one.trace.empty());
  if (all.trace.empty()) return;
  const auto ta = trace_events(all.trace), tb = trace_events(one.trace);
  REQUIRE(ta.size() == tb.size());
  size_t bad = 0;
  for (size_t i = 0; i < ta.size(); ++i)
    bad += std::get<0>(ta[i]) != std::get<0>(tb[i]) || std::get<1>(ta[i]) != std::get<1>(tb[i]) ||
           std::get<2>(ta[i]) != std::get<2>(tb[i]) || std::fabs(std::get<3>(ta[i]) - std::get<3>(tb[i])) > 1e-3 ||
           std::fabs(std::get<4>(ta[i]) - std::get<4>(tb[i])) > 1e-3;  // microseconds
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("grouping: one worker standing for N gives the ungrouped outputs (exact and lv08, 1 and 3 shards, a backbone, none and per-tensor)") {
  for (const std::string network : {"exact", "lv08"})
    for (const std::string overlap : {"none", "per-tensor"})
      for (int N : {3, 16})
        for (int K : {1, 3})
          for (bool backbone : {false, true}) {
            CAPTURE(network);
            CAPTURE(overlap);
            CAPTURE(N);
            CAPTURE(K);
            CAPTURE(backbone);
            const json doc = ps_config(N, K, backbone, network, overlap);
            check_same(run_grouping(doc, false), run_grouping(doc, true), N);
          }
}

TEST_CASE("grouping: 100 workers under lv08, shard replies through the send pool, equal to the ungrouped run") {
  for (const std::string overlap : {"none", "per-tensor"}) {
    CAPTURE(overlap);
    json doc = ps_config(100, 2, false, "lv08", overlap);
    doc["platform"]["workers"]["link"] = {{"bandwidth", "10Gbps"}, {"latency", "10us"}};
    doc["platform"]["servers"]["link"] = {{"bandwidth", "100Gbps"}, {"latency", "10us"}};
    doc["output"]["trace"] = false;
    const ChildRun all = run_grouping(doc, false), one = run_grouping(doc, true);
    check_same(all, one, 100);
    if (overlap == "none") CHECK(one.summary["messages"].get<int>() == 2 * 100 * 2 * 3);  // a push and a pull per shard and step
  }
}

TEST_CASE("grouping: workers that differ, or an algorithm that does not treat them alike, are all simulated, with a warning") {
  std::vector<std::pair<std::string, json>> cases;
  auto add = [&](const std::string& name, const std::function<void(json&)>& change) {
    json d = ps_config(4, 1, false, "lv08", "none");
    change(d);
    cases.emplace_back(name, d);
  };
  add("asgd", [](json& d) { d["algorithm"]["name"] = "asgd"; });
  add("all-reduce", [](json& d) { d["algorithm"]["comm"] = "allreduce"; });
  add("straggler", [](json& d) { d["platform"]["stragglers"] = json::parse(R"([{"workers": [2], "slowdown": 1.5}])"); });
  add("racks", [](json& d) { d["platform"]["topology"] = {{"kind", "racks"}, {"racks", 2}}; });
  add("colocated", [](json& d) {
    d["platform"]["servers"] = {{"count", 1}, {"placement", "colocated"}};
  });
  add("groups", [](json& d) {
    d["platform"]["workers"] = json::parse(R"({"groups": [{"count": 2, "speed": "1Tf"}, {"count": 2, "speed": "2Tf"}]})");
  });
  add("real", [](json& d) {
    d["compute"]["mode"] = "real";
    d["output"]["trace"] = false;
  });
  for (const auto& [name, doc] : cases) {
    CAPTURE(name);
    json d = doc;
    d["platform"]["workers"]["grouping"] = "identical";
    const Experiment x = load(d);
    bool warned = false;
    for (const auto& w : x.warnings) warned |= w.find("platform.workers.grouping: \"identical\" is not used") != std::string::npos;
    CHECK(warned);
    const ChildRun all = run_grouping(doc, false), one = run_grouping(doc, true);
    CHECK(one.summary["workers_simulated"] == 4);
    CHECK(all.summary["simulated_time_s"] == one.summary["simulated_time_s"]);  // bitwise: the same code ran
  }
  // Alike groups are one group.
  json same = ps_config(4, 1, false, "exact", "none");
  same["platform"]["workers"] = json::parse(R"({"groups": [{"count": 1, "speed": "1Tf"}, {"count": 3, "speed": "1Tf"}]})");
  check_same(run_grouping(same, false), run_grouping(same, true), 4);
}

TEST_CASE("grouping: validate's estimate counts one worker, and suggests grouping for large runs it applies to") {
  json doc = ps_config(1000, 10, false, "lv08", "none");
  doc["training"]["samples"] = 1000 * 16 * 20;
  doc["output"]["trace"] = false;
  const sim::RunCost all = sim::estimate_cost(load(doc));
  CHECK(all.hint.find("platform.workers.grouping") != std::string::npos);
  doc["platform"]["workers"]["grouping"] = "identical";
  const sim::RunCost one = sim::estimate_cost(load(doc));
  CHECK(one.transfers * 1000 == dtsim_test::Rel(all.transfers));
  CHECK(one.hint.empty());
  CHECK(one.memory_bytes < all.memory_bytes);
  doc["algorithm"]["name"] = "asgd";  // not interchangeable: no hint
  doc["platform"]["workers"]["grouping"] = "none";
  CHECK(sim::estimate_cost(load(doc)).hint.find("grouping") == std::string::npos);
  doc["platform"]["workers"]["grouping"] = "identicl";
  CHECK_THROWS_WITH_AS(load(doc), doctest::Contains("platform.workers.grouping"), InputError);
}

}  // namespace test_grouping_cpp
}  // namespace dtsim::test
