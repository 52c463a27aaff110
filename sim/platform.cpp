#include "sim/platform.hpp"

#include <simgrid/kernel/ProfileBuilder.hpp>
#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "common/units.hpp"
#include "sim/stragglers.hpp"

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;
namespace pb = simgrid::kernel::profile;
using NetPoint = simgrid::kernel::routing::NetPoint;
using Dir = sg4::LinkInRoute::Direction;

void configure_network(const PlatformSpec& p) {
  // Every model re-solves max-min sharing in full at each event. SimGrid 3.32's default lazy update
  // (network/optim:Lazy) lets some flows that start together exceed a link of their route: a shard's
  // replies at once to 16 workers on 1 Gb/s NICs, two per worker, some took 157 us instead of
  // latency + S / NIC = 172 us (exact model; lv08 too). Full is exact, and at scale no slower on
  // the whole (bench/README.md, "Speed at scale"; tests/sim/test_foundation.cpp, "replies a fast
  // shard sends at once").
  sg4::Engine::set_config("network/optim:Full");
  if (p.network == PlatformSpec::Network::Exact) {
    // CM02 alone keeps the TCP-gamma window bound and crosstraffic (docs/platforms.md, "Network models").
    sg4::Engine::set_config("network/model:CM02");
    sg4::Engine::set_config("network/latency-factor:1");
    sg4::Engine::set_config("network/bandwidth-factor:1");
    sg4::Engine::set_config("network/weight-S:0");
    sg4::Engine::set_config("network/crosstraffic:0");
    sg4::Engine::set_config("network/TCP-gamma:0");
  } else if (p.changes_link_bandwidth()) {
    // SimGrid 3.32 (NetworkCm02Link::set_bandwidth) shifts the sharing penalty of every flow on the
    // link by weight-S × (1/new − 1/old), also of flows that load it only as cross-traffic and
    // whose penalty never held that term: restoring a link that was slowed while such a flow
    // started drives its penalty negative, and SimGrid aborts ("Variable penalty should not be
    // negative!"); short of that, the shares are wrong. Without cross-traffic the penalties
    // are exact (docs/platforms.md, "Network models").
    sg4::Engine::set_config("network/crosstraffic:0");
  }
}

std::vector<int> locality_groups(const PlatformSpec& p) {
  const int N = p.workers.count;
  std::vector<int> g(static_cast<size_t>(N), 0);
  const auto& t = p.topology;
  int size = p.collective.group_size;
  for (int i = 0; i < N; ++i) {
    if (size > 0) {
      g[static_cast<size_t>(i)] = i / size;
      continue;
    }
    switch (t.kind) {
      case TopologySpec::Kind::Racks: {
        // Rack r holds workers [r·N/R, (r+1)·N/R).
        int r = 0;
        while (r + 1 < t.racks && static_cast<int64_t>(r + 1) * N / t.racks <= i) ++r;
        g[static_cast<size_t>(i)] = r;
        break;
      }
      case TopologySpec::Kind::FatTree: g[static_cast<size_t>(i)] = i / static_cast<int>(t.down.at(0)); break;
      case TopologySpec::Kind::Torus: g[static_cast<size_t>(i)] = i / static_cast<int>(t.dims.at(0)); break;
      case TopologySpec::Kind::Dragonfly: g[static_cast<size_t>(i)] = i / static_cast<int>(t.nodes); break;
      default: g[static_cast<size_t>(i)] = 0; break;
    }
  }
  return g;
}

namespace {

std::string g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string profile_text(const std::vector<ProfilePoint>& pts, double scale) {
  std::string s;
  char buf[96];
  for (const auto& pt : pts) {
    std::snprintf(buf, sizeof buf, "%.17g %.17g\n", pt.time, pt.value * scale);
    s += buf;
  }
  return s;
}

// One host of the platform as the builders see it.
struct HostInfo {
  std::string name;
  double speed = 1e12;
  LinkSpec nic;
  int cores = 1;
  int worker = -1;  // worker rank, -1 for servers and idle slots
  int rack = 0;     // racks topology only
};

class Builder {
 public:
  Builder(const PlatformSpec& p, uint64_t seed) : p_(p), seed_(seed) {}

