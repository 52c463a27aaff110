// Failures (issue 5): a worker crash mid-run completes for SSGD (drop: the survivors continue once
// the loss is detected; wait: the host is frozen until it recovers), ASGD (the worker restarts
// from the current model) and local SGD (PS form); the summary counts the failures and the samples
// lost; a failed server shard or a collective that cannot survive ends with an error, never a hang.
#include <sys/resource.h>

#include <cmath>
#include <set>

#include "algorithms/api.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_failures_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

constexpr int kN = 4, kB = 16, kSteps = 8;

// SSGD-like timing: compute 10 ms, then ~0.8 ms of PS traffic per step. At 35 ms worker 2 is in
// the middle of its 4th compute (steps start at 0, 10.8, 21.6, 32.5 ms).
json failure_config(const json& failures, bool real = false) {
  json cfg = small_config(kN, 1);
  cfg["compute"]["mode"] = real ? "real" : "timing-only";
  cfg["training"]["samples"] = kSteps * kN * kB;
  cfg["platform"]["failures"] = failures;
  return cfg;
}

ChildRun run_ok(const json& cfg) {
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  return r;
}

double T(const ChildRun& r) { return r.summary["simulated_time_s"].get<double>(); }

}  // namespace

TEST_CASE("SSGD drop: worker 2 crashes mid-compute, after detect_s the PS averages the 3 survivors and the run completes") {
  const json crash = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02}])");
  const auto base = run_ok(failure_config(json::array()));
  const auto r = run_ok(failure_config(crash));
  CHECK(r.summary["status"] == "completed");
  REQUIRE(r.summary["failures"].size() == 1);
  const auto& f = r.summary["failures"][0];
  CHECK(f["host"] == "worker-2");
  CHECK(f["kind"] == "crash");
  CHECK(f["at_s"].get<double>() == dtsim_test::Rel(0.035));
  CHECK(f["detected_s"].get<double>() == dtsim_test::Rel(0.055));
  CHECK(f["recovered_s"].is_null());
  CHECK(r.summary["samples_lost"] == kB);  // its 4th minibatch was being computed
  const auto& pw = r.summary["per_worker"];
  CHECK(pw[2]["gradients"] == 3);
  for (int i : {0, 1, 3}) CHECK(pw[i]["gradients"] == kSteps);
  CHECK(r.summary["updates"] == kSteps);
  // The step that lost a worker waited for the detection: later than without the failure.
  CHECK(T(r) > T(base) + 0.01);
  CHECK(base.summary["failures"].empty());
  CHECK(base.summary["samples_lost"] == 0);
}

TEST_CASE("SSGD drop: a dead worker's host that recovers and fails again loses nothing more") {
  // Under drop the worker never runs again; its host coming back and failing a second time must
  // not count its lost minibatch twice, nor the worker as finished twice.
  const json once = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.045}])");
  const json twice = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.045},
                                     {"host": "worker-2", "at_s": 0.050, "detect_s": 0.02}])");
  const auto a = run_ok(failure_config(once));
  const auto b = run_ok(failure_config(twice));
  CHECK(a.summary["samples_lost"] == kB);
  CHECK(b.summary["samples_lost"] == kB);
  CHECK(b.summary["status"] == "completed");
  CHECK(b.summary["updates"] == kSteps);
  CHECK(T(b) == dtsim_test::Rel(T(a)));
  for (int i : {0, 1, 3}) CHECK(b.summary["per_worker"][i]["gradients"] == kSteps);
}

TEST_CASE("SSGD drop in real mode: the model keeps training on the survivors' gradients") {
  const json crash = json::parse(R"([{"host": "worker-1", "at_s": 0.02, "detect_s": 0.005}])");
  json cfg = failure_config(crash, true);
  cfg["training"]["samples"] = 2048;
  const auto base = run_ok(failure_config(json::array(), true));
  const auto r = run_ok(cfg);
  REQUIRE(!r.params.empty());
  for (float v : r.params) REQUIRE(std::isfinite(v));
  CHECK(rel_diff(r.params, base.params) > 1e-4);  // a different trajectory
  CHECK(r.summary["final_test_accuracy"].get<double>() > 0.3);
}

