// A run's memory must not grow with its steps: every per-step SimGrid actor (a layer-wise
// minibatch's compute actor, a collective's communication actor, a per-tensor pusher) is freed once
// it is over, and with it what its code captured (the minibatch's StepChain and gradient buffer).
// WorkerCtx::after() chains those actors (each joins the one before it); SimGrid keeps its own copy
// of an actor's code until the actor is freed, so a capture cleared only in the running copy kept
// the previous actor, hence every actor of the run and every gradient, alive to the end.
#include <algorithm>
#include <set>

#include <simgrid/s4u.hpp>

#include "tests/sim/helpers.hpp"

namespace test_memory_release_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;
namespace sg4 = simgrid::s4u;

namespace {

// In the child: the actors created since the first global update that are not freed yet, counted at
// every update; the peak goes to `file` (the child's only way back).
long peak_unfreed_actors(const std::vector<std::string>& sets, uint64_t samples) {
  json doc = small_config(4, 1);
  doc["training"]["samples"] = samples;
  const Experiment x = load(doc, sets);
  const std::string file = temp_file("memtest");
  sim::RunHooks hooks;
  hooks.progress = [file](const sim::Progress&) {
    static std::set<long> alive;
    static size_t peak = 0;
    static bool connected = false;
    if (!connected) {
      connected = true;
      sg4::Actor::on_creation_cb([](sg4::Actor& a) { alive.insert(a.get_pid()); });
      sg4::Actor::on_destruction_cb([](const sg4::Actor& a) { alive.erase(a.get_pid()); });
    }
    peak = std::max(peak, alive.size());
    io::atomic_write(file, std::to_string(peak));
  };
  const ChildRun r = run_forked(x, hooks);
  REQUIRE(r.exit_code == 0);
  const std::string got = slurp(file);
  std::filesystem::remove(file);
  REQUIRE(!got.empty());
  return std::stol(got);
}

void check_bounded(const std::vector<std::string>& sets) {
  const long s = peak_unfreed_actors(sets, 512);    // 8 steps of 4 workers
  const long l = peak_unfreed_actors(sets, 2048);   // 32 steps
  INFO("peak unfreed actors after 8 steps: ", s, ", after 32 steps: ", l);
  CHECK(l <= s + 4);  // a leak keeps about one actor per worker and step: +96
}

}  // namespace

TEST_CASE("memory: per-step actors and gradients are freed, layer-wise per-tensor pushes (ssgd, real)") {
  check_bounded({"algorithm.overlap.kind=per-tensor"});
}

TEST_CASE("memory: per-step actors and gradients are freed, ddp and horovod all-reduces (ssgd, real)") {
  check_bounded({"algorithm.comm=allreduce", "algorithm.overlap.kind=ddp"});
  check_bounded({"algorithm.comm=allreduce", "algorithm.overlap.kind=horovod"});
}

TEST_CASE("memory: per-step ring actors are freed without layer-wise timing (ssgd all-reduce, overlap none)") {
  check_bounded({"algorithm.comm=allreduce", "algorithm.overlap.kind=none"});
}

}  // namespace test_memory_release_cpp
