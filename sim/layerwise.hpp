// Layer-wise timing in the runtime (docs/timing.md): the pieces the worker and server contexts use
// when algorithm.overlap is not "none".
//   LayerPlan     per run: the model's layers, the phase shares of a step, the tensors' ready
//                 order, DDP's buckets, the per-tensor placement on shards (sim/overlap_plan.hpp).
//   StepChain     one minibatch's compute as a chain of SimGrid executions, forward 1..L then
//                 backward L..1, on a compute actor of the worker's host; each tensor's gradient is
//                 ready when its layer's backward ends, and listeners (a DDP reducer, a Horovod
//                 cycle, a per-tensor pusher) hear of it then: Caffe's after-backward callbacks.
//   IncomingParams  a pull arriving piece by piece: which tensors are in.
//   HorovodState  per run: the tensors each rank has ready in the current collective, for the
//                 coordinator's responses.
//   SyncStepState per run and step: the per-tensor synchronous server's pieces and the one real
//                 update of the step.
// Internal to sim/.
#pragma once
#include <simgrid/s4u.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/api.hpp"
#include "sim/overlap_plan.hpp"

namespace dtsim::sim::detail {

namespace sg4 = simgrid::s4u;

// A condition the actors of one run can wait for (a SimGrid mutex + condition variable). No RAII
// lock: every mutex operation is a simcall, and an actor killed while in one (the run stopping:
// guarded() kills every actor) must not be inside a destructor then, or the kill is fatal.
class Notifier {
 public:
  Notifier() : m_(sg4::Mutex::create()), cv_(sg4::ConditionVariable::create()) {}
  template <class Pred>
  void wait_until(Pred pred) {
    m_->lock();
    while (!pred()) cv_->wait(m_);  // a kill unwinds from here with the mutex left as it is
    m_->unlock();
  }
  void notify() {
    m_->lock();
    cv_->notify_all();
    m_->unlock();
  }

