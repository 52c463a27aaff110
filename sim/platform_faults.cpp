#include "sim/platform_spec.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "common/io.hpp"

// What goes wrong on a platform: stragglers (persistent, transient, time windows, traces), link
// degradation and latency jitter, worker and server failures (docs/platforms.md). The rest of the
// platform section is read in sim/platform_spec.cpp.
namespace dtsim::sim {

namespace {

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

// A name or a list of names (of links or hosts, '*' patterns allowed) at `c`.
std::vector<std::string> name_list(const std::pair<const json*, JsonOrigin>& c, const std::string& what) {
  const json& v = *c.first;
  std::vector<std::string> out;
  if (v.is_string()) out.push_back(v.get<std::string>());
  else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) c.second.index(i).fail("expected a " + what + " name, got " + json_type_name(v[i]));
      out.push_back(v[i].get<std::string>());
    }
  } else {
    c.second.fail("expected a " + what + " name or a list of " + what + " names, got " + json_type_name(v));
  }
  return out;
}

// The first name of each form among `names` (digits stand for any number): 'worker-0-nic',
// 'worker-0-loopback', 'backbone', ... — only links this platform has.
std::string link_name_examples(const std::vector<std::string>& names) {
  std::set<std::string> forms;
  std::string out;
  for (const auto& n : names) {
    std::string form;
    for (char ch : n)
      if (!(std::isdigit(static_cast<unsigned char>(ch)) && !form.empty() && form.back() == '#'))
        form += std::isdigit(static_cast<unsigned char>(ch)) ? '#' : ch;
    if (!forms.insert(form).second) continue;
    if (forms.size() > 6) return out + ", ... (" + std::to_string(names.size()) + " links)";
    out += (out.empty() ? "'" : ", '") + n + "'";
  }
  return out;
}

