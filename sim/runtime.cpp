#include "sim/runtime.hpp"

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "algorithms/api.hpp"
#include "algorithms/clip.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "common/io.hpp"
#include "sim/checkpoint.hpp"
#include "sim/collectives.hpp"
#include "sim/failures.hpp"
#include "sim/links.hpp"
#include "sim/platform.hpp"
#include "sim/stragglers.hpp"

namespace dtsim::sim {

namespace sg4 = simgrid::s4u;

#if defined(__SANITIZE_ADDRESS__)  // gcc
#define DTSIM_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define DTSIM_ASAN 1
#endif
#endif
using algo::Future;
using algo::Gradient;
using algo::Message;
using algo::Payload;
using algo::Pending;
using engine::Vec;

namespace {

using Clock = std::chrono::steady_clock;

// A worker's BatchNorm running statistics in its NodeCheckpoint (a key no algorithm uses: the
// "runtime." prefix is reserved).
const std::string kModelStateKey = "runtime.model_state";

// Thrown inside an actor to end the run early; Shared::stop says why. guarded() catches it.
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

// State shared by every actor of one run. Actors run one at a time on one OS thread.
struct Shared {
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
  std::vector<std::shared_ptr<Vec>> grad_pool;  // recycled gradient buffers

  // All-reduce number `seq`: contributions gathered as workers call it; reduced once when complete.
  struct Collective {
    std::vector<Payload> parts;
    std::vector<double> weights;
    int arrived = 0, fetched = 0;
    size_t count = 0;
    algo::Reduce op = algo::Reduce::Mean;
    std::shared_ptr<const Vec> result;
  };
  std::map<uint64_t, Collective> collectives;

  BuiltPlatform hosts;
  std::unique_ptr<LinkModel> links;  // per-link statistics, latency jitter (sim/links.cpp)
  std::vector<sg4::Mailbox*> worker_inbox, server_inbox, ring_inbox;
  std::vector<int> worker_host_index, server_host_index;  // into trace hosts

  RunResult result;
  uint64_t next_eval = 0;
  uint64_t last_eval_version = std::numeric_limits<uint64_t>::max();  // result.updates at the last row
  std::exception_ptr error;
  std::string error_where;  // "worker-3 at simulated time 1.25 s": where the first exception happened
  std::optional<StopInfo> stop;  // set once the run must end early (interrupt, wall limit, divergence)
  std::map<std::string, std::string> waiting;  // actor -> what it is blocked on (for deadlocks)
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
  void workers_from_servers(Checkpoint& c) {
    for (int i = 0; i < N; ++i) {
      const std::string key = "acked." + std::to_string(i);
      int64_t a = std::numeric_limits<int64_t>::max();
      for (const auto& sv : c.servers) {
        auto it = sv.ints.find(key);
        if (it == sv.ints.end()) throw RuntimeError("checkpoint: a server shard saved no '" + key + "' (Algorithm::checkpoint_at_servers)");
        a = std::min(a, it->second);
      }
      NodeCheckpoint& w = c.workers[static_cast<size_t>(i)];
      worker_counters(i, w);
      w.k = a;
      w.pos = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
      w.batch = b;
      w.gradients = static_cast<uint64_t>(a);
      w.samples = w.pos;
    }
  }
  // Every node has saved: the run-wide state is that of the last node's cut.
  void finish_cut(Checkpoint& c) {
    c.config_hash = hooks.config_hash;
    c.algorithm = x.algorithm;
    c.samples_done = c.gradients = c.messages = 0;
    c.bytes_on_wire = 0;
    for (const auto& w : c.workers) {
      c.samples_done += w.samples;
      c.gradients += w.gradients;
    }
    for (const auto* ns : {&c.workers, &c.servers})
      for (const auto& n : *ns) {
        c.bytes_on_wire += n.sent_bytes;
        c.messages += n.sent_messages;
      }
    c.claimed = c.samples_done;
    c.updates = result.updates;
    c.shard_commits = shard_commits;
    c.next_eval = next_eval;
    c.next_checkpoint = next_ckpt;
    c.last_eval_version = last_eval_version;
    c.metrics.clear();
    for (const auto& r : result.metrics)
      c.metrics.push_back({r.sim_time_s, r.wall_time_s, r.samples, r.epoch, r.train_loss, r.test_loss, r.test_accuracy});
    c.time_to_accuracy = result.time_to_accuracy;
    if (!server_cuts) {
      c.global.resize(real ? P : 0);
      if (real) engine::ops::to_host(global.view(), c.global.data());
    }
    if (!hooks.checkpoint_path.empty()) io::atomic_write(hooks.checkpoint_path, checkpoint_bytes(c));
    ++result.checkpoints_written;
    result.checkpoint_step = c.step;
    if (hooks.on_checkpoint) hooks.on_checkpoint(c);
  }

  explicit Shared(const Experiment& e, const RunHooks& h) : x(e), hooks(h) {}
  // Messages sent but never received (a run stopped early, a deadlock, a dead receiver) are still
  // owned here: freed when the run is over (after the Engine, which never frees payloads).
  std::set<Message*> in_flight;
  ~Shared() {
    for (Message* m : in_flight) delete m;
  }

  // The real reduction, once per collective, in rank order.
  void reduce(Collective& c) {
    if (!real || c.count == 0) return;
    auto out = std::make_shared<Vec>(c.count, model->device());
    double wsum = 0;
    for (double w : c.weights) wsum += w;
    std::vector<engine::ConstVecView> xs;
    std::vector<float> ws;
    for (int i = 0; i < N; ++i) {
      xs.push_back(c.parts[static_cast<size_t>(i)].view());
      ws.push_back(c.op == algo::Reduce::Sum ? 1.0f : static_cast<float>(c.weights[static_cast<size_t>(i)] / wsum));
    }
    engine::ops::weighted_sum(out->view(), xs, ws);
    c.result = out;
  }

  double wall() const { return std::chrono::duration<double>(Clock::now() - wall_start).count(); }