TEST_CASE("SSGD wait: the crashed host is frozen until it recovers, nothing is lost, the run is later by the outage") {
  const json outage = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "recover_s": 0.1}])");
  json cfg = failure_config(outage);
  cfg["algorithm"]["on_failure"] = "wait";
  const auto base = run_ok(failure_config(json::array()));
  const auto r = run_ok(cfg);
  CHECK(r.summary["failures"][0]["kind"] == "freeze");
  CHECK(r.summary["failures"][0]["recovered_s"].get<double>() == dtsim_test::Rel(0.1));
  CHECK(r.summary["samples_lost"] == 0);
  for (int i = 0; i < kN; ++i) CHECK(r.summary["per_worker"][i]["gradients"] == kSteps);
  // Its compute resumes where it stopped (0.065 s later); its step-3 push then meets an idle server
  // NIC (the others' arrived during the outage): S/B instead of 4 S/B. The pull is unchanged.
  const double S = 4 * 2260.0, B = 1e9 / 8;
  CHECK(T(r) == dtsim_test::Rel(T(base) + 0.065 - 3 * S / B).epsilon(1e-9));
  // Waiting for a failure that never recovers is refused up front.
  json never = failure_config(json::parse(R"([{"host": "worker-2", "at_s": 0.035}])"));
  never["algorithm"]["on_failure"] = "wait";
  try {
    load(never);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(e.path() == "platform.failures[0]");
    CHECK(std::string(e.what()).find("never recovers") != std::string::npos);
  }
}

// A message sent into a frozen host's inbox while it is frozen (a worker's push to a frozen
// shard, a shard's reply to a frozen worker) started suspended in SimGrid, and resuming the
// frozen actors did not resume it (it is the sender's activity, not the receiver's): the run
// deadlocked whenever a freeze caught such a message, 118 of the runs of a robustness matrix. On
// recovery those messages now go on. Freezes at 40 instants across a step, of a shard, of a worker
// (3 shards) and of a worker holding a co-located shard.
TEST_CASE("wait: messages sent to a frozen host arrive after it recovers, whenever the freeze starts") {
  struct Case {
    const char* host;
    int workers, servers;
    const char* placement;
  };
  for (const Case c : {Case{"server-0", 2, 1, "dedicated"}, Case{"worker-1", 2, 3, "dedicated"}, Case{"worker-0", 3, 1, "colocated"}}) {
    for (int k = 0; k < 40; ++k) {
      const double at = 0.08 + 0.0005 * k;
      CAPTURE(std::string(c.host));
      CAPTURE(at);
      json cfg = small_config(c.workers, c.servers);
      cfg["compute"]["mode"] = "timing-only";
      cfg["platform"]["servers"]["placement"] = c.placement;
      if (std::string(c.placement) == "colocated") cfg["platform"]["servers"] = {{"count", c.servers}, {"placement", c.placement}};
      cfg["training"]["samples"] = 24 * c.workers * kB;
      cfg["platform"]["failures"] = json::array({{{"host", c.host}, {"at_s", at}, {"recover_s", at + 0.02}}});
      cfg["algorithm"]["on_failure"] = "wait";
      const auto r = run_forked(load(cfg));
      REQUIRE_MESSAGE(r.exit_code == 0, r.error);
      CHECK(r.summary["samples_lost"] == 0);
      for (int i = 0; i < c.workers; ++i) CHECK(r.summary["per_worker"][i]["gradients"] == 24);
    }
  }
}

