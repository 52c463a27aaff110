// A worker's context (algo::Worker): its minibatch computes on its host (the real math at once,
// the simulated time from the timing model), parameter-server pushes and pulls, and all-reduces
// run by a communication actor of its host while the worker goes on. Under layer-wise timing
// (algorithm.overlap, docs/timing.md) a compute is a chain of per-layer executions and the
// gradient's communication starts as its tensors become ready (sim/worker_layerwise.cpp).
// Internal to sim/.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/dataset.hpp"
#include "sim/actor_pool.hpp"
#include "sim/layerwise.hpp"
#include "sim/node_context.hpp"

namespace dtsim::sim::detail {

struct LayerAllreduce;   // sim/worker_layerwise.cpp
struct IncomingFuture;

class WorkerCtx final : public NodeImpl<algo::Worker> {
 public:
  WorkerCtx(RunState& s, int rank)
      : NodeImpl(s, s.hosts.workers[static_cast<size_t>(rank)], s.worker_inbox[static_cast<size_t>(rank)], rank,
                 s.worker_host_index[static_cast<size_t>(rank)]),
        rank_(rank),
        slowdown_(s.x.platform.slowdown(rank)),
        jobs_(s, host_, "worker-" + std::to_string(rank)) {}

  // A run stopped mid-step leaves chains whose listeners hold their exchanges, which hold them.
  ~WorkerCtx() override;

  int rank() const override { return rank_; }
  int incarnation() const override { return incarnation_; }
  int64_t next_minibatch() const override { return k_; }
  // A restarted worker (Algorithm::OnFailure::Restart) starts from the global model of that time.
  std::shared_ptr<const Vec> initial_params() const override { return incarnation_ > 0 ? restart_params_ : s_.init; }
  // platform.failures: samples this worker computed but never sent (lost if its host fails now).
  int64_t unsent_samples() const { return unsent_samples_; }
  // Its host came back: the next run of worker() is incarnation k+1, with a fresh inbox (nothing
  // sent to the failed incarnation is delivered to the new one).
  void restart(sg4::Mailbox* inbox);
  int batch_size() const override { return b_; }
  bool claim_batch() override {
    if (!s_.plan.active()) receive_pulls();  // without layer-wise timing the reply is in before the claim
    if (s_.claimed >= s_.budget) return false;
    s_.claimed += static_cast<uint64_t>(b_);
    return true;
  }
  void set_batch_size(int b) override {
    if (b < 1) throw RuntimeError("set_batch_size: batch size must be >= 1, got " + std::to_string(b));
    b_ = b;
  }
  double compute_rate(int rank) const override;
  void update_cost(int terms) override {
    work(static_cast<double>(s_.P) * (s_.x.platform.update_flops_per_param + std::max(0, terms - 1)));
  }
  // Rank 0, or under on_failure "elastic" the lowest rank of the group (sim/elastic.hpp).
  bool leads() const override { return s_.elastic ? s_.elastic->leader() == rank_ : rank_ == 0; }
  void publish_global(engine::ConstVecView params) override {
    if (s_.real && params.size) engine::ops::copy(s_.global.view(), params);
    s_.committed(sg4::Engine::get_clock());
  }

  Gradient compute(engine::ConstVecView params) override;

  Future<Gradient> compute_async(engine::ConstVecView params) override;

  Pending push(const Payload& data, int tag, int64_t step) override;

  std::shared_ptr<const Vec> pull(int tag) override;

  algo::Future<std::shared_ptr<const Vec>> allreduce_async(const Payload& mine, algo::Reduce op,
                                                            double weight) override;

  // Layer-wise forms (sim/worker_layerwise.cpp).
  Future<Gradient> compute_async(algo::Incoming& params) override;
  Pending push(Future<Gradient>& g, int tag, int64_t step) override;
  algo::Incoming pull_async(int tag) override;
  algo::Future<std::shared_ptr<const Vec>> allreduce_async(Future<Gradient>& g, algo::Reduce op, double weight) override;
  // Simulated time this worker was busy computing (its minibatches) or updating (work()) until t,
  // spans still running included (sim/busy_spans.hpp); the rest of its run is communication not
  // hidden behind compute (exposed_comm_s).
  double busy_at(double t) const { return compute_s_ + work_s_ + busy_open_.busy(t); }
  // A pull_async of this worker: receives what is still missing (blocking) and assembles it.
  void complete_pull(IncomingFuture& f);
  // A checkpoint cut: every pull of this worker is received first.
  void before_cut() override { receive_pulls(); }
  void checkpoint(int64_t step, const std::function<void(algo::State&)>& save) override {
    if (s_.elastic) elastic_checkpoint(step, save);  // a rejoin at a round boundary (sim/elastic.cpp)
    save_checkpoint(step, save);
  }
  // A rejoining worker (on_failure "elastic") first receives the model from the leader's host.
  void wait_resume() override;
  void receive_pulls();

