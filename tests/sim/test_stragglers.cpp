// Stragglers (issue 5): each kind changes exactly the compute spans (or transfers) it should,
// checked on the run's timeline; network stragglers against closed forms in the exact model.
#include <cmath>
#include <map>
#include <set>

#include "sim/stragglers.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_stragglers_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

struct ComputeSpan {
  double start, dur;
  int64_t step;
};

// Compute spans per host name, in start order, from a Chrome trace.
std::map<std::string, std::vector<ComputeSpan>> compute_spans(const std::string& trace_text) {
  const json t = json::parse(trace_text);
  std::map<int, std::string> names;
  for (const auto& ev : t["traceEvents"])
    if (ev["ph"] == "M" && ev["name"] == "process_name") names[ev["pid"].get<int>()] = ev["args"]["name"].get<std::string>();
  std::map<std::string, std::vector<ComputeSpan>> out;
  for (const auto& ev : t["traceEvents"])
    if (ev["ph"] == "X" && ev["name"] == "compute")
      out[names.at(ev["pid"].get<int>())].push_back(
          {ev["ts"].get<double>() * 1e-6, ev["dur"].get<double>() * 1e-6, ev["args"]["step"].get<int64_t>()});
  for (auto& [h, v] : out) std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.start < b.start; });
  return out;
}

constexpr double kC = 0.01;  // fixed compute time per minibatch
constexpr int kN = 4, kSteps = 6;

json straggler_config(const json& stragglers, uint64_t seed = 7) {
  json cfg = small_config(kN, 1);
  cfg["seed"] = seed;
  cfg["compute"]["mode"] = "timing-only";
  cfg["training"]["samples"] = kSteps * kN * 16;
  cfg["output"]["trace"] = true;
  cfg["platform"]["stragglers"] = stragglers;
  return cfg;
}

std::map<std::string, std::vector<ComputeSpan>> run_spans(const json& cfg, ChildRun* out = nullptr) {
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  if (out) *out = r;
  auto spans = compute_spans(r.trace);
  REQUIRE(spans.size() == static_cast<size_t>(kN));
  for (const auto& [h, v] : spans) REQUIRE(v.size() == static_cast<size_t>(kSteps));
  return spans;
}

// Time at which `work` seconds of nominal compute started at t0 end under a piecewise-constant
// speed factor (points (time, factor), 1 before the first).
double end_of(double t0, double work, const std::vector<std::pair<double, double>>& speed) {
  double t = t0, left = work;
  auto factor = [&](double at) {
    double f = 1;
    for (auto& [tt, v] : speed)
      if (tt <= at) f = v;
    return f;
  };
  while (true) {
    double next = INFINITY;
    for (auto& [tt, v] : speed)
      if (tt > t) {
        next = tt;
        break;
      }
    const double f = factor(t);
    if (t + left / f <= next) return t + left / f;
    left -= (next - t) * f;
    t = next;
  }
}

void check_all(const std::vector<ComputeSpan>& v, double dur) {
  for (const auto& s : v) CHECK(s.dur == dtsim_test::Rel(dur).epsilon(1e-9));
}

}  // namespace

TEST_CASE("persistent straggler: exactly the listed worker's compute spans are x slowdown") {
  const auto spans = run_spans(straggler_config(json::parse(R"([{"workers": [2], "slowdown": 3}])")));
  check_all(spans.at("worker-0"), kC);
  check_all(spans.at("worker-1"), kC);
  check_all(spans.at("worker-2"), 3 * kC);
  check_all(spans.at("worker-3"), kC);
}

TEST_CASE("transient straggler: listed workers' minibatches slowed with probability p, keyed by (seed, worker, step)") {
  const json st = json::parse(R"([{"workers": [1, 3], "p": 0.5, "slowdown": 4}])");
  const auto x = load(straggler_config(st));
  const auto spans = run_spans(straggler_config(st));
  int slowed = 0, nominal = 0;
  for (int w = 0; w < kN; ++w) {
    CAPTURE(w);
    for (const auto& s : spans.at("worker-" + std::to_string(w))) {
      CAPTURE(s.step);
      const double f = sim::transient_factor(x.platform, 7, w, s.step);
      if (w == 0 || w == 2) CHECK(f == 1);
      CHECK((f == 1 || f == 4));
      CHECK(s.dur == dtsim_test::Rel(kC * f).epsilon(1e-9));
      (f == 4 ? slowed : nominal) += (w == 1 || w == 3);
    }
  }
  CHECK(slowed > 0);  // with this seed both outcomes occur
  CHECK(nominal > 0);
  // Another seed draws another pattern.
  const auto other = run_spans(straggler_config(st, 8));
  std::vector<double> a, b;
  for (int w : {1, 3})
    for (int k = 0; k < kSteps; ++k) {
      a.push_back(spans.at("worker-" + std::to_string(w))[static_cast<size_t>(k)].dur);
      b.push_back(other.at("worker-" + std::to_string(w))[static_cast<size_t>(k)].dur);
    }
  CHECK(a != b);
}

