// Per-link view of a run (docs/platforms.md "Per-link statistics", "Latency jitter"):
//  - statistics: every transfer the runtime receives is charged to each link of its route: bytes
//    carried, busy time (the union of the transfers' [start, end] intervals, latency included) and
//    mean utilisation = bytes / (nominal bandwidth x simulated time). links.csv and summary.json's
//    busiest_link come from here.
//  - latency jitter: the extra delivery delay of a message, the sum over its route's jittered links
//    of that link's draw for the send time's period (sim/stragglers.hpp jitter_at).
// Routes are looked up once per host pair (SimGrid's route_to) and cached.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sim/platform_spec.hpp"

namespace simgrid::s4u {
class Host;
}  // namespace simgrid::s4u

namespace dtsim::sim {

struct LinkRow {
  std::string name;        // SimGrid's name: "<host>-nic_UP", "rack-0-uplink_DOWN", "spine", ...
  double bandwidth = 0;    // nominal, bytes/s
  double latency = 0;      // nominal, s
  double bytes = 0;        // carried
  uint64_t transfers = 0;  // messages that crossed it
  double busy_s = 0;       // time with at least one transfer in flight
  double utilisation = 0;  // bytes / (bandwidth x simulated time)
};

class LinkModel {
 public:
  // Call after build_platform, while the SimGrid engine exists.
  LinkModel(const PlatformSpec& p, uint64_t seed);
  // Extra delivery delay of a message from src to dst sent at time t (0 without latency jitter).
  double jitter(const simgrid::s4u::Host* src, const simgrid::s4u::Host* dst, double t);
  bool any_jitter() const { return any_jitter_; }
  // `transfers` transfers (one, or an aggregated ring's part) of `bytes` in all from src to dst
  // over [start, end].
  void record(const simgrid::s4u::Host* src, const simgrid::s4u::Host* dst, double bytes, double start, double end,
              int transfers = 1);
  // Every link of the platform, sorted by name (the runtime's control host has none).
  std::vector<LinkRow> rows(double simulated_time) const;

 private:
  struct Route {
    std::vector<size_t> links;                 // indices into acc_
    std::vector<std::pair<const StragglerSpec*, std::string>> jitter;  // jittered links: (entry, spec name)
  };
  struct Acc {
    LinkRow row;
    std::map<double, double> busy;  // disjoint [start, end) intervals
  };
  const Route& route(const simgrid::s4u::Host* src, const simgrid::s4u::Host* dst);

  const PlatformSpec& p_;
  uint64_t seed_;
  bool any_jitter_ = false;
  std::vector<Acc> acc_;
  std::map<std::string, size_t> index_;  // link name -> acc_
  std::map<std::pair<const simgrid::s4u::Host*, const simgrid::s4u::Host*>, Route> routes_;
};

// The busiest link: highest utilisation, then most bytes, then name. Null when no link carried bytes.
const LinkRow* busiest_link(const std::vector<LinkRow>& rows);
// links.csv: link,bandwidth_Bps,latency_s,bytes,transfers,busy_s,utilisation (one row per link).
std::string links_csv(const std::vector<LinkRow>& rows);

}  // namespace dtsim::sim
