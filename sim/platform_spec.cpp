#include "sim/platform_spec.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common/units.hpp"

namespace dtsim::sim {

namespace {

unsigned positive_uint(ObjectReader& r, const std::string& key, std::optional<int64_t> def, int64_t max = 1000000) {
  const int64_t v = r.integer(key, def);
  if (v < 1 || v > max) r.fail(key, "must be in [1, " + std::to_string(max) + "], got " + std::to_string(v));
  return static_cast<unsigned>(v);
}

std::vector<unsigned> uint_list(ObjectReader& r, const std::string& key, size_t n, std::optional<std::vector<int64_t>> def) {
  const auto v = r.integer_list(key, std::move(def));
  if (v.size() != n)
    r.fail(key, "expected " + std::to_string(n) + " values (one per level), got " + std::to_string(v.size()));
  std::vector<unsigned> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 1 || v[i] > 100000) r.origin().child(key).index(i).fail("must be in [1, 100000], got " + std::to_string(v[i]));
    out.push_back(static_cast<unsigned>(v[i]));
  }
  return out;
}

// [count, links] of a dragonfly level.
std::pair<unsigned, unsigned> count_links(ObjectReader& r, const std::string& key) {
  const auto v = r.integer_list(key);
  if (v.size() != 2) r.fail(key, "expected [count, links], got " + std::to_string(v.size()) + " values");
  for (size_t i = 0; i < 2; ++i)
    if (v[i] < 1 || v[i] > 100000) r.origin().child(key).index(i).fail("must be in [1, 100000], got " + std::to_string(v[i]));
  return {static_cast<unsigned>(v[0]), static_cast<unsigned>(v[1])};
}

}  // namespace

// ------------------------------------------------------------------------------------------
uint64_t TopologySpec::capacity() const {
  uint64_t n = 1;
  switch (kind) {
    case Kind::FatTree:
      for (unsigned d : down) n *= d;
      return n;
    case Kind::Torus:
      for (unsigned long d : dims) n *= d;
      return n;
    case Kind::Dragonfly: return uint64_t{groups} * chassis * routers * nodes;
    default: return 0;
  }
}

const char* TopologySpec::name() const {
  switch (kind) {
    case Kind::Star: return "star";
    case Kind::Racks: return "racks";
    case Kind::FatTree: return "fat-tree";
    case Kind::Torus: return "torus";
    case Kind::Dragonfly: return "dragonfly";
    case Kind::Explicit: return "explicit";
  }
  return "?";
}

const char* CollectiveSpec::name() const {
  switch (algorithm) {
    case Algorithm::Ring: return "ring";
    case Algorithm::Hierarchical: return "hierarchical";
    case Algorithm::Tree: return "tree";
    case Algorithm::RecursiveDoubling: return "recursive-doubling";
  }
  return "?";
}

const char* StragglerSpec::kind_name() const {
  switch (kind) {
    case Kind::Persistent: return "persistent";
    case Kind::Transient: return "transient";
    case Kind::Window: return "window";
    case Kind::Trace: return "trace";
    case Kind::LinkWindow: return "link window";
    case Kind::LinkTrace: return "link trace";
    case Kind::LatencyJitter: return "latency jitter";
  }
  return "?";
}

double PlatformSpec::slowdown(int worker) const {
  double f = 1;
  for (const auto& s : stragglers)
    if (s.kind == StragglerSpec::Kind::Persistent && std::find(s.workers.begin(), s.workers.end(), worker) != s.workers.end())
      f *= s.slowdown;
  return f;
}

bool PlatformSpec::changes_link_bandwidth() const {
  return std::any_of(stragglers.begin(), stragglers.end(), [](const StragglerSpec& s) {
    return s.kind == StragglerSpec::Kind::LinkWindow || s.kind == StragglerSpec::Kind::LinkTrace;
  });
}

const HostGroupSpec& PlatformSpec::worker_group(int worker) const {
  int i = worker;
  for (const auto& g : worker_groups) {
    if (i < g.count) return g;
    i -= g.count;
  }
  return worker_groups.empty() ? workers : worker_groups.back();
}

std::string PlatformSpec::server_host(int shard) const {
  if (placement == Placement::Colocated) {  // spread evenly: shard k on worker floor(k·N/K)
    const int64_t N = std::max(1, workers.count), K = std::max(1, servers.count);
    return "worker-" + std::to_string(static_cast<int64_t>(shard) * N / K % N);
  }
  return "server-" + std::to_string(shard);
}