TEST_CASE("transient straggler with a drawn factor (lognormal, pareto, exponential): every span = nominal x its draw >= 1") {
  for (const char* dist : {R"({"kind": "lognormal", "mu": 0.2, "sigma": 0.6})", R"({"kind": "pareto", "alpha": 1.5})",
                           R"({"kind": "exponential", "mean": 0.5})"}) {
    CAPTURE(dist);
    json st = json::array({{{"p", 0.7}, {"distribution", json::parse(dist)}}});
    const auto x = load(straggler_config(st));
    const auto spans = run_spans(straggler_config(st));
    std::set<double> distinct;
    for (int w = 0; w < kN; ++w)
      for (const auto& s : spans.at("worker-" + std::to_string(w))) {
        const double f = sim::transient_factor(x.platform, 7, w, s.step);
        CHECK(f >= 1);
        CHECK(s.dur == dtsim_test::Rel(kC * f).epsilon(1e-9));
        distinct.insert(f);
      }
    CHECK(distinct.size() > 5);  // factors are drawn, not fixed
  }
}

TEST_CASE("time-window straggler: a speed profile slows worker 0 only inside from_s..to_s") {
  const double from = 0.021, to = 0.06;
  json st = json::array({{{"workers", {0}}, {"from_s", from}, {"to_s", to}, {"slowdown", 2.5}}});
  const auto spans = run_spans(straggler_config(st));
  const std::vector<std::pair<double, double>> speed = {{from, 1 / 2.5}, {to, 1}};
  int stretched = 0;
  for (const auto& s : spans.at("worker-0")) {
    CAPTURE(s.start);
    CHECK(s.start + s.dur == dtsim_test::Rel(end_of(s.start, kC, speed)).epsilon(1e-9));
    stretched += s.dur > kC * 1.01;
  }
  CHECK(stretched >= 1);
  for (int w = 1; w < kN; ++w) check_all(spans.at("worker-" + std::to_string(w)), kC);
}

TEST_CASE("trace-driven straggler: a (time, speed factor) file under traces/ drives worker 1's host speed") {
  char dir_t[] = "/tmp/dtsim-trace-XXXXXX";
  const std::string dir = ::mkdtemp(dir_t);
  io::atomic_write(dir + "/slow.trace", "# time factor\n0 1\n0.015 0.25\n0.05 0.5\n0.09 1\n");
  json st = json::array({{{"workers", {1}}, {"trace", dir + "/slow.trace"}}});
  const auto spans = run_spans(straggler_config(st));
  std::filesystem::remove_all(dir);
  const std::vector<std::pair<double, double>> speed = {{0, 1}, {0.015, 0.25}, {0.05, 0.5}, {0.09, 1}};
  int stretched = 0;
  for (const auto& s : spans.at("worker-1")) {
    CHECK(s.start + s.dur == dtsim_test::Rel(end_of(s.start, kC, speed)).epsilon(1e-9));
    stretched += s.dur > kC * 1.01;
  }
  CHECK(stretched >= 2);
  for (int w : {0, 2, 3}) check_all(spans.at("worker-" + std::to_string(w)), kC);
}

TEST_CASE("the shipped traces/*.trace files load as speed traces") {
  json st = json::array({{{"workers", {0}}, {"trace", DTSIM_SOURCE_DIR "/traces/thermal-throttle.trace"}},
                         {{"links", "server-0-nic"}, {"trace", DTSIM_SOURCE_DIR "/traces/cloud-backbone-bw.trace"}}});
  const auto x = load(straggler_config(st));
  const auto prof = sim::host_speed_profile(x.platform, 0);
  REQUIRE(prof.size() == 3);  // the leading "0 1.0" point is nominal
  CHECK(prof[0].time == 60);
  CHECK(prof[0].value == 0.8);
  CHECK(sim::link_bandwidth_profile(x.platform, "server-0-nic").size() == 6);
  CHECK(sim::link_bandwidth_profile(x.platform, "worker-0-nic").empty());
}

namespace {
// SSGD step in the exact model with one slow link: compute + 2 phases + update.
constexpr double kP = 2260, kS = 4 * kP, kB = 1e9 / 8, kLat = 2 * 50e-6;
double ssgd_steps(double phase) { return kSteps * (kC + 2 * phase + kP * (4 + kN - 1) / 1e12); }
}  // namespace

