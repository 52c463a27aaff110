#include "sim/node_context.hpp"

#include <algorithm>

namespace dtsim::sim::detail {

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

size_t live_count(const std::vector<sg4::CommPtr>& comms) {
  return static_cast<size_t>(std::count_if(comms.begin(), comms.end(), [](const sg4::CommPtr& c) { return c != nullptr; }));
}

void CommWait::wait() {
  const double t0 = sg4::Engine::get_clock();
  if (owner) owner->flush_sends();
  const bool any = !comms.empty() || !tickets.empty();
  const std::string me = run && any ? run->actor_name() : std::string();
  if (run && any) run->waiting[me] = what ? what() : "a send";
  for (auto& c : comms) wait_comm(c);
  for (auto& t : tickets) owner->wait_ticket(*t);
  if (run && any) run->waiting.erase(me);
  if (owner) owner->waited(live_count(comms));
  comms.clear();
  tickets.clear();
  if (on_wait) on_wait(sg4::Engine::get_clock() - t0);
}

bool CommWait::test() {
  for (auto& c : comms)
    if (!test_comm(c)) return false;
  for (auto& t : tickets)
    if (!t->done) return false;
  return true;
}

CommWait::~CommWait() {
  if (owner && (!comms.empty() || !tickets.empty())) owner->adopt(comms, tickets);
}

void NodeBase::adopt(std::vector<sg4::CommPtr>& comms, std::vector<std::shared_ptr<SendTicket>>& tickets) {
  for (auto& c : comms) outstanding_.push_back(std::move(c));
  comms.clear();
  for (auto& t : tickets)
    if (!t->done) outstanding_tickets_.push_back(std::move(t));
  tickets.clear();
  if (outstanding_tickets_.size() >= 64) std::erase_if(outstanding_tickets_, [](const auto& t) { return t->done; });
  if (outstanding_.size() < prune_at_) return;
  const size_t before = live_count(outstanding_);
  // A send whose transfer has ended (it has a finish time) is waited for, which returns at once.
  // Testing it instead would leave it in this actor's activity list until the actor ends (SimGrid
  // 3.32's ActivityImpl::test finishes a done activity without the issuer's simcall), and every
  // later completion of this actor's activities walks that list: an asynchronous server's replies
  // made it grow by one per gradient (bench/README.md, "Real mode: the compute pool").
  std::erase_if(outstanding_, [](const sg4::CommPtr& c) {
    if (c && c->get_finish_time() < 0) return false;  // still in transit, or not matched yet
    wait_comm(c);
    return true;
  });
  live_sends_ -= before - live_count(outstanding_);
  prune_at_ = std::max<size_t>(64, 2 * outstanding_.size());
}

Message* NodeBase::prepare_send(sg4::Mailbox* box, Message m) {
  s_.check_stop();
  if (m.bytes == 0) m.bytes = m.data.element_bytes * static_cast<double>(m.data.count);
  m.src = src_id_;
  m.sent_at = sg4::Engine::get_clock();
  s_.result.bytes_on_wire += m.bytes * s_.group;  // grouped: the identical workers' messages too
  s_.result.messages += static_cast<uint64_t>(s_.group);
  sent_bytes_ += m.bytes;
  ++sent_messages_;
  unsent_samples_ = 0;                    // this node's work so far has left it (failures)
  if (s_.dropped(box)) return nullptr;    // the receiver's host is down: the message is lost
  auto* msg = new Message(std::move(m));
  s_.in_flight.insert(msg);
  return msg;
}

sg4::CommPtr NodeBase::send_comm(sg4::Mailbox* box, Message m) {
  Message* msg = prepare_send(box, std::move(m));
  if (!msg) return nullptr;
  ++live_sends_;
  return box->put_async(msg, msg->bytes);
}

std::shared_ptr<CommWait> NodeBase::comm_wait() {
  auto p = std::make_shared<CommWait>();
  p->on_wait = [this](double dt) {
    comm_wait_ += dt;
    const double now = sg4::Engine::get_clock();  // blocked on sends: a wait span on the timeline
    if (dt > 0) s_.result.trace.add({trace_host_, SpanKind::Wait, now - dt, now, 0, -1, 0});
  };
  p->run = &s_;
  p->owner = this;
  return p;
}

Pending NodeBase::send(sg4::Mailbox* box, Message m) {
  const int tag = m.tag;
  auto p = comm_wait();
  if (src_id_ >= 0 || live_sends_ < SendPool::kDirect || s_.hooks.direct_sends) {
    p->comms.push_back(send_comm(box, std::move(m)));
  } else if (Message* msg = prepare_send(box, std::move(m))) {  // a shard's N replies (sim/send_pool.hpp)
    if (!pool_) pool_ = std::make_unique<SendPool>(host_, sg4::this_actor::get_name());
    p->tickets.push_back(pool_->post(box, msg));
  }
  p->what = [box, tag] { return "its send to " + box->get_name() + " (tag " + std::to_string(tag) + ")"; };
  return Pending(p);
}

std::unique_ptr<Message> NodeBase::get_one(const std::string& what) {
  while (true) {
    auto m = get_raw(what);
    if (m->offset < 0 || src_id_ >= 0 || s_.plan.comm != algo::Algorithm::LayerComm::AsyncServer) return m;
    // Per-tensor pushes to an asynchronous server (docs/timing.md): the shard applies a worker's
    // gradient once all of its range is in, as one message.
    const size_t k = static_cast<size_t>(-src_id_ - 1);
    Partial& part = partial_[{m->src, m->tag, m->step}];
    if (part.covered == 0) {
      part.buf = m->data.buf;
      part.element_bytes = m->data.element_bytes;
      part.sent_at = m->sent_at;
    }
    part.covered += m->data.count;
    part.bytes += m->bytes;
    part.sent_at = std::min(part.sent_at, m->sent_at);
    if (part.covered < s_.shard_len[k]) continue;
    auto out = std::make_unique<Message>(Message{.src = m->src, .tag = m->tag, .step = m->step,
                                                 .data = Payload{part.buf, s_.shard_off[k], s_.shard_len[k], part.element_bytes},
                                                 .bytes = part.bytes, .sent_at = part.sent_at});
    partial_.erase({m->src, m->tag, m->step});
    if (s_.real) s_.settle_gradient(out->src, out->data.buf.get());  // its first reader (StepChain::math)
    return out;
  }
}

std::unique_ptr<Message> NodeBase::get_raw(const std::string& what) {
  Message* raw = nullptr;
  sg4::CommPtr c;
  while (true) {
    c = inbox_->get_async<Message>(&raw);
    try {
      block_on(what + " on " + inbox_->get_name(), [&] { c->wait(); });
      break;
    } catch (const simgrid::NetworkFailureException&) {  // the sender's host failed mid-transfer
      s_.waiting.erase(s_.actor_name());
    } catch (const StopRun&) {
      // A stop (signal, wall-clock limit, another actor's error) while the receive is posted:
      // cancelled, or SimGrid's ~Comm prints a backtrace for a receive freed before completion.
      if (c->get_state() == sg4::Activity::State::STARTED) c->cancel();
      throw;
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

Message NodeBase::recv_tag(int tag) {
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

Message NodeBase::recv_any_tag() {
  if (!stash_.empty()) {
    Message m = std::move(stash_.front());
    stash_.pop_front();
    return m;
  }
  return std::move(*get_one());
}

void NodeBase::save_counters(NodeCheckpoint& n) const {
  n.cut_time_s = sg4::Engine::get_clock();
  n.comm_wait_s = comm_wait_;
  n.sent_bytes = sent_bytes_;
  n.sent_messages = sent_messages_;
}

void NodeBase::restore_counters(const NodeCheckpoint& n, int64_t step) {
  comm_wait_ = n.comm_wait_s;
  sent_bytes_ = n.sent_bytes;
  sent_messages_ = n.sent_messages;
  resume_step_ = step;
  resume_time_ = n.cut_time_s;
  resumed_ = std::make_unique<NodeState>(const_cast<NodeCheckpoint*>(&n), who());  // read-only use
}

void NodeBase::save_checkpoint(int64_t step, const std::function<void(algo::State&)>& save) {
  if (s_.server_cuts) {  // asynchronous PS: the shards' next call after the threshold
    const int64_t cut = static_cast<int64_t>(s_.result.checkpoints_written) + 1;
    if (!s_.server_cut_pending || src_id_ >= 0 || saved_cut_ == cut) return;
    saved_cut_ = cut;
    step = saved_cut_;  // the cut's number
  } else {
    if (!s_.is_cut(step) || step <= saved_cut_) return;  // the hot path: a few compares
    saved_cut_ = step;
    before_cut();
  }
  s_.save_cut(step, src_id_, -src_id_ - 1, [&](NodeCheckpoint& n) {
    save_counters(n);
    NodeState st(&n, who());
    if (save) save(st);
  });
}

}  // namespace dtsim::sim::detail