  WorkerSummary summary() const {
    return {s_.hosts.workers[static_cast<size_t>(rank_)]->get_name(), gradients_, samples_, compute_s_, comm_wait_,
            exposed_s()};
  }
  // exposed_comm_s so far: the worker's run until now (or its return) minus its busy time.
  double exposed_s() const {
    const double end = returned_at_ >= 0 ? returned_at_ : sg4::Engine::get_clock();
    return std::max(0.0, end - busy_at(end));
  }
  uint64_t minibatches() const { return gradients_; }
  // Its function returned (called by its actor): the idle helpers of its jobs exit.
  void mark_returned() {
    returned_at_ = sg4::Engine::get_clock();
    jobs_.close();
  }

  void save_counters(NodeCheckpoint& n) const override;
  void restore_counters(const NodeCheckpoint& n, int64_t step) override;

 private:
  // Simulated compute of one minibatch, in flops on this host (so speed profiles apply).
  double amount() const;

  // A minibatch's real gradient in the compute pool (RunState::pool, engine/compute_pool.hpp):
  // issued when its compute starts in simulated time, awaited when its span ends, before anything
  // reads the gradient. The math is that of the parameters as they were at the start.
  struct GradientMath {
    engine::ComputePool::Handle ticket;
    float loss = 0;  // written by the task
    int64_t k = 0;   // the minibatch
    bool checked = false;
  };
  using MathPtr = std::shared_ptr<GradientMath>;
  struct Minibatch {
    int64_t k = 0;
    uint64_t pos = 0;
    int b = 0;
  };
  // The minibatch's bookkeeping (its number, its samples) and its gradient's math issued; `owner`
  // as for issue_math.
  Gradient start_compute(engine::ConstVecView params, const std::shared_ptr<const Vec>& owner, MathPtr& math);
  Minibatch begin_minibatch(Gradient& g);
  // The real gradient at `params` (complete) into a fresh g.buf; null in timing-only mode. `owner`:
  // an immutable buffer holding `params` (a pull, an all-reduce result), kept alive until the math
  // has run; without one, a pool with more than one thread computes from a copy taken now, since
  // the caller may change its buffer before the compute's span ends (enforced here, not left to
  // the algorithms). One at a time per worker: the previous one is awaited first.
  MathPtr issue_math(const Minibatch& mb, engine::ConstVecView params, std::shared_ptr<const Vec> owner, Gradient& g);
  // Waits for it; sets g.loss; a loss that is not finite stops the run (diverged) here.
  void await_math(GradientMath& m, Gradient& g);
  Future<Gradient> compute_async_at(engine::ConstVecView params, const std::shared_ptr<const Vec>& owner);

  // ---- layer-wise timing (sim/worker_layerwise.cpp, sim/worker_horovod.cpp)
  std::shared_ptr<StepChain> new_chain();
  void start_chain(const std::shared_ptr<StepChain>& c);
  // Runs `body` (then `then`, also after an error) as an actor `name` of this host once the job
  // posted to `seq` before it has ended — one stream: this worker's collectives, or its
  // minibatches on the device (sim/actor_pool.hpp).
  void after(ActorPool::Sequence& seq, std::string name, std::function<void()> body, std::function<void()> then = {}) {
    jobs_.after(seq, {std::move(name), std::move(body), std::move(then)});
  }
  void run_chain(StepChain& c);
  Future<Gradient> chain_future(const std::shared_ptr<StepChain>& c);
  // pull_async: one more message of the pull (returns the tensors it completed), and the whole
  // vector once every piece is in.
  std::vector<size_t> receive_piece(IncomingFuture& f);
  void assemble(IncomingFuture& f);
  // The all-reduce contribution of collective `seq` (the real reduction once all its members' are
  // in, or with `defer` at its first reader: RunState::result_of); `samples`: the samples this
  // worker computed since its last contribution (elastic).
  void contribute(uint64_t seq, const Payload& mine, algo::Reduce op, double weight, int64_t samples = 0, bool defer = false);
  // ---- on_failure "elastic" (sim/elastic.cpp): collective `seq`'s transfers among its members,
  // run again whenever a member is lost, until every member's are done.
  void elastic_collective(size_t count, double element_bytes, uint64_t seq);
  // At each Node::checkpoint call: when this worker leads and a round boundary is reached, the
  // recovered workers rejoin from the state `save` writes.
  void elastic_checkpoint(int64_t step, const std::function<void(algo::State&)>& save);
  // This worker rejoins (called by the leader `from` before it starts again): resumes at `step`
  // from `state`, its next collective being `seq`.
  void rejoin_from(int from, int64_t step, std::unique_ptr<NodeCheckpoint> state, uint64_t seq);
  // One all-reduce's transfers of `count` elements in a communication actor of this host, with the
  // CPU's reductions and copies on a CPU worker; `label` names it on the timeline.
  void layer_collective(size_t count, double element_bytes, uint64_t seq, int label);
  // Memory traffic of `bytes` on this (CPU) worker's host: a copy or a reduction of a collective.
  void memory_work(double bytes);
  // platform.workers.overlap_slowdown: this worker's compute is slowed while a collective runs.
  void comm_begin();
  void comm_end();
  void ddp_allreduce(const std::shared_ptr<LayerAllreduce>& r);
  void horovod_allreduce(const std::shared_ptr<LayerAllreduce>& r);
  void horovod_cycles(LayerAllreduce& r);
  void negotiation_message(int from, int to, double bytes, double start, double end);

