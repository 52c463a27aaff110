#include "sim/grouping.hpp"

#include <algorithm>

#include "algorithms/api.hpp"

namespace dtsim::sim {

namespace {

bool same_group(const HostGroupSpec& a, const HostGroupSpec& b) {
  return a.speed == b.speed && a.link.bandwidth == b.link.bandwidth && a.link.latency == b.link.latency &&
         a.device == b.device && a.memory_bandwidth == b.memory_bandwidth && a.overlap_slowdown == b.overlap_slowdown;
}

// The links grouped_experiment scales: every shard's NIC (both directions) and the backbone.
bool shared_link(const std::string& name) {
  return name == "backbone" || (name.rfind("server-", 0) == 0 && name.find("-nic") != std::string::npos);
}

const std::string kRepresentative = "worker-0";

}  // namespace

std::string grouping_unused(const Experiment& x, const algo::Algorithm& a) {
  const PlatformSpec& p = x.platform;
  if (p.workers.count < 2) return "there is one worker";
  if (x.compute.real) return "with real compute every worker computes its own minibatches";
  if (!a.interchangeable_workers())
    return "algorithm '" + x.algorithm + "' does not treat its workers alike (ssgd with comm \"ps\" does)";
  if (p.topology.kind != TopologySpec::Kind::Star)
    return std::string("topology '") + p.topology.name() + "' does not share its links alike among the workers (a star does)";
  if (p.placement == PlatformSpec::Placement::Colocated) return "co-located shards share some workers' hosts";
  for (const auto& g : p.worker_groups)
    if (!same_group(g, p.worker_groups.front())) return "the worker groups differ";
  if (!p.stragglers.empty()) return "stragglers make some workers or links differ";
  if (!p.failures.empty()) return "failures make some workers differ";
  if (x.training.checkpoint_every_samples > 0) return "a checkpoint saves every worker's state";
  return "";
}

Experiment grouped_experiment(const Experiment& x) {
  Experiment g = x;
  PlatformSpec& p = g.platform;
  const double N = p.workers.count;
  p.group_identical = false;
  p.workers.count = 1;
  p.worker_groups.resize(1);
  p.worker_groups.front().count = 1;
  p.servers.link.bandwidth /= N;
  if (p.topology.backbone) p.topology.backbone->bandwidth /= N;
  return g;
}

void expand_grouped(RunResult& r, const Experiment& x) {
  const int N = x.platform.workers.count;
  const double n = N, T = r.simulated_time_s;

  const WorkerSummary one = r.per_worker.at(0);
  r.per_worker.assign(static_cast<size_t>(N), one);
  for (int i = 0; i < N; ++i) r.per_worker[static_cast<size_t>(i)].host = "worker-" + std::to_string(i);

  std::vector<LinkRow> rows;
  rows.reserve(r.links.size() + 3 * static_cast<size_t>(N));
  const std::string prefix = kRepresentative + "-";
  for (const LinkRow& row : r.links) {
    if (row.name.rfind(prefix, 0) == 0) {  // the representative's NIC and loopback: every worker's
      for (int i = 0; i < N; ++i) {
        LinkRow c = row;
        c.name = "worker-" + std::to_string(i) + row.name.substr(kRepresentative.size());
        rows.push_back(std::move(c));
      }
    } else if (shared_link(row.name)) {  // carried N workers' flows at N times the simulated bandwidth
      LinkRow c = row;
      c.bandwidth *= n;
      c.bytes *= n;
      c.transfers *= static_cast<uint64_t>(N);
      c.utilisation = T > 0 && c.bandwidth > 0 ? c.bytes / (c.bandwidth * T) : 0;  // as LinkModel::rows
      rows.push_back(std::move(c));  // the busy time is unchanged
    } else {
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end(), [](const LinkRow& a, const LinkRow& b) { return a.name < b.name; });
  r.links = std::move(rows);

  // The trace: host 0 is the representative, hosts 1..K the shards. Its spans become every
  // worker's; a shard's span with the representative as peer becomes one per worker. Flow ids stay
  // unique: copy i of flow f is (f-1)·N + i + 1.
  Tracer& t = r.trace;
  std::vector<std::string> hosts;
  for (int i = 0; i < N; ++i) hosts.push_back("worker-" + std::to_string(i));
  for (size_t h = 1; h < t.hosts.size(); ++h) hosts.push_back(t.hosts[h]);
  auto host_of = [N](int h, int i) { return h == 0 ? i : h < 0 ? h : h + N - 1; };
  auto flow_of = [N](uint64_t f, int i) {
    return f == 0 ? 0 : (f - 1) * static_cast<uint64_t>(N) + static_cast<uint64_t>(i) + 1;
  };
  std::vector<Span> spans;
  for (const Span& s : t.spans) {
    const bool copies = s.host == 0 || (s.peer == 0 && (s.kind == SpanKind::Send || s.kind == SpanKind::Recv));
    for (int i = 0; i < (copies ? N : 1); ++i) {
      Span c = s;
      c.host = host_of(s.host, i);
      if (s.kind == SpanKind::Send || s.kind == SpanKind::Recv) c.peer = host_of(s.peer, i);
      c.flow = flow_of(s.flow, i);
      spans.push_back(c);
    }
  }
  t.hosts = std::move(hosts);
  t.spans = std::move(spans);
}

}  // namespace dtsim::sim
