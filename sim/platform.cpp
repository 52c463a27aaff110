#include "sim/platform.hpp"

#include <simgrid/s4u.hpp>

#include <string>

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;

void configure_network(const PlatformSpec& p) {
  if (p.network == PlatformSpec::Network::Exact) {
    // notes/simgrid.md §3: CM02 alone keeps the TCP-gamma window bound and crosstraffic.
    sg4::Engine::set_config("network/model:CM02");
    sg4::Engine::set_config("network/latency-factor:1");
    sg4::Engine::set_config("network/bandwidth-factor:1");
    sg4::Engine::set_config("network/weight-S:0");
    sg4::Engine::set_config("network/crosstraffic:0");
    sg4::Engine::set_config("network/TCP-gamma:0");
  }
}

namespace {

// A star: every host has a split-duplex NIC to the switch; the optional backbone is one shared
// link crossed by every route (counted once per route). Route A->B = A-nic_UP, [backbone], B-nic_DOWN.
BuiltPlatform build_star(const PlatformSpec& p) {
  BuiltPlatform out;
  auto* zone = sg4::create_star_zone("cluster");
  const sg4::Link* backbone = nullptr;
  if (p.backbone) backbone = zone->create_link("backbone", p.backbone->bandwidth)->set_latency(p.backbone->latency)->seal();
  auto add_host = [&](const std::string& name, double speed, const LinkSpec& link) {
    sg4::Host* h = zone->create_host(name, speed)->seal();
    const sg4::Link* nic =
        zone->create_split_duplex_link(name + "-nic", link.bandwidth)->set_latency(link.latency)->seal();
    std::vector<sg4::LinkInRoute> route = {{nic, sg4::LinkInRoute::Direction::UP}};
    if (backbone) route.emplace_back(backbone);
    zone->add_route(h->get_netpoint(), nullptr, nullptr, nullptr, route, true);
    return h;
  };
  for (int i = 0; i < p.workers.count; ++i)
    out.workers.push_back(add_host("worker-" + std::to_string(i), p.workers.speed, p.workers.link));
  for (int k = 0; k < p.servers.count; ++k)
    out.servers.push_back(add_host("server-" + std::to_string(k), p.servers.speed, p.servers.link));
  zone->seal();
  return out;
}

}  // namespace

BuiltPlatform build_platform(const PlatformSpec& p) {
  // One builder per topology kind; the config loader only accepts kinds that exist here.
  return build_star(p);
}

}  // namespace dtsim::sim
