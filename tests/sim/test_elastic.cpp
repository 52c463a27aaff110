// on_failure "elastic" (issue 16 item 6; sim/elastic.hpp, docs/platforms.md "Failures"): after the
// detection timeout the survivors of an all-reduce algorithm re-form the ring and go on with N−1
// workers from the last consistent model; a recovered worker rejoins at the next round boundary.
// Checked on the summary (status, samples_lost, the "elastic" record), on the timeline (no
// collective with the lost worker after its crash), in closed form (the 3-rank ring after the
// shrink), against SSGD on a parameter server under drop (the same survivors' mean), and for
// determinism; refusals are one-line input errors.
#include <map>

#include "algorithms/api.hpp"
#include "algorithms/common.hpp"
#include "tests/sim/test_alg_helpers.hpp"
#include "tests/rel.hpp"

namespace test_elastic_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

constexpr int kN = 4, kMB = 16, kSteps = 8;
constexpr double kCrashAt = 0.035, kDetect = 0.02;  // worker-2 crashes in the middle of its 4th compute

const json kCrash = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02}])");

// An all-reduce algorithm on 4 workers (no servers), 8 synchronous steps, elastic, trace on.
json elastic_config(json algorithm, const json& failures, bool real = false, int steps = kSteps) {
  json cfg = small_config(kN, 0);
  cfg["compute"]["mode"] = real ? "real" : "timing-only";
  cfg["training"]["samples"] = steps * kN * kMB;
  cfg["platform"]["failures"] = failures;
  algorithm["on_failure"] = "elastic";
  cfg["algorithm"] = algorithm;
  cfg["output"]["trace"] = true;
  return cfg;
}

// The six algorithms that take on_failure "elastic", and the samples worker-2 loses when it crashes
// at 35 ms (each step is 10 ms of compute): the minibatches it began since its last contribution.
// SSGD: its 4th; period-4 algorithms: all 4 of the first round (no collective yet); Streaming
// DiLoCo (period 4, 2 fragments): fragment 1 left after step 1, so steps 2 and 3.
const std::vector<std::pair<json, int>> kAlgorithms = {
    {{{"name", "ssgd"}, {"comm", "allreduce"}}, kMB},
    {{{"name", "local-sgd"}, {"period", 4}}, 4 * kMB},
    {{{"name", "cocod-sgd"}, {"period", 4}}, 4 * kMB},
    {{{"name", "dasgd"}, {"period", 4}, {"delay", 1}}, 4 * kMB},
    {{{"name", "diloco"}, {"period", 4}}, 4 * kMB},
    {{{"name", "streaming-diloco"}, {"period", 4}, {"fragments", 2}, {"delay", 1}}, 2 * kMB},
};

// Collective transfers on the timeline: [start, end] in seconds and the two hosts.
struct CollectiveSlice {
  double start, end;
  std::string host, peer;
};

std::vector<CollectiveSlice> collective_slices(const std::string& trace) {
  const json doc = json::parse(trace);
  std::map<int, std::string> process;
  for (const auto& e : doc["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "process_name") process[e["pid"].get<int>()] = e["args"]["name"];
  std::vector<CollectiveSlice> out;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] != "X" || e["cat"] != "collective") continue;
    const double ts = e["ts"].get<double>() / 1e6, dur = e["dur"].get<double>() / 1e6;
    const json& a = e["args"];
    out.push_back({ts, ts + dur, process.at(e["pid"].get<int>()), a.contains("to") ? a["to"] : a["from"]});
  }
  return out;
}

bool involves(const CollectiveSlice& c, const std::string& host) { return c.host == host || c.peer == host; }

double T(const ChildRun& r) { return sim_time(r); }

// SSGD on an all-reduce with plain SGD (lr 0.05) under elastic, reporting every worker's gradient
// ("g") and parameters after the step ("W") with Node::observe.
class ObservedSsgd final : public algo::Algorithm {
 public:
  bool needs_servers() const override { return false; }
  OnFailure on_failure() const override { return OnFailure::Elastic; }
  void worker(algo::Worker& w) override {
    algo::Vec W = algo::copy_of(w, algo::view_of(w.initial_params()));
    for (int64_t t = w.resume_step(); t < w.sync_steps(); ++t) {
      const algo::Gradient g = w.compute(W.view());
      w.observe("g", t, algo::view_of(g));
      const auto mean = w.allreduce(g.payload(w.num_params()), algo::Reduce::Mean, w.batch_size());
      if (w.real()) engine::ops::axpy(W.view(), -0.05f, mean->view());
      w.observe("W", t, W.view());
      if (w.leads()) w.publish_global(W.view());
      w.checkpoint(t + 1, {});
    }
  }
};

}  // namespace