std::string PlatformSpec::host_ranges() const {
  auto range = [](const char* role, int n) {
    return n == 1 ? std::string(role) + "-0" : std::string(role) + "-0.." + role + "-" + std::to_string(n - 1);
  };
  std::string s = range("worker", workers.count);
  if (servers.count == 0) return s + " (no server)";
  if (placement == Placement::Colocated) return s + " (the " + std::to_string(servers.count) + " server shard(s) are co-located on worker hosts)";
  return s + " and " + range("server", servers.count);
}

std::string unknown_host_reason(const std::string& name, const PlatformSpec& p) {
  std::string reason = "unknown host '" + name + "'";
  // "worker-9" on 8 workers: the nearest name ("worker-0") would mislead; say the range instead.
  bool numbered = false;
  for (const char* role : {"worker-", "server-"}) {
    const std::string r = role;
    if (name.size() > r.size() && name.compare(0, r.size(), r) == 0 &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(r.size()), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
      numbered = true;
  }
  if (!numbered)
    if (auto near = nearest_key(name, p.host_names())) return reason + " (did you mean '" + *near + "'?)";
  return reason + "; hosts are " + p.host_ranges();
}

std::vector<std::string> PlatformSpec::host_names() const {
  std::vector<std::string> h;
  for (int i = 0; i < workers.count; ++i) h.push_back("worker-" + std::to_string(i));
  if (placement == Placement::Dedicated)
    for (int k = 0; k < servers.count; ++k) h.push_back("server-" + std::to_string(k));
  return h;
}

// ------------------------------------------------------------------------------------------
void plain_unit_warnings(const json& v, const JsonOrigin& origin, std::vector<std::string>& out) {
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) plain_unit_warnings(v[i], origin.index(i), out);
    return;
  }
  if (!v.is_object()) return;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const JsonOrigin o = origin.child(it.key());
    if (it->is_number()) {
      const double x = it->get<double>();
      std::string why;
      if (it.key() == "bandwidth" || ends_with(it.key(), "_bandwidth")) why = units::implausible_plain_bandwidth(x);
      else if (it.key() == "latency" || ends_with(it.key(), "_latency")) why = units::implausible_plain_latency(x);
      if (!why.empty()) out.push_back(InputError(o.file, o.path, why).what());
    } else {
      plain_unit_warnings(*it, o, out);
    }
  }
}

LinkSpec read_link(ObjectReader r, const LinkSpec& def) {
  LinkSpec l;
  l.bandwidth = r.bandwidth("bandwidth", def.bandwidth);
  l.latency = r.duration("latency", def.latency);
  r.finish();
  return l;
}

