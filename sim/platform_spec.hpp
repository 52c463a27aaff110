// The platform section of an experiment, validated (docs/platforms.md): hosts and their groups,
// the topology, the all-reduce algorithm, stragglers (compute and network) and failures.
// Nothing here runs SimGrid; sim/platform.cpp builds the SimGrid platform from a PlatformSpec.
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/json_reader.hpp"

namespace dtsim::sim {

struct LinkSpec {
  double bandwidth = 0;  // bytes/s
  double latency = 0;    // s
};

struct HostGroupSpec {
  int count = 0;
  double speed = 0;  // flop/s
  LinkSpec link;     // each host's own full-duplex NIC
  // Workers, for layer-wise timing (docs/timing.md):
  std::string device;             // the device catalog entry "speed" named ("": a CPU given by its flop rate)
  double memory_bandwidth = 10e9;  // bytes/s of a CPU worker's collective reductions and copies
  double overlap_slowdown = 0;    // compute slowed by 1 + this while the worker's collectives run (Echo)
};

// One (time, value) point of a piecewise-constant profile: the value holds from `time` on.
struct ProfilePoint {
  double time = 0;
  double value = 1;
};

struct TopologySpec {
  enum class Kind { Star, Racks, FatTree, Torus, Dragonfly, Explicit };
  Kind kind = Kind::Star;
  std::optional<LinkSpec> backbone;  // star: one shared fabric link crossed by every route

  // racks: R racks, each a star behind a top-of-rack switch with one uplink to the spine.
  int racks = 1;
  double oversubscription = 1;              // uplink = Σ NIC bandwidths in the rack / ratio
  std::optional<double> uplink_bandwidth;   // explicit instead of the ratio
  double uplink_latency = 0;
  std::optional<LinkSpec> spine;            // shared spine link; none = non-blocking spine

  // fat-tree (SimGrid's FatTreeZone: levels; per level down/up port counts and parallel links)
  unsigned levels = 0;
  std::vector<unsigned> down, up, link_count;
  // torus
  std::vector<unsigned long> dims;
  // dragonfly: (count, links) per level, hosts per router
  unsigned groups = 0, group_links = 0, chassis = 0, chassis_links = 0, routers = 0, router_links = 0, nodes = 0;
  // fat-tree / torus / dragonfly: the switch fabric's links (every host also keeps its own NIC)
  LinkSpec fabric;

  // explicit: routers, links and hop-by-hop routes (shortest path in hops, SimGrid Floyd zone)
  struct Link {
    std::string name;
    LinkSpec spec;
    enum class Sharing { Shared, SplitDuplex, Fatpipe } sharing = Sharing::Shared;
  };
  struct Route {
    std::string src, dst;             // host (worker-<i>, server-<k>) or router names
    std::vector<std::string> links;
    bool symmetric = true;
  };
  std::vector<std::string> router_names;
  std::vector<Link> links;
  std::vector<Route> routes;

