// on_failure "elastic": losses, abandoned collectives run again among the survivors, rejoins at a
// round boundary (the semantics are in sim/elastic.hpp; docs/platforms.md, Failures).
#include "sim/elastic.hpp"

#include <memory>

#include "sim/collectives.hpp"
#include "sim/run_state.hpp"
#include "sim/worker_context.hpp"

namespace dtsim::sim::detail {

namespace {

// Collective c is run again (a member was lost, or a rejoiner joins it): every member's transfer
// actor of the current attempt is killed now, its pending sends and receives cancelled, before
// anyone starts the next attempt. (Each member killing its own on waking was too late: a member
// that woke first could receive a send of a peer's old attempt, which then died with it.)
void abandon_attempt(RunState::Collective& c) {
  ++c.epoch;
  c.done = 0;
  c.result = nullptr;
  for (auto& [rank, actor] : c.attempts) actor->kill();
  c.attempts.clear();
}

}  // namespace

void elastic_crashed(RunState& s, int j) {
  Elastic& E = *s.elastic;
  E.recovered.erase(j);  // a rejoin it was waiting for
  if (E.in_group(j)) E.crashed.insert(j);
  for (int r : E.group())
    if (!s.worker_down[static_cast<size_t>(r)]) return;  // a survivor holds the model
  if (!s.error) {
    s.error = std::make_exception_ptr(RuntimeError(
        "on_failure \"elastic\": worker-" + std::to_string(j) + ", the last live worker of the group, failed at simulated time " +
        std::to_string(sg4::Engine::get_clock()) + " s: no worker is left to continue the training (docs/platforms.md, Failures)"));
    s.error_where = "platform.failures";
  }
  sg4::Actor::kill_all();
}

void elastic_lost(RunState& s, int j) {
  Elastic& E = *s.elastic;
  const size_t J = static_cast<size_t>(j);
  if (!E.crashed.erase(j)) return;  // it was not a member when its host failed (or had returned)
  E.leave(j);
  E.records.push_back({sg4::Engine::get_clock(), static_cast<int>(E.group().size()), "worker-" + std::to_string(j) + " lost"});
  for (auto it = s.collectives.begin(); it != s.collectives.end();) {
    RunState::Collective& c = it->second;
    const auto m = std::find(c.members.begin(), c.members.end(), j);
    if (m == c.members.end()) {
      ++it;
      continue;
    }
    c.members.erase(m);
    if (c.complete) {  // delivered: its fetch will not come
      if (c.got[J]) --c.fetched;
      it = c.fetched >= static_cast<int>(c.members.size()) ? s.collectives.erase(it) : std::next(it);
      continue;
    }
    // Abandoned: nobody applied it. Its contribution never entered a completed collective.
    if (c.weights[J] > 0) {
      s.samples_lost += static_cast<uint64_t>(c.samples[J]);
      c.parts[J] = {};
      c.weights[J] = 0;
      --c.arrived;
    }
    abandon_attempt(c);  // the survivors' transfer actors of the attempt are killed
    if (c.arrived == 0) {  // no survivor has called it yet: its first caller forms it again
      it = s.collectives.erase(it);
      continue;
    }
    if (c.arrived == static_cast<int>(c.members.size())) s.reduce(c);  // over the survivors
    ++it;
  }
  E.wakeup.wake_all();
}

void WorkerCtx::elastic_collective(size_t count, double element_bytes, uint64_t seq) {
  Elastic& E = *s_.elastic;
  RunState::Collective& c = s_.collectives.at(seq);  // kept until this member fetches it
  while (!c.complete) {
    const int epoch = c.epoch;
    const std::vector<int> members = c.members;
    const int index = static_cast<int>(std::lower_bound(members.begin(), members.end(), rank_) - members.begin());
    const std::string name = s_.actor_name() + "." + std::to_string(epoch);
    // The attempt's transfers run in their own actor, so that abandoning them (abandon_attempt kills
    // it) leaves this one, which the collective's Future joins, to run them again.
    c.attempts[rank_] = sg4::Actor::create(name, host_, [this, members, index, count, element_bytes, seq, epoch] {
      guarded(s_, [&] {
        try {
          ring(count, element_bytes, seq, 0, false, &members, index);
        } catch (const CollectiveAbandoned&) {  // a peer was lost: run again once the loss is detected
          return;
        }
        auto it = s_.collectives.find(seq);
        if (it == s_.collectives.end() || it->second.epoch != epoch) return;  // an abandoned attempt
        RunState::Collective& col = it->second;
        col.attempts.erase(rank_);  // its transfers are done: nothing left to cancel
        if (++col.done == static_cast<int>(col.members.size())) {  // every member's transfers are done
          col.complete = true;
          col.parts.clear();
          s_.elastic->wakeup.wake_all();
        }
      });
    });
    E.wakeup.wait_until(rank_, [&c, epoch] { return c.complete || c.epoch != epoch; });
    s_.waiting.erase(name);
  }
}

void WorkerCtx::elastic_checkpoint(int64_t step, const std::function<void(algo::State&)>& save) {
  const bool boundary = collectives_waited_ != waited_at_checkpoint_;  // a collective since the last call
  waited_at_checkpoint_ = collectives_waited_;
  Elastic& E = *s_.elastic;
  if (!boundary || E.recovered.empty() || E.leader() != rank_) return;
  std::vector<int> joining;
  for (int j : E.recovered)  // its loss was detected and its host is up
    if (!E.in_group(j) && !E.crashed.count(j) && s_.hosts.workers[static_cast<size_t>(j)]->is_on()) joining.push_back(j);
  if (joining.empty()) return;
  // The rejoiners' first collective is this worker's next one (ar_seq_). Other members may have
  // formed it already (they reached this boundary first); it cannot be complete, since this worker
  // has not called it: it is formed again with them (its transfers started so far are abandoned).
  // Nothing below yields to other actors until the group and that collective are updated.
  const auto next = s_.collectives.find(ar_seq_);
  if (next != s_.collectives.end() && next->second.complete) return;
  for (int j : joining) {
    E.recovered.erase(j);
    auto state = std::make_unique<NodeCheckpoint>();  // this worker's state: the rejoiner's
    NodeState st(state.get(), who());
    if (save) save(st);
    s_.worker_lost[static_cast<size_t>(j)] = 0;
    E.join(j);
    E.records.push_back({sg4::Engine::get_clock(), static_cast<int>(E.group().size()), "worker-" + std::to_string(j) + " rejoined"});
    E.workers[static_cast<size_t>(j)]->rejoin_from(rank_, step, std::move(state), ar_seq_);
  }
  if (next != s_.collectives.end()) {
    RunState::Collective& c = next->second;
    c.members = E.group();
    abandon_attempt(c);
    E.wakeup.wake_all();
  }
  for (int j : joining) {  // start them (each receives the model before its worker() starts, wait_resume)
    if (!s_.hosts.workers[static_cast<size_t>(j)]->is_on()) continue;  // failed again meanwhile: lost at its detection
    E.restart(j);
    const double bytes = 4.0 * static_cast<double>(s_.P);
    sg4::Mailbox* box = sg4::Mailbox::by_name("elastic-sync-" + std::to_string(j));
    sg4::Actor::create("elastic-sync-" + std::to_string(j), host_, [box, bytes] {
      static int token = 0;
      try {
        box->put(&token, bytes);
      } catch (const simgrid::NetworkFailureException&) {  // the rejoiner failed again
      }
    });
  }
}

void WorkerCtx::rejoin_from(int from, int64_t step, std::unique_ptr<NodeCheckpoint> state, uint64_t seq) {
  rejoin_state_ = std::move(state);
  resumed_ = std::make_unique<NodeState>(rejoin_state_.get(), who());
  resume_step_ = step;
  resume_time_ = sg4::Engine::get_clock();
  ar_seq_ = seq;
  collectives_waited_ = waited_at_checkpoint_ = 0;
  sync_from_ = from;
}

void WorkerCtx::wait_resume() {
  NodeBase::wait_resume();
  if (sync_from_ < 0) return;
  const int from = sync_from_;
  sync_from_ = -1;
  sg4::Mailbox* box = sg4::Mailbox::by_name("elastic-sync-" + std::to_string(rank_));
  int* got = nullptr;
  sg4::CommPtr c = box->get_async<int>(&got);
  bool arrived = true;
  block_on("the model from worker-" + std::to_string(from) + " (on_failure elastic: rejoin)", [&] {
    try {
      c->wait();
    } catch (const simgrid::NetworkFailureException&) {  // the leader failed meanwhile: its state was already copied
      arrived = false;
    }
  });
  if (!arrived) return;
  const double bytes = 4.0 * static_cast<double>(s_.P), start = c->get_start_time(), end = c->get_finish_time();
  s_.result.bytes_on_wire += bytes;
  ++s_.result.messages;
  if (s_.result.trace.enabled)
    s_.result.trace.add_transfer(s_.worker_host_index[static_cast<size_t>(from)], trace_host_, start, end, bytes, resume_step_,
                                 Transfer::Message, algo::kModel);
  s_.links->record(s_.hosts.workers[static_cast<size_t>(from)], host_, bytes, start, end);
}

}  // namespace dtsim::sim::detail