TEST_CASE("ASGD: a crashed worker's in-flight gradient is lost, it restarts from the current model when its host recovers") {
  json cfg = failure_config(json::parse(R"([{"host": "worker-1", "at_s": 0.035, "recover_s": 0.06}])"));
  cfg["algorithm"] = {{"name", "asgd"}, {"lr", 0.05}};
  const auto r = run_ok(cfg);
  CHECK(r.summary["status"] == "completed");
  REQUIRE(r.summary["failures"].size() == 1);
  CHECK(r.summary["failures"][0]["recovered_s"].get<double>() == dtsim_test::Rel(0.06));
  CHECK(r.summary["samples_lost"] == kB);
  const auto& pw = r.summary["per_worker"];
  CHECK(pw[1]["gradients"].get<int>() > 3);  // it came back and computed more
  CHECK(pw[1]["gradients"].get<int>() < pw[0]["gradients"].get<int>());
  // Every claimed minibatch was either computed or lost with the crash.
  CHECK(r.summary["samples"].get<int>() + r.summary["samples_lost"].get<int>() == kSteps * kN * kB);
  // Without recovery the others take over its share of the budget.
  json gone = failure_config(json::parse(R"([{"host": "worker-1", "at_s": 0.035}])"));
  gone["algorithm"] = cfg["algorithm"];
  const auto g = run_ok(gone);
  CHECK(g.summary["per_worker"][1]["gradients"] == 3);
  CHECK(g.summary["samples"].get<int>() + g.summary["samples_lost"].get<int>() == kSteps * kN * kB);
}

TEST_CASE("ASGD in real mode with a restart: training continues and stays finite") {
  json cfg = failure_config(json::parse(R"([{"host": "worker-3", "at_s": 0.02, "recover_s": 0.05}])"), true);
  cfg["algorithm"] = {{"name", "asgd"}, {"lr", 0.05}};
  cfg["training"]["samples"] = 2048;
  const auto r = run_ok(cfg);
  for (float v : r.params) REQUIRE(std::isfinite(v));
  CHECK(r.summary["final_test_accuracy"].get<double>() > 0.3);
}

TEST_CASE("local SGD (PS form, drop): the average goes on over the survivors") {
  // Test hook for the algorithms issue: any algorithm whose PS gathers with gather_from_workers
  // (algorithms/common.cpp) survives a crash the same way.
  if (!algo::find_algorithm("local-sgd")) return;
  json cfg = failure_config(json::parse(R"([{"host": "worker-0", "at_s": 0.035, "detect_s": 0.01}])"));
  cfg["algorithm"] = {{"name", "local-sgd"}, {"comm", "ps"}};
  const auto r = run_ok(cfg);
  CHECK(r.summary["status"] == "completed");
  CHECK(r.summary["failures"].size() == 1);
  CHECK(r.summary["samples_lost"].get<int>() > 0);
  CHECK(r.summary["per_worker"][0]["gradients"].get<int>() < r.summary["per_worker"][1]["gradients"].get<int>());
}

TEST_CASE("random failures (MTBF/MTTR) are seeded: same seed same failures, another seed other failures") {
  json cfg = failure_config(json::parse(R"([{"hosts": ["worker-*"], "mtbf_s": 0.05, "mttr_s": 0.01, "detect_s": 0.005}])"));
  cfg["algorithm"] = {{"name", "asgd"}, {"lr", 0.05}};
  const auto a = run_ok(cfg);
  const auto b = run_ok(cfg);
  cfg["seed"] = 99;
  const auto c = run_ok(cfg);
  CHECK(a.summary["failures"].size() >= 2);
  CHECK(a.summary["failures"] == b.summary["failures"]);
  CHECK(a.summary["samples_lost"] == b.summary["samples_lost"]);
  CHECK(T(a) == T(b));
  CHECK(a.summary["failures"] != c.summary["failures"]);
  for (const auto& f : a.summary["failures"]) {
    CHECK(f["at_s"].get<double>() <= T(a));
    if (!f["recovered_s"].is_null()) CHECK(f["recovered_s"].get<double>() > f["at_s"].get<double>());
  }
}

TEST_CASE("a failure scheduled after the run ends changes nothing") {
  const auto base = run_ok(failure_config(json::array()));
  const auto r = run_ok(failure_config(json::parse(R"([{"host": "worker-0", "at_s": 100}])")));
  CHECK(T(r) == T(base));
  CHECK(r.summary["failures"].empty());
}