void read_topology(ObjectReader r, PlatformSpec& p) {
  auto& t = p.topology;
  const std::string kind = r.choice("kind", {"star", "racks", "fat-tree", "torus", "dragonfly", "explicit"}, "star");
  const LinkSpec fabric_default{p.workers.link.bandwidth, 0};
  if (kind == "star") {
    t.kind = TopologySpec::Kind::Star;
    if (r.has("backbone")) t.backbone = read_link(r.object("backbone"), LinkSpec{100e9 / 8, 1e-6});
  } else if (kind == "racks") {
    t.kind = TopologySpec::Kind::Racks;
    t.racks = static_cast<int>(positive_uint(r, "racks", std::nullopt, 100000));
    auto up = r.object("uplink");
    t.uplink_bandwidth = up.opt_bandwidth("bandwidth");
    t.uplink_latency = up.duration("latency", 0.0);
    up.finish();
    if (t.uplink_bandwidth && r.has("oversubscription"))
      r.fail("oversubscription", "give either 'oversubscription' or 'uplink.bandwidth', not both");
    if (!t.uplink_bandwidth) {
      t.oversubscription = r.number("oversubscription", 1.0);
      if (!(t.oversubscription > 0) || t.oversubscription > 1e6)
        r.fail("oversubscription", "must be in (0, 1e6] (uplink = Σ NIC bandwidths in the rack / ratio), got " + number_text(t.oversubscription));
    }
    if (r.has("spine")) t.spine = read_link(r.object("spine"), LinkSpec{100e9 / 8, 0});
  } else if (kind == "fat-tree") {
    t.kind = TopologySpec::Kind::FatTree;
    t.levels = positive_uint(r, "levels", std::nullopt, 16);
    t.down = uint_list(r, "down", t.levels, std::nullopt);
    t.up = uint_list(r, "up", t.levels, std::nullopt);
    t.link_count = uint_list(r, "link_count", t.levels, std::vector<int64_t>(t.levels, 1));
    t.fabric = read_link(r.object("link"), fabric_default);
  } else if (kind == "torus") {
    t.kind = TopologySpec::Kind::Torus;
    const auto d = r.integer_list("dims");
    if (d.empty() || d.size() > 8) r.fail("dims", "expected 1 to 8 dimensions, got " + std::to_string(d.size()));
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i] < 1 || d[i] > 100000) r.origin().child("dims").index(i).fail("must be in [1, 100000], got " + std::to_string(d[i]));
      t.dims.push_back(static_cast<unsigned long>(d[i]));
    }
    t.fabric = read_link(r.object("link"), fabric_default);
  } else if (kind == "dragonfly") {
    t.kind = TopologySpec::Kind::Dragonfly;
    std::tie(t.groups, t.group_links) = count_links(r, "groups");
    std::tie(t.chassis, t.chassis_links) = count_links(r, "chassis");
    std::tie(t.routers, t.router_links) = count_links(r, "routers");
    t.nodes = positive_uint(r, "nodes", std::nullopt, 100000);
    t.fabric = read_link(r.object("link"), fabric_default);
  } else {
    t.kind = TopologySpec::Kind::Explicit;
    std::set<std::string> names;
    for (const auto& h : p.host_names()) names.insert(h);
    if (auto c = r.child("routers")) {
      const json& v = *c->first;
      if (!v.is_array()) c->second.fail("expected a list of router names, got " + json_type_name(v));
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string() || v[i].get<std::string>().empty()) c->second.index(i).fail("expected a router name");
        const std::string n = v[i].get<std::string>();
        if (!names.insert(n).second) c->second.index(i).fail("duplicate name '" + n + "' (hosts and routers share one namespace)");
        t.router_names.push_back(n);
      }
    }
    auto links = r.child("links");
    if (!links) r.fail("links", "missing required key (a list of {\"name\", \"bandwidth\", \"latency\"})");
    if (!links->first->is_array() || links->first->empty())
      links->second.fail("expected a non-empty list of links, got " + json_type_name(*links->first));
    std::set<std::string> link_names;
    for (size_t i = 0; i < links->first->size(); ++i) {
      ObjectReader l((*links->first)[i], links->second.index(i));
      TopologySpec::Link link;
      link.name = l.string("name");
      if (link.name.empty()) l.fail("name", "must not be empty");
      if (!link_names.insert(link.name).second) l.fail("name", "duplicate link name '" + link.name + "'");
      link.spec.bandwidth = l.bandwidth("bandwidth");
      link.spec.latency = l.duration("latency", 0.0);
      const std::string sh = l.choice("sharing", {"shared", "split-duplex", "fatpipe"}, "shared");
      link.sharing = sh == "shared" ? TopologySpec::Link::Sharing::Shared
                     : sh == "fatpipe" ? TopologySpec::Link::Sharing::Fatpipe
                                       : TopologySpec::Link::Sharing::SplitDuplex;
      l.finish();
      t.links.push_back(link);
    }
    auto routes = r.child("routes");
    if (!routes) r.fail("routes", "missing required key (a list of {\"src\", \"dst\", \"links\"})");
    if (!routes->first->is_array() || routes->first->empty())
      routes->second.fail("expected a non-empty list of routes, got " + json_type_name(*routes->first));
    const std::vector<std::string> all(names.begin(), names.end());
    const std::vector<std::string> all_links(link_names.begin(), link_names.end());
    for (size_t i = 0; i < routes->first->size(); ++i) {
      ObjectReader rr((*routes->first)[i], routes->second.index(i));
      TopologySpec::Route route;
      for (const char* end : {"src", "dst"}) {
        const std::string n = rr.string(end);
        if (!names.count(n)) {
          std::string reason = "unknown host or router '" + n + "'";
          if (auto near = nearest_key(n, all)) reason += " (did you mean '" + *near + "'?)";
          rr.fail(end, reason);
        }
        (std::string(end) == "src" ? route.src : route.dst) = n;
      }
      if (route.src == route.dst) rr.fail("dst", "a route joins two different hosts or routers");
      auto lc = rr.child("links");
      if (!lc) rr.fail("links", "missing required key (the link names of this hop, in order)");
      if (!lc->first->is_array() || lc->first->empty()) lc->second.fail("expected a non-empty list of link names");
      for (size_t j = 0; j < lc->first->size(); ++j) {
        const json& v = (*lc->first)[j];
        if (!v.is_string()) lc->second.index(j).fail("expected a link name, got " + json_type_name(v));
        const std::string n = v.get<std::string>();
        if (!link_names.count(n)) {
          std::string reason = "unknown link '" + n + "'";
          if (auto near = nearest_key(n, all_links)) reason += " (did you mean '" + *near + "'?)";
          lc->second.index(j).fail(reason);
        }
        route.links.push_back(n);
      }
      route.symmetric = rr.boolean("symmetric", true);
      rr.finish();
      t.routes.push_back(route);
    }
  }
  r.finish();
}

