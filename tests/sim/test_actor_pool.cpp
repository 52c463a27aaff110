// Issue 14, goal 4: a worker host's short-lived jobs (compute chains, per-tensor pushes,
// collectives) run on a few reused helper actors (sim/actor_pool.hpp) instead of one new SimGrid
// actor each. Only the order of actors within one simulated instant may change: every output must
// equal the run in which each job is a fresh actor (RunHooks::fresh_actors), and the pooled run
// must create a bounded number of actors, not one or more per minibatch.
#include <algorithm>
#include <iterator>

#include <simgrid/s4u.hpp>

#include "tests/sim/helpers.hpp"

namespace test_actor_pool_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;
namespace sg4 = simgrid::s4u;

namespace {

constexpr double kTol = 1e-12;

// The timeline's events in a canonical order, without the flow arrows' ids: spans that different
// actors record at one simulated instant may be listed in another order, and an arrow's id is its
// place in that list (transfers ending at the same instant swap ids).
std::vector<std::string> canonical(const std::string& trace) {
  std::vector<std::string> out;
  if (trace.empty()) return out;
  json doc = json::parse(trace);  // kept: a range over a temporary's member would dangle
  for (auto& e : doc["traceEvents"]) {
    e.erase("id");
    out.push_back(e.dump());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The events of one trace that the other lacks (both ways), for the failure message.
std::string trace_difference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> only_a, only_b;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_a));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_b));
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(only_a.size(), 6); ++i) out += "\n  pooled only: " + only_a[i];
  for (size_t i = 0; i < std::min<size_t>(only_b.size(), 6); ++i) out += "\n  fresh only:  " + only_b[i];
  return out;
}

// Actors created during a run, written by the child to `file` at every progress report.
sim::RunHooks counting(const std::string& file) {
  sim::RunHooks hooks;
  hooks.progress = [file](const sim::Progress&) {
    static long created = 0;
    static bool connected = false;
    if (!connected) {
      connected = true;
      sg4::Actor::on_creation_cb([](sg4::Actor&) { ++created; });
    }
    io::atomic_write(file, std::to_string(created));
  };
  return hooks;
}

// Runs `doc` pooled and with fresh actors; every output must be the same. Returns the actors the
// two runs created (counted from the first progress report on).
std::pair<long, long> check_same(const json& doc, const std::vector<std::string>& sets) {
  const Experiment x = load(doc, sets);
  const std::string fa = temp_file("pooltest"), fb = temp_file("pooltest");
  sim::RunHooks fresh = counting(fb);
  fresh.fresh_actors = true;
  const ChildRun a = run_forked(x, counting(fa));
  const ChildRun b = run_forked(x, fresh);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  // The numbers may differ in their last bits (kTol): SimGrid's clock adds up the same durations
  // over another sequence of solver steps. The model is bitwise the same.
  json sa = a.summary, sb = b.summary;
  for (json* s : {&sa, &sb}) s->erase("wall_time_per_step_s");
  check_json(sa, sb, "", kTol);
  CHECK(a.params_npy == b.params_npy);
  const auto ta = canonical(a.trace), tb = canonical(b.trace);
  INFO("trace differences:", trace_difference(ta, tb));
  CHECK(ta == tb);
  check_csv(a.links, b.links, -1, kTol);
  check_csv(a.metrics, b.metrics, 1, kTol);  // column 1: wall_time_s
  const std::string ca = slurp(fa), cb = slurp(fb);
  std::filesystem::remove(fa);
  std::filesystem::remove(fb);
  REQUIRE(!ca.empty());
  REQUIRE(!cb.empty());
  return {std::stol(ca), std::stol(cb)};
}

json traced(int workers, int servers, int steps) {
  json j = small_config(workers, servers);
  j["training"]["samples"] = workers * 16 * steps;
  j["output"]["trace"] = true;
  return j;
}

}  // namespace

TEST_CASE("actor pool: per-tensor pushes and compute chains give the same outputs as fresh actors, with few actors (ssgd, real)") {
  const auto [pooled, fresh] = check_same(traced(4, 2, 12), {"algorithm.overlap.kind=per-tensor"});
  INFO("actors created: pooled ", pooled, ", fresh ", fresh);
  CHECK(fresh >= 4 * 10);   // a compute actor per worker and minibatch at least
  CHECK(pooled <= 4 * 4);   // a few helpers per worker, whatever the steps
}

TEST_CASE("actor pool: the same outputs under lv08, priority, an asynchronous server and a straggler") {
  for (const auto& sets : std::vector<std::vector<std::string>>{
           {"algorithm.overlap.kind=per-tensor", "platform.network.model=lv08"},
           {"algorithm.overlap.kind=per-tensor", "algorithm.name=asgd"},
           {"algorithm.overlap.kind=per-tensor", "algorithm.overlap.priority=false", "compute.mode=timing-only",
            R"(platform.stragglers=[{"workers": [3], "slowdown": 3}])"}}) {
    std::string what;
    for (const auto& s : sets) what += s + " ";
    CAPTURE(what);
    check_same(traced(4, 2, 8), sets);
  }
}

TEST_CASE("actor pool: all-reduce collectives (none, ddp, horovod) give the same outputs as fresh actors") {
  for (const char* kind : {"none", "ddp", "horovod"}) {
    CAPTURE(kind);
    const auto [pooled, fresh] = check_same(traced(4, 0, 10), {"algorithm.comm=allreduce", std::string("algorithm.overlap.kind=") + kind});
    INFO("actors created: pooled ", pooled, ", fresh ", fresh);
    CHECK(pooled < fresh);
  }
}

TEST_CASE("actor pool: a worker whose host fails and rejoins (its helpers die with it) gives the same outputs (elastic ring)") {
  json ring = traced(4, 0, 10);
  ring["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"on_failure", "elastic"}};
  ring["platform"]["failures"] = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02, "recover_s": 0.06}])");
  const auto [pooled, fresh] = check_same(ring, {});
  INFO("actors created: pooled ", pooled, ", fresh ", fresh);
  CHECK(pooled < fresh);
}

}  // namespace test_actor_pool_cpp
