#include "sim/platform_spec.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/io.hpp"
#include "common/units.hpp"

namespace dtsim::sim {

namespace {

std::string quote_list(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + ("'" + v[i] + "'");
  return s;
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string unknown_host(const std::string& name, const PlatformSpec& p) { return unknown_host_reason(name, p); }

// Rejects keys of another kind with a message naming the kind ("'p' does not apply to ...").
void only_keys(const ObjectReader& r, const std::vector<std::string>& allowed, const std::string& what) {
  for (auto it = r.raw().begin(); it != r.raw().end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      std::string reason = "'" + it.key() + "' does not apply to " + what;
      if (auto near = nearest_key(it.key(), allowed)) reason += " (did you mean '" + *near + "'?)";
      else reason += "; its keys are " + quote_list(allowed);
      r.fail(it.key(), reason);
    }
}

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

// A straggler's workers. An index beyond the last worker (a platform reused with fewer workers,
// `--set platform.workers.count=2` on a straggler of worker 3) is left out with a warning: the
// entry keeps its place in the list, so the other entries' random draws do not move.
std::vector<int> read_workers(ObjectReader& s, PlatformSpec& p) {
  std::vector<int> out;
  if (!s.has("workers")) {
    for (int i = 0; i < p.workers.count; ++i) out.push_back(i);
    s.accept("workers");
    return out;
  }
  const auto list = s.integer_list("workers");
  if (list.empty()) s.fail("workers", "must name at least one worker (omit it for all workers)");
  std::string beyond;
  for (int64_t w : list) {
    if (w < 0) s.fail("workers", "worker index " + std::to_string(w) + " is negative");
    if (w >= p.workers.count) beyond += (beyond.empty() ? "" : ", ") + std::to_string(w);
    else out.push_back(static_cast<int>(w));
  }
  if (!beyond.empty()) {
    const JsonOrigin o = s.origin().child("workers");
    p.warnings.push_back(InputError(o.file, o.path, "worker index " + beyond + " out of range [0, " + std::to_string(p.workers.count - 1) +
                                                        "] (" + std::to_string(p.workers.count) + " workers): ignored" +
                                                        (out.empty() ? "; this straggler slows no worker" : ""))
                             .what());
  }
  return out;
}

std::vector<std::string> read_link_patterns(ObjectReader& s, const PlatformSpec& p) {
  auto c = s.child("links");
  const json& v = *c->first;
  std::vector<std::string> pats;
  if (v.is_string()) pats.push_back(v.get<std::string>());
  else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) c->second.index(i).fail("expected a link name, got " + json_type_name(v[i]));
      pats.push_back(v[i].get<std::string>());
    }
  } else {
    c->second.fail("expected a link name or a list of link names, got " + json_type_name(v));
  }
  if (pats.empty()) c->second.fail("must name at least one link");
  const auto names = platform_link_names(p);
  for (size_t i = 0; i < pats.size(); ++i) {
    const bool any = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return glob_match(pats[i], n); });
    if (!any) {
      std::string reason = "no link matches '" + pats[i] + "'";
      if (auto near = nearest_key(pats[i], names)) reason += " (did you mean '" + *near + "'?)";
      else reason += "; links are named like 'worker-0-nic', 'server-0-nic', 'backbone', 'rack-0-uplink', 'spine'";
      (v.is_array() ? c->second.index(i) : c->second).fail(reason);
    }
  }
  return pats;
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
        r.fail("oversubscription", "must be in (0, 1e6] (uplink = Σ NIC bandwidths in the rack / ratio), got " + fmt(t.oversubscription));
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
  c.aggregated = r.choice("transfers", {"step-by-step", "aggregated"}, "step-by-step") == "aggregated";
  if (c.aggregated && c.algorithm != CollectiveSpec::Algorithm::Ring)
    r.fail("transfers", std::string("\"aggregated\" applies to the ring; ") + c.name() + " runs step by step");
  r.finish();
}