  // Ends the run early: the calling actor unwinds (StopRun), guarded() kills every other actor.
  [[noreturn]] void stop_now(const std::string& reason, const std::string& detail, int worker = -1,
                             int64_t step = -1) {
    if (!stop) stop = StopInfo{reason, detail, sg4::Engine::get_clock(), step, worker, result.updates};
    throw StopRun{};
  }
  [[noreturn]] void diverge(const std::string& detail, int worker, int64_t step) {
    stop_now("diverged", detail, worker, step);
  }
  // Called whenever an actor starts an event (compute, send, receive, local work, commit): a signal
  // or the wall-clock limit stops the run there. A few loads and one clock read: cheap.
  void check_stop() {
    if (stop) throw StopRun{};
    if (hooks.interrupt && hooks.interrupt->load(std::memory_order_relaxed)) {
      const int sig = hooks.interrupt->load();
      stop_now("interrupted", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig));
    }
    if (hooks.max_wall_s > 0 && wall() > hooks.max_wall_s) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "wall-clock limit of %g s reached", hooks.max_wall_s);
      stop_now("wall_limit", buf);
    }
  }

  std::shared_ptr<Vec> gradient_buffer() {
    for (auto& g : grad_pool)
      if (g.use_count() == 1) return g;
    grad_pool.push_back(std::make_shared<Vec>(P, model->device()));
    return grad_pool.back();
  }

  void evaluate(double now) {
    if (result.updates == last_eval_version) return;
    last_eval_version = result.updates;
    MetricRow row;
    row.sim_time_s = now;
    row.wall_time_s = wall();
    row.samples = samples_done;
    row.epoch = static_cast<double>(samples_done) / static_cast<double>(x.training.train_size);
    if (real) {
      const auto test = model->evaluate(global.view(), eval_state(), data->test, 0, data->test.size());
      const size_t sub = std::min(x.training.eval_train_subset, data->train.size());
      row.test_loss = test.loss();
      row.test_accuracy = test.accuracy();
      row.train_loss = sub ? model->evaluate(global.view(), eval_state(), data->train, 0, sub).loss() : std::nan("");
      for (size_t i = 0; i < x.training.target_accuracy.size(); ++i)
        if (!result.time_to_accuracy[i] && row.test_accuracy >= x.training.target_accuracy[i])
          result.time_to_accuracy[i] = now;
      if (!std::isfinite(row.test_loss)) row.test_loss = std::nan("");
    } else {
      row.train_loss = row.test_loss = row.test_accuracy = std::nan("");
    }
    result.metrics.push_back(row);
  }

  // One shard committed. A global update is complete once all K shards have committed (shards of
  // synchronous algorithms commit step t before any commits t+1), and only then is it evaluated.
  void committed(double now) {
    check_stop();
    if (++shard_commits % static_cast<uint64_t>(std::max(1, K)) != 0) return;
    ++result.updates;
    if (server_cuts && ckpt_every > 0 && samples_done >= next_ckpt && claimed < budget) {
      server_cut_pending = true;
      while (next_ckpt <= samples_done) next_ckpt += ckpt_every;
    }
    if (x.training.eval_every_samples > 0 && samples_done >= next_eval) {
      if (real && !engine::ops::all_finite(global.view()))  // parameters checked at evaluation points
        diverge("the global model has non-finite parameters after update " + std::to_string(result.updates), -1, -1);
      evaluate(now);
      while (next_eval <= samples_done) next_eval += x.training.eval_every_samples;
    }
    if (hooks.progress) {
      Progress p{samples_done, budget, now, -1};
      if (!result.metrics.empty() && real) p.accuracy = result.metrics.back().test_accuracy;
      hooks.progress(p);
    }
  }
};

// Runs one actor body; an exception is recorded and stops the whole simulation.
template <class F>
void guarded(Shared& s, F&& body) {
  try {
    body();
  } catch (const simgrid::ForcefulKillException&) {
    throw;  // the actor is being killed: let SimGrid unwind it
  } catch (const StopRun&) {
    sg4::Actor::kill_all();  // s.stop says why
  } catch (...) {
    if (!s.error) {
      s.error = std::current_exception();
      s.error_where = sg4::this_actor::get_name() + " at simulated time " + std::to_string(sg4::Engine::get_clock()) + " s";
    }
    sg4::Actor::kill_all();
  }
}

// ------------------------------------------------------------------ pending operations
class NodeBase;
// A transfer whose peer's host failed ends with NetworkFailureException: the message is lost
// (platform.failures). A null comm is a message dropped before it left (its receiver had crashed).
void wait_comm(const sg4::CommPtr& c) {
  if (!c) return;
  try {
    c->wait();
  } catch (const simgrid::NetworkFailureException&) {
  }
}
bool test_comm(const sg4::CommPtr& c) {
  if (!c) return true;
  try {
    return c->test();
  } catch (const simgrid::NetworkFailureException&) {
    return true;
  }
}

struct CommWait : Pending::Impl {
  std::vector<sg4::CommPtr> comms;
  std::function<void(double)> on_wait;  // accounting of the blocked time
  std::map<std::string, std::string>* waiting = nullptr;  // Shared::waiting (named in a deadlock report)
  std::function<std::string()> what;  // built only when someone actually blocks
  NodeBase* owner = nullptr;          // receives the comms if this handle is dropped unwaited
  ~CommWait() override;
  void wait() override {
    const double t0 = sg4::Engine::get_clock();
    if (waiting && !comms.empty()) (*waiting)[sg4::this_actor::get_name()] = what ? what() : "a send";
    for (auto& c : comms) wait_comm(c);
    if (waiting && !comms.empty()) waiting->erase(sg4::this_actor::get_name());
    comms.clear();
    if (on_wait) on_wait(sg4::Engine::get_clock() - t0);
  }
  bool test() override {
    for (auto& c : comms)
      if (!test_comm(c)) return false;
    return true;
  }
};

// ------------------------------------------------------------------ node context
class NodeBase {
 public:
  NodeBase(Shared& s, sg4::Host* host, sg4::Mailbox* inbox, int src_id, int trace_host)
      : s_(s), host_(host), inbox_(inbox), src_id_(src_id), trace_host_(trace_host) {}
  virtual ~NodeBase() = default;

  // Waits for every send that was never waited for (called when the node's function returns).
  void drain() {
    for (auto& c : outstanding_) wait_comm(c);
    outstanding_.clear();
  }

  // Sends whose handles were dropped unwaited: kept so they complete and are drained at the end.
  // Completed ones are dropped in amortised O(1) (each prune at least doubles the threshold).
  void adopt(std::vector<sg4::CommPtr>& comms) {
    for (auto& c : comms) outstanding_.push_back(std::move(c));
    comms.clear();
    if (outstanding_.size() < prune_at_) return;
    std::erase_if(outstanding_, [](const sg4::CommPtr& c) { return test_comm(c); });
    prune_at_ = std::max<size_t>(64, 2 * outstanding_.size());
  }

 protected:
  sg4::CommPtr send_comm(sg4::Mailbox* box, Message m) {
    s_.check_stop();
    if (m.bytes == 0) m.bytes = m.data.element_bytes * static_cast<double>(m.data.count);
    m.src = src_id_;
    m.sent_at = sg4::Engine::get_clock();
    s_.result.bytes_on_wire += m.bytes;
    ++s_.result.messages;
    sent_bytes_ += m.bytes;
    ++sent_messages_;
    unsent_samples_ = 0;                    // this node's work so far has left it (failures)
    if (s_.dropped(box)) return nullptr;    // the receiver's host is down: the message is lost
    auto* msg = new Message(std::move(m));
    s_.in_flight.insert(msg);
    return box->put_async(msg, msg->bytes);
  }

  std::shared_ptr<CommWait> comm_wait() {
    auto p = std::make_shared<CommWait>();
    p->on_wait = [this](double dt) {
      comm_wait_ += dt;
      const double now = sg4::Engine::get_clock();  // blocked on sends: a wait span on the timeline
      if (dt > 0) s_.result.trace.add({trace_host_, SpanKind::Wait, now - dt, now, 0, -1, 0});
    };
    p->waiting = &s_.waiting;
    p->owner = this;
    return p;
  }

  Pending send(sg4::Mailbox* box, Message m) {
    const int tag = m.tag;
    auto p = comm_wait();
    p->comms.push_back(send_comm(box, std::move(m)));
    p->what = [box, tag] { return "its send to " + box->get_name() + " (tag " + std::to_string(tag) + ")"; };
    return Pending(p);
  }

  // Receives the next message of the inbox (blocking), recording the transfer on the timeline.
  std::unique_ptr<Message> get_one(const std::string& what = "a message") {
    Message* raw = nullptr;
    sg4::CommPtr c;
    while (true) {
      c = inbox_->get_async<Message>(&raw);
      try {
        block_on(what + " on " + inbox_->get_name(), [&] { c->wait(); });
        break;
      } catch (const simgrid::NetworkFailureException&) {  // the sender's host failed mid-transfer
        s_.waiting.erase(sg4::this_actor::get_name());
      }
    }
    std::unique_ptr<Message> m(raw);
    s_.in_flight.erase(raw);
    if (m->tag == algo::kWorkerLost) return m;  // the runtime's failure notification (no transfer)
    const double start = c->get_start_time(), end = c->get_finish_time();
    if (s_.result.trace.enabled) {
      const int src_host = host_of(m->src);
      s_.result.trace.add_transfer(src_host, trace_host_, start, end, m->bytes, m->step, Transfer::Message, m->tag);
    }
    // Per-link statistics and latency jitter (sim/links.cpp): a jittered message is delivered later.
    const sg4::Host* from = m->src >= 0 ? s_.hosts.workers[static_cast<size_t>(m->src)] : s_.hosts.servers[static_cast<size_t>(-m->src - 1)];
    s_.links->record(from, host_, m->bytes, start, end);
    if (const double delay = s_.links->jitter(from, host_, start); end + delay > sg4::Engine::get_clock())
      block_on(what + " (latency jitter)", [&] { sg4::this_actor::sleep_until(end + delay); });
    return m;
  }