void read_collective(ObjectReader& parent, PlatformSpec& p) {
  auto& c = p.collective;
  auto set_algo = [&](const std::string& a) {
    c.algorithm = a == "ring"           ? CollectiveSpec::Algorithm::Ring
                  : a == "hierarchical" ? CollectiveSpec::Algorithm::Hierarchical
                  : a == "tree"         ? CollectiveSpec::Algorithm::Tree
                                        : CollectiveSpec::Algorithm::RecursiveDoubling;
  };
  const std::vector<std::string> algos = {"ring", "hierarchical", "tree", "recursive-doubling"};
  const auto* raw = parent.raw().contains("collective") ? &parent.raw()["collective"] : nullptr;
  if (raw && raw->is_string()) {  // shorthand: "collective": "ring"
    set_algo(parent.choice("collective", algos));
    if (c.algorithm == CollectiveSpec::Algorithm::Hierarchical) {
      const bool has_racks = p.topology.kind != TopologySpec::Kind::Star && p.topology.kind != TopologySpec::Kind::Explicit;
      if (!has_racks)
        parent.fail("collective", std::string("hierarchical all-reduce on a ") + p.topology.name() +
                                      " topology needs a group size: {\"algorithm\": \"hierarchical\", \"group_size\": g}");
    }
    return;
  }
  auto r = parent.object("collective");
  set_algo(r.choice("algorithm", algos, "ring"));
  if (c.algorithm == CollectiveSpec::Algorithm::Hierarchical) {
    const bool has_racks = p.topology.kind != TopologySpec::Kind::Star && p.topology.kind != TopologySpec::Kind::Explicit;
    if (r.has("group_size") || !has_racks) {
      if (!r.has("group_size"))
        r.fail("group_size", std::string("hierarchical all-reduce on a ") + p.topology.name() +
                                 " topology needs 'group_size' (ranks per group; racks and switches group themselves)");
      const int64_t g = r.integer("group_size");
      if (g < 1 || g > p.workers.count)
        r.fail("group_size", "must be in [1, " + std::to_string(p.workers.count) + "] (the number of workers), got " + std::to_string(g));
      c.group_size = static_cast<int>(g);
    }
  }
  if (c.algorithm != CollectiveSpec::Algorithm::Hierarchical && r.has("group_size"))  // not "unknown key"
    r.fail("group_size", std::string("a key of the \"hierarchical\" algorithm, not of \"") + c.name() + "\"");
  c.aggregated = r.choice("transfers", {"step-by-step", "aggregated"}, "step-by-step") == "aggregated";
  if (c.aggregated && c.algorithm != CollectiveSpec::Algorithm::Ring)
    r.fail("transfers", std::string("\"aggregated\" applies to the ring; ") + c.name() + " runs step by step");
  r.finish();
}

