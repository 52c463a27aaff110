// Builds the SimGrid platform of a PlatformSpec: hosts named worker-<i> and server-<k>, each with
// its own full-duplex NIC, joined by the topology (star now; one builder per topology kind).
// Must be called after the Engine exists and before any actor runs.
#pragma once
#include <vector>

#include "sim/config.hpp"

namespace simgrid::s4u {
class Host;
class Engine;
}  // namespace simgrid::s4u

namespace dtsim::sim {

struct BuiltPlatform {
  std::vector<simgrid::s4u::Host*> workers;
  std::vector<simgrid::s4u::Host*> servers;
};

// Sets the network model (exact = CM02 with factors 1, weight-S 0, crosstraffic off, TCP-gamma 0;
// lv08 = SimGrid's default). Must run before the first zone is created.
void configure_network(const PlatformSpec& p);
BuiltPlatform build_platform(const PlatformSpec& p);

}  // namespace dtsim::sim