  Message recv_tag(int tag) {
    for (auto it = stash_.begin(); it != stash_.end(); ++it)
      if (it->tag == tag) {
        Message m = std::move(*it);
        stash_.erase(it);
        return m;
      }
    while (true) {
      auto m = get_one("a message with tag " + std::to_string(tag));
      if (m->tag == tag) return std::move(*m);
      stash_.push_back(std::move(*m));
    }
  }

  Message recv_any_tag() {
    if (!stash_.empty()) {
      Message m = std::move(stash_.front());
      stash_.pop_front();
      return m;
    }
    return std::move(*get_one());
  }

  template <class F>
  void block_on(const std::string& what, F&& f) {
    s_.check_stop();
    const double t0 = sg4::Engine::get_clock();
    s_.waiting[sg4::this_actor::get_name()] = what;
    f();
    s_.waiting.erase(sg4::this_actor::get_name());
    const double dt = sg4::Engine::get_clock() - t0;
    comm_wait_ += dt;
    if (dt > 0) s_.result.trace.add({trace_host_, SpanKind::Wait, t0, t0 + dt, 0, -1, 0});
  }

  int host_of(int src) const {
    return src >= 0 ? s_.worker_host_index[static_cast<size_t>(src)]
                    : s_.server_host_index[static_cast<size_t>(-src - 1)];
  }

  // Checkpoint and resume: this node's part of a cut, and its state read back on resume.
 public:
  virtual void save_counters(NodeCheckpoint& n) const {
    n.cut_time_s = sg4::Engine::get_clock();
    n.comm_wait_s = comm_wait_;
    n.sent_bytes = sent_bytes_;
    n.sent_messages = sent_messages_;
  }
  virtual void restore_counters(const NodeCheckpoint& n, int64_t step) {
    comm_wait_ = n.comm_wait_s;
    sent_bytes_ = n.sent_bytes;
    sent_messages_ = n.sent_messages;
    resume_step_ = step;
    resume_time_ = n.cut_time_s;
    resumed_ = std::make_unique<NodeState>(const_cast<NodeCheckpoint*>(&n), who());  // read-only use
  }
  // On resume: waits until this node's own cut time, then the algorithm's function starts.
  void wait_resume() {
    if (resumed_ && resume_time_ > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(resume_time_);
  }
  std::string who() const { return src_id_ >= 0 ? "worker " + std::to_string(src_id_) : "server shard " + std::to_string(-src_id_ - 1); }
  void save_checkpoint(int64_t step, const std::function<void(algo::State&)>& save) {
    if (s_.server_cuts) {  // asynchronous PS: the shards' next call after the threshold
      const int64_t cut = static_cast<int64_t>(s_.result.checkpoints_written) + 1;
      if (!s_.server_cut_pending || src_id_ >= 0 || saved_cut_ == cut) return;
      saved_cut_ = cut;
      step = saved_cut_;  // the cut's number
    } else {
      if (!s_.is_cut(step) || step <= saved_cut_) return;  // the hot path: a few compares
      saved_cut_ = step;
    }
    s_.save_cut(step, src_id_, -src_id_ - 1, [&](NodeCheckpoint& n) {
      save_counters(n);
      NodeState st(&n, who());
      if (save) save(st);
    });
  }

 protected:
  Shared& s_;
  sg4::Host* host_;
  sg4::Mailbox* inbox_;
  int src_id_;
  int trace_host_;
  double comm_wait_ = 0;
  double sent_bytes_ = 0;      // put on the wire by this node (checkpoints sum them)
  uint64_t sent_messages_ = 0;
  int64_t saved_cut_ = -1;     // the last cut this node saved
  int64_t resume_step_ = 0;
  double resume_time_ = 0;
  std::unique_ptr<NodeState> resumed_;
  int64_t unsent_samples_ = 0;  // samples computed since this node last sent (lost if it crashes)
  std::deque<Message> stash_;
  std::vector<sg4::CommPtr> outstanding_;
  size_t prune_at_ = 64;
};

CommWait::~CommWait() {
  if (owner && !comms.empty()) owner->adopt(comms);
}

// The part of algo::Node every role implements identically.
template <class Base>
class NodeImpl : public Base, public NodeBase {
 public:
  using NodeBase::NodeBase;
  int workers() const override { return s_.N; }
  int shards() const override { return s_.K; }
  bool real() const override { return s_.real; }
  double now() const override { return sg4::Engine::get_clock(); }
  size_t num_params() const override { return s_.P; }
  uint64_t seed() const override { return s_.x.seed; }
  int64_t sync_steps() const override { return s_.sync_steps; }
  uint64_t train_size() const override { return s_.x.training.train_size; }
  uint64_t sample_budget() const override { return s_.budget; }
  int configured_batch_size() const override { return s_.b; }
  uint64_t samples_done() const override { return s_.samples_done; }
  void observe(const std::string& what, int64_t step, engine::ConstVecView v) override {
    if (s_.hooks.observe) s_.hooks.observe(src_id_, what, step, v);
  }
  void checkpoint(int64_t step, const std::function<void(algo::State&)>& save) override { save_checkpoint(step, save); }
  int64_t resume_step() const override { return resume_step_; }
  const algo::State* resumed() const override { return resumed_.get(); }
  size_t shard_offset(int k) const override { return s_.shard_off.at(static_cast<size_t>(k)); }
  size_t shard_size(int k) const override { return s_.shard_len.at(static_cast<size_t>(k)); }
  Vec new_buffer() const override { return s_.real ? Vec(s_.P, s_.model->device()) : Vec(); }
  engine::Device device() const override { return s_.model ? s_.model->device() : engine::Device::Cpu; }
  std::shared_ptr<const Vec> initial_params() const override { return s_.init; }
  void work(double flops) override {
    s_.check_stop();
    if (flops <= 0) return;
    const double t0 = sg4::Engine::get_clock();
    sg4::this_actor::execute(flops);
    s_.result.trace.add({trace_host_, SpanKind::Update, t0, sg4::Engine::get_clock(), 0, -1, 0});
  }
  Pending send_to_worker(int rank, Message m) override {
    return send(s_.worker_inbox.at(static_cast<size_t>(rank)), std::move(m));
  }
  Pending send_to_server(int shard, Message m) override {
    return send(s_.server_inbox.at(static_cast<size_t>(shard)), std::move(m));
  }
  Message recv(int tag) override { return recv_tag(tag); }
  Message recv_any() override { return recv_any_tag(); }
  bool worker_lost(int rank) const override { return !s_.worker_lost.empty() && s_.worker_lost.at(static_cast<size_t>(rank)); }
  Message recv_or_lost(int tag) override {  // the next `tag` message or failure notification
    for (auto it = stash_.begin(); it != stash_.end(); ++it)
      if (it->tag == tag || it->tag == algo::kWorkerLost) {
        Message m = std::move(*it);
        stash_.erase(it);
        return m;
      }
    while (true) {
      auto m = get_one("a message with tag " + std::to_string(tag) + " or a failure notification");
      if (m->tag == tag || m->tag == algo::kWorkerLost) return std::move(*m);
      stash_.push_back(std::move(*m));
    }
  }
  Future<Message> recv_async(int tag) override {
    // Receives are matched lazily: the transfer itself already runs (eager inboxes), so waiting
    // later costs exactly the remaining transfer time.
    struct Impl : Future<Message>::Impl {
      NodeImpl* self;
      int tag;
      std::optional<Message> m;
      void wait() override {
        if (!m) m = self->recv_tag(tag);
      }
      bool test() override { return m.has_value(); }
      Message& get() override { return *m; }
    };
    auto p = std::make_shared<Impl>();
    p->self = this;
    p->tag = tag;
    return Future<Message>(p);
  }
};

class WorkerCtx final : public NodeImpl<algo::Worker> {
 public:
  WorkerCtx(Shared& s, int rank)
      : NodeImpl(s, s.hosts.workers[static_cast<size_t>(rank)], s.worker_inbox[static_cast<size_t>(rank)], rank,
                 s.worker_host_index[static_cast<size_t>(rank)]),
        rank_(rank),
        slowdown_(s.x.platform.slowdown(rank)) {}

