#include "sim/trace.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>
#include <string>
#include <utility>

#include "algorithms/api.hpp"

namespace dtsim::sim {

namespace {
constexpr int kKinds = 5;  // SpanKind values

const char* kind_name(SpanKind k) {
  switch (k) {
    case SpanKind::Compute: return "compute";
    case SpanKind::Send: return "send";
    case SpanKind::Recv: return "recv";
    case SpanKind::Wait: return "wait";
    case SpanKind::Update: return "update";
  }
  return "?";
}

// Track order within a host: compute, update, send, recv, wait.
int kind_rank(SpanKind k) {
  switch (k) {
    case SpanKind::Compute: return 0;
    case SpanKind::Update: return 1;
    case SpanKind::Send: return 2;
    case SpanKind::Recv: return 3;
    case SpanKind::Wait: return 4;
  }
  return 5;
}

// What a transfer carried, for its slice and its flow arrow. Layer-wise all-reduces label their
// parts: tag 1..999 a DDP bucket (tag - 1), 1000 * c + g + 1 Horovod's fused buffer g of cycle c.
std::string what(const Span& s) {
  if (s.transfer == Transfer::Collective) {
    if (s.tag <= 0) return "allreduce";
    if (s.tag < 1000) return "allreduce bucket " + std::to_string(s.tag - 1);
    return "allreduce cycle " + std::to_string(s.tag / 1000) + " buffer " + std::to_string(s.tag % 1000 - 1);
  }
  if (s.transfer != Transfer::Message) return "transfer";
  if (s.tag == -2) return "negotiation";  // Horovod's request / response (sim/worker_horovod.cpp)
  switch (s.tag) {
    case algo::kGradient: return "gradient";
    case algo::kParams: return "params";
    case algo::kDone: return "done";
    case algo::kPullRequest: return "pull request";
    case algo::kModel: return "model";
  }
  return "tag " + std::to_string(s.tag);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

int tid_of(SpanKind k, int lane) { return lane * 8 + static_cast<int>(k); }

// A point strictly inside [start, end] (µs), so that a flow event binds to its slice.
double inside(double start_us, double end_us, bool at_end) {
  const double eps = std::min(0.001, (end_us - start_us) / 2);
  return at_end ? end_us - eps : start_us + eps;
}
}  // namespace

std::string Tracer::chrome_json() const {
  // ---- lanes: overlapping spans of one kind on one host go to separate tracks
  std::vector<int> lane(spans.size(), 0);
  std::vector<int> lanes_used(hosts.size() * kKinds, 1);
  {
    std::vector<std::vector<size_t>> groups(hosts.size() * kKinds);
    for (size_t i = 0; i < spans.size(); ++i) {
      const auto& s = spans[i];
      if (s.host < 0 || static_cast<size_t>(s.host) >= hosts.size()) continue;
      groups[static_cast<size_t>(s.host) * kKinds + static_cast<size_t>(s.kind)].push_back(i);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      auto& idx = groups[g];
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return spans[a].start != spans[b].start ? spans[a].start < spans[b].start : spans[a].end > spans[b].end;
      });
      using Busy = std::pair<double, int>;  // (end, lane)
      std::priority_queue<Busy, std::vector<Busy>, std::greater<>> busy;
      std::priority_queue<int, std::vector<int>, std::greater<>> free;
      int next = 0;
      for (size_t i : idx) {
        while (!busy.empty() && busy.top().first <= spans[i].start) {
          free.push(busy.top().second);
          busy.pop();
        }
        int l;
        if (!free.empty()) {
          l = free.top();
          free.pop();
        } else {
          l = next++;
        }
        lane[i] = l;
        busy.push({spans[i].end, l});
      }
      lanes_used[g] = std::max(1, next);
    }
  }

  std::string out;
  out.reserve(256 + spans.size() * 330 + hosts.size() * 700);
  out += "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":\"simulated\",\"time_unit\":\"us\"},\"traceEvents\":[\n";
  char buf[640];
  bool first = true;
  auto emit = [&](const char* s) {
    if (!first) out += ",\n";
    first = false;
    out += s;
  };