  BuiltPlatform build() {
    collect_hosts();
    auto* root = sg4::create_star_zone("dtsim");
    out_.control = root->create_host("dtsim-control", 1e9)->seal();  // no links: never communicates
    switch (p_.topology.kind) {
      case TopologySpec::Kind::Star: build_star(root); break;
      case TopologySpec::Kind::Racks: build_racks(root); break;
      case TopologySpec::Kind::FatTree:
      case TopologySpec::Kind::Torus:
      case TopologySpec::Kind::Dragonfly: build_cluster(root); break;
      case TopologySpec::Kind::Explicit: build_explicit(root); break;
    }
    root->seal();
    for (int i = 0; i < p_.workers.count; ++i) out_.workers.push_back(by_name_.at("worker-" + std::to_string(i)));
    for (int k = 0; k < p_.servers.count; ++k) out_.servers.push_back(by_name_.at(p_.server_host(k)));
    out_.worker_group = locality_groups(p_);
    return out_;
  }

 private:
  void collect_hosts() {
    const int N = p_.workers.count;
    std::vector<int> rack = locality_groups(p_);  // racks: contiguous blocks of workers
    for (int i = 0; i < N; ++i) {
      const auto& g = p_.worker_group(i);
      HostInfo h{"worker-" + std::to_string(i), g.speed, g.link, 1, i, 0};
      if (p_.topology.kind == TopologySpec::Kind::Racks) {
        int r = 0;
        while (r + 1 < p_.topology.racks && static_cast<int64_t>(r + 1) * N / p_.topology.racks <= i) ++r;
        h.rack = r;
      }
      hosts_.push_back(h);
    }
    if (p_.placement == PlatformSpec::Placement::Dedicated) {
      for (int k = 0; k < p_.servers.count; ++k)
        hosts_.push_back({"server-" + std::to_string(k), p_.servers.speed, p_.servers.link, 1, -1,
                          p_.topology.kind == TopologySpec::Kind::Racks ? k % p_.topology.racks : 0});
    } else {
      for (int k = 0; k < p_.servers.count; ++k)  // a core per shard
        ++hosts_[static_cast<size_t>(static_cast<int64_t>(k) * N / p_.servers.count % N)].cores;
    }
  }

  sg4::Host* make_host(sg4::NetZone* z, const HostInfo& info) {
    sg4::Host* h = z->create_host(info.name, info.speed);
    if (info.cores > 1) h->set_core_count(info.cores);
    if (info.worker >= 0) {
      const auto prof = host_speed_profile(p_, info.worker);
      if (!prof.empty()) h->set_speed_profile(pb::ProfileBuilder::from_string(info.name + "-speed", profile_text(prof, 1.0), -1));
    }
    h->seal();
    by_name_[info.name] = h;
    return h;
  }

  // Bandwidth and latency stragglers, attached before the link is sealed.
  template <class L>
  L* profiled(L* link, const std::string& name, const LinkSpec& spec) {
    const auto bw = link_bandwidth_profile(p_, name);
    // SimGrid 3.32 takes absolute bandwidths in a bandwidth profile (not the factors its header says).
    if (!bw.empty()) link->set_bandwidth_profile(pb::ProfileBuilder::from_string(name + "-bw", profile_text(bw, spec.bandwidth), -1));
    // Latency jitter is not a SimGrid latency profile: in SimGrid 3.32 a latency change while a
    // transfer is in its latency phase deadlocks the simulation (measured). The runtime delays each
    // message's delivery instead (sim/links.cpp).
    link->set_latency(spec.latency);
    return link;
  }

  sg4::Link* make_nic(sg4::NetZone* z, const HostInfo& h) {
    const std::string name = h.name + "-nic";
    return profiled(z->create_split_duplex_link(name, h.nic.bandwidth), name, h.nic)->seal();
  }
  sg4::Link* make_loopback(sg4::NetZone* z, const HostInfo& h) {
    const std::string name = h.name + "-loopback";
    return profiled(z->create_link(name, p_.loopback_bandwidth), name, LinkSpec{p_.loopback_bandwidth, 0})->seal();
  }
  sg4::Link* make_link(sg4::NetZone* z, const std::string& name, const LinkSpec& spec) {
    return profiled(z->create_link(name, spec.bandwidth), name, spec)->seal();
  }
  sg4::Link* make_duplex(sg4::NetZone* z, const std::string& name, const LinkSpec& spec) {
    return profiled(z->create_split_duplex_link(name, spec.bandwidth), name, spec)->seal();
  }