  int rank() const override { return rank_; }
  int incarnation() const override { return incarnation_; }
  int64_t next_minibatch() const override { return k_; }
  // A restarted worker (Algorithm::OnFailure::Restart) starts from the global model of that time.
  std::shared_ptr<const Vec> initial_params() const override { return incarnation_ > 0 ? restart_params_ : s_.init; }
  // platform.failures: samples this worker computed but never sent (lost if its host fails now).
  int64_t unsent_samples() const { return unsent_samples_; }
  // Its host came back: the next run of worker() is incarnation k+1, with a fresh inbox (nothing
  // sent to the failed incarnation is delivered to the new one).
  void restart(sg4::Mailbox* inbox) {
    ++incarnation_;
    inbox_ = inbox;
    stash_.clear();
    outstanding_.clear();
    last_ring_ = nullptr;
    unsent_samples_ = 0;
    restart_params_ = s_.real ? std::make_shared<const Vec>(s_.global.clone()) : nullptr;
  }
  int batch_size() const override { return b_; }
  bool claim_batch() override {
    if (s_.claimed >= s_.budget) return false;
    s_.claimed += static_cast<uint64_t>(b_);
    return true;
  }
  void set_batch_size(int b) override {
    if (b < 1) throw RuntimeError("set_batch_size: batch size must be >= 1, got " + std::to_string(b));
    b_ = b;
  }
  double compute_rate(int rank) const override {
    const auto& c = s_.x.compute;
    const double per_sample_s =
        c.time == ComputeSpec::Time::Fixed     ? c.fixed_seconds / s_.b
        : c.time == ComputeSpec::Time::Profile ? c.profile_compute_s / c.profile_batch
                                               : s_.flops_per_sample / s_.hosts.workers.at(static_cast<size_t>(rank))->get_speed();
    return 1.0 / (per_sample_s * s_.x.platform.slowdown(rank));
  }
  void update_cost(int terms) override {
    work(static_cast<double>(s_.P) * (s_.x.platform.update_flops_per_param + std::max(0, terms - 1)));
  }
  void publish_global(engine::ConstVecView params) override {
    if (s_.real && params.size) engine::ops::copy(s_.global.view(), params);
    s_.committed(sg4::Engine::get_clock());
  }

  Gradient compute(engine::ConstVecView params) override {
    Gradient g = start_compute(params);
    const double t0 = sg4::Engine::get_clock();
    sg4::this_actor::execute(amount());
    finish_compute(g, t0);
    return g;
  }

  Future<Gradient> compute_async(engine::ConstVecView params) override {
    struct Impl : Future<Gradient>::Impl {
      WorkerCtx* self;
      Gradient g;
      sg4::ExecPtr exec;
      double t0 = 0;
      bool done = false;
      void wait() override {
        if (done) return;
        exec->wait();
        self->finish_compute(g, t0, exec->get_finish_time());  // not the later wait()
        done = true;
      }
      bool test() override { return done || exec->test(); }
      Gradient& get() override { return g; }
    };
    auto p = std::make_shared<Impl>();
    p->self = this;
    p->g = start_compute(params);
    p->t0 = sg4::Engine::get_clock();
    p->exec = sg4::this_actor::exec_init(amount());
    p->exec->start();
    return Future<Gradient>(p);
  }

  Pending push(const Payload& data, int tag, int64_t step) override {
    auto all = comm_wait();
    const int K = s_.K;
    all->what = [tag, K] { return "its push (tag " + std::to_string(tag) + ") to the " + std::to_string(K) + " shards"; };
    for (int k = 0; k < s_.K; ++k) {
      Message m{.tag = tag, .step = step, .data = data.slice(s_.shard_off[static_cast<size_t>(k)], s_.shard_len[static_cast<size_t>(k)])};
      all->comms.push_back(send_comm(s_.server_inbox[static_cast<size_t>(k)], std::move(m)));
    }
    return Pending(all);
  }

  std::shared_ptr<const Vec> pull(int tag) override {
    std::vector<Message> parts(static_cast<size_t>(s_.K));
    for (int i = 0; i < s_.K; ++i) {
      Message m = recv_tag(tag);
      parts[static_cast<size_t>(-m.src - 1)] = std::move(m);
    }
    if (!s_.real) return nullptr;
    if (s_.K == 1 && parts[0].data.offset == 0 && parts[0].data.count == s_.P) return parts[0].data.buf;
    auto full = std::make_shared<Vec>(s_.P, s_.model->device());
    for (int k = 0; k < s_.K; ++k)
      engine::ops::copy(full->view(s_.shard_off[static_cast<size_t>(k)], s_.shard_len[static_cast<size_t>(k)]),
                        parts[static_cast<size_t>(k)].data.view());
    return full;
  }

  algo::Future<std::shared_ptr<const Vec>> allreduce_async(const Payload& mine, algo::Reduce op,
                                                            double weight) override {
    const uint64_t seq = ar_seq_++;
    unsent_samples_ = 0;  // this worker's work so far leaves it in the collective
    auto& c = s_.collectives[seq];
    if (c.arrived == 0) {
      c.parts.resize(static_cast<size_t>(s_.N));
      c.weights.assign(static_cast<size_t>(s_.N), 0.0);
      c.count = mine.count;
      c.op = op;
    }
    if (mine.count != c.count || op != c.op)
      throw RuntimeError("allreduce #" + std::to_string(seq) + ": worker " + std::to_string(rank_) +
                         " contributed a different size or operation than the others");
    if (!(weight > 0)) throw RuntimeError("allreduce: weights must be positive");
    c.parts[static_cast<size_t>(rank_)] = mine;
    c.weights[static_cast<size_t>(rank_)] = weight;
    if (++c.arrived == s_.N) {
      s_.reduce(c);
      c.parts.clear();  // release the contributions
    }
    // The transfers: a communication actor on this host runs the ring, after this worker's
    // previous collective (so ring messages never interleave).
    struct Impl : algo::Future<std::shared_ptr<const Vec>>::Impl {
      WorkerCtx* self;
      uint64_t seq;
      sg4::ActorPtr actor;
      bool finished = false;  // set by the ring actor
      bool joined = false;
      std::shared_ptr<const Vec> result;
      void wait() override {
        if (joined) return;
        if (!finished) self->block_on("allreduce #" + std::to_string(seq), [&] { actor->join(); });
        joined = true;
        auto it = self->s_.collectives.find(seq);
        result = it->second.result;
        if (++it->second.fetched == self->s_.N) self->s_.collectives.erase(it);
      }
      bool test() override { return finished; }
      std::shared_ptr<const Vec>& get() override { return result; }
    };
    auto p = std::make_shared<Impl>();
    p->self = this;
    p->seq = seq;
    const size_t count = mine.count;
    const double element_bytes = mine.element_bytes;
    sg4::ActorPtr prev = last_ring_;
    std::weak_ptr<Impl> weak = p;
    p->actor = sg4::Actor::create("allreduce-" + std::to_string(rank_) + "-" + std::to_string(seq), host_,
                                  [this, prev, count, element_bytes, seq, weak] {
                                    guarded(s_, [&] {
                                      if (prev) prev->join();
                                      ring(count, element_bytes, seq);
                                    });
                                    if (auto q = weak.lock()) q->finished = true;
                                  });
    last_ring_ = p->actor;
    return algo::Future<std::shared_ptr<const Vec>>(p);
  }