// Losing every worker for good ended "completed", exit 0, with none of the budget done and no
// warning (drop); it is an error now, as under elastic. Losing all but one still completes.
TEST_CASE("drop: every worker failed for good is an error (no worker is left), not a completed run") {
  json all = json::array(), but_one = json::array();
  for (int j = 0; j < kN; ++j) {
    all.push_back({{"host", "worker-" + std::to_string(j)}, {"at_s", 0.001}});
    if (j > 0) but_one.push_back(all.back());
  }
  const auto r = run_forked(load(failure_config(all)));
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("every worker failed") != std::string::npos);
  CHECK(r.error.find("no worker is left") != std::string::npos);
  const auto ok = run_ok(failure_config(but_one));
  CHECK(ok.summary["status"] == "completed");
  CHECK(ok.summary["samples"].get<uint64_t>() > 0);
}

TEST_CASE("a failed server shard is fatal (no replication): exit 1 naming the host, no hang") {
  const auto r = run_forked(load(failure_config(json::parse(R"([{"host": "server-0", "at_s": 0.02}])"))));
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("server-0") != std::string::npos);
  CHECK(r.error.find("not replicated") != std::string::npos);
  // A co-located shard dies with its worker host.
  json co = failure_config(json::parse(R"([{"host": "worker-0", "at_s": 0.02}])"));
  co["platform"]["servers"] = {{"count", 1}, {"placement", "colocated"}};
  const auto c = run_forked(load(co));
  CHECK(c.exit_code == 1);
  CHECK(c.error.find("worker-0") != std::string::npos);
}

TEST_CASE("an all-reduce cannot lose a rank: a crash under drop ends with an error, never a hang or an abort") {
  json cfg = failure_config(json::parse(R"([{"host": "worker-1", "at_s": 0.0105}])"));
  cfg["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}};
  cfg["platform"]["servers"] = {{"count", 0}};
  const auto r = run_forked(load(cfg));
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("collectives do not survive a failed worker") != std::string::npos);
}