  // A host in a star zone: route host -> anywhere = its NIC (up) [+ extra], plus its loopback.
  void star_host(sg4::NetZone* z, const HostInfo& info, const sg4::Link* extra) {
    sg4::Host* h = make_host(z, info);
    const sg4::Link* nic = make_nic(z, info);
    std::vector<sg4::LinkInRoute> route = {{nic, Dir::UP}};
    if (extra) route.emplace_back(extra);
    z->add_route(h->get_netpoint(), nullptr, nullptr, nullptr, route, true);
    z->add_route(h->get_netpoint(), h->get_netpoint(), nullptr, nullptr, {sg4::LinkInRoute(make_loopback(z, info))}, false);
  }

  // star: every host's NIC to one switch; the optional backbone is one shared link crossed by every
  // route (counted once). Route A->B = A-nic_UP, [backbone], B-nic_DOWN.
  void build_star(sg4::NetZone* root) {
    auto* zone = sg4::create_star_zone("cluster");
    zone->set_parent(root);
    const sg4::Link* backbone = nullptr;
    if (p_.topology.backbone) backbone = make_link(zone, "backbone", *p_.topology.backbone);
    for (const auto& h : hosts_) star_host(zone, h, backbone);
    zone->seal();
  }

  // racks: a star zone per rack (hosts' NICs to the top-of-rack switch "rack-<r>-gw"), joined in a
  // star zone by one split-duplex uplink per rack and an optional shared spine link.
  // Route A->B across racks = A-nic_UP, rack-a-uplink_UP, [spine], rack-b-uplink_DOWN, B-nic_DOWN.
  void build_racks(sg4::NetZone* root) {
    const auto& t = p_.topology;
    auto* top = sg4::create_star_zone("cluster");
    top->set_parent(root);
    const sg4::Link* spine = t.spine ? make_link(top, "spine", *t.spine) : nullptr;
    for (int r = 0; r < t.racks; ++r) {
      const std::string rn = "rack-" + std::to_string(r);
      auto* rz = sg4::create_star_zone(rn);
      rz->set_parent(top);
      NetPoint* gw = rz->create_router(rn + "-gw");
      rz->add_route(gw, nullptr, nullptr, nullptr, {}, true);
      double nic_sum = 0;
      for (const auto& h : hosts_)
        if (h.rack == r) {
          star_host(rz, h, nullptr);
          nic_sum += h.nic.bandwidth;
        }
      rz->seal();
      const double up_bw = t.uplink_bandwidth ? *t.uplink_bandwidth : nic_sum / t.oversubscription;
      const sg4::Link* up = make_duplex(top, rn + "-uplink", LinkSpec{up_bw, t.uplink_latency});
      std::vector<sg4::LinkInRoute> route = {{up, Dir::UP}};
      if (spine) route.emplace_back(spine);
      top->add_route(rz->get_netpoint(), nullptr, gw, nullptr, route, true);
    }
    top->seal();
  }

