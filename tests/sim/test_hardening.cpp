// Hardening (docs/robustness.md): divergence, deadlocks, exceptions inside actors, interruption
// and the wall-clock limit through RunHooks, and the up-front memory refusal. Each simulation runs
// in a forked child (helpers.hpp); planted algorithms come in through RunHooks::make_algorithm.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <stdexcept>

#include "algorithms/api.hpp"
#include "algorithms/clip.hpp"
#include "engine/ops.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace dtsim::test {
namespace test_hardening_cpp {  // one namespace per test file: the test targets are unity builds
namespace {

using algo::Algorithm;
using algo::Message;
using algo::Worker;
using engine::Vec;

std::vector<std::string> csv_lines(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

// Worker 0 waits for a message nobody sends; the others return at once.
struct WaitsForever final : Algorithm {
  bool needs_servers() const override { return false; }
  void worker(Worker& w) override {
    if (w.rank() == 0) w.recv(99);
  }
};

// Worker 0 joins one more all-reduce than the others: its ring never completes.
struct UnbalancedAllreduce final : Algorithm {
  bool needs_servers() const override { return false; }
  void worker(Worker& w) override {
    auto buf = std::make_shared<Vec>(w.new_buffer());
    if (w.real()) engine::ops::fill(buf->view(), 1.0f);
    const algo::Payload p = algo::Payload::whole(buf, w.num_params());
    w.allreduce(p);
    if (w.rank() == 0) w.allreduce(p);
  }
};

// Worker 2 throws at its 3rd step (after computing, so the exception happens mid-simulation).
struct Throws final : Algorithm {
  bool std_exception;
  explicit Throws(bool std_ex) : std_exception(std_ex) {}
  bool needs_servers() const override { return false; }
  void worker(Worker& w) override {
    for (int t = 0; t < 5; ++t) {
      w.compute(w.initial_params() ? w.initial_params()->view() : engine::ConstVecView{});
      if (w.rank() == 2 && t == 3) {
        if (std_exception) throw std::logic_error("planted logic error");
        throw RuntimeError("planted failure");
      }
    }
  }
};

// Claims a huge memory budget per worker.
struct Hungry final : Algorithm {
  bool needs_servers() const override { return false; }
  double buffers_per_worker() const override { return 1e6; }
  void worker(Worker&) override {}
};

TEST_CASE("divergence: an absurd learning rate stops the run with status diverged, the step and the time") {
  json c = small_config(4, 1);
  c["algorithm"]["lr"] = 1e30;
  c["training"]["eval_every_samples"] = 64;
  const Experiment x = load(c);
  const ChildRun r = run_forked(x);
  REQUIRE(r.exit_code == 0);  // a diverged run still writes its outputs (the CLI exits 3)
  CHECK(r.summary["status"] == "diverged");
  const json& st = r.summary["stopped"];
  CHECK(st["reason"] == "diverged");
  REQUIRE(st.contains("step"));
  CHECK(st["step"].get<int64_t>() >= 1);  // step 0 computes at the (finite) initial parameters
  CHECK(st["worker"].get<int>() >= 0);
  CHECK(st["detail"].get<std::string>().find("loss of worker") != std::string::npos);
  CHECK(st["sim_time_s"].get<double>() == r.summary["simulated_time_s"].get<double>());
  CHECK(r.summary["samples"].get<uint64_t>() < x.training.samples);
  // The metrics up to that point are intact: the header, the initial row, all parseable.
  const auto lines = csv_lines(r.metrics);
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0].rfind("sim_time_s,", 0) == 0);
  CHECK(lines[1].rfind("0,", 0) == 0);
  for (size_t i = 1; i < lines.size(); ++i)
    CHECK(std::count(lines[i].begin(), lines[i].end(), ',') == 7);
}

TEST_CASE("divergence: a healthy run is not flagged") {
  const ChildRun r = run_forked(load(small_config(2, 1)));
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["status"] == "completed");
  CHECK_FALSE(r.summary.contains("stopped"));
}