TEST_CASE("elastic: each all-reduce algorithm survives worker-2's crash with 3 workers, the lost samples counted") {
  for (const auto& [alg, lost] : kAlgorithms) {
    CAPTURE(alg.dump());
    const auto r = run_ok(elastic_config(alg, kCrash));
    CHECK(r.summary["status"] == "completed");
    REQUIRE(r.summary["failures"].size() == 1);
    CHECK(r.summary["failures"][0]["host"] == "worker-2");
    CHECK(r.summary["failures"][0]["kind"] == "crash");
    CHECK(r.summary["samples_lost"].get<int>() == lost);
    // One membership change: the group shrank to 3 when the loss was detected.
    REQUIRE(r.summary["elastic"].size() == 1);
    const auto& e = r.summary["elastic"][0];
    CHECK(e["workers"] == 3);
    CHECK(e["reason"] == "worker-2 lost");
    CHECK(e["at_s"].get<double>() == dtsim_test::Rel(kCrashAt + kDetect));
    const auto& pw = r.summary["per_worker"];
    for (int i : {0, 1, 3}) CHECK(pw[i]["gradients"] == kSteps);  // the survivors ran the whole budget
    CHECK(pw[2]["gradients"].get<int>() < kSteps);
    // The timeline: no transfer of a collective with worker-2 ends after its crash; the survivors'
    // collectives go on after the detection.
    const auto slices = collective_slices(r.trace);
    int after = 0;
    for (const auto& c : slices) {
      if (involves(c, "worker-2")) CHECK(c.end <= kCrashAt + 1e-12);
      if (c.start >= kCrashAt + kDetect - 1e-12) ++after;
    }
    CHECK(after > 0);
  }
}

TEST_CASE("elastic: without on_failure elastic the same crash still ends the run (the default is unchanged)") {
  json cfg = elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}}, kCrash);
  cfg["algorithm"].erase("on_failure");
  const auto r = run_forked(load(cfg));
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("survive a failed worker") != std::string::npos);
  CHECK(r.summary.is_null());
}

TEST_CASE("elastic: the steps after the shrink take the 3-rank ring time (closed form, exact network)") {
  // |W| = 2052 (a multiple of 12: equal ring chunks for 3 and 4 ranks).
  auto cfg_of = [](const json& failures) {
    json cfg = elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}}, failures);
    cfg["model"]["hidden"] = {28};
    cfg["dataset"]["classes"] = 8;
    return cfg;
  };
  const double P = 64 * 28 + 28 + 28 * 8 + 8;
  REQUIRE(P == 2052);
  const double U = P * 4 / kSpeed;  // the local optimizer step
  const auto base = run_ok(cfg_of(json::array()));
  CHECK(T(base) == dtsim_test::Rel(kSteps * (kTc + ring(4, P) + U)).epsilon(1e-9));
  CHECK(base.summary.count("elastic") == 0);  // no failures: nothing to report
  // Step 3's all-reduce waits for the detection (55 ms), is run again among the 3 survivors, then
  // steps 4..7 are compute + 3-rank ring + update.
  const auto r = run_ok(cfg_of(kCrash));
  CHECK(T(r) == dtsim_test::Rel(kCrashAt + kDetect + ring(3, P) + U + (kSteps - 4) * (kTc + ring(3, P) + U)).epsilon(1e-9));
  // On the timeline: worker-0 sends to worker-1 4 times per all-reduce of 3 ranks (2 reduce-scatter
  // and 2 all-gather steps); the first sends of the last two steps are one step apart.
  std::vector<double> starts;
  for (const auto& c : collective_slices(r.trace))
    if (c.host == "worker-0" && c.peer == "worker-1" && c.start >= kCrashAt + kDetect - 1e-12) starts.push_back(c.start);
  std::sort(starts.begin(), starts.end());
  REQUIRE(starts.size() == 4 * 5);  // the rerun of step 3 and steps 4..7
  CHECK(starts[16] - starts[12] == dtsim_test::Rel(kTc + ring(3, P) + U).epsilon(1e-9));
  CHECK(starts[0] == dtsim_test::Rel(kCrashAt + kDetect).epsilon(1e-12));  // the rerun starts at the detection
}