  // fat-tree, torus, dragonfly: SimGrid's cluster zones with one leaf per host slot. Each leaf is a
  // star zone holding the host, its NIC and loopback, and a gateway router; the zone's own links
  // (topology.link) form the switch fabric. Slots beyond the workers and dedicated servers hold idle
  // hosts "idle-<slot>".
  void build_cluster(sg4::NetZone* root) {
    const auto& t = p_.topology;
    auto leaf = [this](sg4::NetZone* zone, const std::vector<unsigned long>&, unsigned long id) -> std::pair<NetPoint*, NetPoint*> {
      HostInfo info = id < hosts_.size() ? hosts_[id]
                                         : HostInfo{"idle-" + std::to_string(id), p_.workers.speed, p_.workers.link, 1, -1, 0};
      auto* hz = sg4::create_star_zone(info.name + "-leaf");
      hz->set_parent(zone);
      star_host(hz, info, nullptr);
      NetPoint* gw = hz->create_router(info.name + "-gw");
      hz->add_route(gw, nullptr, nullptr, nullptr, {}, true);
      hz->seal();
      return {hz->get_netpoint(), gw};
    };
    sg4::ClusterCallbacks cb(leaf);
    const auto policy = sg4::Link::SharingPolicy::SPLITDUPLEX;
    sg4::NetZone* z = nullptr;
    if (t.kind == TopologySpec::Kind::FatTree) {
      z = sg4::create_fatTree_zone("cluster", root, sg4::FatTreeParams(t.levels, t.down, t.up, t.link_count), cb,
                                   t.fabric.bandwidth, t.fabric.latency, policy);
    } else if (t.kind == TopologySpec::Kind::Torus) {
      z = sg4::create_torus_zone("cluster", root, t.dims, cb, t.fabric.bandwidth, t.fabric.latency, policy);
    } else {
      z = sg4::create_dragonfly_zone("cluster", root,
                                     sg4::DragonflyParams({t.groups, t.group_links}, {t.chassis, t.chassis_links},
                                                          {t.routers, t.router_links}, t.nodes),
                                     cb, t.fabric.bandwidth, t.fabric.latency, policy);
    }
    z->seal();
  }

  // explicit: one Floyd zone; every route given is one hop (shortest paths in hops are computed by
  // SimGrid). A hop that starts or ends at a host also crosses that host's NIC.
  void build_explicit(sg4::NetZone* root) {
    const auto& t = p_.topology;
    auto* z = sg4::create_floyd_zone("cluster");
    z->set_parent(root);
    std::map<std::string, NetPoint*> np;
    std::map<std::string, const sg4::Link*> nic;
    for (const auto& h : hosts_) {
      sg4::Host* host = make_host(z, h);
      np[h.name] = host->get_netpoint();
      nic[h.name] = make_nic(z, h);
      z->add_route(host->get_netpoint(), host->get_netpoint(), nullptr, nullptr, {sg4::LinkInRoute(make_loopback(z, h))}, false);
    }
    for (const auto& r : t.router_names) np[r] = z->create_router(r);
    std::map<std::string, std::pair<const sg4::Link*, bool>> links;  // name -> (link, split-duplex)
    for (const auto& l : t.links) {
      using S = TopologySpec::Link::Sharing;
      if (l.sharing == S::SplitDuplex) {
        links[l.name] = {make_duplex(z, l.name, l.spec), true};
      } else {
        auto* link = z->create_link(l.name, l.spec.bandwidth);
        if (l.sharing == S::Fatpipe) link->set_sharing_policy(sg4::Link::SharingPolicy::FATPIPE);
        links[l.name] = {profiled(link, l.name, l.spec)->seal(), false};
      }
    }
    auto hop = [&](const std::string& a, const std::string& b, const std::vector<std::string>& names, bool forward) {
      std::vector<sg4::LinkInRoute> route;
      if (nic.count(a)) route.emplace_back(nic[a], Dir::UP);
      for (size_t i = 0; i < names.size(); ++i) {
        const auto& [link, duplex] = links.at(forward ? names[i] : names[names.size() - 1 - i]);
        if (duplex) route.emplace_back(link, forward ? Dir::UP : Dir::DOWN);
        else route.emplace_back(link);
      }
      if (nic.count(b)) route.emplace_back(nic[b], Dir::DOWN);
      z->add_route(np.at(a), np.at(b), nullptr, nullptr, route, false);
    };
    for (const auto& r : t.routes) {
      hop(r.src, r.dst, r.links, true);
      if (r.symmetric) hop(r.dst, r.src, r.links, false);
    }
    z->seal();
  }

  const PlatformSpec& p_;
  uint64_t seed_;
  std::vector<HostInfo> hosts_;  // workers, then dedicated servers
  std::map<std::string, sg4::Host*> by_name_;
  BuiltPlatform out_;
};

}  // namespace