TEST_CASE("deadlock: a worker waiting for a message that never comes is an error naming it and what it waits for") {
  const Experiment x = load(small_config(3, 1));  // the planted algorithm uses no server
  sim::RunHooks hooks;
  hooks.make_algorithm = [] { return std::make_unique<WaitsForever>(); };
  const ChildRun r = run_forked(x, hooks);
  CHECK(r.exit_code == 1);
  CHECK(r.summary.is_null());  // never a silent normal exit with outputs
  CHECK(r.error.find("deadlock") != std::string::npos);
  CHECK(r.error.find("1 of 3 workers") != std::string::npos);
  CHECK(r.error.find("worker-0 waits for a message with tag 99 on worker-0") != std::string::npos);
}

TEST_CASE("deadlock: an unbalanced all-reduce names the ring actor that waits") {
  const Experiment x = load(small_config(3, 1));
  sim::RunHooks hooks;
  hooks.make_algorithm = [] { return std::make_unique<UnbalancedAllreduce>(); };
  const ChildRun r = run_forked(x, hooks);
  CHECK(r.exit_code == 1);
  CHECK(r.error.find("deadlock") != std::string::npos);
  CHECK(r.error.find("worker-0 waits for allreduce #1") != std::string::npos);
  CHECK(r.error.find("allreduce-0-1 waits for ring step 0 of allreduce #1") != std::string::npos);
}

TEST_CASE("an exception inside an actor ends the run with exit 1, its message and where it happened") {
  const Experiment x = load(small_config(4, 1));
  for (bool std_ex : {false, true}) {
    sim::RunHooks hooks;
    hooks.make_algorithm = [std_ex] { return std::make_unique<Throws>(std_ex); };
    const ChildRun r = run_forked(x, hooks);
    CHECK(r.exit_code == 1);
    CHECK(r.summary.is_null());
    CHECK(r.error.find(std_ex ? "planted logic error" : "planted failure") != std::string::npos);
    CHECK(r.error.find("worker-2 at simulated time") != std::string::npos);
  }
}

TEST_CASE("interruption through RunHooks: stops at the next event with status interrupted and the metrics so far") {
  json c = small_config(4, 1);
  c["training"]["eval_every_samples"] = 256;
  const Experiment x = load(c);
  static std::atomic<int> flag{0};  // what the CLI's signal thread sets (tools/dtsim/signals.hpp)
  sim::RunHooks hooks;
  hooks.interrupt = &flag;
  hooks.progress = [](const sim::Progress& p) {
    if (p.samples >= 1024) flag = SIGTERM;
  };
  const ChildRun r = run_forked(x, hooks);
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["status"] == "interrupted");
  CHECK(r.summary["stopped"]["detail"] == "SIGTERM");
  const uint64_t samples = r.summary["samples"].get<uint64_t>();
  CHECK(samples >= 1024);
  CHECK(samples < x.training.samples);
  const double t = r.summary["simulated_time_s"].get<double>();
  CHECK(t > 0);
  // The uninterrupted run takes longer, and the rows so far are the same rows it writes.
  const ChildRun full = run_forked(x);
  REQUIRE(full.exit_code == 0);
  CHECK(t < full.summary["simulated_time_s"].get<double>());
  const auto part = csv_lines(r.metrics), all = csv_lines(full.metrics);
  REQUIRE(part.size() >= 4);  // header + samples 0, 256, ..., 1024
  REQUIRE(part.size() <= all.size());
  for (size_t i = 0; i < part.size(); ++i) {  // wall_time_s (2nd column) differs; compare the rest
    auto strip = [](const std::string& l) {
      const auto a = l.find(','), b = l.find(',', a + 1);
      return l.substr(0, a) + l.substr(b);
    };
    CHECK(strip(part[i]) == strip(all[i]));
  }
  CHECK(r.params.size() == full.params.size());  // the model reached is written too
}

TEST_CASE("wall-clock limit through RunHooks: status wall_limit") {
  const Experiment x = load(small_config(2, 1));
  sim::RunHooks hooks;
  hooks.max_wall_s = 1e-9;  // already exceeded at the first event
  const ChildRun r = run_forked(x, hooks);
  REQUIRE(r.exit_code == 0);
  CHECK(r.summary["status"] == "wall_limit");
  CHECK(r.summary["samples"].get<uint64_t>() < x.training.samples);
}

