#include "sim/failures.hpp"

#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/hash.hpp"
#include "common/rng.hpp"

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;
using Policy = algo::Algorithm::OnFailure;

void check_failures(const PlatformSpec& p, Policy policy, const std::string& algorithm, const std::string& prefix) {
  if (policy != Policy::Wait) return;
  for (size_t i = 0; i < p.failures.size(); ++i) {
    const auto& f = p.failures[i];
    if (f.random ? !f.mttr_s : std::isinf(f.recover_s))
      throw InputError(p.file, prefix + "failures[" + std::to_string(i) + "]",
                       "algorithm '" + algorithm + "' waits for failed hosts to recover (on_failure: wait), but this failure never recovers (" +
                           (f.random ? "give mttr_s" : "give recover_s") + ")");
  }
}

namespace {
uint64_t name_key(const std::string& s) { return fnv1a(s); }  // portable, unlike std::hash (common/hash.hpp)
}  // namespace

FailureController::FailureController(const PlatformSpec& p, uint64_t seed, const BuiltPlatform& hosts, Policy policy,
                                     FailureHooks hooks)
    : p_(p), seed_(seed), policy_(policy), hooks_(std::move(hooks)) {
  std::map<std::string, size_t> index;
  auto state = [&](const std::string& name) -> size_t {
    auto it = index.find(name);
    if (it != index.end()) return it->second;
    HostState h;
    h.name = name;
    h.host = sg4::Host::by_name(name);
    if (name.rfind("worker-", 0) == 0) h.worker = std::stoi(name.substr(7));
    for (int k = 0; k < static_cast<int>(hosts.servers.size()); ++k)
      if (hosts.servers[static_cast<size_t>(k)] == h.host) h.shards.push_back(k);
    hosts_.push_back(std::move(h));
    return index[name] = hosts_.size() - 1;
  };
  for (const auto& f : p.failures)
    for (const auto& name : f.hosts) {
      const size_t h = state(name);
      if (f.random) {
        hosts_[h].random = &f;
        schedule_random(h, 0.0);
      } else {
        records_.push_back({name, policy == Policy::Wait ? "freeze" : "crash", f.at_s, std::nullopt, std::nullopt});
        push(f.at_s, Kind::Fail, h, records_.size() - 1, f.detect_s);
        if (std::isfinite(f.recover_s)) push(f.recover_s, Kind::Recover, h, records_.size() - 1);
      }
    }
  if (policy != Policy::Wait || hosts_.empty()) return;
  // A send into the (eager) inbox of a frozen node starts suspended, since its receiver is, and
  // SimGrid resumes it only with its sender: such sends are kept for the host's recovery.
  for (HostState& hs : hosts_) {
    if (hs.worker >= 0) hs.inboxes.push_back(hooks_.worker_inbox(hs.worker));
    for (int k : hs.shards) hs.inboxes.push_back(hooks_.server_inbox(k));
  }
  on_send_ = sg4::Comm::on_send.connect([this](const sg4::Comm& c) {
    for (HostState& hs : hosts_)
      if (hs.is_frozen && std::find(hs.inboxes.begin(), hs.inboxes.end(), c.get_mailbox()) != hs.inboxes.end()) {
        hs.stalled.emplace_back(const_cast<sg4::Comm*>(&c));
        return;
      }
  });
}

FailureController::~FailureController() {
  if (on_send_) sg4::Comm::on_send.disconnect(*on_send_);
}

void FailureController::push(double t, Kind k, size_t host, size_t record, double detect_s) {
  queue_.push_back({t, seq_++, k, host, record, detect_s});
  std::push_heap(queue_.begin(), queue_.end(), std::greater<>());
}

void FailureController::schedule_random(size_t h, double from) {
  HostState& hs = hosts_[h];
  const FailureSpec& f = *hs.random;
  Rng rng(seed_, Stream::Failure, {name_key(hs.name), hs.draws++});
  const double at = from + rng.exponential(1.0 / f.mtbf_s);
  records_.push_back({hs.name, policy_ == Policy::Wait ? "freeze" : "crash", at, std::nullopt, std::nullopt});
  push(at, Kind::Fail, h, records_.size() - 1, f.detect_s);
  if (f.mttr_s) push(at + rng.exponential(1.0 / *f.mttr_s), Kind::Recover, h, records_.size() - 1);
}

void FailureController::run() {
  // A run that makes no progress across this many failure events stops drawing random ones, so
  // that a deadlock is reported instead of failures being injected forever.
  constexpr int kIdleEvents = 1000;
  uint64_t last_progress = hooks_.progress ? hooks_.progress() : 0;
  int idle = 0;
  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), std::greater<>());
    const Event ev = queue_.back();
    queue_.pop_back();
    if (ev.t > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(ev.t);
    HostState& hs = hosts_[ev.host];
    FailureRecord& rec = records_[ev.record];
    const uint64_t now_progress = hooks_.progress ? hooks_.progress() : 0;
    idle = now_progress == last_progress ? idle + 1 : 0;
    last_progress = now_progress;
    switch (ev.kind) {
      case Kind::Fail: {
        rec.happened = true;
        if (!hs.shards.empty() && policy_ != Policy::Wait) {
          std::string shards;
          for (int k : hs.shards) shards += (shards.empty() ? "" : ", ") + std::to_string(k);
          if (hooks_.fatal)
            hooks_.fatal("host " + hs.name + " failed at simulated time " + std::to_string(ev.t) + " s with parameter-server shard(s) " +
                         shards + ": shards are not replicated, so the run cannot continue (docs/platforms.md, Failures)");
          return;
        }
        if (policy_ == Policy::Wait) {
          hs.is_frozen = true;
          hs.frozen.clear();
          for (auto& a : hs.host->get_all_actors()) {
            a->suspend();
            hs.frozen.push_back(a);
          }
        } else {
          if (hs.worker >= 0 && hooks_.crashed) hooks_.crashed(hs.worker);
          hs.host->turn_off();
          push(ev.t + ev.detect_s, Kind::Detect, ev.host, ev.record);
        }
        break;
      }
      case Kind::Detect:
        rec.detected_s = ev.t;
        if (hs.worker >= 0 && hooks_.detected) hooks_.detected(hs.worker);
        break;
      case Kind::Recover:
        rec.recovered_s = ev.t;
        if (policy_ == Policy::Wait) {
          hs.is_frozen = false;
          for (auto& a : hs.frozen) a->resume();
          hs.frozen.clear();
          // The messages sent to it meanwhile started suspended (their receiver was): they are
          // their senders' activities, which resuming this host's actors does not resume. Those
          // whose sender is frozen too go on when it recovers. (The s4u activity resumes its
          // transfer only if it was suspended through s4u: hence suspend, then resume.)
          for (auto& c : hs.stalled)
            if (c->get_state() == sg4::Activity::State::STARTED && !(c->get_sender() && c->get_sender()->is_suspended())) {
              c->suspend();
              c->resume();
            }
          hs.stalled.clear();
        } else {
          hs.host->turn_on();
          if ((policy_ == Policy::Restart || policy_ == Policy::Elastic) && hs.worker >= 0 && hooks_.restart)
            hooks_.restart(hs.worker);
        }
        if (hs.random && idle < kIdleEvents) schedule_random(ev.host, ev.t);
        break;
    }
  }
}

}  // namespace dtsim::sim