  WorkerSummary summary() const {
    return {s_.hosts.workers[static_cast<size_t>(rank_)]->get_name(), gradients_, samples_, compute_s_, comm_wait_};
  }

  void save_counters(NodeCheckpoint& n) const override {
    NodeBase::save_counters(n);
    n.k = k_;
    n.pos = pos_;
    n.batch = b_;
    n.ar_seq = ar_seq_;
    n.gradients = gradients_;
    n.samples = samples_;
    n.compute_s = compute_s_;
    if (!s_.model_state.empty()) {  // its BatchNorm running statistics, exactly as of its cut
      const Vec& st = s_.model_state[static_cast<size_t>(rank_)];
      auto& blob = n.blobs[kModelStateKey];
      blob.resize(st.size());
      engine::ops::to_host(st.view(), blob.data());
    }
  }
  void restore_counters(const NodeCheckpoint& n, int64_t step) override {
    NodeBase::restore_counters(n, step);
    if (!s_.model_state.empty()) {  // present and sized: checked when the checkpoint was loaded
      Vec& st = s_.model_state[static_cast<size_t>(rank_)];
      engine::ops::copy(st.view(), engine::ConstVecView(n.blobs.at(kModelStateKey).data(), st.size(), engine::Device::Cpu));
    }
    k_ = n.k;
    pos_ = n.pos;
    b_ = static_cast<int>(n.batch);
    ar_seq_ = n.ar_seq;
    gradients_ = n.gradients;
    samples_ = n.samples;
    compute_s_ = n.compute_s;
  }

 private:
  // Simulated compute of one minibatch, in flops on this host (so speed profiles apply).
  double amount() const {
    const auto& c = s_.x.compute;
    const double nominal_s =
        c.time == ComputeSpec::Time::Fixed     ? c.fixed_seconds * b_ / s_.b  // fixed time is per configured batch
        : c.time == ComputeSpec::Time::Profile ? c.profile_compute_s * b_ / c.profile_batch  // measured, scaled by batch
                                               : s_.flops_per_sample * b_ / host_->get_speed();
    // Heterogeneous worker groups: fixed and measured times are those of group 0's speed; transient
    // stragglers slow this minibatch (k_ - 1: the one start_compute just began). docs/platforms.md.
    const double relative = c.time == ComputeSpec::Time::Flops ? 1.0 : s_.x.platform.worker_groups.front().speed / host_->get_speed();
    const double transient = transient_factor(s_.x.platform, s_.x.seed, rank_, k_ - 1);
    return nominal_s * relative * slowdown_ * transient * host_->get_speed();
  }

  Gradient start_compute(engine::ConstVecView params) {
    s_.check_stop();
    unsent_samples_ += b_;
    Gradient g;
    g.samples = b_;
    g.step = k_;
    if (s_.real) {
      if (b_ == s_.b && pos_ == static_cast<uint64_t>(k_) * static_cast<uint64_t>(s_.b)) {
        s_.order->worker_batch(rank_, s_.N, static_cast<uint64_t>(k_), s_.b, idx_);
      } else {  // a per-worker batch size (set_batch_size): this worker's stream positions pos_, pos_+1, ...
        idx_.resize(static_cast<size_t>(b_));
        for (size_t j = 0; j < idx_.size(); ++j)
          idx_[j] = s_.order->at((pos_ + j) * static_cast<uint64_t>(s_.N) + static_cast<uint64_t>(rank_));
      }
      engine::gather(s_.data->train, s_.data->shape, idx_, batch_);
      if (s_.x.dataset.augment)  // random crop + flip keyed by (seed, worker, step): event order never matters
        engine::augment_crop_flip(batch_, s_.data->black, s_.x.seed, static_cast<uint64_t>(rank_),
                                  static_cast<uint64_t>(k_));
      g.buf = s_.gradient_buffer();
      g.loss = s_.model_state.empty()
                   ? s_.model->forward_backward(params, batch_, g.buf->view())
                   : s_.model->forward_backward(params, s_.model_state[static_cast<size_t>(rank_)].view(), batch_, g.buf->view());
      if (s_.x.clip_grad_norm > 0) algo::clip_grad_norm(g.buf->view(), s_.x.clip_grad_norm);
      if (!std::isfinite(g.loss))  // checked every step: one float
        s_.diverge("loss of worker " + std::to_string(rank_) + " at its step " + std::to_string(k_) + " is " +
                       (std::isnan(g.loss) ? "nan" : "inf"),
                   rank_, k_);
    }
    ++k_;
    pos_ += static_cast<uint64_t>(b_);
    return g;
  }

  void finish_compute(const Gradient& g, double t0, double t1 = -1) {
    if (t1 < 0) t1 = sg4::Engine::get_clock();
    compute_s_ += t1 - t0;
    ++gradients_;
    samples_ += static_cast<uint64_t>(g.samples);
    ++s_.result.gradients;
    s_.samples_done += static_cast<uint64_t>(g.samples);
    s_.result.trace.add({trace_host_, SpanKind::Compute, t0, t1, 0, -1, g.step});
  }

  // The simulated transfers of all-reduce #seq, step by step, with the algorithm of
  // platform.collective (sim/collectives.cpp: ring, hierarchical, tree, recursive doubling).
  void ring(size_t count, double element_bytes, uint64_t seq) {
    const std::string me = sg4::this_actor::get_name();
    CollectiveHooks hooks;
    hooks.sent = [this](int, double bytes) {
      s_.result.bytes_on_wire += bytes;
      ++s_.result.messages;
      sent_bytes_ += bytes;
      ++sent_messages_;
    };
    hooks.received = [this, seq](int from, double bytes, double start, double end) {
      const int src = s_.worker_host_index[static_cast<size_t>(from)];
      if (s_.result.trace.enabled)
        s_.result.trace.add_transfer(src, trace_host_, start, end, bytes, static_cast<int64_t>(seq), Transfer::Collective);
      const sg4::Host* from_host = s_.hosts.workers[static_cast<size_t>(from)];
      s_.links->record(from_host, host_, bytes, start, end);  // sim/links.cpp
      return s_.links->jitter(from_host, host_, start);
    };
    hooks.waiting = [this, &me, seq](const std::string& what) {
      if (what.empty()) s_.waiting.erase(me);
      else {  // "ring step 3 of allreduce #1 (all-gather, a chunk from rank 2)"
        const auto paren = what.find(" (");
        s_.waiting[me] = paren == std::string::npos ? what + " of allreduce #" + std::to_string(seq)
                                                    : what.substr(0, paren) + " of allreduce #" + std::to_string(seq) + what.substr(paren);
      }
    };
    allreduce_transfers(s_.x.platform.collective.algorithm, s_.N, rank_, s_.hosts.worker_group, count, element_bytes, hooks);
  }