void read_stragglers(ObjectReader& parent, PlatformSpec& p) {
  auto st = parent.child("stragglers");
  if (!st) {
    parent.set_resolved("stragglers", json::array());
    return;
  }
  const auto& [arr, origin] = *st;
  if (!arr->is_array()) origin.fail("expected a list of stragglers, got " + json_type_name(*arr));
  const std::string& base = p.base_dir;
  json resolved = json::array();
  std::map<std::string, size_t> jitter_links;  // link -> entry with latency jitter
  for (size_t i = 0; i < arr->size(); ++i) {
    json res;
    ObjectReader s((*arr)[i], origin.index(i), &res);
    StragglerSpec spec;
    using K = StragglerSpec::Kind;
    if (s.has("links")) {
      if (s.has("trace")) spec.kind = K::LinkTrace;
      else if (s.has("latency_jitter")) spec.kind = K::LatencyJitter;
      else spec.kind = K::LinkWindow;
    } else if (s.has("trace")) {
      spec.kind = K::Trace;
    } else if (s.has("from_s") || s.has("to_s")) {
      spec.kind = K::Window;
    } else if (s.has("p") || s.has("distribution")) {
      spec.kind = K::Transient;
    } else {
      spec.kind = K::Persistent;
    }
    const std::string what = std::string("a ") + spec.kind_name() + " straggler";
    switch (spec.kind) {
      case K::Persistent:
        only_keys(s, {"workers", "slowdown"}, what + " (transient ones take 'p' or 'distribution', time windows 'from_s'/'to_s')");
        spec.workers = read_workers(s, p);
        spec.slowdown = s.number("slowdown");
        s.require_positive("slowdown", spec.slowdown);
        break;
      case K::Transient: {
        only_keys(s, {"workers", "p", "slowdown", "distribution"}, what);
        spec.workers = read_workers(s, p);
        spec.p = s.number("p", 1.0);
        if (!(spec.p > 0 && spec.p <= 1)) s.fail("p", "a probability in (0, 1], got " + fmt(spec.p));
        if (s.has("slowdown") == s.has("distribution"))
          s.fail(s.has("slowdown") ? "distribution" : "slowdown",
                 "a transient straggler takes either a fixed 'slowdown' or a 'distribution' of slowdown factors");
        if (s.has("slowdown")) {
          spec.slowdown = s.number("slowdown");
          s.require_positive("slowdown", spec.slowdown);
        } else {
          auto d = s.object("distribution");
          const std::string k = d.choice("kind", {"lognormal", "exponential", "pareto"});
          if (k == "lognormal") {
            spec.dist = StragglerSpec::Dist::Lognormal;
            spec.dist_a = d.number("mu", 0.0);
            spec.dist_b = d.number("sigma");
            d.require_range("sigma", spec.dist_b, 0, 10);
            d.require_range("mu", spec.dist_a, -10, 10);
          } else if (k == "exponential") {
            spec.dist = StragglerSpec::Dist::Exponential;
            spec.dist_a = d.number("mean");
            d.require_positive("mean", spec.dist_a);
          } else {
            spec.dist = StragglerSpec::Dist::Pareto;
            spec.dist_a = d.number("alpha");
            d.require_positive("alpha", spec.dist_a);
            spec.dist_b = d.number("xm", 1.0);
            d.require_positive("xm", spec.dist_b);
          }
          d.finish();
        }
        break;
      }
      case K::Window:
      case K::LinkWindow: {
        if (spec.kind == K::Window) {
          only_keys(s, {"workers", "from_s", "to_s", "slowdown"}, what);
          spec.workers = read_workers(s, p);
          spec.slowdown = s.number("slowdown");
          s.require_positive("slowdown", spec.slowdown);
        } else {
          only_keys(s, {"links", "from_s", "to_s", "bandwidth_factor"},
                    what + " (bandwidth traces take 'trace', jitter 'latency_jitter')");
          spec.links = read_link_patterns(s, p);
          spec.bandwidth_factor = s.number("bandwidth_factor");
          if (!(spec.bandwidth_factor > 0) || spec.bandwidth_factor > 1e6)
            s.fail("bandwidth_factor", "must be in (0, 1e6] (the link's bandwidth is multiplied by it), got " + fmt(spec.bandwidth_factor));
        }
        spec.from_s = s.duration("from_s", 0.0);
        if (s.has("to_s")) {
          spec.to_s = s.duration("to_s");
          if (!(spec.to_s > spec.from_s)) s.fail("to_s", "must be after from_s (" + fmt(spec.from_s) + " s), got " + fmt(spec.to_s));
        } else {
          s.accept("to_s");
        }
        break;
      }
      case K::Trace:
      case K::LinkTrace: {
        if (spec.kind == K::Trace) {
          only_keys(s, {"workers", "trace"}, what);
          spec.workers = read_workers(s, p);
        } else {
          only_keys(s, {"links", "trace"}, what);
          spec.links = read_link_patterns(s, p);
        }
        spec.trace_file = io::resolve_relative(base, s.string("trace"));
        s.set_resolved("trace", spec.trace_file);
        if (!io::file_exists(spec.trace_file)) s.fail("trace", "trace file '" + spec.trace_file + "' does not exist");
        spec.trace = read_trace_file(spec.trace_file, s.origin().child("trace"));
        break;
      }
      case K::LatencyJitter: {
        only_keys(s, {"links", "latency_jitter"}, what);
        spec.links = read_link_patterns(s, p);
        auto j = s.object("latency_jitter", true);
        const std::string k = j.choice("kind", {"uniform", "exponential"}, "uniform");
        spec.jitter = k == "uniform" ? StragglerSpec::Jitter::Uniform : StragglerSpec::Jitter::Exponential;
        spec.jitter_scale = k == "uniform" ? j.duration("max") : j.duration("mean");
        if (!(spec.jitter_scale > 0)) j.fail(k == "uniform" ? "max" : "mean", "must be positive");
        spec.every_s = j.duration("every_s");
        if (!(spec.every_s >= 1e-6)) j.fail("every_s", "must be at least 1us (how often the latency is redrawn)");
        j.finish();
        for (const auto& n : platform_link_names(p))
          for (const auto& pat : spec.links)
            if (glob_match(pat, n)) {
              auto [it, fresh] = jitter_links.emplace(n, i);
              if (!fresh && it->second != i)
                s.fail("links", "link '" + n + "' already has latency jitter (entry " + std::to_string(it->second) + ")");
            }
        break;
      }
    }
    s.finish();
    p.stragglers.push_back(spec);
    resolved.push_back(res);
  }
  parent.set_resolved("stragglers", resolved);
}

