// Builds the SimGrid platform of a PlatformSpec (docs/platforms.md): hosts named worker-<i> and
// server-<k> (co-located shards run on worker hosts), each with its own full-duplex NIC
// "<host>-nic" and a loopback "<host>-loopback", joined by the topology: star, racks, fat-tree,
// torus, dragonfly or explicit. Time-varying stragglers (speed, bandwidth and latency profiles) are
// attached here, before the simulation starts (attaching them mid-run hangs SimGrid).
// Must be called after the Engine exists and before any actor runs.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim/config.hpp"

namespace simgrid::s4u {
class Host;
class Engine;
}  // namespace simgrid::s4u

namespace dtsim::sim {

struct BuiltPlatform {
  std::vector<simgrid::s4u::Host*> workers;
  std::vector<simgrid::s4u::Host*> servers;  // server shard k's host (a worker host when co-located)
  simgrid::s4u::Host* control = nullptr;     // a host without links, for runtime bookkeeping actors
  // Locality group of each worker (rack, leaf switch, torus row, dragonfly router): ranks in one
  // group are contiguous. Used by the hierarchical all-reduce.
  std::vector<int> worker_group;
};

// Sets the network model (exact = CM02 with factors 1, weight-S 0, crosstraffic off, TCP-gamma 0;
// lv08 = SimGrid's default), both with network/optim:Full (docs/platforms.md, "Network models").
// Must run before the first zone is created.
void configure_network(const PlatformSpec& p);
// `seed` keys the random latency jitter.
BuiltPlatform build_platform(const PlatformSpec& p, uint64_t seed = 1);

// The locality groups the hierarchical all-reduce uses (collective.group_size, else the topology's).
std::vector<int> locality_groups(const PlatformSpec& p);

// Bandwidth across the worst cut of the hosts into two halves, in bytes/s, from the topology's
// parameters (docs/platforms.md gives each formula); 0 when not computed (explicit topologies).
double bisection_bandwidth(const PlatformSpec& p);

// A one-screen summary for `dtsim validate`: hosts per role and group, links, bisection bandwidth,
// stragglers and failures, and for each (src, dst) pair the route's links and latency. Builds the
// platform in a SimGrid engine of its own (so call it at most once per process). An unknown host
// name is an InputError("--route", ...).
std::string platform_summary(const PlatformSpec& p, const std::vector<std::pair<std::string, std::string>>& routes = {});

}  // namespace dtsim::sim