  // `span`: one compute span for the minibatch on the timeline (layer-wise chains trace their phases).
  void finish_compute(const Gradient& g, double t0, double t1 = -1, bool span = true);

  // The simulated transfers of all-reduce #seq, step by step, with the algorithm of
  // platform.collective (sim/collectives.cpp: ring, hierarchical, tree, recursive doubling).
  // `label` > 0: a bucket or fused group of a layer-wise all-reduce (the timeline names it);
  // `cpu`: the reductions load this host's CPU.
  // `members` (elastic): the collective's ranks, this one being members[index].
  void ring(size_t count, double element_bytes, uint64_t seq, int label = 0, bool cpu = false,
            const std::vector<int>* members = nullptr, int index = 0);
  // Whether ring() runs as one batched event (platform.collective.transfers "aggregated"; its
  // conditions: sim/collectives.hpp, aggregated_ring).
  bool aggregated_ring_applies(bool cpu, const std::vector<int>* members) const;

  int rank_;
  int incarnation_ = 0;
  std::shared_ptr<const Vec> restart_params_;
  double slowdown_;
  int b_ = s_.b;       // this worker's batch size (set_batch_size)
  uint64_t pos_ = 0;   // samples of this worker's stream consumed so far
  uint64_t ar_seq_ = 0;
  ActorPool::Sequence ring_seq_;  // its collectives, one after another
  int64_t k_ = 0;  // minibatches started
  uint64_t gradients_ = 0, samples_ = 0;
  double compute_s_ = 0;
  std::vector<size_t> idx_;   // the minibatch's samples, read by its math (one at a time)
  engine::Batch batch_;       // written by its math
  Vec params_copy_;           // issue_math's copy of parameters it does not own
  ActorPool::Sequence chain_seq_;       // its minibatches' compute chains, one at a time
  std::vector<std::weak_ptr<StepChain>> chains_;  // those not yet released (see ~WorkerCtx)
  int comm_active_ = 0;                 // collectives in progress (overlap_slowdown)
  sg4::ActorPtr interference_;          // the slowdown's load while they run
  double hvd_last_cycle_ = 0;           // Horovod: when this rank's last cycle started
  double hvd_loop_free_ = 0;            // Horovod: when its last cycle's all-reduces ended
  std::vector<std::weak_ptr<IncomingFuture>> pulls_;  // pull_async futures not yet received
  double returned_at_ = -1;             // when worker() returned (-1: not yet)
  // on_failure "elastic": collectives this worker has waited for, and how many at its last
  // checkpoint() call (a call after a collective is a round boundary); a rejoin's state and the
  // leader its model comes from (-1: none pending).
  uint64_t collectives_waited_ = 0, waited_at_checkpoint_ = 0;
  std::unique_ptr<NodeCheckpoint> rejoin_state_;
  int sync_from_ = -1;
  ActorPool jobs_;  // declared last: destroyed first (its helpers point at the sequences above)
};

// A layer-wise all-reduce (ddp buckets or horovod cycles): done when its last transfer is.
struct LayerAllreduce : algo::Future<std::shared_ptr<const Vec>>::Impl {
  WorkerCtx* self = nullptr;
  RunState* s = nullptr;
  std::shared_ptr<StepChain> chain;
  std::function<void(const std::string&, std::function<void()>)> block;  // WorkerCtx::block_on
  uint64_t seq = 0;
  algo::Reduce op = algo::Reduce::Mean;
  double weight = 1;
  bool contributed = false;
  std::vector<size_t> missing;  // ddp: per bucket, tensors not ready yet
  size_t next = 0;              // ddp: the next bucket to launch
  bool finished = false, joined = false;
  std::shared_ptr<const Vec> result;
  Notifier note;
  void wait() override {
    if (joined) return;
    chain->wait_finished();  // the backward: compute, not communication
    if (!finished) block("allreduce #" + std::to_string(seq) + " (layer-wise)", [this] { note.wait_until([this] { return finished; }); });
    joined = true;
    auto it = s->collectives.find(seq);
    result = s->result_of(it->second);
    s->fetched(it, self->rank());
  }
  bool test() override { return finished; }
  std::shared_ptr<const Vec>& get() override { return result; }
};

// A pull arriving piece by piece (pull_async). Under "none", or outside layer-wise timing, wait() is
// exactly pull(tag).
struct IncomingFuture : algo::Incoming::Impl {
  WorkerCtx* self = nullptr;
  IncomingParams st;
  bool layerwise = false, done = false;
  void wait() override { self->complete_pull(*this); }
  bool test() override { return done; }
  std::shared_ptr<const Vec>& get() override { return st.full; }
};

}  // namespace dtsim::sim::detail
