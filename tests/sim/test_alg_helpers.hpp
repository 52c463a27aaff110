// Helpers of the algorithm test files (tests/sim/test_alg_*.cpp): configs for one algorithm on the
// small synthetic experiment, runs that must succeed, observed intermediate values
// (Node::observe), parameter comparisons and closed-form timing pieces.
#pragma once
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "engine/ops.hpp"
#include "tests/sim/helpers.hpp"

namespace dtsim::test {

// The small synthetic experiment (tests/sim/helpers.hpp) running `algorithm`.
inline json alg_config(const json& algorithm, int workers = 4, int servers = 1, uint64_t samples = 2048) {
  json cfg = small_config(workers, servers);
  cfg["algorithm"] = algorithm;
  cfg["training"]["samples"] = samples;
  return cfg;
}

// Runs and requires success.
inline ChildRun run_ok(const json& cfg, const std::vector<std::string>& sets = {}, const sim::RunHooks& hooks = {}) {
  ChildRun r = run_forked(load(cfg, sets), hooks);
  REQUIRE_MESSAGE(r.exit_code == 0, r.error);
  return r;
}

inline double sim_time(const ChildRun& r) { return r.summary["simulated_time_s"].get<double>(); }
inline double bytes(const ChildRun& r) { return r.summary["bytes_on_wire"].get<double>(); }

// max_i |a_i − b_i| / max_i |b_i|: a scale-aware elementwise comparison.
inline double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  REQUIRE(!a.empty());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double(a[i]) - b[i]));
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / den;
}

// One Node::observe call seen by the test.
struct Observation {
  int node = 0;  // worker rank, or -(k+1) for server shard k
  std::string what;
  int64_t step = 0;
  std::vector<float> v;
};

// Runs `cfg` and returns every observation (written by the child to a file, read back here).
// `make`: run this algorithm instead of the config's (RunHooks::make_algorithm).
inline std::vector<Observation> run_observed(const json& cfg, ChildRun* out = nullptr,
                                             const std::vector<std::string>& sets = {},
                                             std::function<std::unique_ptr<algo::Algorithm>()> make = {}) {
  char tmpl[] = "/tmp/dtsim-obs-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  ::close(fd);
  const std::string path = tmpl;
  sim::RunHooks hooks;
  hooks.make_algorithm = std::move(make);
  hooks.observe = [path](int node, const std::string& what, int64_t step, engine::ConstVecView v) {
    std::FILE* f = std::fopen(path.c_str(), "ab");
    const uint64_t len = what.size(), n = v.size;
    std::fwrite(&node, sizeof node, 1, f);
    std::fwrite(&len, sizeof len, 1, f);
    std::fwrite(what.data(), 1, len, f);
    std::fwrite(&step, sizeof step, 1, f);
    std::fwrite(&n, sizeof n, 1, f);
    if (n) {
      std::vector<float> host(n);
      engine::ops::to_host(v, host.data());
      std::fwrite(host.data(), sizeof(float), n, f);
    }
    std::fclose(f);
  };
  ChildRun r = run_ok(cfg, sets, hooks);
  if (out) *out = r;
  std::vector<Observation> obs;
  const std::string raw = slurp(path);
  std::remove(path.c_str());
  size_t p = 0;
  auto take = [&](void* dst, size_t n) {
    REQUIRE(p + n <= raw.size());
    if (n) std::memcpy(dst, raw.data() + p, n);  // memcpy with a null pointer is UB even for 0 bytes (UBSan)
    p += n;
  };
  while (p < raw.size()) {
    Observation o;
    uint64_t len = 0, n = 0;
    take(&o.node, sizeof o.node);
    take(&len, sizeof len);
    o.what.resize(len);
    take(o.what.data(), len);
    take(&o.step, sizeof o.step);
    take(&n, sizeof n);
    o.v.resize(n);
    take(o.v.data(), n * sizeof(float));
    obs.push_back(std::move(o));
  }
  return obs;
}

// Observations named `what`, grouped by step, each group indexed by node.
inline std::map<int64_t, std::map<int, std::vector<float>>> by_step(const std::vector<Observation>& obs,
                                                                    const std::string& what) {
  std::map<int64_t, std::map<int, std::vector<float>>> out;
  for (const auto& o : obs)
    if (o.what == what) out[o.step][o.node] = o.v;
  return out;
}

// Element-wise mean of the vectors of a group.
inline std::vector<float> mean_of(const std::map<int, std::vector<float>>& group) {
  std::vector<double> acc;
  for (const auto& [node, v] : group) {
    acc.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) acc[i] += v[i];
  }
  std::vector<float> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<float>(acc[i] / group.size());
  return out;
}

// Closed-form pieces of the small experiment in the exact network model (tests/sim/helpers.hpp:
// 1 Gb/s NICs with 50 µs latency, 1 Tflop/s hosts, fixed compute time 10 ms, |W| = 2260).
constexpr double kP = 2260, kS = 4 * kP, kB = 1e9 / 8, kLat = 2 * 50e-6, kTc = 0.01, kSpeed = 1e12;
// One PS phase (N workers -> 1 shard or back): route latency + the shard NIC carrying N·S.
inline double ps_phase(int N) { return kLat + std::max(kS / kB, N * kS / kB); }
// A server step over N gradients and a worker's local update (update_flops_per_param = 4).
inline double server_update(int N) { return kP * (4 + N - 1) / kSpeed; }
inline double worker_update(int terms = 1) { return kP * (4 + terms - 1) / kSpeed; }
// Ring all-reduce of `count` elements among N workers (equal chunks assumed).
inline double ring(int N, double count = kP) { return N == 1 ? 0.0 : 2.0 * (N - 1) * (kLat + 4 * count / (N * kB)); }

}  // namespace dtsim::test
