// The state of one run (sim/runtime.cpp's run()), shared by every actor: what the worker and server
// contexts (sim/node_context.hpp, sim/worker_context.hpp, sim/server_context.hpp) read and update,
// plus the run-wide bookkeeping they share: checkpoint cuts, evaluation, the all-reduce
// contributions, failure state and the early-stop flag. Actors run one at a time on one OS thread,
// so no locking anywhere; the only other threads are the compute pool's (engine/compute_pool.hpp),
// whose tasks write only what they captured (a worker's batch, BatchNorm state and gradient
// buffer, an evaluation's result) and read only that and what never changes during a run (the
// config, the dataset). Internal to sim/.
#pragma once
#include <simgrid/s4u.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "algorithms/api.hpp"
#include "engine/compute_pool.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "sim/checkpoint.hpp"
#include "sim/collectives.hpp"
#include "sim/elastic.hpp"
#include "sim/layerwise.hpp"
#include "sim/links.hpp"
#include "sim/platform.hpp"
#include "sim/runtime.hpp"

namespace dtsim::sim::detail {

namespace sg4 = simgrid::s4u;
using algo::Future;
using algo::Gradient;
using algo::Message;
using algo::Payload;
using algo::Pending;
using engine::Vec;
using Clock = std::chrono::steady_clock;

// A worker's BatchNorm running statistics in its NodeCheckpoint (a key no algorithm uses: the
// "runtime." prefix is reserved).
inline const std::string kModelStateKey = "runtime.model_state";

struct StopRun {};

// One node's algo::State over its NodeCheckpoint (saved at a cut, or read back on resume).
class NodeState final : public algo::State {
 public:
  NodeState(NodeCheckpoint* n, std::string who) : n_(n), who_(std::move(who)) {}
  void put(const std::string& key, engine::ConstVecView v) override {
    auto& b = n_->blobs[key];
    b.resize(v.size);
    if (v.size) engine::ops::to_host(v, b.data());
  }
  void put_int(const std::string& key, int64_t v) override { n_->ints[key] = v; }
  void get(const std::string& key, engine::VecView out) const override {
    auto it = n_->blobs.find(key);
    if (it == n_->blobs.end()) throw RuntimeError("checkpoint: " + who_ + " saved no vector '" + key + "'");
    if (it->second.size() != out.size)
      throw RuntimeError("checkpoint: " + who_ + "'s vector '" + key + "' holds " + std::to_string(it->second.size()) +
                         " floats, " + std::to_string(out.size) + " expected");
    if (out.size) engine::ops::copy(out, engine::ConstVecView(it->second.data(), out.size, engine::Device::Cpu));
  }
  int64_t get_int(const std::string& key) const override {
    auto it = n_->ints.find(key);
    if (it == n_->ints.end()) throw RuntimeError("checkpoint: " + who_ + " saved no integer '" + key + "'");
    return it->second;
  }
  bool has(const std::string& key) const override { return n_->ints.count(key) || n_->blobs.count(key); }

 private:
  NodeCheckpoint* n_;
  std::string who_;
};


// The state of one run, shared by all its actors. Actors run one at a time on one OS thread (above).
struct RunState {
  const Experiment& x;
  const RunHooks& hooks;
  Clock::time_point wall_start = Clock::now();

  algo::Algorithm* algorithm = nullptr;
  engine::Model* model = nullptr;
  engine::Dataset* data = nullptr;  // null in timing-only mode
  std::unique_ptr<engine::SampleOrder> order;
  bool real = true;
  size_t P = 0;  // parameters
  double flops_per_sample = 0;
  int N = 0, K = 0, b = 0;
  // platform.workers.grouping "identical" (sim/grouping.hpp): each simulated worker stands for
  // `group` identical ones; the run's counters and the servers' aggregation costs count them all.
  int group = 1;
  std::vector<size_t> shard_off, shard_len;
  int64_t sync_steps = 0;
  uint64_t budget = 0, claimed = 0, samples_done = 0;