  int rank_;
  int incarnation_ = 0;
  std::shared_ptr<const Vec> restart_params_;
  double slowdown_;
  int b_ = s_.b;       // this worker's batch size (set_batch_size)
  uint64_t pos_ = 0;   // samples of this worker's stream consumed so far
  uint64_t ar_seq_ = 0;
  sg4::ActorPtr last_ring_;
  int64_t k_ = 0;  // minibatches started
  uint64_t gradients_ = 0, samples_ = 0;
  double compute_s_ = 0;
  std::vector<size_t> idx_;
  engine::Batch batch_;
};

class ServerCtx final : public NodeImpl<algo::Server> {
 public:
  ServerCtx(Shared& s, int shard)
      : NodeImpl(s, s.hosts.servers[static_cast<size_t>(shard)], s.server_inbox[static_cast<size_t>(shard)],
                 -(shard + 1), s.server_host_index[static_cast<size_t>(shard)]),
        shard_(shard) {}
  int shard() const override { return shard_; }
  engine::VecView global_range() override {
    return s_.real ? s_.global.view(offset(), size()) : engine::VecView{};
  }
  std::shared_ptr<const Vec> snapshot() override {
    if (!s_.real) return nullptr;
    std::shared_ptr<Vec> snap;
    for (auto& v : snapshots_)
      if (v.use_count() == 1) { snap = v; break; }
    if (!snap) {
      snapshots_.push_back(std::make_shared<Vec>(size(), s_.model->device()));
      snap = snapshots_.back();
    }
    engine::ops::copy(snap->view(), s_.global.view(offset(), size()));
    return snap;
  }
  void update_cost(int gradients) override {
    work(static_cast<double>(size()) * (s_.x.platform.update_flops_per_param + std::max(0, gradients - 1)));
  }
  void committed() override { s_.committed(sg4::Engine::get_clock()); }

 private:
  int shard_;
  std::vector<std::shared_ptr<Vec>> snapshots_;
};

}  // namespace

