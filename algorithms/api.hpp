// The cluster API: what an algorithm sees of the simulated cluster. No SimGrid types here.
//
// An algorithm is a pair of straight-line functions, like an S4U actor: `worker(Worker&)` runs on
// every worker host, `server(Server&)` on every parameter-server shard (PS algorithms only).
// Everything that takes simulated time goes through these contexts:
//
//   compute        — a real minibatch gradient at the given parameters (at their value when the
//                    call is made, whatever the caller does with its buffer afterwards: the runtime
//                    computes from a copy when it defers the math to a thread, compute.pool); its
//                    simulated duration comes from the timing model and runs on the worker's host
//                    (stragglers slow it down).
//   push / pull    — PS traffic, one message per shard, all shards concurrently.
//   send / recv    — point-to-point messages between workers and shards.
//   *_async        — start now, wait() later: this is how an algorithm says what overlaps.
//   layer-wise     — push(g), allreduce_async(g), pull_async and compute_async(Incoming) take the
//                    pending gradient or parameters themselves, so the runtime can overlap the
//                    communication with the backward that produces them, tensor by tensor, the way
//                    algorithm.overlap says (DDP buckets, Horovod fusion cycles, MXNet per-tensor
//                    push/pull; docs/timing.md). With overlap "none" each is exactly the plain form
//                    after the whole backward.
//
// Payloads carry real buffers by shared pointer (never copied on the wire); their simulated size is
// 4 bytes per element. In timing-only mode (`real() == false`) buffers are empty and only sizes,
// counts and times exist, so algorithms must never touch buffer contents without checking real().
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/optim.hpp"
#include "engine/vec.hpp"

