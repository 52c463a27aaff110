// trace.json as Perfetto / chrome://tracing read it: one process per host, properly nested slices
// on every track, a flow arrow per transfer (PS messages and collective steps), counters of the
// bytes in flight that equal the transfers in flight, compute slices that end when the compute ends.
#include <map>
#include <set>

#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_timeline_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

struct Slice {
  double ts, dur;
  json ev;
};

struct Trace {
  json doc;
  std::map<int, std::string> process;                      // pid -> name
  std::map<std::pair<int, int>, std::string> track;        // (pid, tid) -> name
  std::map<std::pair<int, int>, std::vector<Slice>> slices;
  std::vector<json> flows, counters;
};

Trace parse(const std::string& text) {
  Trace t;
  t.doc = json::parse(text);
  for (const auto& e : t.doc["traceEvents"]) {
    const std::string ph = e["ph"];
    if (ph == "M" && e["name"] == "process_name") t.process[e["pid"]] = e["args"]["name"];
    else if (ph == "M" && e["name"] == "thread_name") t.track[{e["pid"], e["tid"]}] = e["args"]["name"];
    else if (ph == "X") t.slices[{e["pid"], e["tid"]}].push_back({e["ts"], e["dur"], e});
    else if (ph == "s" || ph == "f") t.flows.push_back(e);
    else if (ph == "C") t.counters.push_back(e);
  }
  return t;
}

// The slice of track (pid, tid) that contains time ts (µs), or null.
const Slice* slice_at(const Trace& t, int pid, int tid, double ts) {
  auto it = t.slices.find({pid, tid});
  if (it == t.slices.end()) return nullptr;
  for (const auto& s : it->second)
    if (s.ts <= ts && ts <= s.ts + s.dur) return &s;
  return nullptr;
}

void check_tracks_and_flows(const Trace& t, const std::string& expect_cat) {
  // Every track is a sequence of disjoint slices (lanes keep concurrent transfers apart).
  for (const auto& [key, v] : t.slices) {
    auto s = v;
    std::sort(s.begin(), s.end(), [](const Slice& a, const Slice& b) { return a.ts < b.ts; });
    for (size_t i = 1; i < s.size(); ++i) CHECK(s[i].ts >= s[i - 1].ts + s[i - 1].dur - 1e-6);
    CHECK(t.track.count(key) == 1);  // every used track is named
    CHECK(t.process.count(key.first) == 1);
  }
  // Flows: one "s" in a send slice of the sender, one "f" (bound to the enclosing slice) in the
  // matching recv slice of the receiver.
  std::map<uint64_t, std::vector<json>> by_id;
  for (const auto& f : t.flows) by_id[f["id"].get<uint64_t>()].push_back(f);
  int n = 0;
  for (const auto& [id, fs] : by_id) {
    CAPTURE(id);
    REQUIRE(fs.size() == 2);
    const json& s = fs[0]["ph"] == "s" ? fs[0] : fs[1];
    const json& f = fs[0]["ph"] == "s" ? fs[1] : fs[0];
    REQUIRE(s["ph"] == "s");
    REQUIRE(f["ph"] == "f");
    CHECK(f["bp"] == "e");
    CHECK(s["name"] == f["name"]);
    const Slice* send = slice_at(t, s["pid"], s["tid"], s["ts"]);
    const Slice* recv = slice_at(t, f["pid"], f["tid"], f["ts"]);
    REQUIRE(send);
    REQUIRE(recv);
    CHECK(send->ev["name"] == "send");
    CHECK(recv->ev["name"] == "recv");
    CHECK(send->ev["cat"] == expect_cat);
    CHECK(send->ev["args"]["to"] == t.process.at(f["pid"]));
    CHECK(recv->ev["args"]["from"] == t.process.at(s["pid"]));
    CHECK(send->ev["args"]["bytes"] == recv->ev["args"]["bytes"]);
    CHECK(send->ts == dtsim_test::Rel(recv->ts));
    ++n;
  }
  CHECK(n > 0);
}