TEST_CASE("elastic: the survivors' mean equals SSGD on a parameter server that drops the lost worker, and runs are deterministic") {
  const json alg = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"momentum", 0.9}};
  const auto a = run_ok(elastic_config(alg, kCrash, true));
  const auto b = run_ok(elastic_config(alg, kCrash, true));
  // Determinism: bitwise the same parameters, trace and summary (wall time aside).
  CHECK(a.params_npy == b.params_npy);
  CHECK(a.trace == b.trace);
  json sa = a.summary, sb = b.summary;
  sa.erase("wall_time_s");
  sb.erase("wall_time_s");
  CHECK(sa.dump() == sb.dump());
  // SSGD on a PS under drop averages the same survivors' gradients from the same step on (the PS
  // waits for the detection too): the same model up to the summation order.
  json ps = elastic_config({{"name", "ssgd"}, {"lr", 0.05}, {"momentum", 0.9}}, kCrash, true);
  ps["algorithm"].erase("on_failure");
  ps["platform"]["servers"]["count"] = 1;
  const auto p = run_ok(ps);
  CHECK(p.summary["samples_lost"] == a.summary["samples_lost"]);
  CHECK(rel_diff(a.params, p.params) < 1e-5);
  json none = elastic_config(alg, json::array(), true);
  CHECK(rel_diff(a.params, run_ok(none).params) > 1e-4);  // the failure did change the trajectory
  for (float v : a.params) REQUIRE(std::isfinite(v));
}

TEST_CASE("elastic: after the shrink every survivor applies the mean of the survivors' gradients, bitwise the same on each") {
  const auto obs = run_observed(elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}}, kCrash, true), nullptr, {},
                                [] { return std::make_unique<ObservedSsgd>(); });
  const auto W = by_step(obs, "W"), g = by_step(obs, "g");
  REQUIRE(W.size() == kSteps);
  for (int64_t t = 0; t < kSteps; ++t) {
    CAPTURE(t);
    const auto& Wt = W.at(t);
    // Steps 0..2 with 4 workers, then the 3 survivors (worker-2 crashed computing step 3).
    REQUIRE(Wt.size() == (t < 3 ? 4u : 3u));
    CHECK(Wt.count(2) == (t < 3 ? 1u : 0u));
    for (const auto& [node, v] : Wt) CHECK(v == Wt.begin()->second);  // bitwise identical replicas
    // W_{t+1} = W_t − 0.05 · mean of the gradients of step t's members (worker-2's step-3 gradient
    // was never computed: it is not in the mean).
    REQUIRE(g.at(t).size() == Wt.size());
    if (t == 0) continue;
    const std::vector<float> mean = mean_of(g.at(t));
    const std::vector<float>& prev = W.at(t - 1).begin()->second;
    const std::vector<float>& now = Wt.begin()->second;
    std::vector<float> step(now.size());
    for (size_t i = 0; i < now.size(); ++i) step[i] = (prev[i] - now[i]) / 0.05f;
    CHECK(max_rel(step, mean) < 1e-4);
  }
}

TEST_CASE("elastic: losing worker 0 moves the publishing of the global model to the lowest survivor") {
  const auto r = run_ok(elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}},
                                       json::parse(R"([{"host": "worker-0", "at_s": 0.035, "detect_s": 0.02}])"), true));
  CHECK(r.summary["updates"] == kSteps);  // every step published: 3 by worker 0, then 5 by worker 1
  CHECK(r.summary["elastic"][0]["reason"] == "worker-0 lost");
  const json base = elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}}, json::array(), true);
  CHECK(rel_diff(r.params, run_ok(base).params) > 1e-4);
}

TEST_CASE("elastic: repeated failures keep shrinking the group, and losing every worker ends with exit 1") {
  const json two = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02},
                                   {"host": "worker-1", "at_s": 0.07, "detect_s": 0.005}])");
  for (const auto& [alg, lost] : kAlgorithms) {
    CAPTURE(alg.dump());
    const auto r = run_ok(elastic_config(alg, two));
    CHECK(r.summary["status"] == "completed");
    REQUIRE(r.summary["elastic"].size() == 2);
    CHECK(r.summary["elastic"][0]["workers"] == 3);
    CHECK(r.summary["elastic"][1]["workers"] == 2);
    CHECK(r.summary["elastic"][1]["reason"] == "worker-1 lost");
    for (int i : {0, 3}) CHECK(r.summary["per_worker"][i]["gradients"] == kSteps);
  }
  json all = elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}},
                            json::parse(R"([{"host": "worker-0", "at_s": 0.015}, {"host": "worker-1", "at_s": 0.025}])"));
  all["platform"]["workers"]["count"] = 2;
  const auto r = run_forked(load(all));
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("no worker is left") != std::string::npos);
  CHECK(r.error.find("worker-1") != std::string::npos);
}