  // Hosts the topology provides (fat-tree, torus, dragonfly: fixed by the parameters; 0 = as many
  // as the workers and dedicated servers need).
  uint64_t capacity() const;
  const char* name() const;
};

struct CollectiveSpec {
  enum class Algorithm { Ring, Hierarchical, Tree, RecursiveDoubling };
  Algorithm algorithm = Algorithm::Ring;
  int group_size = 0;  // hierarchical: ranks per group (0 = the topology's racks / leaf switches)
  // "transfers": "aggregated" — a ring all-reduce as one batched event (sim/collectives.hpp,
  // aggregated_ring) instead of its 2N(N-1) transfers step by step (the default).
  bool aggregated = false;
  const char* name() const;
};

struct StragglerSpec {
  enum class Kind { Persistent, Transient, Window, Trace, LinkWindow, LinkTrace, LatencyJitter };
  Kind kind = Kind::Persistent;
  std::vector<int> workers;        // compute kinds
  std::vector<std::string> links;  // network kinds: link names or '*' patterns (see platform_link_names)
  double slowdown = 1;             // compute time multiplier (persistent, transient, window)
  // transient: each minibatch slowed with probability p by `slowdown` or by a drawn factor
  double p = 1;
  enum class Dist { None, Lognormal, Exponential, Pareto } dist = Dist::None;
  double dist_a = 0, dist_b = 0;   // lognormal (mu, sigma), exponential (mean, -), pareto (alpha, xm)
  // A minibatch's transient slowdown, every entry's together, is at most this (every distribution
  // has an unbounded tail: an exponential of mean 1e300, or a pareto of alpha 0.001, would
  // overflow simulated time).
  static constexpr double kMaxTransientSlowdown = 1e6;
  // windows (compute and network)
  double from_s = 0, to_s = std::numeric_limits<double>::infinity();
  double bandwidth_factor = 1;     // link window: bandwidth × factor inside the window
  // traces: (time, factor) of the host speed or of the link bandwidth
  std::string trace_file;
  std::vector<ProfilePoint> trace;
  // latency jitter: every `every_s`, latency = nominal + a draw
  enum class Jitter { Uniform, Exponential } jitter = Jitter::Uniform;
  double jitter_scale = 0;         // uniform: max; exponential: mean (s)
  double every_s = 0;
  const char* kind_name() const;
};

struct FailureSpec {
  // Scheduled: `host` fails at `at_s` and comes back at `recover_s` (infinity: never).
  // Random: every host of `hosts` fails after Exp(mtbf_s) and is repaired after Exp(mttr_s).
  bool random = false;
  std::vector<std::string> hosts;
  double at_s = 0, recover_s = std::numeric_limits<double>::infinity();
  double mtbf_s = 0;
  std::optional<double> mttr_s;
  double detect_s = 1;  // heartbeat timeout after which the survivors learn of the failure
};

struct PlatformSpec {
  std::string file;      // where it was read from (for messages)
  std::string base_dir;  // relative trace paths resolve against this (the platform file's directory)
  enum class Network { Exact, Lv08 } network = Network::Lv08;
  TopologySpec topology;
  HostGroupSpec workers, servers;          // workers: count = all groups, speed/link = group 0
  // workers.grouping "identical": identical workers simulated as one (sim/grouping.hpp).
  bool group_identical = false;
  std::vector<HostGroupSpec> worker_groups;  // at least one
  enum class Placement { Dedicated, Colocated } placement = Placement::Dedicated;
  double loopback_bandwidth = 100e9;  // same-host transfers (co-located shards)
  double update_flops_per_param = 4;  // server cost of one optimizer step, per parameter
  CollectiveSpec collective;
  std::vector<StragglerSpec> stragglers;
  std::vector<FailureSpec> failures;
  // Server settings not given and taken from the workers' (group 0's when heterogeneous):
  // "speed", "NIC bandwidth", "NIC latency" (docs/platforms.md; shown by `dtsim validate`).
  std::vector<std::string> servers_inherited;
  // Degenerate-but-legal settings found while reading, "<file>: <path>: <reason>" (implausible
  // plain numbers, straggler indices beyond the workers): sim::Experiment::warnings.
  std::vector<std::string> warnings;

  // Compute-time multiplier of worker i from persistent stragglers (1 = nominal).
  double slowdown(int worker) const;
  // Whether a straggler changes a link's bandwidth during the run (a link window or trace).
  bool changes_link_bandwidth() const;
  const HostGroupSpec& worker_group(int worker) const;
  // Host of server shard k: "server-<k>", or "worker-<floor(k·N/K) mod N>" when co-located.
  std::string server_host(int shard) const;
  // Every host name, workers first.
  std::vector<std::string> host_names() const;
  // "worker-0..worker-7 and server-0" (for messages).
  std::string host_ranges() const;
};

// "unknown host 'wroker-2' (did you mean 'worker-2'?)", or for a numbered name beyond the platform
// ("worker-9" with 8 workers) "unknown host 'worker-9'; hosts are worker-0..worker-7 and server-0".
std::string unknown_host_reason(const std::string& name, const PlatformSpec& p);

// Parsers for the platform's sections (called by read_platform in sim/config.cpp). Each reads every
// key through the reader and throws InputError(file, path, reason).
LinkSpec read_link(ObjectReader r, const LinkSpec& def);
void read_topology(ObjectReader r, PlatformSpec& p);
void read_collective(ObjectReader& parent, PlatformSpec& p);
void read_stragglers(ObjectReader& parent, PlatformSpec& p);
void read_failures(ObjectReader& parent, PlatformSpec& p);
// Cross-checks once every section is read (hosts fit the topology, explicit routes connect, ...).
void check_platform(const ObjectReader& r, PlatformSpec& p);
// Appends a warning for every plain number (no unit string) under `v` that is probably a unit
// forgotten: a key "bandwidth" or "*_bandwidth" below 1 MB/s, "latency" or "*_latency" above 1 s
// (common/units.hpp). `origin` is where `v` sits.
void plain_unit_warnings(const json& v, const JsonOrigin& origin, std::vector<std::string>& out);

// Names of the links dtsim creates, the ones a network straggler may name: "<host>-nic" (both
// directions), "<host>-loopback", "backbone", "rack-<r>-uplink", "spine", explicit links.
std::vector<std::string> platform_link_names(const PlatformSpec& p);
// '*' matches any run of characters.
bool glob_match(const std::string& pattern, const std::string& name);
// A "time factor" trace file: one point per line, '#' comments; times ascending, factors > 0.
std::vector<ProfilePoint> read_trace_file(const std::string& path, const JsonOrigin& origin);

}  // namespace dtsim::sim