TEST_CASE("SSGD all-reduce under wait: the ring pauses with the frozen worker and resumes") {
  json cfg = failure_config(json::parse(R"([{"host": "worker-1", "at_s": 0.035, "recover_s": 0.09}])"));
  cfg["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"on_failure", "wait"}};
  cfg["platform"]["servers"] = {{"count", 0}};
  json base_cfg = cfg;
  base_cfg["platform"]["failures"] = json::array();
  const auto base = run_ok(base_cfg);
  const auto r = run_ok(cfg);
  CHECK(r.summary["samples_lost"] == 0);
  for (int i = 0; i < kN; ++i) CHECK(r.summary["per_worker"][i]["gradients"] == kSteps);
  CHECK(T(r) > T(base) + 0.05);
  CHECK(T(r) <= T(base) + 0.055 + 1e-9);  // at most the outage
}

// ---------------------------------------------------------------------------- per-algorithm matrix
// Issue 5: what every registered algorithm does when worker-2 crashes mid-run (no recovery, loss
// detected 20 ms later): it completes on the survivors (status completed, the failure and the lost
// samples in the summary) or ends with a RuntimeError (exit 1) that names the cause - never a hang,
// a deadlock report or an abort. docs/platforms.md "Failures" lists the same table.
namespace {

// Whether this algorithm section (name + keys) runs on a parameter server.
bool needs_ps(const json& alg) {
  json keys = alg;
  keys.erase("name");
  ObjectReader r(keys, JsonOrigin{"test.json", "algorithm"});
  return algo::find_algorithm(alg["name"].get<std::string>())->make(r)->needs_servers();
}

// The child runs under a CPU-time limit: a livelock (events forever) fails the test instead of hanging.
ChildRun run_limited(const json& cfg) {
  struct rlimit old {};
  ::getrlimit(RLIMIT_CPU, &old);
  struct rusage self {};
  ::getrusage(RUSAGE_SELF, &self);
  struct rlimit lim = old;
  lim.rlim_cur = static_cast<rlim_t>(self.ru_utime.tv_sec + self.ru_stime.tv_sec + 120);
  if (old.rlim_cur != RLIM_INFINITY && lim.rlim_cur > old.rlim_cur) lim.rlim_cur = old.rlim_cur;
  ::setrlimit(RLIMIT_CPU, &lim);  // inherited by the forked child
  const auto r = run_forked(load(cfg));
  ::setrlimit(RLIMIT_CPU, &old);
  return r;
}

}  // namespace

TEST_CASE("failure matrix: every algorithm survives a worker crash on the survivors or ends with a clear error") {
  // variant (algorithm section) -> expected: "completes" or a phrase of the error.
  // An all-reduce either loses a peer in a transfer ("collectives do not survive a failed worker")
  // or waits for one that never comes (the deadlock report names the failed worker): both say
  // "survive a failed worker".
  const std::string kCollective = "survive a failed worker";
  const std::vector<std::pair<json, std::string>> matrix = {
      {{{"name", "ssgd"}}, "completes"},
      {{{"name", "ssgd"}, {"comm", "allreduce"}}, kCollective},
      {{{"name", "asgd"}}, "completes"},
      {{{"name", "dc-asgd"}}, "completes"},
      {{{"name", "ssp"}}, "completes"},
      {{{"name", "easgd"}}, "completes"},
      {{{"name", "easgd"}, {"sync", true}}, "completes"},
      {{{"name", "pipe-sgd"}}, kCollective},
      {{{"name", "pipe-sgd"}, {"comm", "ps"}}, "completes"},
      {{{"name", "od-sgd"}, {"warmup_steps", 2}}, "completes"},
      {{{"name", "ssd-sgd"}, {"warmup_steps", 2}}, "completes"},
      {{{"name", "local-sgd"}}, kCollective},
      {{{"name", "local-sgd"}, {"comm", "ps"}}, "completes"},
      {{{"name", "cocod-sgd"}}, kCollective},
      {{{"name", "dasgd"}}, kCollective},
      {{{"name", "hpsgd"}}, "barrier of all workers does not survive a failed worker"},
      {{{"name", "diloco"}, {"period", 4}}, kCollective},
      {{{"name", "streaming-diloco"}, {"period", 4}}, kCollective},
  };
  std::set<std::string> covered;
  for (const auto& [alg, expected] : matrix) covered.insert(alg["name"].get<std::string>());
  for (const auto& a : algo::registry()) CHECK_MESSAGE(covered.count(a.name), std::string(a.name + " is missing from the failure matrix"));

  for (const auto& [alg, expected] : matrix) {
    CAPTURE(alg.dump());
    REQUIRE(algo::find_algorithm(alg["name"].get<std::string>()));
    json cfg = failure_config(json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02}])"));
    cfg["algorithm"] = alg;
    cfg["platform"]["servers"]["count"] = needs_ps(alg) ? 1 : 0;
    const auto r = run_limited(cfg);
    if (expected == "completes") {
      REQUIRE_MESSAGE(r.exit_code == 0, r.error);
      CHECK(r.summary["status"] == "completed");
      REQUIRE(r.summary["failures"].size() == 1);
      CHECK(r.summary["failures"][0]["host"] == "worker-2");
      CHECK(r.summary["samples_lost"].get<int>() > 0);
      const auto& pw = r.summary["per_worker"];
      CHECK(pw[2]["gradients"].get<int>() < pw[0]["gradients"].get<int>());  // it stopped, the others went on
    } else {
      CHECK(r.exit_code == 1);  // a RuntimeError: not an abort (128+signal), not an input error
      CHECK_MESSAGE(r.error.find(expected) != std::string::npos, r.error);
      CHECK((r.error.find("worker-2") != std::string::npos || r.error.find("lost a peer") != std::string::npos ||
             r.error.find("worker 2 was lost") != std::string::npos));  // names the failure
    }
  }
}

}  // namespace test_failures_cpp