  Vec global;                                  // the global model (PS algorithms' shards write here)
  std::shared_ptr<const Vec> init;             // initial parameters, shared by every node
  // BatchNorm running statistics (docs/engine.md, "Model state"): one buffer per worker, updated
  // only by that worker's minibatches (real data-parallel training without SyncBN, so event order
  // never matters); the global model is evaluated with worker 0's (DDP's broadcast_buffers rule).
  // Empty for models without state.
  std::vector<Vec> model_state;
  engine::ConstVecView eval_state() const { return model_state.empty() ? engine::ConstVecView{} : model_state[0].view(); }
  std::vector<std::shared_ptr<Vec>> grad_pool;      // recycled gradient buffers
  std::vector<std::shared_ptr<Vec>> snapshot_pool;  // recycled model snapshots (per-tensor servers' replies)
  std::vector<std::shared_ptr<Vec>> reduce_pool;    // recycled all-reduce results
  // Real mode: where the workers' minibatch gradients are computed (compute.pool threads,
  // engine/compute_pool.hpp): issued when a compute starts in simulated time, awaited when its span
  // ends. Whoever reads a worker's BatchNorm state first awaits its gradients (settle()). Shut down
  // by the run before anything its tasks read is freed.
  std::unique_ptr<engine::ComputePool> pool;
  void settle() {
    if (pool) pool->drain();
  }
  std::vector<engine::ComputePool::Handle> last_math;  // per worker: its last gradient issued
  // Per worker: its latest minibatch whose gradient's math may still be pending past its forward
  // (per-tensor pushes to a server, LayerPlan::math_to_first_reader). settle_gradient awaits it (and checks
  // its loss) if it is still pending and, when `buf` is given, if it is the one that fills `buf`.
  std::vector<std::weak_ptr<StepChain>> unsettled;
  void settle_gradient(int worker, const Vec* buf = nullptr) {
    if (static_cast<size_t>(worker) >= unsettled.size()) return;
    if (auto c = unsettled[static_cast<size_t>(worker)].lock(); c && (!buf || c->g.buf.get() == buf)) c->settle_math();
  }
  // Evaluations run on the pool too, from copies of the global model and worker 0's state taken at
  // the evaluation point; a row's losses are filled in by finish_evaluations (before a checkpoint
  // is written, and at the end), the done ones also as the run goes (collect_evaluations).
  struct PendingEval {
    size_t row = 0;
    size_t train_subset = 0;
    engine::ComputePool::Handle test_ticket, train_ticket;
    engine::EvalResult test, train;
  };
  std::vector<std::shared_ptr<PendingEval>> pending_evals;
  void finish_evaluations(bool wait = true);

  // All-reduce number `seq`: contributions gathered as workers call it; reduced once when complete.
  struct Collective {
    std::vector<Payload> parts;
    std::vector<double> weights;
    int arrived = 0, fetched = 0;
    size_t count = 0;
    algo::Reduce op = algo::Reduce::Mean;
    std::shared_ptr<const Vec> result;
    // The ranks taking part, ascending: all N, or under on_failure "elastic" the group when its
    // first member called it (a lost member is taken out). Set when it is formed.
    std::vector<int> members;
    // on_failure "elastic" only (sim/elastic.hpp): per rank, the samples its contribution carries
    // and whether it fetched the result; the attempt its transfers run in, the members whose
    // transfers of that attempt are done, and whether all are (then it is delivered).
    std::vector<int64_t> samples;
    std::vector<char> got;
    int epoch = 0, done = 0;
    bool complete = false;
    std::map<int, simgrid::s4u::ActorPtr> attempts;  // by rank: the actor running its transfers of this epoch
    // Layer-wise all-reduces of gradients (DDP, Horovod): every part is in, and the reduction waits
    // for its first reader (result_of, release_contribution) so that the gradients' math can still be
    // going on while the transfers are simulated (LayerPlan::math_to_first_reader).
    bool reduce_pending = false;
  };
  std::map<uint64_t, Collective> collectives;
  // platform.collective.transfers "aggregated": the state the ranks of one ring share, by
  // (collective, label), and how many ranks have left it (freed when all have).
  struct SharedRing {
    AggregatedRing ring;
    int left = 0;
  };
  std::map<std::pair<uint64_t, int>, SharedRing> rings;
  // The result of collective `c`, reduced now if that was left to its first reader. A gradient that
  // is not finite stops the run there (diverge), and every later reader with it (check_stop).
  const std::shared_ptr<const Vec>& result_of(Collective& c) {
    if (c.reduce_pending) {
      check_stop();
      reduce(c);
      c.reduce_pending = false;
      c.parts.clear();
    }
    return c.result;
  }
  // An algorithm is about to read, and may write, gradient `buf` (its wait on the gradient,
  // ChainFuture): every all-reduce it was contributed to and that may still read it is reduced now
  // if all parts are in, and otherwise (or under elastic, which may reduce again) reads `frozen`,
  // one copy of it, made here, which the all-reduces still to take their part (`more_to_come`,
  // StepChain::contribution) hand in too.
  void release_contribution(const Vec* buf, bool more_to_come, std::shared_ptr<const Vec>& frozen);
  // A member fetched collective `it`'s result; the last one frees it.
  void fetched(std::map<uint64_t, Collective>::iterator it, int rank) {
    if (!it->second.got.empty()) it->second.got[static_cast<size_t>(rank)] = 1;
    if (++it->second.fetched == static_cast<int>(it->second.members.size())) collectives.erase(it);
  }
  // on_failure "elastic" with platform.failures (sim/elastic.hpp); null otherwise.
  std::unique_ptr<Elastic> elastic;