TEST_CASE("link bandwidth window: worker 0's NIC at 10% makes every phase lat + S/(0.1 B), compute spans untouched") {
  json st = json::parse(R"([{"links": ["worker-0-nic"], "bandwidth_factor": 0.1}])");
  ChildRun r;
  const auto spans = run_spans(straggler_config(st), &r);
  CHECK(r.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(ssgd_steps(kLat + kS / (0.1 * kB))).epsilon(1e-9));
  for (int w = 0; w < kN; ++w) check_all(spans.at("worker-" + std::to_string(w)), kC);
  // A window that ends before the run starts transferring changes nothing.
  json early = json::parse(R"([{"links": ["worker-*-nic"], "from_s": 0, "to_s": 0.005, "bandwidth_factor": 0.1}])");
  ChildRun e;
  run_spans(straggler_config(early), &e);
  CHECK(e.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(ssgd_steps(kLat + kN * kS / kB)).epsilon(1e-9));
}

TEST_CASE("link bandwidth trace: the server's NIC at half bandwidth doubles its N S / B term") {
  char dir_t[] = "/tmp/dtsim-trace-XXXXXX";
  const std::string dir = ::mkdtemp(dir_t);
  io::atomic_write(dir + "/half.trace", "0 0.5\n");
  json st = json::array({{{"links", {"server-0-nic"}}, {"trace", dir + "/half.trace"}}});
  ChildRun r;
  run_spans(straggler_config(st), &r);
  std::filesystem::remove_all(dir);
  CHECK(r.summary["simulated_time_s"].get<double>() == dtsim_test::Rel(ssgd_steps(kLat + kN * kS / (0.5 * kB))).epsilon(1e-9));
}

// Under lv08, restoring a link that was slowed while a reply crossed it (loading the link only as
// cross-traffic) drove that flow's sharing penalty negative in SimGrid 3.32, which aborted the
// run (SIGABRT, "Variable penalty should not be negative!"; 40 runs of a robustness matrix, every
// algorithm). Such runs now go without cross-traffic, and say so.
TEST_CASE("lv08 with a link slowed then restored mid-run completes, with a warning that cross-traffic is off") {
  json cfg = small_config(1, 1);
  cfg["compute"]["mode"] = "timing-only";
  cfg["platform"]["network"] = {{"model", "lv08"}};
  cfg["platform"]["workers"]["link"] = {{"bandwidth", "10Gbps"}, {"latency", "10us"}};
  cfg["platform"]["servers"].erase("link");
  cfg["model"]["hidden"] = {256, 128};  // 940 KB messages: replies still cross the link when it is restored
  cfg["dataset"]["features"] = 784;
  cfg["training"]["batch_size"] = 32;
  cfg["training"]["samples"] = 24 * 32;
  for (const double factor : {0.05, 0.1}) {
    CAPTURE(factor);
    cfg["platform"]["stragglers"] =
        json::array({{{"links", {"worker-0-nic"}}, {"from_s", 0.05}, {"to_s", 0.2}, {"bandwidth_factor", factor}}});
    const auto x = load(cfg);
    const bool warned = std::any_of(x.warnings.begin(), x.warnings.end(),
                                    [](const std::string& w) { return w.find("without its cross-traffic") != std::string::npos; });
    CHECK(warned);
    const auto r = run_forked(x);
    REQUIRE_MESSAGE(r.exit_code == 0, r.error);
    CHECK(r.summary["per_worker"][0]["gradients"] == 24);
  }
}

TEST_CASE("latency jitter: seeded, bounded by the draw's range, and leaves compute spans alone") {
  json st = json::parse(R"([{"links": "*-nic", "latency_jitter": {"kind": "uniform", "max": "200us", "every_s": "3ms"}}])");
  ChildRun a, b, c;
  const auto spans = run_spans(straggler_config(st), &a);
  run_spans(straggler_config(st), &b);
  run_spans(straggler_config(st, 99), &c);
  const double base = ssgd_steps(kLat + kN * kS / kB);
  const double t = a.summary["simulated_time_s"].get<double>();
  CHECK(t > base * (1 + 1e-6));
  CHECK(t <= base + kSteps * 2 * 2 * 200e-6 + 1e-12);  // each phase crosses 2 NICs, each + at most 200us
  CHECK(b.summary["simulated_time_s"].get<double>() == t);
  CHECK(c.summary["simulated_time_s"].get<double>() != t);
  for (int w = 0; w < kN; ++w) check_all(spans.at("worker-" + std::to_string(w)), kC);
}

}  // namespace test_stragglers_cpp