// Counter values equal the sum of bytes of the send (out) / recv (in) slices in flight right after
// each counter's time; the network counter sums every send.
void check_counters(const Trace& t) {
  const double eps = 1e-4;  // µs
  auto in_flight = [&](int pid, const char* kind, double at) {
    double sum = 0;
    for (const auto& [key, v] : t.slices) {
      if (pid >= 0 && key.first != pid) continue;
      for (const auto& s : v)
        if (s.ev["name"] == kind && s.ts <= at + eps && s.ts + s.dur > at + eps) sum += s.ev["args"]["bytes"].get<double>();
    }
    return sum;
  };
  int net_pid = -1;
  for (const auto& [pid, name] : t.process)
    if (name == "network") net_pid = pid;
  REQUIRE(net_pid >= 0);
  REQUIRE(!t.counters.empty());
  std::map<int, double> last;
  for (const auto& c : t.counters) {
    const int pid = c["pid"];
    const double ts = c["ts"];
    CAPTURE(pid);
    CAPTURE(ts);
    CHECK(c["name"] == "bytes in flight");
    if (pid == net_pid) {
      CHECK(c["args"]["total"].get<double>() == dtsim_test::Rel(in_flight(-1, "send", ts)));
      last[pid] = c["args"]["total"];
    } else {
      CHECK(c["args"]["out"].get<double>() == dtsim_test::Rel(in_flight(pid, "send", ts)));
      CHECK(c["args"]["in"].get<double>() == dtsim_test::Rel(in_flight(pid, "recv", ts)));
      last[pid] = c["args"]["out"].get<double>() + c["args"]["in"].get<double>();
    }
  }
  for (const auto& [pid, v] : last) CHECK(v == 0);  // everything sent has arrived at the end
}

// Each worker: compute (started asynchronously), then a blocking all-reduce that takes longer
// than the compute, then collect the gradient: its slice must end when the compute ended.
class OverlapProbe final : public algo::Algorithm {
 public:
  bool needs_servers() const override { return false; }
  void worker(algo::Worker& w) override {
    for (int r = 0; r < 2; ++r) {
      auto g = w.compute_async(engine::ConstVecView{});
      w.allreduce(algo::Payload{nullptr, 0, w.num_params()});
      g.wait();
    }
  }
};

}  // namespace

TEST_CASE("timeline: a PS run has one process per host, nested tracks, a flow per message, exact counters") {
  json cfg = small_config(4, 2);
  cfg["output"]["trace"] = true;
  cfg["training"]["samples"] = 512;
  const auto r = run_forked(load(cfg));
  REQUIRE(r.exit_code == 0);
  const Trace t = parse(r.trace);
  std::set<std::string> names;
  for (const auto& [pid, name] : t.process) names.insert(name);
  CHECK(names == std::set<std::string>{"worker-0", "worker-1", "worker-2", "worker-3", "server-0", "server-1", "network"});
  // every PS message is one flow arrow
  CHECK(t.flows.size() == 2 * r.summary["messages"].get<size_t>());
  check_tracks_and_flows(t, "ps");
  check_counters(t);
  // the servers receive from four workers at once: several recv tracks
  std::set<std::string> server_tracks;
  for (const auto& [key, name] : t.track)
    if (t.process.at(key.first) == "server-0") server_tracks.insert(name);
  CHECK(server_tracks.count("recv 2") == 1);
  // what each message carried
  std::set<std::string> what;
  for (const auto& [key, v] : t.slices)
    for (const auto& s : v)
      if (s.ev["name"] == "send") what.insert(s.ev["args"]["what"].get<std::string>());
  CHECK(what.count("gradient") == 1);
  CHECK(what.count("params") == 1);
  // update and wait slices record no step: they carry no "step" argument (it was always 0)
  int updates = 0, waits = 0;
  for (const auto& [key, v] : t.slices)
    for (const auto& s : v)
      if (s.ev["name"] == "update" || s.ev["name"] == "wait") {
        (s.ev["name"] == "update" ? updates : waits) += 1;
        CHECK_FALSE(s.ev.contains("args"));
      }
  CHECK(updates > 0);
  CHECK(waits > 0);
}

TEST_CASE("timeline: collective steps are flow arrows, and compute slices end when the compute ends") {
  json cfg = small_config(4, 1);  // the probe needs no server: none is started
  cfg["output"]["trace"] = true;
  cfg["compute"]["mode"] = "timing-only";
  cfg["compute"]["time"]["seconds"] = 1e-4;  // the ring (6 steps of >= 100 µs latency) takes longer
  sim::RunHooks hooks;
  hooks.make_algorithm = [] { return std::make_unique<OverlapProbe>(); };
  const auto r = run_forked(load(cfg), hooks);
  REQUIRE(r.exit_code == 0);
  const Trace t = parse(r.trace);
  // 2 collectives x 4 ranks x 2(N-1) = 6 steps, one flow each
  CHECK(t.flows.size() == 2 * 2 * 4 * 6);
  check_tracks_and_flows(t, "collective");
  check_counters(t);
  int computes = 0;
  for (const auto& [key, v] : t.slices)
    for (const auto& s : v)
      if (s.ev["name"] == "compute") {
        ++computes;
        CHECK(s.dur == dtsim_test::Rel(100.0).epsilon(1e-9));  // µs: the compute, not until its wait
      }
  CHECK(computes == 8);
  // and the per-worker compute time agrees
  for (const auto& w : r.summary["per_worker"]) CHECK(w["compute_s"].get<double>() == dtsim_test::Rel(2e-4));
}

}  // namespace test_timeline_cpp