TEST_CASE("max_time_s: a run that completes before the limit reports its own end time, not the limit") {
  // run_until() moves SimGrid's clock to the limit even when the last worker returned earlier (the
  // daemon servers keep the simulation alive); found by the HPSGD paper study.
  json j = small_config(2, 1);
  const ChildRun free_run = run_forked(load(j));
  j["training"]["max_time_s"] = 1000.0;
  const ChildRun limited = run_forked(load(j));
  REQUIRE(free_run.exit_code == 0);
  REQUIRE(limited.exit_code == 0);
  CHECK(limited.summary["status"] == "completed");
  const double t = free_run.summary["simulated_time_s"].get<double>();
  CHECK(t > 0.1);
  CHECK(t < 100.0);
  CHECK(limited.summary["simulated_time_s"].get<double>() == t);
  CHECK(limited.params == free_run.params);
  // and a limit that does stop the run still reports the limit
  j["training"]["max_time_s"] = t / 2;
  const ChildRun stopped = run_forked(load(j));
  REQUIRE(stopped.exit_code == 0);
  CHECK(stopped.summary["status"] == "time_limit");
  CHECK(stopped.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(t / 2));
}

TEST_CASE("memory: 100,000 real-compute workers with private model copies are refused up front with the estimate") {
  json c = small_config(4, 1);
  c["platform"]["workers"]["count"] = 100000;
  c["model"]["hidden"] = json::array({1024, 1024});
  c["training"]["samples"] = 100000 * 16;
  const Experiment x = load(c);
  const ChildRun r = run_forked(x);
  CHECK(r.exit_code == 2);
  CHECK(r.summary.is_null());
  CHECK(r.error.find("platform.workers.count") != std::string::npos);
  CHECK(r.error.find("needs about") != std::string::npos);
  CHECK(r.error.find("MemAvailable") != std::string::npos);
  CHECK(r.max_rss_kb < 2 * 1024 * 1024);  // refused before allocating: not OOM-killed halfway
}

TEST_CASE("memory: an algorithm's buffers_per_worker drives the estimate") {
  const Experiment x = load(small_config(4, 1));
  sim::RunHooks hooks;
  hooks.make_algorithm = [] { return std::make_unique<Hungry>(); };
  const ChildRun r = run_forked(x, hooks);
  CHECK(r.exit_code == 2);
  CHECK(r.error.find("needs about") != std::string::npos);
}

TEST_CASE("memory: the estimate is linear in workers and buffers, and only parameter copies depend on them") {
  json c = small_config(1000, 1);
  const Experiment x1 = load(c);
  c["platform"]["workers"]["count"] = 2000;
  const Experiment x2 = load(c);
  const size_t P = 100000;
  const auto a = sim::estimate_memory(x1, P, 2.0, 1, false), b = sim::estimate_memory(x2, P, 2.0, 1, false);
  const auto a3 = sim::estimate_memory(x1, P, 3.0, 1, false);
  CHECK(b.model_bytes - a.model_bytes == dtsim_test::Rel(1000 * 2.0 * 4.0 * P));
  CHECK(a3.model_bytes - a.model_bytes == dtsim_test::Rel(1000 * 1.0 * 4.0 * P));
  CHECK(a.dataset_bytes == b.dataset_bytes);
  CHECK(a.dataset_bytes == dtsim_test::Rel((2048 + 512) * (64 * 4.0 + 4)));
  CHECK(a.trace_bytes == 0);
  CHECK(sim::estimate_memory(x1, P, 2.0, 1, true).trace_bytes > 0);
  // Timing-only: no parameter copies, no dataset.
  c["compute"]["mode"] = "timing-only";
  const auto t = sim::estimate_memory(load(c), P, 2.0, 1, false);
  CHECK(t.model_bytes == 0);
  CHECK(t.dataset_bytes == 0);
  CHECK(t.actor_bytes > 0);
  CHECK_NOTHROW(sim::check_memory(x1, a, a.total() * 1.01));
  CHECK_THROWS_AS(sim::check_memory(x1, a, a.total() * 0.99), InputError);
  CHECK_NOTHROW(sim::check_memory(x1, a, 0));  // unknown available memory: no refusal
  CHECK(sim::available_memory_bytes() > 0);
}

