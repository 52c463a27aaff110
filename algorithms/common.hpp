// Building blocks shared by the algorithm files: PS server loops, model copies, local optimizers,
// a barrier, config readers and their ParamDocs. Algorithms stay straight-line code that reads
// like the paper's algorithm box; whatever two of them would otherwise copy lives here.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/api.hpp"
#include "engine/adamw.hpp"
#include "engine/delay_comp.hpp"
#include "engine/ops.hpp"

namespace dtsim::algo {

// Tags beyond api.hpp's.
enum : int {
  kAck = 16,      // zero-byte acknowledgement of a push (the PS applied it)
  kExchange = 17, // EASGD: a worker's model sent to the centre
  kClockDone = 18,
  kBarrier = 32,  // kBarrier + round of the dissemination barrier (up to 32 rounds)
};

// ------------------------------------------------------------------ buffers
inline ConstVecView view_of(const std::shared_ptr<const Vec>& v) { return v ? v->view() : ConstVecView{}; }
inline ConstVecView view_of(const Gradient& g) { return g.buf ? g.buf->view() : ConstVecView{}; }
// A full-size buffer of this node holding a copy of `src` (empty in timing-only mode).
Vec copy_of(const Node& n, ConstVecView src);
// A buffer of `count` elements on this node's compute device (empty in timing-only mode): every
// parameter-sized buffer an algorithm allocates comes from here or Node::new_buffer().
inline Vec new_vec(const Node& n, size_t count) { return n.real() ? Vec(count, n.device()) : Vec(); }
// dst = src when real (no-op in timing-only mode, where both are empty).
inline void assign(VecView dst, ConstVecView src) {
  if (dst.size) engine::ops::copy(dst, src);
}
// A shared immutable copy of `v` (to send or all-reduce while the worker keeps changing `v`).
std::shared_ptr<const Vec> snapshot_of(const Node& n, ConstVecView v);

// ------------------------------------------------------------------ PS servers
// One message with `tag` from every worker, returned in rank order (whatever the arrival order).
// With platform.failures, a worker whose loss is detected before its message arrives is left out
// (its late messages are dropped): the result then holds the survivors only, still in rank order.
std::vector<Message> gather_from_workers(Server& s, int tag);
// out = Σ_i msgs[i] / N, summed in rank order: bitwise reproducible.
void mean_in_rank_order(VecView out, const std::vector<Message>& msgs);
// Sends one immutable snapshot of this shard's global range to every worker (tag, step) and
// waits for the sends; or a zero-byte acknowledgement.
void broadcast_model(Server& s, int tag, int64_t step);
void broadcast_ack(Server& s, int64_t step);
// Receives one acknowledgement (kAck) from every shard.
void await_acks(Worker& w);

// The synchronous gradient server (SSGD's, reused by Pipe-SGD, OD-SGD and SSD-SGD on a PS):
//   for t < steps: wait for the N gradients of step t; W <- Opt(W, (1/N) Σ_i g_i) (rank order);
//                  commit; reply W_{t+1} to every worker when reply_model(t), else a zero-byte ack.
// Checkpointable: starts at s.resume_step() with its optimizer state restored, and offers a cut
// (Node::checkpoint(t + 1)) once the replies of step t are delivered.
void sync_gradient_server(Server& s, const engine::SgdConfig& opt, int64_t steps,
                          const std::function<bool(int64_t)>& reply_model);

// ------------------------------------------------------------------ checkpoint and resume
// An engine::Sgd's state under `prefix` ("<prefix>.v" momentum buffer, "<prefix>.first").
void save_sgd(State& st, const engine::Sgd& sgd, const std::string& prefix = "sgd");
void load_sgd(const State& st, engine::Sgd& sgd, const std::string& prefix = "sgd");

// The full-size gradient a worker saved under "g" (computed before its cut, sent first on resume:
// Pipe-SGD, OD-SGD, SSD-SGD), as a payload on the compute device (no buffer in timing-only mode).
Payload resumed_gradient(const Worker& w, const State& st);
// Asynchronous PS cuts (Algorithm::checkpoint_at_servers): per worker i, "acked.<i>" = how many of
// its minibatches this shard has applied.
void save_acked(State& st, const std::vector<int64_t>& applied);
std::vector<int64_t> load_acked(const State& st, int workers);

// ------------------------------------------------------------------ worker helpers
// ASGD's worker loop (ASGD, DC-ASGD): while the sample budget lasts, compute at the last pulled
// W, push the gradient, pull the shard's reply (piggybacked on the push).
void asgd_worker(Worker& w);
// SSGD on the PS for `steps` steps from the initial weights (OD-SGD's and SSD-SGD's warm-up);
// returns the last pulled weights W_steps. Checkpointable like SSGD's worker: a cut after each
// pull (nothing else to save); on resume it starts at min(resume_step(), steps) from
// initial_params(), the checkpoint's global model.
std::shared_ptr<const Vec> ssgd_ps_steps(Worker& w, int64_t steps);
// Dissemination barrier among all workers (ceil(log2 N) rounds of zero-byte messages).
void barrier(Worker& w, int64_t id);
// The same barrier as a vote: returns whether every worker passed `vote` = true (the AND travels in
// the barrier's zero-byte messages, so the timing is the plain barrier's). A decision each worker
// would take from its own view (e.g. "has my all-reduce finished?") is then the same everywhere.
bool barrier(Worker& w, int64_t id, bool vote);
// One worker's full model as a PS payload / all-reduce contribution (shares `v`'s buffer).
inline Payload payload_of(const std::shared_ptr<const Vec>& v, size_t count) { return Payload::whole(v, count); }

// ------------------------------------------------------------------ learning-rate schedules
// `algorithm.schedule` (engine/schedule.hpp; docs/config.md) gives the learning rate as a function
// of training progress in epochs e = samples / train_size(), over a run of
// training.samples / train_size() epochs. Which samples count:
//   synchronous step t (every worker takes step t together, its minibatches never claimed):
//     t·N·training.batch_size, the samples of the steps before it (step 0 runs at epoch 0);
//   an update applied on arrival (asynchronous PS servers, asynchronous EASGD workers):
//     Node::samples_done() when it is applied (every gradient computed so far, this one included).
double run_epochs(const Node& n);
double sync_epoch(const Node& n, int64_t t);
double async_epoch(const Node& n);
// The scheduled learning rate of base rate `base` at epoch `e` (exactly `base` without a schedule).
double scheduled_lr(const engine::LrSchedule& s, double base, const Node& n, double e);
inline double scheduled_lr(const engine::SgdConfig& c, const Node& n, double e) { return scheduled_lr(c.schedule, c.lr, n, e); }
// scheduled / base: what a second optimizer's rate (e.g. OD-SGD's local_lr) is multiplied by to
// follow the same schedule (exactly 1 without a schedule).
inline double lr_factor(const engine::SgdConfig& c, const Node& n, double e) { return scheduled_lr(c, n, e) / c.lr; }
// Reads the optional `schedule` object of an algorithm section (read_sgd calls it; algorithms
// without a global SGD call it themselves). Absent: constant, and nothing is added to the resolved
// config.
engine::LrSchedule read_schedule(ObjectReader& r);
ParamDoc schedule_doc(const std::string& whose);

// ------------------------------------------------------------------ local optimizers
// The worker-side optimizer of the local-update algorithms:
//   sgd               PyTorch SGD (momentum, weight decay, Nesterov)
//   dc-asgd-adaptive  OD-SGD's CADCASGD: u = g + wd*w + lambda/sqrt(MS) g g (w - w_prev),
//                     w_prev = w before the previous local step; w -= lr*u (no momentum)
//   adamw             PyTorch AdamW
// Every step first multiplies the gradient by `grad_scale` (MXNet's rescale_grad, e.g. 1/N).
struct LocalOptConfig {
  std::string kind = "sgd";
  double lr = 0.05;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
  double lambda = 2;       // dc-asgd-adaptive
  double mean_square = 0;  // dc-asgd-adaptive
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adamw
  double grad_scale = 1;
};

class LocalOptimizer {
 public:
  virtual ~LocalOptimizer() = default;
  // w <- Opt(w, grad_scale * g). No-op on empty views (timing-only mode).
  virtual void step(VecView w, ConstVecView g) = 0;
  // The learning rate of the following steps (learning-rate schedules); the config's lr until set.
  virtual void set_lr(double lr) = 0;
  // Full-size state buffers it keeps (memory estimates).
  virtual double buffers() const = 0;
  // Checkpoint and resume: its state under `prefix` (not its learning rate: callers set it before
  // every step). The base versions throw RuntimeError (an optimizer without save/load).
  virtual void save(State& st, const std::string& prefix) const;
  virtual void load(const State& st, const std::string& prefix);
};
std::unique_ptr<LocalOptimizer> make_local_optimizer(const LocalOptConfig& c, const Node& n);

// ------------------------------------------------------------------ config
// OD-SGD's and SSD-SGD's keys: the global SGD (lr, momentum, weight_decay, nesterov), the local
// optimizer, local_rescale (1/N as the authors' code, or 1) and warmup_steps.
struct DelayedPsConfig {
  engine::SgdConfig global;
  LocalOptConfig local;
  bool rescale_by_n = true;
  int64_t warmup = 0;
};
DelayedPsConfig read_delayed_ps(ObjectReader& r, const engine::SgdConfig& g, const LocalOptConfig& l, int64_t warmup,
                                const std::vector<std::string>& kinds);
std::vector<ParamDoc> delayed_ps_docs(const engine::SgdConfig& g, const LocalOptConfig& l, int64_t warmup,
                                      const std::vector<std::string>& kinds);

// lr / momentum / weight_decay / nesterov docs naming whose SGD they configure.
std::vector<ParamDoc> sgd_param_docs(const engine::SgdConfig& d, const std::string& role);
// Reads "comm" restricted to `allowed` with a default.
std::string read_comm(ObjectReader& r, const std::vector<std::string>& allowed, const std::string& def);
// Reads the local optimizer keys: local_optimizer among `kinds`, then <prefix>lr,
// <prefix>weight_decay, <prefix>momentum and <prefix>nesterov (sgd), lambda/mean_square
// (dc-asgd-adaptive) or adam_beta1/adam_beta2/adam_eps (adamw). prefix "local_" when the algorithm
// also has a global optimizer (lr, momentum, ...), "" when the workers' optimizer is the only one.
LocalOptConfig read_local_opt(ObjectReader& r, const std::vector<std::string>& kinds, const LocalOptConfig& d,
                              const std::string& prefix = "local_");
std::vector<ParamDoc> local_opt_docs(const std::vector<std::string>& kinds, const LocalOptConfig& d,
                                     const std::string& prefix = "local_");
// algorithm.on_failure of the all-reduce algorithms (docs/platforms.md, Failures): one of `choices`
// ("drop", the default: a lost rank ends the run; "elastic": the survivors re-form the ring and a
// recovered worker rejoins; SSGD adds "wait"). "elastic" re-forms an all-reduce: without one
// (`allreduce` false, a parameter server) it is refused naming the valid values. An absent key is
// Drop, recorded in the resolved config only with `record_default`.
Algorithm::OnFailure read_on_failure(ObjectReader& r, std::vector<std::string> choices, bool allreduce = true,
                                     bool record_default = false);
ParamDoc on_failure_doc(const std::string& choices);
// Positive integer key.
int64_t read_count(ObjectReader& r, const std::string& key, int64_t def, int64_t min = 1);
// Concatenates ParamDoc lists.
std::vector<ParamDoc> docs(std::initializer_list<std::vector<ParamDoc>> parts);

}  // namespace dtsim::algo