  BuiltPlatform hosts;
  std::unique_ptr<LinkModel> links;  // per-link statistics, latency jitter (sim/links.cpp)
  std::vector<sg4::Mailbox*> worker_inbox, server_inbox, ring_inbox;
  std::vector<int> worker_host_index, server_host_index;  // into trace hosts

  // Layer-wise timing (algorithm.overlap, docs/timing.md): inactive under "none". The Horovod and
  // per-tensor server states are made before the actors start (they hold SimGrid synchronisation objects).
  LayerPlan plan;
  std::unique_ptr<HorovodState> hvd;
  std::unique_ptr<SyncSteps> sync;

  RunResult result;
  uint64_t next_eval = 0;
  uint64_t last_eval_version = std::numeric_limits<uint64_t>::max();  // result.updates at the last row
  std::exception_ptr error;
  std::string error_where;  // "worker-3 at simulated time 1.25 s": where the first exception happened
  std::optional<StopInfo> stop;  // set once the run must end early (interrupt, wall limit, divergence)
  // A stop or an error is recorded: every actor is being killed (guarded) and none may start.
  bool ending() const { return stop.has_value() || static_cast<bool>(error); }
  std::map<std::string, std::string> waiting;  // actor -> what it is blocked on (for deadlocks)
  std::map<aid_t, std::string> job_names;      // a pooled helper actor -> its job's name (sim/actor_pool.hpp)
  // The calling actor's name, or its job's when it is a pooled helper: deadlock reports and errors.
  std::string actor_name() const {
    const auto it = job_names.find(sg4::this_actor::get_pid());
    return it != job_names.end() ? it->second : sg4::this_actor::get_name();
  }
  int workers_finished = 0;
  double last_worker_return_s = 0;  // simulated time the last worker function returned
  // Failures (sim/failures.cpp): a crashed worker counts as finished until it restarts.
  std::vector<char> worker_down, worker_lost, worker_returned;  // host down; loss detected; function returned
  std::map<const sg4::Mailbox*, int> inbox_worker;                // worker inbox -> rank
  uint64_t samples_lost = 0;
  bool any_down = false;
  bool dropped(const sg4::Mailbox* box) const {  // a send to a crashed worker is lost
    if (!any_down) return false;
    auto it = inbox_worker.find(box);
    return it != inbox_worker.end() && worker_down[static_cast<size_t>(it->second)];
  }
  uint64_t shard_commits = 0;

