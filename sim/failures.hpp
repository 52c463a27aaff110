// Failures (platform.failures, docs/platforms.md "Failures"): a controller actor on the runtime's
// control host injects each host failure at its time — scheduled ({"host", "at_s", "recover_s"})
// or random (Exp(mtbf_s) up, Exp(mttr_s) down, keyed Rng(seed, Stream::Failure, {host, n})) — and
// applies the algorithm's policy (algo::Algorithm::OnFailure):
//   Drop / Restart: the host is turned off (SimGrid kills its actors, their transfers fail);
//                   after detect_s the survivors are told (runtime hook); on recovery the host is
//                   turned on and, under Restart, the worker starts again.
//   Wait:           every actor on the host is suspended until the host recovers.
//   Elastic:        as Restart; the runtime re-forms the all-reduce group (sim/elastic.hpp).
// A failed server shard (a dedicated server host, or a worker host holding a co-located shard) is
// fatal unless the policy is Wait: shards are not replicated.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <simgrid/forward.h>

#include "algorithms/api.hpp"
#include "sim/platform.hpp"

namespace dtsim::sim {

struct FailureRecord {
  std::string host;
  std::string kind;                  // "crash" (Drop, Restart) or "freeze" (Wait)
  double at_s = 0;
  std::optional<double> detected_s;  // crash: when the survivors were told
  std::optional<double> recovered_s;
  bool happened = false;             // false: scheduled after the run ended
};

// on_failure "elastic" (sim/elastic.hpp): one change of the all-reduce group (summary.json "elastic").
struct ElasticRecord {
  double at_s = 0;
  int workers = 0;     // the group's size after the change
  std::string reason;  // "worker-2 lost", "worker-2 rejoined"
};

struct FailureHooks {
  std::function<void(int rank)> crashed;   // just before the worker's host goes down (bookkeeping)
  std::function<void(int rank)> detected;  // the detection timeout expired: tell the survivors
  std::function<void(int rank)> restart;   // the host is back (Restart, Elastic): run the worker again
  std::function<void(const std::string& why)> fatal;  // a server shard was lost: end the run
  std::function<uint64_t()> progress;      // grows whenever the run makes progress
  // Wait: the inbox of worker `rank` and of server shard `shard` (sim/runtime.cpp).
  std::function<const simgrid::s4u::Mailbox*(int rank)> worker_inbox;
  std::function<const simgrid::s4u::Mailbox*(int shard)> server_inbox;
};

// Refuses (InputError naming <prefix>failures[i]) a failure that never recovers under Wait.
void check_failures(const PlatformSpec& p, algo::Algorithm::OnFailure policy, const std::string& algorithm,
                    const std::string& prefix);

class FailureController {
 public:
  FailureController(const PlatformSpec& p, uint64_t seed, const BuiltPlatform& hosts, algo::Algorithm::OnFailure policy,
                    FailureHooks hooks);
  ~FailureController();
  FailureController(const FailureController&) = delete;
  FailureController& operator=(const FailureController&) = delete;
  bool any() const { return !p_.failures.empty(); }
  // The body of the controller actor (a daemon on the control host).
  void run();
  const std::vector<FailureRecord>& records() const { return records_; }

 private:
  enum class Kind { Fail, Detect, Recover };
  struct Event {
    double t;
    uint64_t seq;
    Kind kind;
    size_t host;       // index into hosts_
    size_t record;     // index into records_
    double detect_s;   // Fail: the entry's detection timeout
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  struct HostState {
    std::string name;
    simgrid::s4u::Host* host = nullptr;
    int worker = -1;                   // rank, -1 for a dedicated server
    std::vector<int> shards;           // server shards on this host
    const FailureSpec* random = nullptr;
    uint64_t draws = 0;                // random failures drawn so far
    bool is_frozen = false;            // Wait: between its failure and its recovery
    std::vector<simgrid::s4u::ActorPtr> frozen;
    // Wait: the inboxes of its nodes, and the messages sent into them while it is frozen (see run()).
    std::vector<const simgrid::s4u::Mailbox*> inboxes;
    std::vector<simgrid::s4u::CommPtr> stalled;
  };
  void push(double t, Kind k, size_t host, size_t record, double detect_s = 0);
  void schedule_random(size_t host, double from);

  const PlatformSpec& p_;
  uint64_t seed_;
  algo::Algorithm::OnFailure policy_;
  FailureHooks hooks_;
  std::vector<HostState> hosts_;
  std::vector<Event> queue_;  // a min-heap
  uint64_t seq_ = 0;
  std::vector<FailureRecord> records_;
  std::optional<unsigned> on_send_;  // Wait: our callback on simgrid::s4u::Comm::on_send
};

}  // namespace dtsim::sim