BuiltPlatform build_platform(const PlatformSpec& p, uint64_t seed) { return Builder(p, seed).build(); }

// ------------------------------------------------------------------------------------------
double bisection_bandwidth(const PlatformSpec& p) {
  const auto& t = p.topology;
  // NIC bandwidths of every host, ascending: the worst half's NICs bound any cut.
  std::vector<double> nics;
  for (int i = 0; i < p.workers.count; ++i) nics.push_back(p.worker_group(i).link.bandwidth);
  if (p.placement == PlatformSpec::Placement::Dedicated)
    for (int k = 0; k < p.servers.count; ++k) nics.push_back(p.servers.link.bandwidth);
  std::sort(nics.begin(), nics.end());
  double half_nics = 0;
  for (size_t i = 0; i < nics.size() / 2; ++i) half_nics += nics[i];
  switch (t.kind) {
    case TopologySpec::Kind::Star:
      return t.backbone ? std::min(half_nics, t.backbone->bandwidth) : half_nics;
    case TopologySpec::Kind::Racks: {
      if (t.racks < 2) return half_nics;
      // The worst split puts the racks with the narrowest uplinks on one side.
      std::vector<double> up(static_cast<size_t>(t.racks), 0);
      if (t.uplink_bandwidth) {
        std::fill(up.begin(), up.end(), *t.uplink_bandwidth);
      } else {
        const int N = p.workers.count;
        for (int i = 0; i < N; ++i) {
          int r = 0;
          while (r + 1 < t.racks && static_cast<int64_t>(r + 1) * N / t.racks <= i) ++r;
          up[static_cast<size_t>(r)] += p.worker_group(i).link.bandwidth;
        }
        if (p.placement == PlatformSpec::Placement::Dedicated)
          for (int k = 0; k < p.servers.count; ++k) up[static_cast<size_t>(k % t.racks)] += p.servers.link.bandwidth;
        for (auto& u : up) u /= t.oversubscription;
      }
      std::sort(up.begin(), up.end());
      double cut = 0;
      for (int r = 0; r < t.racks / 2; ++r) cut += up[static_cast<size_t>(r)];
      if (t.spine) cut = std::min(cut, t.spine->bandwidth);
      return std::min(cut, half_nics);
    }
    case TopologySpec::Kind::FatTree: {
      // Half of the narrowest level's total up-capacity (a symmetric tree cut at that level).
      double nodes = static_cast<double>(t.capacity()), best = INFINITY;
      for (unsigned l = 0; l < t.levels; ++l) {
        best = std::min(best, nodes * t.up[l] * t.link_count[l] * t.fabric.bandwidth / 2);
        nodes = nodes * t.up[l] / t.down[l];
      }
      return std::min(best, half_nics);
    }
    case TopologySpec::Kind::Torus: {
      const double n = static_cast<double>(t.capacity());
      const unsigned long d = *std::max_element(t.dims.begin(), t.dims.end());
      if (d < 2) return std::min(half_nics, 0.0);
      // Cutting the longest dimension in half crosses n/d links, twice with the wrap-around.
      return std::min(half_nics, (d > 2 ? 2.0 : 1.0) * n / static_cast<double>(d) * t.fabric.bandwidth);
    }
    case TopologySpec::Kind::Dragonfly: {
      const double g = t.groups;
      if (t.groups < 2) return 0;
      return std::min(half_nics, std::floor(g / 2) * std::ceil(g / 2) * t.group_links * t.fabric.bandwidth);
    }
    case TopologySpec::Kind::Explicit: return 0;
  }
  return 0;
}