TEST_CASE("memory: the refusal names the key of the estimate's largest part") {
  const Experiment x = load(small_config(4, 1));
  auto key_of = [&](const sim::MemoryEstimate& m) {
    try {
      sim::check_memory(x, m, 1.0);
    } catch (const InputError& e) {
      return e.path();
    }
    return std::string("(accepted)");
  };
  sim::MemoryEstimate m;
  m.model_bytes = 3e9, m.dataset_bytes = 1e9, m.trace_bytes = 2e9, m.actor_bytes = 1e8;
  CHECK(key_of(m) == "platform.workers.count");
  m.trace_bytes = 4e9;  // a huge budget with output.trace true: fewer workers would not help
  CHECK(key_of(m) == "output.trace");
  m.trace_bytes = 0, m.dataset_bytes = 5e9;
  CHECK(key_of(m) == "dataset");
}

TEST_CASE("clip_grad_norm: scales to the given L2 norm only when above it, returns the norm before") {
  Vec g(4);
  const float v[4] = {3, 0, -4, 0};  // norm 5
  for (size_t i = 0; i < 4; ++i) g.data()[i] = v[i];
  CHECK(algo::clip_grad_norm(g.view(), 10.0) == dtsim_test::Rel(5.0));
  CHECK(g.data()[0] == 3.0f);  // below the limit: untouched
  CHECK(algo::clip_grad_norm(g.view(), 1.0) == dtsim_test::Rel(5.0));
  CHECK(std::sqrt(engine::ops::sum_squares(g.view())) == dtsim_test::Rel(1.0).epsilon(1e-5));
  CHECK(g.data()[0] / g.data()[2] == dtsim_test::Rel(-0.75));  // direction kept
  CHECK(algo::clip_grad_norm(g.view(), 0.0) == dtsim_test::Rel(1.0).epsilon(1e-5));  // 0: off
  g.data()[1] = std::nanf("");
  CHECK(std::isnan(algo::clip_grad_norm(g.view(), 1.0)));  // left for the divergence check
}

TEST_CASE("clip_grad_norm as an algorithm option: the first SGD step moves the model by lr x the clipped gradient") {
  // SSGD, 1 worker, no momentum, one step: W1 = W0 - lr g. Unclipped: g = (W0 - W1) / lr; with
  // algorithm.clip_grad_norm = c below ||g||, the step is lr g c / (||g|| + 1e-6).
  json j = small_config(1, 1);
  j["algorithm"]["momentum"] = 0.0;
  j["training"]["samples"] = 16;  // one step of batch 16
  j["algorithm"]["lr"] = 1e-30;   // (nearly) no step: the initial model
  const ChildRun w0 = run_forked(load(j));
  j["algorithm"]["lr"] = 0.5;
  const ChildRun plain = run_forked(load(j));
  REQUIRE(w0.exit_code == 0);
  REQUIRE(plain.exit_code == 0);
  double g2 = 0;
  for (size_t i = 0; i < w0.params.size(); ++i) g2 += std::pow((w0.params[i] - plain.params[i]) / 0.5, 2);
  const double norm = std::sqrt(g2);
  REQUIRE(norm > 0.01);
  const double c = norm / 4;
  j["algorithm"]["clip_grad_norm"] = c;
  const ChildRun clipped = run_forked(load(j));
  REQUIRE(clipped.exit_code == 0);
  double err = 0, ref = 0;
  for (size_t i = 0; i < w0.params.size(); ++i) {
    const double want = (w0.params[i] - plain.params[i]) * c / (norm + 1e-6);
    err = std::max(err, std::abs((w0.params[i] - clipped.params[i]) - want));
    ref = std::max(ref, std::abs(want));
  }
  CHECK(err <= 1e-6 * std::max(1.0, ref) + 1e-7);
  // a bound above the norm changes nothing, bitwise
  j["algorithm"]["clip_grad_norm"] = norm * 10;
  CHECK(run_forked(load(j)).params == plain.params);
  // every algorithm accepts the key; a negative bound is an input error
  for (const auto& a : algo::registry()) {
    json k = small_config(2, 1);
    k["algorithm"] = {{"name", a.name}, {"clip_grad_norm", 1.0}};
    CAPTURE(a.name);
    CHECK_NOTHROW(load(k));
  }
  j["algorithm"]["clip_grad_norm"] = -1;
  CHECK_THROWS_AS(load(j), InputError);
}

}  // namespace
}  // namespace test_hardening_cpp
}  // namespace dtsim::test
