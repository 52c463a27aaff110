// on_failure "elastic" (algo::Algorithm::OnFailure::Elastic; docs/platforms.md, Failures): the
// TorchElastic / Horovod Elastic semantics of an all-reduce algorithm whose workers fail, behind
// the cluster API (the algorithms' code does not change):
//
//   the group    the workers taking part in all-reduces: all N at the start. A collective's members
//                are the group when its first member calls it (RunState::Collective::members), and
//                the pattern (ring, tree, ...) runs over them numbered 0..m-1 in rank order, its
//                messages between their real ranks (sim/collectives.hpp). The leader, the lowest
//                rank of the group, publishes the global model (algo::Worker::leads).
//   complete     a collective is delivered (Future::wait returns) only once every member's
//                transfers are done (WorkerCtx::elastic_collective): until then nobody applied it.
//   a loss       at the detection timeout (elastic_lost) the lost rank leaves the group. Every
//                collective it belongs to that is not complete is abandoned: the survivors'
//                transfer actors are killed (their transfers cancelled) and the transfers run again
//                among the survivors, with their contributions, reduced over them (a Mean over the
//                live members, a Sum stays a sum). The survivors thus continue from the last
//                consistent model; the lost rank's contributions to abandoned collectives are added
//                to samples_lost (its unsent minibatches are counted at the crash).
//   a rejoin     a recovered worker (its loss detected) waits for a round boundary: the leader's
//                first Node::checkpoint call after it completed a collective
//                (WorkerCtx::elastic_checkpoint). The state the leader saves there becomes the
//                rejoiner's resumed state (as on --resume, at that step), the global model its
//                initial_params(), and its next collective the leader's next one (formed again with
//                the rejoiner if other members started it already); worker() runs again
//                (incarnation + 1) once the model (4 bytes per parameter) has arrived from the
//                leader's host over the network.
//
// summary.json's "elastic" lists every membership change (docs/outputs.md). Internal to sim/.
#pragma once
#include <simgrid/s4u.hpp>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "sim/failures.hpp"

namespace dtsim::sim::detail {

struct RunState;
class WorkerCtx;

// Workers' collective actors waiting until a condition holds, woken together whenever it may have
// changed (at most one per worker waits at a time: a worker's collectives run one after another).
// One semaphore per worker: a release before the acquire is not lost, and a killed waiter holds
// nothing (a SimGrid mutex could stay locked). A spurious wake-up only re-checks the condition.
class Wakeup {
 public:
  explicit Wakeup(int N) {
    for (int i = 0; i < N; ++i) sems_.push_back(simgrid::s4u::Semaphore::create(0));
  }
  template <class Pred>
  void wait_until(int rank, Pred pred) {
    while (!pred()) {
      waiting_.insert(rank);
      sems_[static_cast<size_t>(rank)]->acquire();
    }
  }
  void wake_all() {
    std::set<int> w;
    w.swap(waiting_);
    for (int r : w) sems_[static_cast<size_t>(r)]->release();
  }

 private:
  std::vector<simgrid::s4u::SemaphorePtr> sems_;
  std::set<int> waiting_;
};

class Elastic {
 public:
  explicit Elastic(int N) : wakeup(N) {
    for (int i = 0; i < N; ++i) group_.push_back(i);
  }
  const std::vector<int>& group() const { return group_; }
  int leader() const { return group_.empty() ? -1 : group_.front(); }
  bool in_group(int rank) const { return std::binary_search(group_.begin(), group_.end(), rank); }
  void leave(int rank) { std::erase(group_, rank); }
  void join(int rank) { group_.insert(std::lower_bound(group_.begin(), group_.end(), rank), rank); }

  Wakeup wakeup;                       // collectives waiting to complete or to be run again
  std::set<int> recovered;             // recovered workers waiting for a round boundary
  std::set<int> crashed;               // members whose host failed, until the loss is detected
  std::vector<ElasticRecord> records;  // summary.json "elastic"
  // Set by the runtime: the workers' contexts, and what starts worker `rank` again on its
  // recovered host (a new inbox and incarnation, its actor).
  std::vector<WorkerCtx*> workers;
  std::function<void(int rank)> restart;

 private:
  std::vector<int> group_;  // ascending
};

// The detection timeout of worker j's crash expired: it leaves the group and the collectives it
// belongs to that are not complete are abandoned (run again among the survivors).
void elastic_lost(RunState& s, int j);
// Worker j's host failed: a pending rejoin is cancelled, a member's loss awaits its detection (the
// detection of a failure that hit a worker waiting to rejoin changes nothing), and a run left
// without a live member of the group ends with a RuntimeError (no survivor holds the model).
void elastic_crashed(RunState& s, int j);

}  // namespace dtsim::sim::detail
