// Stragglers (platform.stragglers, docs/platforms.md): what each kind changes, as pure functions of
// the spec and the seed. The SimGrid side (profiles attached to hosts and links before the run) is
// in sim/platform.cpp; the per-minibatch factor is applied by the runtime to each compute.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/platform_spec.hpp"

namespace dtsim::sim {

// Compute-time multiplier of worker `w`'s minibatch `step` from the transient stragglers that list
// it (1 when none fires). Each entry draws from Rng(seed, Stream::Straggler, {entry, w, step}), so a
// draw depends on nothing but its key.
double transient_factor(const PlatformSpec& p, uint64_t seed, int worker, int64_t step);

// Piecewise-constant speed factor of worker `w`'s host over time, the product of its time windows
// (1/slowdown inside [from_s, to_s)) and speed traces. Empty: constant nominal speed.
std::vector<ProfilePoint> host_speed_profile(const PlatformSpec& p, int worker);

// Piecewise-constant bandwidth factor of the link named `link` (a name from platform_link_names),
// the product of the matching link windows and bandwidth traces. Empty: constant.
std::vector<ProfilePoint> link_bandwidth_profile(const PlatformSpec& p, const std::string& link);

// The latency-jitter entry that applies to `link`, or null.
const StragglerSpec* link_jitter(const PlatformSpec& p, const std::string& link);

// Extra latency of `link` (a spec name) for a message sent at time t under latency-jitter entry
// `s`: a draw from Rng(seed, Stream::Straggler, {link, floor(t / every_s)}), so every message sent
// over that link in the same period sees the same extra latency.
double jitter_at(const StragglerSpec& s, uint64_t seed, const std::string& link, double t);

}  // namespace dtsim::sim