std::vector<std::string> read_link_patterns(ObjectReader& s, const PlatformSpec& p) {
  auto c = s.child("links");
  const json& v = *c->first;
  const std::vector<std::string> pats = name_list(*c, "link");
  if (pats.empty()) c->second.fail("must name at least one link");
  const auto names = platform_link_names(p);
  for (size_t i = 0; i < pats.size(); ++i) {
    const bool any = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return glob_match(pats[i], n); });
    if (!any) {
      std::string reason = "no link matches '" + pats[i] + "'";
      if (auto near = nearest_key(pats[i], names)) reason += " (did you mean '" + *near + "'?)";
      else reason += "; this platform's links are named like " + link_name_examples(names);
      (v.is_array() ? c->second.index(i) : c->second).fail(reason);
    }
  }
  return pats;
}

}  // namespace

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
        s.only_keys({"workers", "slowdown"}, what + " (transient ones take 'p' or 'distribution', time windows 'from_s'/'to_s')");
        spec.workers = read_workers(s, p);
        spec.slowdown = s.number("slowdown");
        s.require_positive("slowdown", spec.slowdown);
        break;
      case K::Transient: {
        s.only_keys({"workers", "p", "slowdown", "distribution"}, what);
        spec.workers = read_workers(s, p);
        spec.p = s.number("p", 1.0);
        if (!(spec.p > 0 && spec.p <= 1)) s.fail("p", "a probability in (0, 1], got " + number_text(spec.p));
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
          s.only_keys({"workers", "from_s", "to_s", "slowdown"}, what);
          spec.workers = read_workers(s, p);
          spec.slowdown = s.number("slowdown");
          s.require_positive("slowdown", spec.slowdown);
        } else {
          s.only_keys({"links", "from_s", "to_s", "bandwidth_factor"},
                    what + " (bandwidth traces take 'trace', jitter 'latency_jitter')");
          spec.links = read_link_patterns(s, p);
          spec.bandwidth_factor = s.number("bandwidth_factor");
          if (!(spec.bandwidth_factor > 0) || spec.bandwidth_factor > 1e6)
            s.fail("bandwidth_factor", "must be in (0, 1e6] (the link's bandwidth is multiplied by it), got " + number_text(spec.bandwidth_factor));
        }
        spec.from_s = s.duration("from_s", 0.0);
        if (s.has("to_s")) {
          spec.to_s = s.duration("to_s");
          if (!(spec.to_s > spec.from_s)) s.fail("to_s", "must be after from_s (" + number_text(spec.from_s) + " s), got " + number_text(spec.to_s));
        } else {
          s.accept("to_s");
        }
        break;
      }
      case K::Trace:
      case K::LinkTrace: {
        if (spec.kind == K::Trace) {
          s.only_keys({"workers", "trace"}, what);
          spec.workers = read_workers(s, p);
        } else {
          s.only_keys({"links", "trace"}, what);
          spec.links = read_link_patterns(s, p);
        }
        spec.trace_file = io::resolve_relative(base, s.string("trace"));
        s.set_resolved("trace", spec.trace_file);
        if (!io::file_exists(spec.trace_file)) s.fail("trace", "trace file '" + spec.trace_file + "' does not exist");
        spec.trace = read_trace_file(spec.trace_file, s.origin().child("trace"));
        break;
      }
      case K::LatencyJitter: {
        s.only_keys({"links", "latency_jitter"}, what);
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
      f.only_keys({"hosts", "mtbf_s", "mttr_s", "detect_s"}, "a random failure (scheduled ones take 'host', 'at_s', 'recover_s')");
      spec.random = true;
      auto c = f.child("hosts");
      if (!c) f.fail("hosts", "missing required key (host names or '*' patterns, e.g. [\"worker-*\"])");
      const json& v = *c->first;
      const std::vector<std::string> pats = name_list(*c, "host");
      for (size_t k = 0; k < pats.size(); ++k) {
        size_t before = spec.hosts.size();
        for (const auto& h : hosts)
          if (glob_match(pats[k], h) && std::find(spec.hosts.begin(), spec.hosts.end(), h) == spec.hosts.end())
            spec.hosts.push_back(h);
        if (spec.hosts.size() == before && !std::any_of(hosts.begin(), hosts.end(), [&](auto& h) { return glob_match(pats[k], h); }))
          (v.is_array() ? c->second.index(k) : c->second).fail(unknown_host_reason(pats[k], p));
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
      f.only_keys({"host", "at_s", "recover_s", "detect_s"}, "a scheduled failure (random ones take 'hosts', 'mtbf_s', 'mttr_s')");
      const std::string h = f.string("host");
      if (!host_set.count(h)) f.fail("host", unknown_host_reason(h, p));
      spec.hosts = {h};
      spec.at_s = f.duration("at_s");
      if (f.has("recover_s")) {
        spec.recover_s = f.duration("recover_s");
        if (!(spec.recover_s > spec.at_s)) f.fail("recover_s", "must be after at_s (" + number_text(spec.at_s) + " s), got " + number_text(spec.recover_s));
      } else {
        f.accept("recover_s");
      }
      if (random_host.count(h)) f.fail("host", h + " already has random failures; a host takes either scheduled or random failures");
      for (const auto& [a, b] : outages[h])
        if (spec.at_s < b && a < spec.recover_s)
          f.fail("at_s", "overlaps an earlier failure of " + h + " (" + number_text(a) + " s to " + (std::isinf(b) ? "never" : number_text(b) + " s") + ")");
      outages[h].emplace_back(spec.at_s, spec.recover_s);
    }
    spec.detect_s = f.duration("detect_s", 1.0);
    f.finish();
    p.failures.push_back(spec);
    resolved.push_back(res);
  }
  parent.set_resolved("failures", resolved);
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
      if (ls >> rest) origin.fail(path + ":" + std::to_string(n) + ": expected 'time factor', got '" + printable_excerpt(line) + "'");
      continue;  // blank or comment
    }
    std::string extra;
    if (!(ls >> v) || (ls >> extra))
      origin.fail(path + ":" + std::to_string(n) + ": expected 'time factor', got '" + printable_excerpt(line) + "'");
    if (!std::isfinite(t) || t < 0) origin.fail(path + ":" + std::to_string(n) + ": time must be >= 0");
    if (!pts.empty() && t <= pts.back().time)
      origin.fail(path + ":" + std::to_string(n) + ": times must increase (" + number_text(t) + " after " + number_text(pts.back().time) + ")");
    if (!std::isfinite(v) || v <= 0 || v > 1e6) origin.fail(path + ":" + std::to_string(n) + ": factor must be in (0, 1e6], got " + number_text(v));
    pts.push_back({t, v});
  }
  if (pts.empty()) origin.fail(path + ": no 'time factor' lines");
  return pts;
}

}  // namespace dtsim::sim