namespace dtsim::algo {

// Plugin ABI version (algorithms/plugin.hpp, docs/plugins.md): a plugin built against other headers
// is refused. Bump it in the same commit as any change to this file, algorithms/common.hpp or a
// header they include that changes a class layout, a virtual function, a signature or what an
// inline function does.
inline constexpr int kPluginAbiVersion = 3;

using engine::ConstVecView;
using engine::Vec;
using engine::VecView;

// A contiguous range of a shared, immutable buffer. `count` elements are "on the wire" even when
// `buf` is null (timing-only mode).
struct Payload {
  std::shared_ptr<const Vec> buf;
  size_t offset = 0;
  size_t count = 0;
  // Simulated bytes per element on the wire: 4 (fp32) unless the sender compressed the values it
  // put in `buf` (e.g. 0.5 for 4-bit quantisation). Sends and all-reduces size their transfers by it.
  double element_bytes = 4;
  bool empty() const { return buf == nullptr; }
  ConstVecView view() const { return buf ? buf->view(offset, count) : ConstVecView{}; }
  Payload slice(size_t off, size_t n) const { return {buf, offset + off, n, element_bytes}; }
  static Payload whole(std::shared_ptr<const Vec> b, size_t count) { return {std::move(b), 0, count}; }
};

struct Message {
  int src = -1;        // sender: worker rank >= 0, or server shard k as -(k+1)
  int tag = 0;         // algorithm-defined
  int64_t step = 0;    // algorithm-defined (iteration, clock, round)
  Payload data;
  double bytes = 0;    // simulated size on the wire
  double sent_at = 0;  // simulated time the send started
  // Layer-wise transport (docs/timing.md): the element offset of `data` in the full parameter
  // vector when the message carries one piece of it (a tensor or part of one); -1 for an ordinary
  // message (a shard's messages then cover the shard's whole range). Set by the runtime.
  int64_t offset = -1;
};

// A minibatch gradient. `buf` is null in timing-only mode.
struct Gradient {
  std::shared_ptr<Vec> buf;
  float loss = 0;
  int samples = 0;
  int64_t step = 0;  // the worker's local minibatch counter
  Payload payload(size_t count) const { return Payload::whole(buf, count); }
};

// Something started now and finished later (a compute, a send, a receive).
class Pending {
 public:
  struct Impl {
    virtual ~Impl() = default;
    virtual void wait() = 0;
    virtual bool test() = 0;
  };
  Pending() = default;
  explicit Pending(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  void wait() {
    if (impl_) impl_->wait();
  }
  bool done() { return !impl_ || impl_->test(); }

 private:
  std::shared_ptr<Impl> impl_;
};

// A pending value: wait() returns it.
template <class T>
class Future {
 public:
  struct Impl : Pending::Impl {
    virtual T& get() = 0;
  };
  Future() = default;
  explicit Future(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  T& wait() {
    impl_->wait();
    return impl_->get();
  }
  bool done() { return impl_->test(); }
  bool valid() const { return impl_ != nullptr; }
  // The runtime's side of it (sim/ recognises its own implementations: layer-wise timing).
  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// Checkpoint and resume (docs/robustness.md, "Checkpoint and resume"): named state one node saves
// at a cut and gets back on resume. Host copies; keys are per node. get* throw RuntimeError when a
// key is absent or its size differs.
class State {
 public:
  virtual ~State() = default;
  virtual void put(const std::string& key, ConstVecView v) = 0;  // copies now (empty view: stored empty)
  virtual void put_int(const std::string& key, int64_t v) = 0;
  virtual void get(const std::string& key, VecView out) const = 0;
  virtual int64_t get_int(const std::string& key) const = 0;
  virtual bool has(const std::string& key) const = 0;
};

// What both roles share.
class Node {
 public:
  virtual ~Node() = default;
  virtual int workers() const = 0;       // N
  virtual int shards() const = 0;        // K parameter-server shards (0 without a PS)
  virtual bool real() const = 0;         // real compute (false: timing-only)
  virtual double now() const = 0;        // simulated seconds
  virtual size_t num_params() const = 0; // |W| in elements
  virtual uint64_t seed() const = 0;
  // Synchronous algorithms run exactly this many steps: ceil(sample budget / (N * batch)).
  virtual int64_t sync_steps() const = 0;
  // Shard k's contiguous parameter range [shard_offset(k), shard_offset(k) + shard_size(k)).
  virtual size_t shard_offset(int k) const = 0;
  virtual size_t shard_size(int k) const = 0;

  // A fresh full-size buffer on the compute device (empty in timing-only mode).
  virtual Vec new_buffer() const = 0;
  // The compute device (compute.device) that new_buffer(), gradients and the global model live on:
  // where an algorithm allocates its other state (optimizer state, shard-sized scratch). Cpu in
  // timing-only mode.
  virtual engine::Device device() const = 0;
  // The initial parameters (identical on every node: the seed's initialisation). Shared, immutable.
  virtual std::shared_ptr<const Vec> initial_params() const = 0;
  // Simulated local work of `flops` floating-point operations on this node's host (blocking).
  virtual void work(double flops) = 0;

  // Point-to-point messaging. Destinations: worker rank i, or server shard k. A send that is never
  // waited for still completes (the runtime waits for it when the node's function returns).
  virtual Pending send_to_worker(int rank, Message m) = 0;
  virtual Pending send_to_server(int shard, Message m) = 0;
  // Next message with this tag from the node's inbox (others are kept for later receives).
  virtual Message recv(int tag) = 0;
  virtual Future<Message> recv_async(int tag) = 0;
  // Next message of any tag, kept ones first, then in arrival order.
  virtual Message recv_any() = 0;

  // Failures (platform.failures, docs/platforms.md "Failures"). A failed worker is detected by the
  // survivors after a heartbeat timeout: from then on worker_lost(rank) is true (for good, even if
  // its host recovers), and each node gets one {tag = kWorkerLost, src = rank} message. recv(tag)
  // keeps those messages aside; recv_or_lost(tag) returns either the next `tag` message or the next
  // kWorkerLost notification, whichever comes first. Without failures they never occur.
  virtual bool worker_lost(int rank) const { return (void)rank, false; }
  virtual Message recv_or_lost(int tag) { return recv(tag); }

  // Training-set size in samples (epoch boundaries: samples / train_size()).
  virtual uint64_t train_size() const = 0;
  // Training progress, for learning-rate schedules (algorithms/common.hpp, "learning-rate
  // schedules"): the run's sample budget (training.samples), the configured per-worker minibatch
  // size (training.batch_size) and the samples whose gradients all workers together have computed
  // so far (lost ones included).
  virtual uint64_t sample_budget() const = 0;
  virtual int configured_batch_size() const = 0;
  virtual uint64_t samples_done() const = 0;
  // Test observability: reports an intermediate value (e.g. a worker's model right after a merge)
  // to RunHooks::observe. No effect and no simulated cost in normal runs; `v` is empty in
  // timing-only mode.
  virtual void observe(const std::string& what, int64_t step, ConstVecView v) {
    (void)what, (void)step, (void)v;
  }
  // Whether layer-wise timing applies to this run (algorithm.overlap other than "none" for this
  // algorithm's traffic, docs/timing.md): for algorithms whose step order differs between the two.
  virtual bool layerwise() const { return false; }

  // Checkpoint and resume (opt-in: Algorithm::checkpointable()). Every node calls checkpoint() at
  // the end of each of its steps with `step` = the step it runs next (for synchronous algorithms:
  // synchronous steps of N x batch samples done). A cheap no-op unless `step` is a cut (the first
  // step at which training.checkpoint_every_samples is crossed); then `save` (may be empty) stores
  // this node's state now, and once every worker and shard has saved that step the runtime writes
  // <run dir>/checkpoint.dtck. Asynchronous algorithms pass their own step counter: the cut is each
  // node's next call after the threshold was crossed (docs/robustness.md).
  virtual void checkpoint(int64_t step, const std::function<void(State&)>& save) { (void)step, (void)save; }
  // On `dtsim run --resume`: the step this node restarts from and the state it saved (0 and null
  // on a fresh run). initial_params() is then the global model of the checkpoint.
  virtual int64_t resume_step() const { return 0; }
  virtual const State* resumed() const { return nullptr; }
};

enum class Reduce { Mean, Sum };

// Parameters arriving from the servers (Worker::pull_async): wait() returns the full vector (null in
// timing-only mode); compute_async(Incoming&) starts each layer's forward as soon as that layer's
// tensors are in.
using Incoming = Future<std::shared_ptr<const Vec>>;

class Worker : public Node {
 public:
  virtual int rank() const = 0;
  // 0 on the first run of worker(); k after the k-th restart (Algorithm::on_failure() == Restart)
  // or rejoin (Elastic).
  virtual int incarnation() const { return 0; }
  // Whether this worker publishes the global model (publish_global) of an algorithm without
  // servers: rank 0, or under on_failure "elastic" the lowest rank of the current group (so that
  // losing worker 0 does not stop the global model; docs/platforms.md, Failures).
  virtual bool leads() const { return rank() == 0; }
  virtual int batch_size() const = 0;
  // Asynchronous algorithms: reserve this worker's next minibatch from the shared sample budget.
  // Returns false once all workers together have claimed the budget.
  virtual bool claim_batch() = 0;
  // The index of this worker's next minibatch (its position in its own sample order): the number
  // of minibatches it has computed. After an asynchronous resume (checkpoint_at_servers) it is the
  // first one not applied by every shard, where a worker with its own step loop (SSP) restarts.
  virtual int64_t next_minibatch() const { return 0; }
  // Gradient of the loss on this worker's next minibatch at `params` (its sample order is fixed by
  // the seed, see engine::SampleOrder), as they are at the call; the call returns when the
  // simulated compute time has passed on this host. The math may run on another thread meanwhile
  // (compute.pool): results never depend on it.
  virtual Gradient compute(ConstVecView params) = 0;
  virtual Future<Gradient> compute_async(ConstVecView params) = 0;
  // The same at parameters still arriving from the servers (a pull_async): the math runs once all
  // of them are in; layer i's forward starts as soon as layer i's tensors are in (per-tensor
  // overlap), or the whole compute once the whole pull is in (otherwise).
  virtual Future<Gradient> compute_async(Incoming& params) = 0;

  // PS helpers: `push` sends slice k of `data` to shard k, all shards concurrently.
  virtual Pending push(const Payload& data, int tag, int64_t step) = 0;
  // Receives one message with `tag` from every shard and assembles the full vector (zero-copy
  // when K = 1). Null in timing-only mode.
  virtual std::shared_ptr<const Vec> pull(int tag) = 0;

  // Layer-wise PS traffic (algorithm.overlap, docs/timing.md):
  // push(g): the gradient g (still being computed) to the shards: under "per-tensor" each parameter
  // tensor leaves as soon as its layer's backward ends (split over the shards as MXNet's KVStore
  // does, input-side tensors first when "priority" is set); under "none" the whole gradient after
  // the whole backward, exactly as push(g.wait().payload(...)). Under "per-tensor" to synchronous
  // shards, wait() returns once the backward is over, the sends going on (as MXNet's asynchronous
  // push: the pull that follows cannot overtake them, and the next forward of a layer waits only
  // for that layer's tensors); otherwise once everything is sent.
  virtual Pending push(Future<Gradient>& g, int tag, int64_t step) = 0;
  // pull_async(tag): the reply to this worker's push, tensor by tensor as the shards answer them;
  // wait() is pull(tag).
  virtual Incoming pull_async(int tag) = 0;

  // All-reduce among all N workers (under on_failure "elastic": the current group's members, see
  // Algorithm::OnFailure): every worker calls it (the i-th call of each worker forms the
  // i-th collective) with its contribution. Mean is weighted: Σ w_i x_i / Σ w_i. The real reduction
  // happens once, in rank order (bitwise reproducible), and every worker receives the same immutable
  // result (null in timing-only mode). The simulated transfers follow the collective's algorithm
  // step by step (ring: 2(N-1) steps of |x|/N bytes) on a communication actor of the worker's host,
  // so the worker can compute while it runs: start it, compute, then wait().
  virtual Future<std::shared_ptr<const Vec>> allreduce_async(const Payload& mine, Reduce op = Reduce::Mean,
                                                              double weight = 1.0) = 0;
  std::shared_ptr<const Vec> allreduce(const Payload& mine, Reduce op = Reduce::Mean, double weight = 1.0) {
    return allreduce_async(mine, op, weight).wait();
  }
  // The all-reduce of the gradient g (still being computed), scheduled against its backward by
  // algorithm.overlap (docs/timing.md): "ddp" all-reduces PyTorch DDP's buckets one after another
  // as the backward fills them, "horovod" the tensors every rank has ready at each fusion cycle,
  // "none" the whole gradient after the whole backward (exactly allreduce_async(g.wait().payload)).
  // The real reduction still happens once, over the whole vector, in rank order.
  virtual Future<std::shared_ptr<const Vec>> allreduce_async(Future<Gradient>& g, Reduce op = Reduce::Mean,
                                                              double weight = 1.0) = 0;

  // Simulated cost of one full-model update on this worker (a local optimizer step or a merge of
  // model copies): |W| * (platform.update_flops_per_param + terms - 1) flops on its host, like
  // Server::update_cost. Blocking; never call it while this worker's own compute_async runs.
  virtual void update_cost(int terms = 1) = 0;
  // Algorithms without servers: writes `params` as the global model (the one the runtime evaluates
  // and writes to final_params.npy) and counts one global update, like Server::committed. Exactly
  // one worker calls it per update: the one that leads(). `params` is ignored in timing-only mode.
  virtual void publish_global(ConstVecView params) = 0;
  // Per-worker batch size (heterogeneous clusters, e.g. CoCoD-SGD's proportional sampling): this
  // worker's later minibatches have `b` samples; its compute time scales with b. Worker i keeps its
  // own sample stream (positions i, i+N, ...), so workers never share a sample within an epoch.
  virtual void set_batch_size(int b) = 0;
  // Samples per simulated second worker `rank` computes at (its host speed and persistent straggler
  // slowdown; time-varying profiles not included): what proportional batch sizes are based on.
  virtual double compute_rate(int rank) const = 0;
};

class Server : public Node {
 public:
  virtual int shard() const = 0;
  virtual size_t offset() const { return shard_offset(shard()); }
  virtual size_t size() const { return shard_size(shard()); }
  // This shard's range of the global model (empty in timing-only mode). The runtime evaluates the
  // global model and writes final_params.npy from it.
  virtual VecView global_range() = 0;
  // Publishes an immutable copy of this shard's range, to send to many workers without copies.
  virtual std::shared_ptr<const Vec> snapshot() = 0;
  // Simulated cost of one optimizer step over this shard after aggregating `gradients` gradients.
  virtual void update_cost(int gradients) = 0;
  // The global model changed (one global update): the runtime counts updates and evaluates the
  // global model when the samples computed so far have crossed an evaluation point.
  virtual void committed() = 0;
  // One step of the synchronous gradient server (algorithms/common.hpp, sync_gradient_server):
  // the gradients of `tag` from every (surviving) worker are averaged in rank order over this
  // shard's range into `mean` and apply() is called (real mode only), the optimizer's cost is
  // charged, the update committed, and every worker gets the updated range (tag kParams) when
  // reply_model, else a zero-byte kAck, with step `reply_step`. The base version
  // (algorithms/common.cpp) does exactly that for the whole range at once; the runtime does it
  // tensor by tensor under algorithm.overlap "per-tensor" (each tensor aggregated, updated and
  // answered as soon as its N pushes are in, on the shard that holds it; docs/timing.md), and
  // returns once this step's update is applied on every shard.
  virtual void sync_step(int tag, int64_t reply_step, bool reply_model, VecView mean, const std::function<void()>& apply);
};

// An algorithm instance: created once per run from the `algorithm` section of the config.
// The run ends when every worker function has returned: server functions may loop forever and are
// stopped then, so a worker must wait for whatever acknowledgement its last update needs.
class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual bool needs_servers() const = 0;
  // Full-size parameter buffers each worker keeps alive at once (its model copy, gradient, momentum,
  // ...). The runtime refuses a run whose estimate exceeds the machine's memory (docs/robustness.md).
  virtual double buffers_per_worker() const { return 2.0; }
  virtual void worker(Worker& w) = 0;
  virtual void server(Server&) {}
  // What the runtime does when a worker's host fails (platform.failures, docs/platforms.md):
  //   Drop     the worker dies with its in-flight work and never comes back; the survivors learn of
  //            it after the detection timeout (Node::worker_lost, recv_or_lost).
  //   Restart  as Drop, but when the host recovers worker() runs again with incarnation() > 0, its
  //            initial_params() being the global model at that time (asynchronous PS algorithms).
  //   Wait     the host is frozen until it recovers: its actors pause and resume where they were
  //            (the survivors wait at their next synchronisation); a failure that never recovers is
  //            refused as input. A failed server shard is fatal except under Wait (no replication).
  //   Elastic  all-reduce algorithms (TorchElastic / Horovod Elastic): after the detection timeout
  //            the survivors abandon every all-reduce the lost worker belongs to and run it again
  //            among themselves (a ring of N-1, averaged over them); later all-reduces have N-1
  //            members. A recovered worker rejoins at the next round boundary: worker() runs again
  //            (incarnation() > 0) from the state a survivor saves with Node::checkpoint, after the
  //            model's transfer. The algorithm's code is unchanged (sim/elastic.hpp).
  enum class OnFailure { Drop, Restart, Wait, Elastic };
  virtual OnFailure on_failure() const { return OnFailure::Drop; }
  // True when worker() and server() call Node::checkpoint at their step boundaries and resume from
  // resume_step()/resumed(). The runtime refuses training.checkpoint_every_samples and --resume
  // otherwise (docs/robustness.md, "How to make an algorithm checkpointable").
  virtual bool checkpointable() const { return false; }
  // Why this instance is not checkpointable although the algorithm is with its defaults (a setting
  // that leaves no cut); empty otherwise. Part of the refusal message.
  virtual std::string checkpoint_refusal() const { return {}; }
  // Asynchronous PS algorithms: the cut is taken by the K server shards alone, each at its first
  // checkpoint() call after the threshold was crossed (the `step` it passes is not used). Each
  // shard saves, besides its own state, put_int("acked.<rank>", a) for every worker: that worker's
  // minibatches 0..a-1 are applied to this shard. On resume worker i restarts at minibatch
  // min over shards of its acked count, from the checkpoint's global model (each shard's range as
  // of its own cut); a shard must not apply a minibatch twice (skip steps below its acked count).
  virtual bool checkpoint_at_servers() const { return false; }
  // Which of its traffic layer-wise timing applies to (algorithm.overlap, docs/timing.md):
  //   AllReduce    a per-step all-reduce of the gradient (allreduce_async(Future<Gradient>&)):
  //                overlap kinds none | ddp (default) | horovod
  //   SyncServer   per-step pushes to a synchronous gradient server (push(Future<Gradient>&) and
  //                Server::sync_step): none | per-tensor (default)
  //   AsyncServer  per-step pushes to servers that apply each worker's gradient on arrival: none |
  //                per-tensor (default; a shard applies a worker's gradient once all of its
  //                range is in, and answers with its whole range)
  //   None         model exchanges between rounds, or of values computed after the step: overlap
  //                does not apply (resolved to none; a warning if another kind is asked for)
  enum class LayerComm { None, AllReduce, SyncServer, AsyncServer };
  virtual LayerComm layer_comm() const { return LayerComm::None; }
  // True when every worker runs the same program on the same schedule and the servers treat the
  // workers alike (each step waits for all N and answers all N at once): then identical workers
  // on a star can be simulated as one (platform.workers.grouping "identical", docs/platforms.md,
  // "Identical workers simulated once"). An algorithm whose servers answer workers one by one (ASGD)
  // or whose workers differ by rank must keep the default.
  virtual bool interchangeable_workers() const { return false; }
};

// A hyper-parameter, for `dtsim algorithms` and the docs.
struct ParamDoc {
  std::string key;
  std::string default_value;
  std::string doc;
};

// `overlap`, the key every algorithm takes (read by the loader, scheduled by the runtime: docs/timing.md).
inline ParamDoc overlap_doc() {
  return {"overlap", "per algorithm",
          "how each step's communication overlaps backward: {\"kind\": none|ddp|horovod|per-tensor, ...}; default ddp "
          "for all-reduces of gradients, per-tensor for pushes to servers, none where it does not apply (docs/timing.md)"};
}

struct AlgorithmInfo {
  std::string name;
  std::string summary;
  std::vector<ParamDoc> params;
  // Reads the algorithm's own keys (the loader already consumed "name") and validates them.
  std::function<std::unique_ptr<Algorithm>(ObjectReader&)> make;
};

const std::vector<AlgorithmInfo>& registry();
const AlgorithmInfo* find_algorithm(const std::string& name);
// The loader's check of algorithm.on_failure for an algorithm that does not document the key (its
// failure policy is fixed): an InputError naming that policy and where "elastic" applies.
void refuse_fixed_on_failure(ObjectReader& r, const AlgorithmInfo& info, const Algorithm& a);

// Reads lr / momentum / weight_decay / nesterov with the given defaults (shared by every algorithm).
engine::SgdConfig read_sgd(ObjectReader& r, const engine::SgdConfig& defaults);
std::vector<ParamDoc> sgd_param_docs(const engine::SgdConfig& defaults);

// Message tags used by the PS algorithms.
enum Tag : int { kGradient = 1, kParams = 2, kDone = 3, kPullRequest = 4, kModel = 5 };
// Sent by the runtime (never by algorithms): a worker's failure was detected; src = its rank.
constexpr int kWorkerLost = -100;

}  // namespace dtsim::algo