TEST_CASE("elastic: a recovered worker rejoins at the next round boundary and the group grows back to 4") {
  const json outage = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.06}])");
  constexpr int steps = 16;
  for (const auto& [alg, lost] : kAlgorithms) {
    CAPTURE(alg.dump());
    const auto r = run_ok(elastic_config(alg, outage, false, steps));
    CHECK(r.summary["status"] == "completed");
    CHECK(r.summary["samples_lost"].get<int>() == lost);
    REQUIRE(r.summary["elastic"].size() == 2);
    CHECK(r.summary["elastic"][0]["workers"] == 3);
    const auto& back = r.summary["elastic"][1];
    CHECK(back["workers"] == 4);
    CHECK(back["reason"] == "worker-2 rejoined");
    const double at = back["at_s"].get<double>();
    CHECK(at >= 0.06);
    CHECK(r.summary["failures"][0]["recovered_s"].get<double>() == dtsim_test::Rel(0.06));
    const auto& pw = r.summary["per_worker"];
    for (int i : {0, 1, 3}) CHECK(pw[i]["gradients"] == steps);
    CHECK(pw[2]["gradients"].get<int>() > 4);  // it computed again after rejoining
    CHECK(pw[2]["gradients"].get<int>() < steps);
    // The timeline: worker-2 takes part in collectives again after it rejoined, and none between
    // its crash and then.
    int again = 0;
    for (const auto& c : collective_slices(r.trace))
      if (involves(c, "worker-2")) {
        CHECK((c.end <= kCrashAt + 1e-12 || c.start >= at - 1e-12));
        again += c.start >= at;
      }
    CHECK(again > 0);
  }
}

TEST_CASE("elastic: tree, recursive-doubling and hierarchical collectives re-form over the survivors, and a rejoin races no one") {
  // 6 workers: the survivors are not a power of two (recursive doubling folds), racks of 3 lose a
  // member (hierarchical). CoCoD-SGD's members start the next all-reduce right after their
  // checkpoint call: those that reach the boundary before the leader have formed it without the
  // rejoiner, and it is formed again with it.
  const json outage = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.06}])");
  for (const json& coll : {json("ring"), json("tree"), json("recursive-doubling"), json{{"algorithm", "hierarchical"}, {"group_size", 3}}}) {
    for (const json& alg : {json{{"name", "ssgd"}, {"comm", "allreduce"}}, json{{"name", "cocod-sgd"}, {"period", 4}}}) {
      CAPTURE(coll.dump());
      CAPTURE(alg.dump());
      json cfg = elastic_config(alg, outage, false, 16);
      cfg["platform"]["workers"]["count"] = 6;
      cfg["training"]["samples"] = 16 * 6 * kMB;
      cfg["platform"]["collective"] = coll;
      const auto r = run_ok(cfg);
      REQUIRE(r.summary["elastic"].size() == 2);
      CHECK(r.summary["elastic"][0]["workers"] == 5);
      CHECK(r.summary["elastic"][1]["workers"] == 6);
      CHECK(r.summary["per_worker"][2]["gradients"].get<int>() > 4);  // it computed again
      for (int i : {0, 1, 3, 4, 5}) CHECK(r.summary["per_worker"][i]["gradients"] == 16);
    }
  }
}

// When a loss was detected each survivor woke in turn, killed its own attempt's transfer actor
// and started the new attempt: a survivor that started first could receive a send still pending
// from a peer's old attempt (not killed yet), which then died with it; the new attempt waited for
// that chunk forever (8 and 9 workers deadlocked on every crash, found by a docs audit). The old
// attempts are now all killed when the collective is abandoned, before anyone runs it again.
TEST_CASE("elastic: the survivors re-form the collective whatever the group size and the lost rank") {
  for (const int n : {5, 8, 9, 12}) {
    for (const int lost : {1, 2, n - 1}) {
      for (const std::string coll : {"ring", "recursive-doubling"}) {
        for (const bool back : {false, true}) {
          CAPTURE(n);
          CAPTURE(lost);
          CAPTURE(coll);
          CAPTURE(back);
          json f = {{"host", "worker-" + std::to_string(lost)}, {"at_s", kCrashAt}, {"detect_s", kDetect}};
          if (back) f["recover_s"] = 0.06;
          json cfg = elastic_config({{"name", "ssgd"}, {"comm", "allreduce"}}, json::array({f}), false, 16);
          cfg["platform"]["workers"]["count"] = n;
          cfg["training"]["samples"] = 16 * n * kMB;
          cfg["platform"]["collective"] = coll;
          const auto r = run_ok(cfg);
          REQUIRE(r.summary["elastic"].size() == (back ? 2u : 1u));
          CHECK(r.summary["elastic"][0]["workers"] == n - 1);
          for (int i = 0; i < n; ++i)
            if (i != lost) CHECK(r.summary["per_worker"][i]["gradients"] == 16);
        }
      }
    }
  }
}