 private:
  sg4::MutexPtr m_;
  sg4::ConditionVariablePtr cv_;
};

struct LayerPlan {
  OverlapSpec overlap;
  algo::Algorithm::LayerComm comm = algo::Algorithm::LayerComm::None;
  StepShape shape;
  PhaseShares shares;
  std::vector<size_t> ready;         // tensors in gradient-ready order
  std::vector<size_t> tensor_layer;  // tensor -> its layer
  std::vector<uint64_t> tensor_bytes;
  std::vector<std::vector<size_t>> buckets;  // ddp, launch order
  std::vector<size_t> bucket_of;             // tensor -> bucket
  std::vector<Piece> pieces;                 // per-tensor: pieces of every tensor on the shards
  std::vector<std::vector<size_t>> pieces_of_tensor;
  std::vector<std::vector<size_t>> pieces_on_shard;
  std::map<int64_t, size_t> piece_at;        // a piece's offset -> its index
  // Per worker rank (platform.workers, docs/timing.md): a CPU worker (speed given as a flop rate)
  // runs its collectives' reductions and copies on the cores its backward uses, at
  // memory_bandwidth; compute slows by 1 + overlap_slowdown while its collectives run.
  std::vector<char> cpu;
  std::vector<double> memory_bandwidth, overlap_slowdown;
  bool trace_layers = true;                  // one span per layer phase (else per forward / backward)
  bool active() const { return overlap.layerwise(); }
  // Per-tensor pushes to a server, DDP buckets and Horovod fusion cycles: the tensors that leave are
  // pointers until a server or the all-reduce's reduction reads them, so a gradient's math is
  // awaited by its first reader, not where its forward ends (StepChain::math).
  bool math_to_first_reader() const {
    using K = OverlapSpec::Kind;
    using C = algo::Algorithm::LayerComm;
    return (overlap.kind == K::PerTensor && (comm == C::SyncServer || comm == C::AsyncServer)) ||
           ((overlap.kind == K::Ddp || overlap.kind == K::Horovod) && comm == C::AllReduce);
  }
};

// Builds the plan of a run from its model's layers (engine::ModelInfo), its shard ranges and the
// overlap settings; `basis` is how compute.time splits over the phases (phase_shares).
LayerPlan make_layer_plan(const engine::ModelInfo& model, const OverlapSpec& overlap, algo::Algorithm::LayerComm comm,
                          int shards, const std::vector<size_t>& shard_off, const std::vector<size_t>& shard_len,
                          ShareBasis basis);

// The trace tag of Horovod's negotiation messages.
constexpr int kNegotiationTag = -2;

struct StepChain : std::enable_shared_from_this<StepChain> {
  const LayerPlan* plan = nullptr;
  // The gradient's math is issued to the compute pool when the parameters are complete (at once,
  // or for compute_async(Incoming&) once the pull is all in: `needs_math`, and `math` is set then);
  // `math` awaits it (and checks its loss), in the compute actor between the forward and the
  // backward, so no tensor of the gradient leaves before it is computed — except under per-tensor
  // pushes to a server, where the tensors that leave are only pointers until the server reads
  // them (LayerPlan::math_to_first_reader): there `math` stays pending past the forward and the
  // first reader of the gradient settles it (settle_math): a synchronous server's update, an
  // asynchronous server's receipt of the worker's whole range (RunState::settle_gradient), the
  // algorithm's wait on the gradient (ChainFuture), the worker's next minibatch. The simulation
  // then goes on through the backward and the pushes while the gradient is computed. Each of those
  // points is one in simulated time, the same with any number of pool threads, so the run's outputs
  // are too (docs/engine.md, "Threads").
  bool needs_math = false;
  std::function<void()> math;
  double amount = 0;  // flops of the whole minibatch on the worker's host
  algo::Gradient g;   // the gradient (its buffer is filled before the backward starts)
  // Layer-wise all-reduces of g that have not yet handed in their part (a Horovod rank hands it in
  // at its first negotiated cycle, possibly after the backward), and the copy of g they hand in
  // instead when the algorithm got g before (it may write to it; RunState::release_contribution).
  int uncontributed = 0;
  std::shared_ptr<const engine::Vec> frozen;
  algo::Payload contribution(size_t P) {
    --uncontributed;
    return frozen ? algo::Payload::whole(frozen, P) : g.payload(P);
  }
  int64_t minibatch = 0;
  // compute_async(Incoming&): layer l's forward waits until layer_in[l]; empty: all in already.
  std::vector<char> layer_in;
  std::shared_ptr<const engine::Vec> params;  // kept alive while the chain runs
  std::vector<double> ready_at;  // per tensor: simulated time its gradient was ready (-1: not yet)
  size_t ready_count = 0;
  std::vector<std::function<void(size_t tensor)>> listeners;  // cleared once every tensor is ready
  Notifier note;
  bool finished = false;  // (no handle on its compute actor: the actor's code holds the chain)
  double t0 = 0, t1 = 0;
  // Calls f for every tensor ready so far (in ready order) and for each later one as it becomes
  // ready (in the compute actor, at that simulated time).
  void listen(std::function<void(size_t tensor)> f);
  void mark_ready(size_t tensor, double now);
  void wait_finished() {
    note.wait_until([this] { return finished; });
  }
  // Awaits the gradient's math if it is still pending (see `math`).
  void settle_math() {
    if (!math) return;
    const std::function<void()> f = std::move(math);
    math = nullptr;
    f();
  }
};

// A pull_async: the pieces of the parameter vector received so far.
struct IncomingParams {
  const LayerPlan* plan = nullptr;
  int tag = 0;
  size_t P = 0;
  std::vector<size_t> tensor_offsets;  // sorted, for coverage
  std::vector<size_t> covered;         // per tensor: elements received
  size_t covered_total = 0;
  std::vector<algo::Message> parts;
  std::shared_ptr<const engine::Vec> full;  // assembled once complete (real mode)
  bool complete() const { return covered_total >= P; }
  // Records a message covering [offset, offset + count); returns the tensors it completed.
  std::vector<size_t> add(algo::Message m, size_t offset, size_t count);
};

// Horovod's coordinator state for one collective (all ranks): which tensors each rank has ready
// and when, and which the coordinator has already answered.
struct HorovodCollective {
  std::vector<std::vector<double>> ready_at;  // [rank][tensor], -1: not yet
  std::vector<char> answered;
  size_t answered_count = 0;
  std::vector<double> request_time;                      // [rank]: when it sent this cycle's request
  std::vector<std::vector<std::vector<size_t>>> cycles;  // per cycle: the fused groups of its response
  size_t ranks_done = 0;
  bool any_ready_everywhere(size_t N) const;
};
struct HorovodState {
  std::map<uint64_t, HorovodCollective> collectives;  // by all-reduce sequence number
  Notifier note;                                      // a tensor became ready on some rank
};

// The per-tensor synchronous server's step (all shards together): the workers' gradients as they
// come, the pieces aggregated so far, and the one real update of the whole model.
struct SyncStepState {
  int shards_entered = 0;
  std::vector<std::function<void()>> apply;  // per shard: its mean + optimizer step (real mode)
  std::vector<engine::VecView> mean;         // per shard: where its mean goes
  std::vector<std::shared_ptr<const engine::Vec>> grads;  // per worker: its gradient buffer
  size_t pieces_done = 0;
  int shards_done = 0;
  bool applied = false;
  std::shared_ptr<engine::Vec> snapshot;  // the updated model the replies carry (filled at the update)
};

struct SyncSteps {
  std::map<int64_t, SyncStepState> steps;  // by reply step
  Notifier note;                           // a step's update is applied
};

}  // namespace dtsim::sim::detail