void check_platform(const ObjectReader& r, PlatformSpec& p) {
  if (p.network == PlatformSpec::Network::Lv08 && p.changes_link_bandwidth()) {
    const JsonOrigin o = r.origin().child("stragglers");
    p.warnings.push_back(InputError(o.file, o.path,
                                    "a link's bandwidth changes during the run: lv08 runs without its cross-traffic (the 5 % "
                                    "reverse load) here, since SimGrid 3.32 mis-updates reverse flows on a bandwidth change "
                                    "(docs/platforms.md, \"Network models\")")
                             .what());
  }
  const auto& t = p.topology;
  const uint64_t hosts = static_cast<uint64_t>(p.workers.count) +
                         (p.placement == PlatformSpec::Placement::Dedicated ? static_cast<uint64_t>(p.servers.count) : 0);
  if (const uint64_t cap = t.capacity(); cap > 0 && hosts > cap)
    r.fail("topology", std::string("the ") + t.name() + " has " + std::to_string(cap) + " host slots but the platform needs " +
                           std::to_string(hosts) + " (" + std::to_string(p.workers.count) + " workers" +
                           (p.placement == PlatformSpec::Placement::Dedicated ? " + " + std::to_string(p.servers.count) + " dedicated server" + (p.servers.count == 1 ? "" : "s") : "") + ")");
  // SimGrid's DragonflyZone links group g to the other groups through router (blade) g of chassis 0
  // of each group, and routes into group g through router g of the source's chassis: with hosts in
  // more groups than a chassis has routers, a route to a higher group reads a link that does not
  // exist and SimGrid crashes (3.32, DragonflyZone::generate_links / get_local_route).
  if (t.kind == TopologySpec::Kind::Dragonfly) {
    const uint64_t per_group = uint64_t{t.chassis} * t.routers * t.nodes;
    const uint64_t used_groups = (hosts + per_group - 1) / per_group;
    if (used_groups > t.routers)
      r.origin().child("topology").child("routers").fail(
          "SimGrid's dragonfly links each group to group g through router g of a chassis: with hosts in " +
          std::to_string(used_groups) + " groups a chassis needs at least " + std::to_string(used_groups) +
          " routers (got " + std::to_string(t.routers) + "; or fewer groups in use: " + std::to_string(per_group) +
          " hosts per group)");
  }
  if (t.kind == TopologySpec::Kind::Racks && t.racks > p.workers.count)
    r.fail("topology", "more racks (" + std::to_string(t.racks) + ") than workers (" + std::to_string(p.workers.count) + ")");
  if (t.kind == TopologySpec::Kind::Explicit) {
    // Every host must reach every other host (SimGrid aborts on a missing route).
    std::map<std::string, std::vector<std::string>> adj;
    for (const auto& rt : t.routes) {
      adj[rt.src].push_back(rt.dst);
      if (rt.symmetric) adj[rt.dst].push_back(rt.src);
    }
    const auto names = p.host_names();
    for (const auto& from : names) {
      std::set<std::string> seen{from};
      std::vector<std::string> todo{from};
      while (!todo.empty()) {
        const std::string n = todo.back();
        todo.pop_back();
        for (const auto& m : adj[n])
          if (seen.insert(m).second) todo.push_back(m);
      }
      for (const auto& to : names)
        if (!seen.count(to))
          r.fail("topology.routes", "no route from " + from + " to " + to + " (every host must reach every other host)");
    }
  }
}

// ------------------------------------------------------------------------------------------
std::vector<std::string> platform_link_names(const PlatformSpec& p) {
  std::vector<std::string> out;
  for (const auto& h : p.host_names()) {
    out.push_back(h + "-nic");
    out.push_back(h + "-loopback");
  }
  const auto& t = p.topology;
  if (t.kind == TopologySpec::Kind::Star && t.backbone) out.push_back("backbone");
  if (t.kind == TopologySpec::Kind::Racks) {
    for (int r = 0; r < t.racks; ++r) out.push_back("rack-" + std::to_string(r) + "-uplink");
    if (t.spine) out.push_back("spine");
  }
  if (t.kind == TopologySpec::Kind::Explicit)
    for (const auto& l : t.links) out.push_back(l.name);
  return out;
}

bool glob_match(const std::string& pat, const std::string& s) {
  // Iterative '*' matching with backtracking to the last star.
  size_t i = 0, j = 0, star = std::string::npos, mark = 0;
  while (j < s.size()) {
    if (i < pat.size() && pat[i] == '*') {
      star = i++;
      mark = j;
    } else if (i < pat.size() && pat[i] == s[j]) {
      ++i;
      ++j;
    } else if (star != std::string::npos) {
      i = star + 1;
      j = ++mark;
    } else {
      return false;
    }
  }
  while (i < pat.size() && pat[i] == '*') ++i;
  return i == pat.size();
}

}  // namespace dtsim::sim