void read_failures(ObjectReader& parent, PlatformSpec& p) {
  auto fc = parent.child("failures");
  if (!fc) {
    parent.set_resolved("failures", json::array());
    return;
  }
  const auto& [arr, origin] = *fc;
  if (!arr->is_array()) origin.fail("expected a list of failures, got " + json_type_name(*arr));
  const auto hosts = p.host_names();
  std::set<std::string> host_set(hosts.begin(), hosts.end());
  json resolved = json::array();
  std::map<std::string, std::vector<std::pair<double, double>>> outages;  // scheduled, per host
  std::map<std::string, size_t> random_host;                              // host -> random entry
  for (size_t i = 0; i < arr->size(); ++i) {
    json res;
    ObjectReader f((*arr)[i], origin.index(i), &res);
    FailureSpec spec;
    if (f.has("mtbf_s")) {
      only_keys(f, {"hosts", "mtbf_s", "mttr_s", "detect_s"}, "a random failure (scheduled ones take 'host', 'at_s', 'recover_s')");
      spec.random = true;
      auto c = f.child("hosts");
      if (!c) f.fail("hosts", "missing required key (host names or '*' patterns, e.g. [\"worker-*\"])");
      const json& v = *c->first;
      std::vector<std::string> pats;
      if (v.is_string()) pats.push_back(v.get<std::string>());
      else if (v.is_array()) {
        for (size_t k = 0; k < v.size(); ++k) {
          if (!v[k].is_string()) c->second.index(k).fail("expected a host name, got " + json_type_name(v[k]));
          pats.push_back(v[k].get<std::string>());
        }
      } else {
        c->second.fail("expected a host name or a list of host names, got " + json_type_name(v));
      }
      for (size_t k = 0; k < pats.size(); ++k) {
        size_t before = spec.hosts.size();
        for (const auto& h : hosts)
          if (glob_match(pats[k], h) && std::find(spec.hosts.begin(), spec.hosts.end(), h) == spec.hosts.end())
            spec.hosts.push_back(h);
        if (spec.hosts.size() == before && !std::any_of(hosts.begin(), hosts.end(), [&](auto& h) { return glob_match(pats[k], h); }))
          (v.is_array() ? c->second.index(k) : c->second).fail(unknown_host(pats[k], p));
      }
      if (spec.hosts.empty()) c->second.fail("must name at least one host");
      for (const auto& h : spec.hosts) {  // one failure process per host
        if (outages.count(h)) c->second.fail(h + " already has a scheduled failure; a host takes either scheduled or random failures");
        if (auto it = random_host.find(h); it != random_host.end())
          c->second.fail(h + " already has random failures (entry " + std::to_string(it->second) + ")");
        random_host[h] = i;
      }
      spec.mtbf_s = f.duration("mtbf_s");
      if (!(spec.mtbf_s >= 1e-3)) f.fail("mtbf_s", "must be at least 1ms");
      if (auto m = f.opt_duration("mttr_s")) {
        if (!(*m >= 1e-6)) f.fail("mttr_s", "must be positive (omit it: failed hosts never come back)");
        spec.mttr_s = *m;
      }
    } else {
      only_keys(f, {"host", "at_s", "recover_s", "detect_s"}, "a scheduled failure (random ones take 'hosts', 'mtbf_s', 'mttr_s')");
      const std::string h = f.string("host");
      if (!host_set.count(h)) f.fail("host", unknown_host(h, p));
      spec.hosts = {h};
      spec.at_s = f.duration("at_s");
      if (f.has("recover_s")) {
        spec.recover_s = f.duration("recover_s");
        if (!(spec.recover_s > spec.at_s)) f.fail("recover_s", "must be after at_s (" + fmt(spec.at_s) + " s), got " + fmt(spec.recover_s));
      } else {
        f.accept("recover_s");
      }
      if (random_host.count(h)) f.fail("host", h + " already has random failures; a host takes either scheduled or random failures");
      for (const auto& [a, b] : outages[h])
        if (spec.at_s < b && a < spec.recover_s)
          f.fail("at_s", "overlaps an earlier failure of " + h + " (" + fmt(a) + " s to " + (std::isinf(b) ? "never" : fmt(b) + " s") + ")");
      outages[h].emplace_back(spec.at_s, spec.recover_s);
    }
    spec.detect_s = f.duration("detect_s", 1.0);
    f.finish();
    p.failures.push_back(spec);
    resolved.push_back(res);
  }
  parent.set_resolved("failures", resolved);
}

