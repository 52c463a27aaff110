// The part of a node's context (algo::Node) that workers and server shards share: messaging over
// SimGrid mailboxes (eager inboxes, tag matching, the timeline and per-link records of every
// transfer), blocking waits that name what they wait for (deadlock reports), sends never waited for
// (drained when the node's function returns), and the node's share of checkpoint cuts. NodeImpl
// implements the algo::Node interface on top of it for either role. Internal to sim/.
#pragma once
#include <deque>
#include <map>
#include <tuple>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/busy_spans.hpp"
#include "sim/run_state.hpp"
#include "sim/send_pool.hpp"
#include "sim/trace.hpp"

namespace dtsim::sim::detail {

class NodeBase;
// A transfer whose peer's host failed ends with NetworkFailureException: the message is lost
// (platform.failures). A null comm is a message dropped before it left (its receiver had crashed).
void wait_comm(const sg4::CommPtr& c);
bool test_comm(const sg4::CommPtr& c);
size_t live_count(const std::vector<sg4::CommPtr>& comms);  // the non-null ones

struct CommWait : Pending::Impl {
  std::vector<sg4::CommPtr> comms;
  std::vector<std::shared_ptr<SendTicket>> tickets;  // sends a helper makes (sim/send_pool.hpp)
  std::function<void(double)> on_wait;  // accounting of the blocked time
  RunState* run = nullptr;            // its waiting map (named in a deadlock report)
  std::function<std::string()> what;  // built only when someone actually blocks
  NodeBase* owner = nullptr;          // receives the comms if this handle is dropped unwaited
  ~CommWait() override;
  void wait() override;
  bool test() override;
};

class NodeBase {
 public:
  NodeBase(RunState& s, sg4::Host* host, sg4::Mailbox* inbox, int src_id, int trace_host)
      : s_(s), host_(host), inbox_(inbox), src_id_(src_id), trace_host_(trace_host) {}
  virtual ~NodeBase() = default;

  // Waits for every send that was never waited for (called when the node's function returns).
  void drain() {
    flush_sends();
    for (auto& c : outstanding_) wait_comm(c);
    live_sends_ -= live_count(outstanding_);
    outstanding_.clear();
    for (auto& t : outstanding_tickets_) pool_->wait(*t);
    outstanding_tickets_.clear();
  }

  // Sends whose handles were dropped unwaited: kept so they complete and are drained at the end.
  // Completed ones are dropped in amortised O(1) (each prune at least doubles the threshold).
  void adopt(std::vector<sg4::CommPtr>& comms, std::vector<std::shared_ptr<SendTicket>>& tickets);
  // A CommWait's sends were waited for.
  void waited(size_t comms) { live_sends_ -= comms; }
  // Hands the sends given to helpers so far to them: before anything that blocks this node.
  void flush_sends() {
    if (pool_) pool_->flush();
  }
  void wait_ticket(const SendTicket& t) { pool_->wait(t); }

 protected:
  sg4::CommPtr send_comm(sg4::Mailbox* box, Message m);

  std::shared_ptr<CommWait> comm_wait();

  Pending send(sg4::Mailbox* box, Message m);

  // Receives the next message of the inbox (blocking), recording the transfer on the timeline; a
  // server assembles the per-tensor pieces of one worker's push into one message (asynchronous
  // servers under per-tensor overlap).
  std::unique_ptr<Message> get_one(const std::string& what = "a message");
  std::unique_ptr<Message> get_raw(const std::string& what);

  Message recv_tag(int tag);

  Message recv_any_tag();

  template <class F>
  void block_on(const std::string& what, F&& f) {
    s_.check_stop();
    flush_sends();
    const double t0 = sg4::Engine::get_clock();
    const std::string me = s_.actor_name();
    s_.waiting[me] = what;
    f();
    s_.waiting.erase(me);
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
  virtual void save_counters(NodeCheckpoint& n) const;
  virtual void restore_counters(const NodeCheckpoint& n, int64_t step);
  // On resume: waits until this node's own cut time, then the algorithm's function starts.
  virtual void wait_resume() {
    flush_sends();
    if (resumed_ && resume_time_ > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(resume_time_);
  }
  std::string who() const { return src_id_ >= 0 ? "worker " + std::to_string(src_id_) : "server shard " + std::to_string(-src_id_ - 1); }
  void save_checkpoint(int64_t step, const std::function<void(algo::State&)>& save);
  // Called once a step is known to be a cut, before the node saves (a worker receives its pulls).
  virtual void before_cut() {}

 protected:
  RunState& s_;
  sg4::Host* host_;
  sg4::Mailbox* inbox_;
  int src_id_;
  int trace_host_;
  double comm_wait_ = 0;
  double work_s_ = 0;          // simulated time in work() (local updates, optimizer steps)
  OpenSpans busy_open_;        // busy spans still running (not yet in work_s_ or compute_s_)
  double sent_bytes_ = 0;      // put on the wire by this node (checkpoints sum them)
  uint64_t sent_messages_ = 0;
  int64_t saved_cut_ = -1;     // the last cut this node saved
  int64_t resume_step_ = 0;
  double resume_time_ = 0;
  std::unique_ptr<NodeState> resumed_;
  int64_t unsent_samples_ = 0;  // samples computed since this node last sent (lost if it crashes)
  std::deque<Message> stash_;
  struct Partial {  // get_one: a worker's push arriving piece by piece
    std::shared_ptr<const Vec> buf;
    double element_bytes = 4, bytes = 0, sent_at = 0;
    size_t covered = 0;
  };
  std::map<std::tuple<int, int, int64_t>, Partial> partial_;
  std::vector<sg4::CommPtr> outstanding_;
  size_t prune_at_ = 64;
  // Sends this node posted itself and has not yet seen end (sim/send_pool.hpp: past
  // SendPool::kDirect of them, helpers take the next ones).
  size_t live_sends_ = 0;
  std::unique_ptr<SendPool> pool_;
  std::vector<std::shared_ptr<SendTicket>> outstanding_tickets_;
  // send_comm's bookkeeping without the put: the message to send, or null when it is dropped.
  Message* prepare_send(sg4::Mailbox* box, Message m);
};

// The part of algo::Node every role implements identically.
template <class Base>
class NodeImpl : public Base, public NodeBase {
 public:
  using NodeBase::NodeBase;
  int workers() const override { return s_.N; }
  int shards() const override { return s_.K; }
  bool real() const override { return s_.real; }
  bool layerwise() const override { return s_.plan.active(); }
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
    flush_sends();
    const double t0 = sg4::Engine::get_clock();
    OpenSpan busy(busy_open_, t0);
    sg4::this_actor::execute(flops);
    busy.close();
    work_s_ += sg4::Engine::get_clock() - t0;
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

}  // namespace dtsim::sim::detail