TEST_CASE("elastic: random failures (MTBF/MTTR) shrink and regrow the group, deterministically") {
  json cfg = elastic_config({{"name", "local-sgd"}, {"period", 4}},
                            json::parse(R"([{"hosts": ["worker-*"], "mtbf_s": 0.15, "mttr_s": 0.02, "detect_s": 0.005}])"), true, 32);
  const auto a = run_ok(cfg);
  const auto b = run_ok(cfg);
  CHECK(a.params_npy == b.params_npy);
  CHECK(a.summary["elastic"] == b.summary["elastic"]);
  CHECK(a.summary["samples_lost"] == b.summary["samples_lost"]);
  CHECK(a.summary["failures"].size() >= 3);
  int lost = 0, rejoined = 0;
  for (const auto& e : a.summary["elastic"]) (e["reason"].get<std::string>().find("lost") != std::string::npos ? lost : rejoined)++;
  CHECK(lost >= 2);
  CHECK(rejoined >= 1);
  for (float v : a.params) REQUIRE(std::isfinite(v));
}

TEST_CASE("elastic: a rejoined SSGD worker continues from the survivors' model (real mode, deterministic)") {
  const json outage = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.06}])");
  const json alg = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"momentum", 0.9}};
  const auto a = run_ok(elastic_config(alg, outage, true, 16));
  const auto b = run_ok(elastic_config(alg, outage, true, 16));
  CHECK(a.params_npy == b.params_npy);
  CHECK(a.trace == b.trace);
  for (float v : a.params) REQUIRE(std::isfinite(v));
  CHECK(a.summary["updates"] == 16);
  CHECK(a.summary["final_test_accuracy"].get<double>() > 0.2);
  // The model's transfer to the rejoiner is on the timeline: a "model" message from worker-0.
  CHECK(a.trace.find("\"what\":\"model\"") != std::string::npos);
}

TEST_CASE("elastic: refused with one line naming algorithm.on_failure and the valid values") {
  auto error_of = [](const json& algorithm) -> std::pair<std::string, std::string> {
    json cfg = small_config(kN, 1);
    cfg["algorithm"] = algorithm;
    try {
      load(cfg);
    } catch (const InputError& e) {
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
      return {e.path(), e.reason()};
    }
    return {"", ""};
  };
  const std::vector<std::tuple<json, std::vector<std::string>>> cases = {
      {{{"name", "ssgd"}, {"on_failure", "elastic"}}, {"allreduce", "expected one of 'drop', 'wait'"}},
      {{{"name", "ssgd"}, {"comm", "ps"}, {"on_failure", "elastic"}}, {"allreduce", "expected one of 'drop', 'wait'"}},
      {{{"name", "local-sgd"}, {"comm", "ps"}, {"on_failure", "elastic"}}, {"allreduce", "expected one of 'drop' "}},
      {{{"name", "asgd"}, {"on_failure", "elastic"}}, {"fixed failure policy (restart)", "cocod-sgd"}},
      {{{"name", "hpsgd"}, {"on_failure", "elastic"}}, {"fixed failure policy (drop)", "streaming-diloco"}},
      {{{"name", "cocod-sgd"}, {"on_failure", "elastc"}}, {"did you mean 'elastic'", "'drop', 'elastic'"}},
      {{{"name", "diloco"}, {"on_failure", "wait"}}, {"unknown value 'wait'", "'drop', 'elastic'"}},
  };
  for (const auto& [alg, phrases] : cases) {
    CAPTURE(alg.dump());
    const auto [path, reason] = error_of(alg);
    CHECK(path == "algorithm.on_failure");
    for (const auto& ph : phrases) CHECK_MESSAGE(reason.find(ph) != std::string::npos, reason);
  }
  // Accepted where it is well defined; the resolved config of the other five keeps no default.
  for (const auto& [alg, lost] : kAlgorithms) {
    json cfg = small_config(kN, 0);
    cfg["algorithm"] = alg;
    CHECK(load(cfg).algorithm_spec.count("on_failure") == (alg["name"] == "ssgd" ? 1u : 0u));
    cfg["algorithm"]["on_failure"] = "elastic";
    CHECK(load(cfg).algorithm_spec["on_failure"] == "elastic");
  }
}

}  // namespace test_elastic_cpp