void check_platform(const ObjectReader& r, PlatformSpec& p) {
  const auto& t = p.topology;
  const uint64_t hosts = static_cast<uint64_t>(p.workers.count) +
                         (p.placement == PlatformSpec::Placement::Dedicated ? static_cast<uint64_t>(p.servers.count) : 0);
  if (const uint64_t cap = t.capacity(); cap > 0 && hosts > cap)
    r.fail("topology", std::string("the ") + t.name() + " has " + std::to_string(cap) + " host slots but the platform needs " +
                           std::to_string(hosts) + " (" + std::to_string(p.workers.count) + " workers" +
                           (p.placement == PlatformSpec::Placement::Dedicated ? " + " + std::to_string(p.servers.count) + " dedicated servers" : "") + ")");
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

std::vector<ProfilePoint> read_trace_file(const std::string& path, const JsonOrigin& origin) {
  std::string text;
  try {
    text = io::read_file(path);
  } catch (const InputError& e) {
    origin.fail(e.reason());
  }
  std::vector<ProfilePoint> pts;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    double t = 0, v = 0;
    if (!(ls >> t)) {
      std::string rest;
      ls.clear();
      if (ls >> rest) origin.fail(path + ":" + std::to_string(n) + ": expected 'time factor', got '" + line + "'");
      continue;  // blank or comment
    }
    std::string extra;
    if (!(ls >> v) || (ls >> extra))
      origin.fail(path + ":" + std::to_string(n) + ": expected 'time factor', got '" + line + "'");
    if (!std::isfinite(t) || t < 0) origin.fail(path + ":" + std::to_string(n) + ": time must be >= 0");
    if (!pts.empty() && t <= pts.back().time)
      origin.fail(path + ":" + std::to_string(n) + ": times must increase (" + fmt(t) + " after " + fmt(pts.back().time) + ")");
    if (!std::isfinite(v) || v <= 0 || v > 1e6) origin.fail(path + ":" + std::to_string(n) + ": factor must be in (0, 1e6], got " + fmt(v));
    pts.push_back({t, v});
  }
  if (pts.empty()) origin.fail(path + ": no 'time factor' lines");
  return pts;
}

}  // namespace dtsim::sim
