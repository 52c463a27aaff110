#include "sim/links.hpp"

#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cstdio>

#include "sim/stragglers.hpp"

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;

namespace {
// "worker-0-nic_UP" -> "worker-0-nic": the name a straggler entry uses for both directions.
std::string spec_name(const std::string& link) {
  for (const char* suffix : {"_UP", "_DOWN"}) {
    const std::string s = suffix;
    if (link.size() > s.size() && link.compare(link.size() - s.size(), s.size(), s) == 0) return link.substr(0, link.size() - s.size());
  }
  return link;
}
}  // namespace

LinkModel::LinkModel(const PlatformSpec& p, uint64_t seed) : p_(p), seed_(seed) {
  for (const auto& s : p.stragglers) any_jitter_ |= s.kind == StragglerSpec::Kind::LatencyJitter;
  std::vector<sg4::Link*> links = sg4::Engine::get_instance()->get_all_links();
  std::sort(links.begin(), links.end(), [](auto* a, auto* b) { return a->get_name() < b->get_name(); });
  for (auto* l : links) {
    if (l->get_name().rfind("__", 0) == 0) continue;  // SimGrid's own "__loopback__", never on our routes
    Acc a;
    a.row.name = l->get_name();
    a.row.bandwidth = l->get_bandwidth();
    a.row.latency = l->get_latency();
    index_[a.row.name] = acc_.size();
    acc_.push_back(std::move(a));
  }
}

const LinkModel::Route& LinkModel::route(const sg4::Host* src, const sg4::Host* dst) {
  auto key = std::make_pair(src, dst);
  auto it = routes_.find(key);
  if (it != routes_.end()) return it->second;
  Route r;
  std::vector<sg4::Link*> links;
  double lat = 0;
  src->route_to(dst, links, &lat);
  for (auto* l : links) {
    auto idx = index_.find(l->get_name());
    if (idx != index_.end()) r.links.push_back(idx->second);
    if (any_jitter_) {
      const std::string name = spec_name(l->get_name());
      if (const StragglerSpec* j = link_jitter(p_, name)) r.jitter.emplace_back(j, name);
    }
  }
  return routes_.emplace(key, std::move(r)).first->second;
}

double LinkModel::jitter(const sg4::Host* src, const sg4::Host* dst, double t) {
  if (!any_jitter_) return 0;
  double d = 0;
  for (const auto& [spec, name] : route(src, dst).jitter) d += jitter_at(*spec, seed_, name, t);
  return d;
}

void LinkModel::record(const sg4::Host* src, const sg4::Host* dst, double bytes, double start, double end, int transfers) {
  if (!(bytes > 0)) return;
  for (size_t i : route(src, dst).links) {
    Acc& a = acc_[i];
    a.row.bytes += bytes;
    a.row.transfers += static_cast<uint64_t>(transfers);
    if (!(end > start)) continue;
    // Merge [start, end) into the disjoint intervals.
    double s = start, e = end;
    auto it = a.busy.upper_bound(s);
    if (it != a.busy.begin()) {
      auto prev = std::prev(it);
      if (prev->second >= s) {
        s = prev->first;
        e = std::max(e, prev->second);
        it = a.busy.erase(prev);
      }
    }
    while (it != a.busy.end() && it->first <= e) {
      e = std::max(e, it->second);
      it = a.busy.erase(it);
    }
    a.busy.emplace(s, e);
  }
}

std::vector<LinkRow> LinkModel::rows(double T) const {
  std::vector<LinkRow> out;
  for (const auto& a : acc_) {
    LinkRow r = a.row;
    r.busy_s = 0;
    for (const auto& [s, e] : a.busy) r.busy_s += std::min(e, T) - std::min(s, T);
    r.utilisation = T > 0 && r.bandwidth > 0 ? r.bytes / (r.bandwidth * T) : 0;
    out.push_back(std::move(r));
  }
  return out;
}

const LinkRow* busiest_link(const std::vector<LinkRow>& rows) {
  const LinkRow* best = nullptr;
  for (const auto& r : rows) {
    if (!(r.bytes > 0)) continue;
    if (!best || r.utilisation > best->utilisation || (r.utilisation == best->utilisation && r.bytes > best->bytes)) best = &r;
  }
  return best;
}

std::string links_csv(const std::vector<LinkRow>& rows) {
  std::string out = "link,bandwidth_Bps,latency_s,bytes,transfers,busy_s,utilisation\n";
  char buf[512];
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%s,%.17g,%.17g,%.17g,%llu,%.17g,%.17g\n", r.name.c_str(), r.bandwidth, r.latency, r.bytes,
                  static_cast<unsigned long long>(r.transfers), r.busy_s, r.utilisation);
    out += buf;
  }
  return out;
}

}  // namespace dtsim::sim