std::string platform_summary(const PlatformSpec& p, const std::vector<std::pair<std::string, std::string>>& routes) {
  using units::format_bandwidth;
  using units::format_duration;
  std::string out;
  char buf[512];
  auto line = [&](const char* key, const std::string& value) {
    std::snprintf(buf, sizeof buf, "  %-11s %s\n", key, value.c_str());
    out += buf;
  };
  const auto& t = p.topology;
  std::string topo = t.name();
  switch (t.kind) {
    case TopologySpec::Kind::Star:
      topo += t.backbone ? ", backbone " + format_bandwidth(t.backbone->bandwidth) + " / " + format_duration(t.backbone->latency)
                         : ", non-blocking switch";
      break;
    case TopologySpec::Kind::Racks:
      topo += ", " + std::to_string(t.racks) + " racks, uplinks " +
              (t.uplink_bandwidth ? format_bandwidth(*t.uplink_bandwidth) : g(t.oversubscription) + ":1 oversubscribed") +
              (t.spine ? ", spine " + format_bandwidth(t.spine->bandwidth) : ", non-blocking spine");
      break;
    case TopologySpec::Kind::FatTree: {
      auto list = [](const std::vector<unsigned>& v) {
        std::string s;
        for (unsigned x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
        return s;
      };
      topo += " " + std::to_string(t.levels) + ";" + list(t.down) + ";" + list(t.up) + ";" + list(t.link_count) + ", " +
              std::to_string(t.capacity()) + " slots, links " + format_bandwidth(t.fabric.bandwidth);
      break;
    }
    case TopologySpec::Kind::Torus: {
      std::string d;
      for (auto x : t.dims) d += (d.empty() ? "" : "x") + std::to_string(x);
      topo += " " + d + ", links " + format_bandwidth(t.fabric.bandwidth);
      break;
    }
    case TopologySpec::Kind::Dragonfly:
      topo += " " + std::to_string(t.groups) + " groups x " + std::to_string(t.chassis) + " chassis x " + std::to_string(t.routers) +
              " routers x " + std::to_string(t.nodes) + " nodes, links " + format_bandwidth(t.fabric.bandwidth);
      break;
    case TopologySpec::Kind::Explicit:
      topo += ", " + std::to_string(t.router_names.size()) + " routers, " + std::to_string(t.links.size()) + " links, " +
              std::to_string(t.routes.size()) + " routes";
      break;
  }
  line("topology", topo + (p.network == PlatformSpec::Network::Exact ? "; exact network" : "; lv08 network"));
  int first = 0;
  for (const auto& grp : p.worker_groups) {
    std::snprintf(buf, sizeof buf, "%d x %s, NIC %s / %s (worker-%d..worker-%d)", grp.count,
                  units::format_speed(grp.speed).c_str(), format_bandwidth(grp.link.bandwidth).c_str(),
                  format_duration(grp.link.latency).c_str(), first, first + grp.count - 1);
    line(first == 0 ? "workers" : "", buf);
    first += grp.count;
  }
  if (p.servers.count > 0) {
    if (p.placement == PlatformSpec::Placement::Colocated)
      std::snprintf(buf, sizeof buf, "%d shard(s) co-located on worker hosts (%s%s)", p.servers.count,
                    p.server_host(0).c_str(), p.servers.count > 1 ? (", " + p.server_host(1) + (p.servers.count > 2 ? ", ..." : "")).c_str() : "");
    else {
      // Settings not given are the workers' (docs/platforms.md): say which.
      std::string from_workers;
      for (const auto& k : p.servers_inherited) from_workers += (from_workers.empty() ? "; " : ", ") + k;
      if (!from_workers.empty()) from_workers += " as the workers'";
      std::snprintf(buf, sizeof buf, "%d x %s, NIC %s / %s (dedicated hosts%s)", p.servers.count,
                    units::format_speed(p.servers.speed).c_str(), format_bandwidth(p.servers.link.bandwidth).c_str(),
                    format_duration(p.servers.link.latency).c_str(), from_workers.c_str());
    }
    line("servers", buf);
  } else {
    line("servers", "none");
  }
  const double bis = bisection_bandwidth(p);
  const char* why_not = p.topology.kind == TopologySpec::Kind::Explicit   ? "not computed for explicit topologies"
                        : p.topology.kind == TopologySpec::Kind::Dragonfly ? "not computed for a dragonfly of one group"
                        : p.topology.kind == TopologySpec::Kind::Torus     ? "not computed for a torus of dimensions 1"
                                                                           : "0";
  line("bisection", bis > 0 ? format_bandwidth(bis) : std::string(why_not));
  std::string coll = p.collective.name();
  if (p.collective.algorithm == CollectiveSpec::Algorithm::Hierarchical) {
    const auto groups = locality_groups(p);
    coll += ", " + std::to_string(groups.empty() ? 0 : groups.back() + 1) + " groups";
  }
  line("all-reduce", coll);
  for (const auto& s : p.stragglers) {
    std::string who;
    if (s.links.empty() && s.workers.empty()) {
      who = "no worker (its indices are beyond the workers)";
    } else if (!s.workers.empty()) {
      who = static_cast<int>(s.workers.size()) == p.workers.count ? "all workers" : "workers ";
      if (static_cast<int>(s.workers.size()) != p.workers.count)
        for (size_t i = 0; i < s.workers.size() && i < 8; ++i) who += (i ? "," : "") + std::to_string(s.workers[i]);
      if (static_cast<int>(s.workers.size()) != p.workers.count && s.workers.size() > 8) who += ",...";
    } else {
      for (const auto& l : s.links) who += (who.empty() ? "links " : ",") + l;
    }
    std::string what = s.kind_name();
    switch (s.kind) {
      case StragglerSpec::Kind::Persistent: what += " x" + g(s.slowdown); break;
      case StragglerSpec::Kind::Transient: what += " p=" + g(s.p) + (s.dist == StragglerSpec::Dist::None ? " x" + g(s.slowdown) : " drawn factor"); break;
      case StragglerSpec::Kind::Window:
      case StragglerSpec::Kind::LinkWindow:
        what += " " + format_duration(s.from_s) + ".." + (std::isinf(s.to_s) ? std::string("end") : format_duration(s.to_s));
        break;
      case StragglerSpec::Kind::Trace:
      case StragglerSpec::Kind::LinkTrace: what += " " + s.trace_file; break;
      case StragglerSpec::Kind::LatencyJitter: what += " every " + format_duration(s.every_s); break;
    }
    line("straggler", what + ": " + who);
  }
  for (const auto& f : p.failures) {
    std::string who;
    for (size_t i = 0; i < f.hosts.size() && i < 6; ++i) who += (i ? "," : "") + f.hosts[i];
    if (f.hosts.size() > 6) who += ",... (" + std::to_string(f.hosts.size()) + " hosts)";
    if (f.random)
      line("failure", who + ": random, MTBF " + format_duration(f.mtbf_s) + (f.mttr_s ? ", MTTR " + format_duration(*f.mttr_s) : ", never repaired"));
    else
      line("failure", who + " at " + format_duration(f.at_s) + (std::isinf(f.recover_s) ? ", never recovers" : ", back at " + format_duration(f.recover_s)));
  }
  if (routes.empty()) return out;

  xbt_log_control_set("root.thres:critical");
  sg4::Engine e("dtsim-validate");
  configure_network(p);
  build_platform(p);
  auto host = [&](const std::string& n) {
    sg4::Host* h = e.host_by_name_or_null(n);
    if (!h || n == "dtsim-control") throw InputError("--route", "", unknown_host_reason(n, p));
    return h;
  };
  for (const auto& [a, b] : routes) {
    std::vector<sg4::Link*> links;
    double lat = 0;
    host(a)->route_to(host(b), links, &lat);
    double bw = INFINITY;
    for (auto* l : links) bw = std::min(bw, l->get_bandwidth());
    std::snprintf(buf, sizeof buf, "%s -> %s: %zu links, latency %s, narrowest %s", a.c_str(), b.c_str(), links.size(),
                  format_duration(lat).c_str(), links.empty() ? "-" : format_bandwidth(bw).c_str());
    line("route", buf);
    int width = 34;  // the column fits the longest name (SimGrid's dragonfly links run past 60)
    for (auto* l : links) width = std::max(width, static_cast<int>(l->get_name().size()));
    for (auto* l : links) {
      std::snprintf(buf, sizeof buf, "  %-*s %12s %12s", width, l->get_cname(), format_bandwidth(l->get_bandwidth()).c_str(),
                    format_duration(l->get_latency()).c_str());
      line("", buf);
    }
  }
  return out;
}

}  // namespace dtsim::sim