RunResult run(const Experiment& x, const RunHooks& hooks) {
  Shared s(x, hooks);
  s.real = x.compute.real;
  s.N = x.platform.workers.count;
  s.b = x.training.batch_size;
  s.budget = x.training.samples;
  s.sync_steps = static_cast<int64_t>((s.budget + static_cast<uint64_t>(s.N) * s.b - 1) / (static_cast<uint64_t>(s.N) * s.b));

  // Data and model (the model is validated already; build it again on the run's device).
  const auto [shape, classes] = dataset_shape(x.dataset);
  engine::Dataset data;  // loaded below, once the memory estimate has passed
  engine::ComputeOptions opts{x.compute.device, x.compute.threads};
  json model_spec = x.model;
  ObjectReader mr(model_spec, {x.file, "model"});
  // Timing-only runs need no compute path (and timing-only descriptors such as resnet50 have none).
  std::unique_ptr<engine::Model> model;
  if (s.real) {
    model = engine::make_model(mr, shape, classes, opts);
    s.model = model.get();
    s.P = model->num_params();
    s.flops_per_sample = model->flops_per_sample();
  } else {
    const engine::ModelInfo mi = engine::model_info(mr, shape, classes);
    s.P = mi.num_params;
    s.flops_per_sample = mi.flops_per_sample;
  }

  auto algorithm_factory = algo::find_algorithm(x.algorithm);
  json algo_spec = x.algorithm_spec;
  ObjectReader ar(algo_spec, {x.file, "algorithm"});
  ar.accept("name");
  ar.accept("clip_grad_norm");  // applied by the runtime to every minibatch gradient (start_compute)
  auto algorithm = hooks.make_algorithm ? hooks.make_algorithm() : algorithm_factory->make(ar);
  s.algorithm = algorithm.get();
  s.K = algorithm->needs_servers() ? x.platform.servers.count : 0;
  const Checkpoint* ck = hooks.resume;
  if ((x.training.checkpoint_every_samples > 0 || ck) && !algorithm->checkpointable())
    throw InputError(ck ? hooks.resume_file : x.file, ck ? "" : "training.checkpoint_every_samples",
                     not_checkpointable_reason(x.algorithm, *algorithm));
  s.ckpt_every = x.training.checkpoint_every_samples;
  s.server_cuts = algorithm->checkpoint_at_servers() && s.K > 0;
  s.next_ckpt = s.ckpt_every;
  for (int k = 0; k < s.K; ++k) {  // K contiguous ranges, sizes differing by at most one
    const size_t lo = s.P * static_cast<size_t>(k) / static_cast<size_t>(s.K);
    const size_t hi = s.P * static_cast<size_t>(k + 1) / static_cast<size_t>(s.K);
    s.shard_off.push_back(lo);
    s.shard_len.push_back(hi - lo);
  }
  RunResult& r = s.result;
  r.model_parameters = s.P;
  r.flops_per_sample = s.flops_per_sample;
  r.device = engine::device_name(model ? model->device() : x.compute.device);
  r.time_to_accuracy.assign(x.training.target_accuracy.size(), std::nullopt);
  const double est_events = static_cast<double>(s.sync_steps) * s.N * (3.0 + 4.0 * std::max(1, s.K));
  r.trace.enabled = x.output.trace == OutputSpec::Trace::On ||
                    (x.output.trace == OutputSpec::Trace::Auto && est_events <= static_cast<double>(x.output.trace_max_events));
  s.next_eval = x.training.eval_every_samples;

  // Refuse up front what cannot fit, rather than being OOM-killed halfway (docs/robustness.md).
  check_memory(x, estimate_memory(x, s.P, algorithm->buffers_per_worker(), s.K, r.trace.enabled),
               available_memory_bytes());
  if (s.real) {
    data = load_dataset(x.dataset, x.seed);
    s.data = &data;
    s.order = std::make_unique<engine::SampleOrder>(data.train.size(), x.seed);
    s.global = Vec(s.P, model->device());
    model->init_params(s.global.view(), x.seed);
    auto init = std::make_shared<Vec>(s.global.clone());
    s.init = init;
    for (int i = 0; model->num_state() && i < s.N; ++i) {
      s.model_state.emplace_back(model->num_state(), model->device());
      model->init_state(s.model_state.back().view());
    }
  }
  if (ck) {  // resume (docs/robustness.md): the global model and the run-wide counters of the cut
    auto refuse = [&](const std::string& why) { throw InputError(hooks.resume_file, "", "cannot resume: " + why); };
    if (ck->algorithm != x.algorithm) refuse("written by algorithm '" + ck->algorithm + "', the config runs '" + x.algorithm + "'");
    if (ck->workers.size() != static_cast<size_t>(s.N) || ck->servers.size() != static_cast<size_t>(s.K))
      refuse("it holds " + std::to_string(ck->workers.size()) + " workers and " + std::to_string(ck->servers.size()) +
             " server shards, the config has " + std::to_string(s.N) + " and " + std::to_string(s.K));
    if (ck->global.size() != (s.real ? s.P : 0))
      refuse("its global model holds " + std::to_string(ck->global.size()) + " parameters, the model has " +
             std::to_string(s.real ? s.P : 0));
    for (size_t i = 0; i < s.model_state.size(); ++i) {
      const auto& blobs = ck->workers[i].blobs;
      const auto it = blobs.find(kModelStateKey);
      if (it == blobs.end() || it->second.size() != s.model_state[i].size())
        refuse("worker " + std::to_string(i) + " has no BatchNorm running statistics of " +
               std::to_string(s.model_state[i].size()) + " values in it (written by an older dtsim?)");
    }
    if (!s.server_cuts && (ck->step < 1 || ck->step >= s.sync_steps)) refuse("its step " + std::to_string(ck->step) + " is outside the run");
    if (s.real) {
      engine::ops::copy(s.global.view(), engine::ConstVecView(ck->global.data(), s.P, engine::Device::Cpu));
      s.init = std::make_shared<Vec>(s.global.clone());
    }
    s.resume_step = ck->step;
    s.samples_done = ck->samples_done;
    s.claimed = ck->claimed;
    r.gradients = ck->gradients;
    r.updates = ck->updates;
    r.messages = ck->messages;
    r.bytes_on_wire = ck->bytes_on_wire;
    s.shard_commits = ck->shard_commits;
    s.next_eval = ck->next_eval;
    if (ck->next_checkpoint > 0) s.next_ckpt = ck->next_checkpoint;
    s.last_eval_version = ck->last_eval_version;
    for (const auto& m : ck->metrics)
      r.metrics.push_back({m.sim_time_s, m.wall_time_s, m.samples, m.epoch, m.train_loss, m.test_loss, m.test_accuracy});
    if (ck->time_to_accuracy.size() == r.time_to_accuracy.size()) r.time_to_accuracy = ck->time_to_accuracy;
    r.resumed_from_step = ck->step;
  }

  // ---------------------------------------------------------------- SimGrid
  xbt_log_control_set("root.thres:critical");
  // SimGrid installs its own SIGINT handler (print the actors' status, exit(1)): keep the caller's,
  // so that Ctrl-C ends the run cleanly (RunHooks::interrupt, docs/robustness.md).
  struct sigaction caller_sigint {};
  sigaction(SIGINT, nullptr, &caller_sigint);
#ifdef DTSIM_ASAN
  // ASan builds (make test-sanitize): Debian's SimGrid switches between actor stacks without
  // telling ASan (no __sanitizer_start_switch_fiber), so an exception unwinding on an actor stack
  // leaves stale poison and ASan reports false errors. Thread contexts give every actor a real
  // thread stack that ASan knows. Same simulation, slower context switches (docs/robustness.md).
  int sg_argc = 2;
  char sg_arg0[] = "dtsim", sg_arg1[] = "--cfg=contexts/factory:thread";
  char* sg_argv[] = {sg_arg0, sg_arg1, nullptr};
  sg4::Engine e(&sg_argc, sg_argv);
#else
  sg4::Engine e("dtsim");
#endif
  sigaction(SIGINT, &caller_sigint, nullptr);
  configure_network(x.platform);
  s.hosts = build_platform(x.platform, x.seed);
  s.links = std::make_unique<LinkModel>(x.platform, x.seed);
  for (int i = 0; i < s.N; ++i) {
    s.worker_inbox.push_back(sg4::Mailbox::by_name("worker-" + std::to_string(i)));
    s.worker_host_index.push_back(static_cast<int>(r.trace.hosts.size()));
    r.trace.hosts.push_back(s.hosts.workers[static_cast<size_t>(i)]->get_name());
  }
  for (int i = 0; i < s.N; ++i) s.ring_inbox.push_back(sg4::Mailbox::by_name("ring-" + std::to_string(i)));
  for (int k = 0; k < x.platform.servers.count; ++k) {
    s.server_inbox.push_back(sg4::Mailbox::by_name("server-" + std::to_string(k)));
    s.server_host_index.push_back(static_cast<int>(r.trace.hosts.size()));
    const std::string host = s.hosts.servers[static_cast<size_t>(k)]->get_name();  // co-located: "server-0@worker-0"
    r.trace.hosts.push_back(host.rfind("server-", 0) == 0 ? host : "server-" + std::to_string(k) + "@" + host);
  }

  std::vector<std::unique_ptr<WorkerCtx>> workers;
  std::vector<std::unique_ptr<ServerCtx>> servers;
  for (int i = 0; i < s.N; ++i) workers.push_back(std::make_unique<WorkerCtx>(s, i));
  for (int k = 0; k < s.K; ++k) servers.push_back(std::make_unique<ServerCtx>(s, k));
  s.worker_counters = [&workers](int i, NodeCheckpoint& n) { workers[static_cast<size_t>(i)]->save_counters(n); };
  if (ck) {
    for (int i = 0; i < s.N; ++i) workers[static_cast<size_t>(i)]->restore_counters(ck->workers[static_cast<size_t>(i)], ck->step);
    for (int k = 0; k < s.K; ++k) servers[static_cast<size_t>(k)]->restore_counters(ck->servers[static_cast<size_t>(k)], ck->step);
  }

  if (s.real && !ck) s.evaluate(0.0);  // the starting point of every accuracy curve

  s.worker_down.assign(static_cast<size_t>(s.N), 0);
  s.worker_returned.assign(static_cast<size_t>(s.N), 0);
  if (!x.platform.failures.empty()) s.worker_lost.assign(static_cast<size_t>(s.N), 0);
  auto start_worker = [&s, &workers](int i) {
    WorkerCtx* w = workers[static_cast<size_t>(i)].get();
    const std::string name = "worker-" + std::to_string(i) + (w->incarnation() ? "#" + std::to_string(w->incarnation()) : "");
    sg4::Actor::create(name, s.hosts.workers[static_cast<size_t>(i)], [&s, w, i] {
      s.worker_inbox[static_cast<size_t>(i)]->set_receiver(sg4::Actor::self());  // eager: no rendezvous
      guarded(s, [&] {
        w->wait_resume();
        s.algorithm->worker(*w);
        w->drain();
      });
      s.worker_returned[static_cast<size_t>(i)] = 1;
      ++s.workers_finished;
      s.last_worker_return_s = std::max(s.last_worker_return_s, sg4::Engine::get_clock());
    });
  };
  for (int i = 0; i < s.N; ++i) start_worker(i);
  for (int k = 0; k < s.K; ++k) {
    ServerCtx* sv = servers[static_cast<size_t>(k)].get();
    sg4::Actor::create("server-" + std::to_string(k), s.hosts.servers[static_cast<size_t>(k)], [&s, sv, k] {
      s.server_inbox[static_cast<size_t>(k)]->set_receiver(sg4::Actor::self());
      guarded(s, [&] {
        sv->wait_resume();
        s.algorithm->server(*sv);
        sv->drain();
      });
    })->daemonize();  // stopped when the last worker returns
  }

  // platform.failures (sim/failures.cpp): a controller daemon on the control host.
  std::unique_ptr<FailureController> failures;
  if (!x.platform.failures.empty()) {
    for (int i = 0; i < s.N; ++i) s.inbox_worker[s.worker_inbox[static_cast<size_t>(i)]] = i;
    FailureHooks fh;
    fh.crashed = [&s, &workers](int j) {  // the worker dies with its in-flight work
      if (s.worker_returned[static_cast<size_t>(j)]) return;
      s.samples_lost += static_cast<uint64_t>(workers[static_cast<size_t>(j)]->unsent_samples());
      s.worker_down[static_cast<size_t>(j)] = 1;
      s.any_down = true;
      ++s.workers_finished;  // until it restarts
    };
    fh.detected = [&s](int j) {  // tell every live node: one notification in its inbox
      s.worker_lost[static_cast<size_t>(j)] = 1;
      auto notify = [&s, j](sg4::Host* host, sg4::Mailbox* box) {
        sg4::Actor::create("failure-notice", host, [&s, j, box] {
          auto* msg = new Message{.src = j, .tag = algo::kWorkerLost, .step = 0, .data = {}};
          s.in_flight.insert(msg);  // freed with the run if never received
          box->put(msg, 0);
        });
      };
      for (int i = 0; i < s.N; ++i)
        if (!s.worker_down[static_cast<size_t>(i)] && !s.worker_returned[static_cast<size_t>(i)])
          notify(s.hosts.workers[static_cast<size_t>(i)], s.worker_inbox[static_cast<size_t>(i)]);
      for (int k = 0; k < s.K; ++k) notify(s.hosts.servers[static_cast<size_t>(k)], s.server_inbox[static_cast<size_t>(k)]);
    };
    fh.restart = [&s, &workers, start_worker](int j) {
      if (!s.worker_down[static_cast<size_t>(j)]) return;
      auto* inbox = sg4::Mailbox::by_name("worker-" + std::to_string(j) + "#" + std::to_string(workers[static_cast<size_t>(j)]->incarnation() + 1));
      s.inbox_worker.erase(s.worker_inbox[static_cast<size_t>(j)]);
      s.worker_inbox[static_cast<size_t>(j)] = inbox;
      s.inbox_worker[inbox] = j;
      s.worker_down[static_cast<size_t>(j)] = 0;
      --s.workers_finished;
      workers[static_cast<size_t>(j)]->restart(inbox);
      start_worker(j);
    };
    fh.fatal = [&s](const std::string& why) {
      if (!s.error) {
        s.error = std::make_exception_ptr(RuntimeError(why));
        s.error_where = "platform.failures";
      }
      sg4::Actor::kill_all();
    };
    fh.progress = [&s] { return s.result.gradients + s.result.messages + s.result.updates; };
    failures = std::make_unique<FailureController>(x.platform, x.seed, s.hosts, algorithm->on_failure(), fh);
    sg4::Actor::create("failures", s.hosts.control, [&failures] { failures->run(); })->daemonize();
  }

  bool stopped_by_time = false;
  if (x.training.max_time_s) {
    e.run_until(*x.training.max_time_s);
    if (s.workers_finished < s.N) {
      stopped_by_time = !s.error && !s.stop;
      for (auto& a : e.get_all_actors()) a->kill();
      e.run();
    }
  } else {
    e.run();
  }
  if (s.error) {  // an exception inside an actor: name where it happened (InputError kept as is: exit 2)
    try {
      std::rethrow_exception(s.error);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& ex) {
      throw RuntimeError(s.error_where + ": " + ex.what());
    } catch (...) {
      throw RuntimeError(s.error_where + ": unknown exception");
    }
  }
  if (!stopped_by_time && !s.stop && s.workers_finished < s.N) {
    // A deadlock: SimGrid ran out of events with workers still blocked (and has already killed
    // them, so they are named from what they registered before blocking). Servers are daemons:
    // listed, but they alone never make a deadlock.
    std::string who;
    for (const auto& [actor, what] : s.waiting)
      who += (who.empty() ? "" : "; ") + actor + (actor.rfind("server-", 0) == 0 ? " (daemon)" : "") + " waits for " + what;
    if (who.empty()) who = "no blocked receive, send or all-reduce was registered";
    std::string failed;  // platform.failures: survivors waiting for a crashed worker (issue 5)
    for (int j = 0; j < s.N; ++j)
      if (s.worker_down[static_cast<size_t>(j)]) failed += (failed.empty() ? "worker-" : ", worker-") + std::to_string(j);
    if (!failed.empty())
      who = "they wait for " + failed + ", which failed (platform.failures): this algorithm does not survive a failed "
            "worker (docs/platforms.md, Failures); " + who;
    const double t = sg4::Engine::get_clock();
    for (auto& a : e.get_all_actors()) a->kill();
    e.run();
    throw RuntimeError("deadlock at simulated time " + std::to_string(t) + " s: " +
                       std::to_string(s.N - s.workers_finished) + " of " + std::to_string(s.N) +
                       " workers blocked forever: " + who);
  }

  r.samples = s.samples_done;
  if (s.stop) {  // interrupted | wall_limit | diverged: the metrics so far stay as they are
    r.status = s.stop->reason;
    r.stop = s.stop;
    r.simulated_time_s = s.stop->sim_time_s;
    if (s.stop->reason == "wall_limit") s.evaluate(r.simulated_time_s);
  } else if (s.real && !engine::ops::all_finite(s.global.view())) {  // diverged in the last steps
    r.status = "diverged";
    r.stop = StopInfo{"diverged", "the final global model has non-finite parameters", sg4::Engine::get_clock(), -1, -1,
                      r.updates};
    r.simulated_time_s = r.stop->sim_time_s;
  } else {
    r.status = stopped_by_time ? "time_limit" : "completed";
    // run_until() moves the clock to max_time_s even when the workers were done before (the
    // daemon servers keep the simulation alive): a completed run ends when its last worker returns.
    r.simulated_time_s = stopped_by_time ? *x.training.max_time_s
                         : x.training.max_time_s ? std::min(sg4::Engine::get_clock(), s.last_worker_return_s)
                                                 : sg4::Engine::get_clock();
    s.evaluate(r.simulated_time_s);  // the final model (no-op if it has not changed since the last row)
  }
  for (auto& w : workers) r.per_worker.push_back(w->summary());
  if (s.real) {
    r.final_params.resize(s.P);
    engine::ops::to_host(s.global.view(), r.final_params.data());
  }
  r.links = s.links->rows(r.simulated_time_s);
  if (failures)
    for (const auto& f : failures->records())
      if (f.happened) r.failures.push_back(f);
  r.samples_lost = s.samples_lost;
  r.wall_time_s = s.wall();
  return r;
}

