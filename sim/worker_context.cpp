#include "sim/worker_context.hpp"

#include <algorithm>
#include <cmath>

#include "algorithms/clip.hpp"
#include "engine/ops.hpp"
#include "sim/collectives.hpp"
#include "sim/stragglers.hpp"

namespace dtsim::sim::detail {

void WorkerCtx::restart(sg4::Mailbox* inbox) {
  s_.settle();  // the math of the minibatch its failure interrupted (its BatchNorm state)
  ++incarnation_;
  inbox_ = inbox;
  stash_.clear();
  outstanding_.clear();
  jobs_.reopen({&ring_seq_, &chain_seq_});
  unsent_samples_ = 0;
  restart_params_ = s_.real ? std::make_shared<const Vec>(s_.global.clone()) : nullptr;
}

double WorkerCtx::compute_rate(int rank) const {
  const auto& c = s_.x.compute;
  const double speed = s_.hosts.workers.at(static_cast<size_t>(rank))->get_speed();
  // As amount(): fixed and measured times are group 0's, a slower group's take longer (it said the
  // same rate for every group, and CoCoD-SGD's proportional batches were equal on unequal groups).
  const double relative = c.time == ComputeSpec::Time::Flops ? 1.0 : s_.x.platform.worker_groups.front().speed / speed;
  const double per_sample_s =
      c.time == ComputeSpec::Time::Fixed     ? c.fixed_seconds / s_.b
      : c.time == ComputeSpec::Time::Profile ? c.profile_compute_s / c.profile_batch
                                             : s_.flops_per_sample / speed;
  return 1.0 / (per_sample_s * relative * s_.x.platform.slowdown(rank));
}

Pending WorkerCtx::push(const Payload& data, int tag, int64_t step) {
  auto all = comm_wait();
  const int K = s_.K;
  all->what = [tag, K] { return "its push (tag " + std::to_string(tag) + ") to the " + std::to_string(K) + " shards"; };
  for (int k = 0; k < s_.K; ++k) {
    Message m{.tag = tag, .step = step, .data = data.slice(s_.shard_off[static_cast<size_t>(k)], s_.shard_len[static_cast<size_t>(k)])};
    all->comms.push_back(send_comm(s_.server_inbox[static_cast<size_t>(k)], std::move(m)));
  }
  return Pending(all);
}

std::shared_ptr<const Vec> WorkerCtx::pull(int tag) {
  if (s_.plan.active()) {  // the replies may come tensor by tensor (per-tensor servers)
    algo::Incoming in = pull_async(tag);
    return in.wait();
  }
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

algo::Future<std::shared_ptr<const Vec>> WorkerCtx::allreduce_async(const Payload& mine, algo::Reduce op, double weight) {
  const uint64_t seq = ar_seq_++;
  const int64_t carried = unsent_samples_;
  unsent_samples_ = 0;  // this worker's work so far leaves it in the collective
  contribute(seq, mine, op, weight, carried);
  // The transfers: a communication actor on this host runs the ring, after this worker's
  // previous collective (so ring messages never interleave).
  struct Impl : algo::Future<std::shared_ptr<const Vec>>::Impl {
    WorkerCtx* self;
    uint64_t seq;
    bool finished = false;  // set by the ring's job
    bool joined = false;
    Notifier done;
    std::shared_ptr<const Vec> result;
    void wait() override {
      if (joined) return;
      if (!finished) self->block_on("allreduce #" + std::to_string(seq), [&] { done.wait_until([&] { return finished; }); });
      joined = true;
      ++self->collectives_waited_;
      auto it = self->s_.collectives.find(seq);
      result = self->s_.result_of(it->second);
      self->s_.fetched(it, self->rank_);
    }
    bool test() override { return finished; }
    std::shared_ptr<const Vec>& get() override { return result; }
  };
  auto p = std::make_shared<Impl>();
  p->self = this;
  p->seq = seq;
  const size_t count = mine.count;
  const double element_bytes = mine.element_bytes;
  std::weak_ptr<Impl> weak = p;
  after(ring_seq_, "allreduce-" + std::to_string(rank_) + "-" + std::to_string(seq),
        [this, count, element_bytes, seq] {
          if (s_.elastic) elastic_collective(count, element_bytes, seq);  // sim/elastic.cpp
          else ring(count, element_bytes, seq);
        },
        [weak] {
          if (auto q = weak.lock()) {
            q->finished = true;
            q->done.notify();
          }
        });
  return algo::Future<std::shared_ptr<const Vec>>(p);
}

void WorkerCtx::save_counters(NodeCheckpoint& n) const {
  NodeBase::save_counters(n);
  n.k = k_;
  n.pos = pos_;
  n.batch = b_;
  n.ar_seq = ar_seq_;
  n.gradients = gradients_;
  n.samples = samples_;
  n.compute_s = compute_s_;
  n.work_s = work_s_;
  if (!s_.model_state.empty()) {  // its BatchNorm running statistics, exactly as of its cut
    s_.settle();
    const Vec& st = s_.model_state[static_cast<size_t>(rank_)];
    auto& blob = n.blobs[kModelStateKey];
    blob.resize(st.size());
    engine::ops::to_host(st.view(), blob.data());
  }
}

void WorkerCtx::restore_counters(const NodeCheckpoint& n, int64_t step) {
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
  work_s_ = n.work_s;
}

double WorkerCtx::amount() const {
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

Gradient WorkerCtx::start_compute(engine::ConstVecView params, const std::shared_ptr<const Vec>& owner, MathPtr& math) {
  Gradient g;
  const Minibatch mb = begin_minibatch(g);
  math = issue_math(mb, params, owner, g);
  return g;
}

WorkerCtx::Minibatch WorkerCtx::begin_minibatch(Gradient& g) {
  s_.check_stop();
  unsent_samples_ += b_;
  g.samples = b_;
  g.step = k_;
  const Minibatch mb{k_, pos_, b_};
  ++k_;
  pos_ += static_cast<uint64_t>(b_);
  return mb;
}

WorkerCtx::MathPtr WorkerCtx::issue_math(const Minibatch& mb, engine::ConstVecView params, std::shared_ptr<const Vec> owner,
                                         Gradient& g) {
  if (!s_.real) return nullptr;
  s_.settle_gradient(rank_);  // the last one's, if nothing has read it yet (StepChain::math)
  s_.pool->await(s_.last_math[static_cast<size_t>(rank_)]);  // its samples, batch and BatchNorm state are reused
  if (mb.b == s_.b && mb.pos == static_cast<uint64_t>(mb.k) * static_cast<uint64_t>(s_.b)) {
    s_.order->worker_batch(rank_, s_.N, static_cast<uint64_t>(mb.k), s_.b, idx_);
  } else {  // a per-worker batch size (set_batch_size): this worker's stream positions pos, pos+1, ...
    idx_.resize(static_cast<size_t>(mb.b));
    for (size_t j = 0; j < idx_.size(); ++j)
      idx_[j] = s_.order->at((mb.pos + j) * static_cast<uint64_t>(s_.N) + static_cast<uint64_t>(rank_));
  }
  if (!owner && s_.pool->threads() > 1) {  // the math runs later: from the parameters as they are now
    if (params_copy_.size() != params.size) params_copy_ = Vec(params.size, s_.model->device());
    engine::ops::copy(params_copy_.view(), params);
    params = params_copy_.view();
  }
  g.buf = s_.gradient_buffer();
  auto m = std::make_shared<GradientMath>();
  m->k = mb.k;
  const engine::VecView state = s_.model_state.empty() ? engine::VecView{} : s_.model_state[static_cast<size_t>(rank_)].view();
  m->ticket = s_.pool->submit([this, m, params, owner = std::move(owner), state, grad = g.buf, k = mb.k](engine::Model& model) {
    engine::gather(s_.data->train, s_.data->shape, idx_, batch_);
    if (s_.x.dataset.augment)  // random crop + flip keyed by (seed, worker, step): event order never matters
      engine::augment_crop_flip(batch_, s_.data->black, s_.x.seed, static_cast<uint64_t>(rank_), static_cast<uint64_t>(k));
    m->loss = state.size == 0 ? model.forward_backward(params, batch_, grad->view())
                              : model.forward_backward(params, state, batch_, grad->view());
    if (s_.x.clip_grad_norm > 0) algo::clip_grad_norm(grad->view(), s_.x.clip_grad_norm);
  });
  s_.last_math[static_cast<size_t>(rank_)] = m->ticket;
  return m;
}

void WorkerCtx::await_math(GradientMath& m, Gradient& g) {
  s_.pool->await(m.ticket);
  if (m.checked) return;
  m.checked = true;
  g.loss = m.loss;
  if (!std::isfinite(g.loss))  // checked every step: one float
    s_.diverge("loss of worker " + std::to_string(rank_) + " at its step " + std::to_string(m.k) + " is " +
                   (std::isnan(g.loss) ? "nan" : "inf"),
               rank_, m.k);
}

void WorkerCtx::finish_compute(const Gradient& g, double t0, double t1, bool span) {
  if (t1 < 0) t1 = sg4::Engine::get_clock();
  compute_s_ += t1 - t0;
  ++gradients_;
  samples_ += static_cast<uint64_t>(g.samples);
  s_.result.gradients += static_cast<uint64_t>(s_.group);  // grouped: the identical workers' too
  s_.samples_done += static_cast<uint64_t>(g.samples) * static_cast<uint64_t>(s_.group);
  if (span) s_.result.trace.add({trace_host_, SpanKind::Compute, t0, t1, 0, -1, g.step});
}

bool WorkerCtx::aggregated_ring_applies(bool cpu, const std::vector<int>* members) const {
  const auto& c = s_.x.platform.collective;
  const bool horovod = s_.plan.active() && s_.plan.overlap.kind == OverlapSpec::Kind::Horovod;
  return c.aggregated && c.algorithm == CollectiveSpec::Algorithm::Ring && !cpu && !members && !s_.elastic && !horovod &&
         s_.x.platform.failures.empty() && !s_.links->any_jitter();
}

void WorkerCtx::ring(size_t count, double element_bytes, uint64_t seq, int label, bool cpu, const std::vector<int>* members,
                     int index) {
  const std::string me = s_.actor_name();
  CollectiveHooks hooks;
  hooks.sent = [this](int, double bytes, int messages) {
    s_.result.bytes_on_wire += bytes;
    s_.result.messages += static_cast<uint64_t>(messages);
    sent_bytes_ += bytes;
    sent_messages_ += static_cast<uint64_t>(messages);
  };
  hooks.received = [this, seq, label](int from, double bytes, double start, double end, int messages) {
    const int src = s_.worker_host_index[static_cast<size_t>(from)];
    if (s_.result.trace.enabled)
      s_.result.trace.add_transfer(src, trace_host_, start, end, bytes, static_cast<int64_t>(seq), Transfer::Collective, label);
    const sg4::Host* from_host = s_.hosts.workers[static_cast<size_t>(from)];
    s_.links->record(from_host, host_, bytes, start, end, messages);  // sim/links.cpp
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
  if (cpu)  // the received chunk added into this rank's own: 3 floats of memory traffic per element
    hooks.reduced = [this](double elements) { memory_work(12.0 * elements); };
  if (aggregated_ring_applies(cpu, members)) {  // platform.collective.transfers "aggregated"
    auto it = s_.rings.find({seq, label});
    if (it == s_.rings.end()) {
      it = s_.rings.emplace(std::make_pair(seq, label), RunState::SharedRing{}).first;
      it->second.ring.measured = sg4::Barrier::create(static_cast<unsigned>(s_.N));
    }
    aggregated_ring(it->second.ring, s_.hosts.workers, rank_, count, element_bytes, hooks);
    if (++it->second.left == s_.N) s_.rings.erase(it);
    return;
  }
  if (members) {  // on_failure "elastic": among the collective's members (sim/elastic.hpp)
    hooks.survive_failures = true;
    allreduce_transfers(s_.x.platform.collective.algorithm, *members, index, s_.hosts.worker_group, count, element_bytes, hooks);
    return;
  }
  allreduce_transfers(s_.x.platform.collective.algorithm, s_.N, rank_, s_.hosts.worker_group, count, element_bytes, hooks);
}

}  // namespace dtsim::sim::detail
