#include "sim/stragglers.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "common/hash.hpp"
#include "common/rng.hpp"

namespace dtsim::sim {

namespace {

// Value of a piecewise-constant function at t (1 before its first point).
double value_at(const std::vector<ProfilePoint>& f, double t) {
  double v = 1;
  for (const auto& pt : f) {
    if (pt.time > t) break;
    v = pt.value;
  }
  return v;
}

// The product of several piecewise-constant functions, with equal neighbours merged.
std::vector<ProfilePoint> product(const std::vector<std::vector<ProfilePoint>>& fs) {
  if (fs.empty()) return {};
  std::set<double> times;
  for (const auto& f : fs)
    for (const auto& pt : f) times.insert(pt.time);
  std::vector<ProfilePoint> out;
  double last = 1;
  for (double t : times) {
    double v = 1;
    for (const auto& f : fs) v *= value_at(f, t);
    if (v != last) out.push_back({t, v});
    last = v;
  }
  return out;
}

std::vector<ProfilePoint> window(double from, double to, double factor) {
  std::vector<ProfilePoint> f{{from, factor}};
  if (std::isfinite(to)) f.push_back({to, 1});
  return f;
}

uint64_t name_key(const std::string& s) { return fnv1a(s); }  // portable, unlike std::hash (common/hash.hpp)

bool matches_any(const std::vector<std::string>& pats, const std::string& name) {
  return std::any_of(pats.begin(), pats.end(), [&](const std::string& p) { return glob_match(p, name); });
}

}  // namespace

double transient_factor(const PlatformSpec& p, uint64_t seed, int worker, int64_t step) {
  double f = 1;
  for (size_t e = 0; e < p.stragglers.size(); ++e) {
    const auto& s = p.stragglers[e];
    if (s.kind != StragglerSpec::Kind::Transient) continue;
    if (std::find(s.workers.begin(), s.workers.end(), worker) == s.workers.end()) continue;
    Rng rng(seed, Stream::Straggler, {static_cast<uint64_t>(e), static_cast<uint64_t>(worker), static_cast<uint64_t>(step)});
    if (rng.uniform() >= s.p) continue;
    switch (s.dist) {
      case StragglerSpec::Dist::None: f *= s.slowdown; break;
      case StragglerSpec::Dist::Lognormal: f *= std::max(1.0, std::exp(s.dist_a + s.dist_b * rng.normal())); break;
      case StragglerSpec::Dist::Exponential: f *= 1.0 + rng.exponential(1.0 / s.dist_a); break;
      case StragglerSpec::Dist::Pareto: {
        double u = rng.uniform();
        while (u <= 0) u = rng.uniform();
        f *= std::max(1.0, s.dist_b * std::pow(u, -1.0 / s.dist_a));  // xm · U^(-1/alpha)
        break;
      }
    }
  }
  return std::min(f, StragglerSpec::kMaxTransientSlowdown);
}

std::vector<ProfilePoint> host_speed_profile(const PlatformSpec& p, int worker) {
  std::vector<std::vector<ProfilePoint>> fs;
  for (const auto& s : p.stragglers) {
    if (std::find(s.workers.begin(), s.workers.end(), worker) == s.workers.end()) continue;
    if (s.kind == StragglerSpec::Kind::Window) fs.push_back(window(s.from_s, s.to_s, 1.0 / s.slowdown));
    if (s.kind == StragglerSpec::Kind::Trace) fs.push_back(s.trace);
  }
  return product(fs);
}

std::vector<ProfilePoint> link_bandwidth_profile(const PlatformSpec& p, const std::string& link) {
  std::vector<std::vector<ProfilePoint>> fs;
  for (const auto& s : p.stragglers) {
    if (!matches_any(s.links, link)) continue;
    if (s.kind == StragglerSpec::Kind::LinkWindow) fs.push_back(window(s.from_s, s.to_s, s.bandwidth_factor));
    if (s.kind == StragglerSpec::Kind::LinkTrace) fs.push_back(s.trace);
  }
  return product(fs);
}

const StragglerSpec* link_jitter(const PlatformSpec& p, const std::string& link) {
  for (const auto& s : p.stragglers)
    if (s.kind == StragglerSpec::Kind::LatencyJitter && matches_any(s.links, link)) return &s;
  return nullptr;
}

double jitter_at(const StragglerSpec& s, uint64_t seed, const std::string& link, double t) {
  const uint64_t slot = static_cast<uint64_t>(std::max(0.0, std::floor(t / s.every_s)));
  Rng rng(seed, Stream::Straggler, {name_key(link), slot});
  return s.jitter == StragglerSpec::Jitter::Uniform ? rng.uniform(0, s.jitter_scale) : rng.exponential(1.0 / s.jitter_scale);
}

}  // namespace dtsim::sim