// ------------------------------------------------------------------ memory estimate
namespace {
std::string gib(double b) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g GiB", b / (1024.0 * 1024.0 * 1024.0));
  return buf;
}
}  // namespace

std::string MemoryEstimate::breakdown() const {
  return gib(total()) + " (parameter copies " + gib(model_bytes) + ", dataset " + gib(dataset_bytes) + ", trace " +
         gib(trace_bytes) + ", simulated hosts and actors " + gib(actor_bytes) + ")";
}

MemoryEstimate estimate_memory(const Experiment& x, size_t params, double buffers_per_worker, int shards,
                               bool trace_on) {
  MemoryEstimate m;
  const double N = x.platform.workers.count, K = shards, P = static_cast<double>(params);
  if (x.compute.real) {
    // Every worker's own buffers, plus the global model, the initial parameters, and on the
    // servers one averaging buffer, the optimizer state and two snapshots in flight (all K shards
    // together are one model).
    m.model_bytes = 4.0 * P * (N * std::max(0.0, buffers_per_worker) + 2.0 + (K > 0 ? 4.0 : 0.0));
    const auto [shape, classes] = dataset_shape(x.dataset);
    (void)classes;
    const double train = static_cast<double>(x.training.train_size);
    // The test set of the IDX datasets is not known before reading it: MNIST's ratio (1/6).
    const double test = x.dataset.kind == "synthetic" ? static_cast<double>(x.dataset.synthetic_test) : train / 6.0;
    const double per_sample = 4.0 * static_cast<double>(shape.size()) + 4.0 +
                              (x.dataset.kind == "synthetic" ? 0.0 : static_cast<double>(shape.size()));  // + the raw bytes while decoding
    m.dataset_bytes = (train + test) * per_sample;
  }
  if (trace_on) {
    const double b = x.training.batch_size;
    const double steps = std::ceil(static_cast<double>(x.training.samples) / (N * b));
    m.trace_bytes = steps * N * (3.0 + 4.0 * std::max(1.0, K)) * (sizeof(Span) + 120.0);  // + its JSON text
  }
  m.actor_bytes = 20e3 * (N + x.platform.servers.count) + 64e6;  // ~17 KB per host+actor measured at 10k; + the process
  return m;
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024.0;
  return 0;
}

void check_memory(const Experiment& x, const MemoryEstimate& m, double available_bytes) {
  if (available_bytes <= 0 || m.total() <= available_bytes) return;
  const bool own_file = !x.platform.file.empty() && x.platform.file != x.file;
  throw InputError(own_file ? x.platform.file : x.file, own_file ? "workers.count" : "platform.workers.count",
                   "this run needs about " + m.breakdown() + " but only " + gib(available_bytes) +
                       " of memory is available (MemAvailable); use fewer workers, a smaller model, or "
                       "compute.mode \"timing-only\"");
}

}  // namespace dtsim::sim