  // ---- metadata: processes (hosts, then the network) and their tracks
  for (size_t h = 0; h < hosts.size(); ++h) {
    const std::string name = json_escape(hosts[h]);
    std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%zu,\"args\":{\"name\":\"%s\"}}", h,
                  name.c_str());
    emit(buf);
    std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":%zu,\"args\":{\"sort_index\":%zu}}",
                  h, h);
    emit(buf);
    for (int k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<SpanKind>(k);
      for (int l = 0; l < lanes_used[h * kKinds + static_cast<size_t>(k)]; ++l) {
        const std::string tname = l == 0 ? kind_name(kind) : std::string(kind_name(kind)) + " " + std::to_string(l + 1);
        std::snprintf(buf, sizeof buf,
                      "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%zu,\"tid\":%d,\"args\":{\"name\":\"%s\"}}", h,
                      tid_of(kind, l), tname.c_str());
        emit(buf);
        std::snprintf(buf, sizeof buf,
                      "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%zu,\"tid\":%d,\"args\":{\"sort_index\":%d}}",
                      h, tid_of(kind, l), kind_rank(kind) * 10000 + l);
        emit(buf);
      }
    }
  }
  const size_t net = hosts.size();
  std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%zu,\"args\":{\"name\":\"network\"}}", net);
  emit(buf);
  std::snprintf(buf, sizeof buf, "{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":%zu,\"args\":{\"sort_index\":-1}}",
                net);
  emit(buf);

  // ---- slices and flow arrows
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (s.host < 0 || static_cast<size_t>(s.host) >= hosts.size()) continue;
    const double ts = s.start * 1e6, te = s.end * 1e6, dur = te - ts;
    const int tid = tid_of(s.kind, lane[i]);
    if (s.kind == SpanKind::Send || s.kind == SpanKind::Recv) {
      const std::string w = what(s);
      const char* cat = s.transfer == Transfer::Collective ? "collective" : s.transfer == Transfer::Message ? "ps" : "comm";
      const std::string peer = s.peer >= 0 && static_cast<size_t>(s.peer) < hosts.size() ? json_escape(hosts[static_cast<size_t>(s.peer)]) : "";
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f,"
                    "\"args\":{\"what\":\"%s\",\"bytes\":%.0f,\"%s\":\"%s\",\"step\":%lld}}",
                    kind_name(s.kind), cat, s.host, tid, ts, dur, w.c_str(), s.bytes,
                    s.kind == SpanKind::Send ? "to" : "from", peer.c_str(), static_cast<long long>(s.step));
      emit(buf);
      if (s.flow) {
        const bool recv = s.kind == SpanKind::Recv;
        std::snprintf(buf, sizeof buf,
                      "{\"ph\":\"%s\",%s\"name\":\"%s\",\"cat\":\"flow\",\"id\":%llu,\"pid\":%d,\"tid\":%d,\"ts\":%.6f}",
                      recv ? "f" : "s", recv ? "\"bp\":\"e\"," : "", w.c_str(), static_cast<unsigned long long>(s.flow),
                      s.host, tid, inside(ts, te, recv));
        emit(buf);
      }
    } else if (s.kind == SpanKind::Compute && s.tag >= 1 && s.tag <= 4) {  // layer-wise phases
      const bool layer = s.tag <= 2 && s.peer >= 0 && static_cast<size_t>(s.peer) < layers.size();
      const std::string name = std::string(s.tag % 2 ? "forward" : "backward") +
                               (layer ? " " + json_escape(layers[static_cast<size_t>(s.peer)]) : std::string());
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"X\",\"name\":\"%.200s\",\"cat\":\"compute\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f,"
                    "\"args\":{\"step\":%lld}}",
                    name.c_str(), s.host, tid, ts, dur, static_cast<long long>(s.step));
      emit(buf);
    } else if (s.kind == SpanKind::Update || s.kind == SpanKind::Wait) {  // no step is known for them
      std::snprintf(buf, sizeof buf, "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f}",
                    kind_name(s.kind), kind_name(s.kind), s.host, tid, ts, dur);
      emit(buf);
    } else {
      std::snprintf(buf, sizeof buf,
                    "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d,\"ts\":%.6f,\"dur\":%.6f,"
                    "\"args\":{\"step\":%lld}}",
                    kind_name(s.kind), kind_name(s.kind), s.host, tid, ts, dur, static_cast<long long>(s.step));
      emit(buf);
    }
  }

  // ---- counters: bytes in flight out of and into each host, and on the whole network
  struct Delta {
    double t;
    double out, in;
  };
  std::vector<std::vector<Delta>> per_host(hosts.size() + 1);
  for (const Span& s : spans) {
    if (s.host < 0 || static_cast<size_t>(s.host) >= hosts.size()) continue;
    if (s.kind == SpanKind::Send) {
      per_host[static_cast<size_t>(s.host)].push_back({s.start, s.bytes, 0});
      per_host[static_cast<size_t>(s.host)].push_back({s.end, -s.bytes, 0});
      per_host[net].push_back({s.start, s.bytes, 0});
      per_host[net].push_back({s.end, -s.bytes, 0});
    } else if (s.kind == SpanKind::Recv) {
      per_host[static_cast<size_t>(s.host)].push_back({s.start, 0, s.bytes});
      per_host[static_cast<size_t>(s.host)].push_back({s.end, 0, -s.bytes});
    }
  }
  for (size_t h = 0; h < per_host.size(); ++h) {
    auto& d = per_host[h];
    std::stable_sort(d.begin(), d.end(), [](const Delta& a, const Delta& b) { return a.t < b.t; });
    double o = 0, in = 0;
    for (size_t i = 0; i < d.size();) {
      const double t = d[i].t;
      for (; i < d.size() && d[i].t == t; ++i) {
        o += d[i].out;
        in += d[i].in;
      }
      const double ov = o > 0.5 ? o : 0, iv = in > 0.5 ? in : 0;
      if (h == net)
        std::snprintf(buf, sizeof buf,
                      "{\"ph\":\"C\",\"name\":\"bytes in flight\",\"pid\":%zu,\"ts\":%.6f,\"args\":{\"total\":%.0f}}", h,
                      t * 1e6, ov);
      else
        std::snprintf(buf, sizeof buf,
                      "{\"ph\":\"C\",\"name\":\"bytes in flight\",\"pid\":%zu,\"ts\":%.6f,\"args\":{\"out\":%.0f,\"in\":%.0f}}",
                      h, t * 1e6, ov, iv);
      emit(buf);
    }
  }
  out += "\n]}\n";
  return out;
}

}  // namespace dtsim::sim