  // Checkpoint and resume (sim/checkpoint.hpp, docs/robustness.md). A cut is a step at which
  // step * N * b crosses a multiple of training.checkpoint_every_samples; each node saves when it
  // calls Node::checkpoint(step) and the last one writes the file.
  uint64_t ckpt_every = 0;
  int64_t resume_step = 0;
  // Algorithm::checkpoint_at_servers (asynchronous PS algorithms): a cut is pending from the commit
  // that crossed the threshold until all K shards have saved; then the workers' positions follow
  // from the shards' "acked.<rank>" counts.
  bool server_cuts = false, server_cut_pending = false;
  uint64_t next_ckpt = 0;
  std::function<void(int, NodeCheckpoint&)> worker_counters;  // a worker's counters now
  std::function<double()> exposed_per_step;                   // metrics.csv's exposed_comm_s_per_step now
  std::map<int64_t, std::pair<int, Checkpoint>> cuts;  // step -> (nodes saved, checkpoint)
  bool is_cut(int64_t step) const {
    if (ckpt_every == 0 || step <= resume_step || step >= sync_steps) return false;
    const uint64_t nb = static_cast<uint64_t>(N) * static_cast<uint64_t>(b), t = static_cast<uint64_t>(step);
    return t * nb / ckpt_every > (t - 1) * nb / ckpt_every;
  }
  template <class Fill>
  void save_cut(int64_t step, int worker, int shard, Fill&& fill) {
    auto& [saved, c] = cuts[step];
    if (saved == 0) {
      c.step = step;
      c.workers.resize(static_cast<size_t>(N));
      c.servers.resize(static_cast<size_t>(K));
      if (server_cuts) c.global.resize(real ? P : 0);
    }
    fill(worker >= 0 ? c.workers[static_cast<size_t>(worker)] : c.servers[static_cast<size_t>(shard)]);
    if (worker < 0 && server_cuts && real)  // this shard's range as of its own cut
      engine::ops::to_host(global.view(shard_off[static_cast<size_t>(shard)], shard_len[static_cast<size_t>(shard)]),
                           c.global.data() + shard_off[static_cast<size_t>(shard)]);
    if (++saved < (server_cuts ? K : N + K)) return;
    if (server_cuts) {
      server_cut_pending = false;
      workers_from_servers(c);
    }
    finish_cut(c);
    cuts.erase(step);
  }
  // Asynchronous PS cut: worker i resumes at minibatch a_i = min over shards of its acked count
  // (its later minibatches, in flight or being computed, are computed and sent again).
  void workers_from_servers(Checkpoint& c);
  // Every node has saved: the run-wide state is that of the last node's cut.
  void finish_cut(Checkpoint& c);

  explicit RunState(const Experiment& e, const RunHooks& h) : x(e), hooks(h) {}
  // Messages sent but never received (a run stopped early, a deadlock, a dead receiver) are still
  // owned here: freed when the run is over (after the Engine, which never frees payloads).
  std::set<Message*> in_flight;
  ~RunState() {
    for (Message* m : in_flight) delete m;
  }

  // The real reduction, once per collective, in rank order over its members.
  void reduce(Collective& c);

  double wall() const { return std::chrono::duration<double>(Clock::now() - wall_start).count(); }

  // Ends the run early: the calling actor unwinds (StopRun), guarded() kills every other actor.
  [[noreturn]] void stop_now(const std::string& reason, const std::string& detail, int worker = -1,
                             int64_t step = -1);
  [[noreturn]] void diverge(const std::string& detail, int worker, int64_t step) {
    stop_now("diverged", detail, worker, step);
  }
  // Called whenever an actor starts an event (compute, send, receive, local work, commit): a signal
  // or the wall-clock limit stops the run there. A few loads and one clock read: cheap.
  void check_stop();

  std::shared_ptr<Vec> gradient_buffer() { return recycled(grad_pool); }
  // A P-element buffer for a model snapshot nobody else holds any more (its contents are stale).
  std::shared_ptr<Vec> snapshot_buffer() { return recycled(snapshot_pool); }
  std::shared_ptr<Vec> recycled(std::vector<std::shared_ptr<Vec>>& pool);

  void evaluate(double now);

  // One shard committed. A global update is complete once all K shards have committed (shards of
  // synchronous algorithms commit step t before any commits t+1), and only then is it evaluated.
  void committed(double now);
  // Hands freed heap pages back to the system when the resident size has grown (sim/run_state.cpp).
  void release_free_memory();
  double trimmed_rss = 0;  // resident bytes at the first check, then after each release
};


// Runs one actor body; an exception is recorded and stops the whole simulation.
template <class F>
void guarded(RunState& s, F&& body) {
  try {
    body();
  } catch (const simgrid::ForcefulKillException&) {
    throw;  // the actor is being killed: let SimGrid unwind it
  } catch (const StopRun&) {
    sg4::Actor::kill_all();  // s.stop says why
  } catch (...) {
    if (!s.error) {
      s.error = std::current_exception();
      s.error_where = s.actor_name() + " at simulated time " + std::to_string(sg4::Engine::get_clock()) + " s";
    }
    sg4::Actor::kill_all();
  }
}

}  // namespace dtsim::sim::detail
