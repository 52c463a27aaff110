// A worker's layer-wise timing (algorithm.overlap, docs/timing.md): its minibatch as a chain of
// per-layer executions on a compute actor, and the three ways its gradient's communication starts
// while the backward still runs:
//   ddp         PyTorch DDP's buckets, each all-reduced (one after another, on one communication
//               stream) once all its tensors are ready and the previous bucket has launched;
//   horovod     every fusion cycle, the tensors ready on all ranks (negotiated through rank 0) are
//               fused into buffers and all-reduced;
//   per-tensor  each tensor pushed to the shard(s) holding it as soon as it is ready, one tensor at
//               a time, input-side tensors first with "priority" (MXNet KVStore, ByteScheduler).
// The real math is unchanged: one forward/backward per minibatch, one reduction per all-reduce.
#include <algorithm>
#include <cmath>
#include <deque>

#include "engine/ops.hpp"
#include "sim/worker_context.hpp"

namespace dtsim::sim::detail {

namespace {

// The Future<Gradient> of a layer-wise compute: its compute actor's chain.
struct ChainFuture : Future<Gradient>::Impl {
  std::shared_ptr<StepChain> chain;
  RunState* s = nullptr;
  void wait() override {
    chain->wait_finished();
    chain->settle_math();  // the algorithm reads the gradient next, and may write to it: no all-reduce reads it after
    s->release_contribution(chain->g.buf.get(), chain->uncontributed > 0, chain->frozen);
  }
  bool test() override { return chain->finished; }
  Gradient& get() override { return chain->g; }
};

std::shared_ptr<StepChain> chain_of(Future<Gradient>& f) {
  if (!f.valid()) return nullptr;
  auto* c = dynamic_cast<ChainFuture*>(f.impl().get());
  return c ? c->chain : nullptr;
}

// A per-tensor push: the tensors wait in a queue and one sender actor sends them one at a time.
// To a synchronous server it is done when the backward is over, its sends going on: the server
// answers a piece only once all N pushes of it are in, so the pull that follows cannot overtake
// them, and the next forward of layer i must wait only for layer i's pull (MXNet's push is
// asynchronous), not for the other tensors' sends. To an asynchronous server: once all are sent.
struct TensorPush : Pending::Impl {
  std::shared_ptr<StepChain> chain;
  std::function<void(const std::string&, std::function<void()>)> block;
  std::deque<size_t> queue;
  bool sending = false;
  bool sync_server = false;
  size_t sent = 0, total = 0;
  int tag = 0;
  int64_t step = 0;
  Notifier note;
  void wait() override {
    chain->wait_finished();
    if (!sync_server && sent < total)
      block("its per-tensor push (tag " + std::to_string(tag) + ")", [this] { note.wait_until([this] { return sent == total; }); });
  }
  bool test() override { return sync_server ? chain->finished : sent == total; }
};

}  // namespace

// ------------------------------------------------------------------ compute chains
WorkerCtx::~WorkerCtx() {
  for (auto& w : chains_)
    if (auto c = w.lock()) {
      c->listeners.clear();
      c->math = nullptr;
    }
}

std::shared_ptr<StepChain> WorkerCtx::new_chain() {
  std::erase_if(chains_, [](const std::weak_ptr<StepChain>& w) { return w.expired(); });
  auto c = std::make_shared<StepChain>();
  chains_.push_back(c);
  c->plan = &s_.plan;
  c->ready_at.assign(s_.plan.shape.tensors.size(), -1.0);
  return c;
}

void WorkerCtx::start_chain(const std::shared_ptr<StepChain>& c) {
  after(chain_seq_, "compute-" + std::to_string(rank_) + "-" + std::to_string(c->minibatch), [this, c] { run_chain(*c); });
}

Future<Gradient> WorkerCtx::chain_future(const std::shared_ptr<StepChain>& c) {
  auto f = std::make_shared<ChainFuture>();
  f->chain = c;
  f->s = &s_;
  return Future<Gradient>(f);
}

void WorkerCtx::run_chain(StepChain& c) {
  const LayerPlan& p = *c.plan;
  Tracer& trace = s_.result.trace;
  const size_t L = p.shape.layers.size();
  c.t0 = now();
  // Busy while a phase runs, not while it waits for parameters; credited by finish_compute.
  OpenSpan busy(busy_open_, c.t0, nullptr, false);
  auto phase = [&](double share, size_t l, int dir) {  // dir: 1 forward, 2 backward
    if (share <= 0) return;
    s_.check_stop();
    const double t = now();
    busy.resume(t);
    sg4::this_actor::execute(c.amount * share);
    busy.pause(now());
    if (p.trace_layers) trace.add({trace_host_, SpanKind::Compute, t, now(), 0, static_cast<int>(l), c.minibatch, 0, Transfer::None, dir});
  };
  double waited = 0;  // for parameters still arriving: not compute (exposed_comm_s)
  for (size_t l = 0; l < L; ++l) {
    if (!c.layer_in.empty() && !c.layer_in[l]) {
      const double w0 = now();
      c.note.wait_until([&] { return c.layer_in[l] != 0; });
      waited += now() - w0;
    }
    phase(p.shares.forward[l], l, 1);
  }
  const double forward_end = now();
  if (c.needs_math) {  // parameters that arrived during the forward: their gradient is issued
    const double w0 = now();
    c.note.wait_until([&] { return static_cast<bool>(c.math); });
    waited += now() - w0;
  }
  if (!s_.real || !p.math_to_first_reader())
    c.settle_math();  // the gradient, before the backward hands out its tensors
  else if (c.math)
    s_.unsettled[static_cast<size_t>(rank_)] = c.shared_from_this();  // for its first reader
  for (size_t l = L; l-- > 0;) {
    phase(p.shares.backward[l], l, 2);
    const auto& ts = p.shape.layers[l].tensors;
    for (auto it = ts.rbegin(); it != ts.rend(); ++it) c.mark_ready(*it, now());
  }
  c.t1 = now();
  if (!p.trace_layers) {  // the trace's size limit: one span per phase
    trace.add({trace_host_, SpanKind::Compute, c.t0, forward_end, 0, -1, c.minibatch, 0, Transfer::None, 3});
    trace.add({trace_host_, SpanKind::Compute, forward_end, c.t1, 0, -1, c.minibatch, 0, Transfer::None, 4});
  }
  c.finished = true;
  busy.close();
  finish_compute(c.g, c.t0 + waited, c.t1, false);  // busy: the phases only
  c.note.notify();
}

Gradient WorkerCtx::compute(engine::ConstVecView params) {
  if (s_.plan.active()) {
    Future<Gradient> f = compute_async(params);
    return f.wait();
  }
  MathPtr math;
  Gradient g = start_compute(params, nullptr, math);
  const double t0 = sg4::Engine::get_clock();
  OpenSpan busy(busy_open_, t0);
  sg4::this_actor::execute(amount());
  if (math) await_math(*math, g);
  busy.close();
  finish_compute(g, t0);
  return g;
}

Future<Gradient> WorkerCtx::compute_async(engine::ConstVecView params) { return compute_async_at(params, nullptr); }

Future<Gradient> WorkerCtx::compute_async_at(engine::ConstVecView params, const std::shared_ptr<const Vec>& owner) {
  if (s_.plan.active()) {
    auto c = new_chain();
    const Minibatch mb = begin_minibatch(c->g);
    c->minibatch = mb.k;
    c->amount = amount();
    if (MathPtr m = issue_math(mb, params, owner, c->g))  // from the parameters as they are now
      c->math = [this, m, c] { await_math(*m, c->g); };
    start_chain(c);
    return chain_future(c);
  }
  struct Impl : Future<Gradient>::Impl {
    WorkerCtx* self;
    Gradient g;
    MathPtr math;
    sg4::ExecPtr exec;
    double t0 = 0;
    OpenSpan busy;  // in the worker's busy_open_ until waited for
    bool done = false;
    void wait() override {
      if (done) return;
      exec->wait();
      if (math) self->await_math(*math, g);
      busy.close();
      self->finish_compute(g, t0, exec->get_finish_time());  // not the later wait()
      done = true;
    }
    bool test() override { return done || exec->test(); }
    Gradient& get() override { return g; }
  };
  auto p = std::make_shared<Impl>();
  p->self = this;
  p->g = start_compute(params, owner, p->math);
  p->t0 = sg4::Engine::get_clock();
  p->exec = sg4::this_actor::exec_init(amount());
  p->exec->start();
  p->busy.open(busy_open_, p->t0, p->exec);
  return Future<Gradient>(p);
}

// ------------------------------------------------------------------ pulls arriving tensor by tensor
algo::Incoming WorkerCtx::pull_async(int tag) {
  auto f = std::make_shared<IncomingFuture>();
  f->self = this;
  f->st.tag = tag;
  f->layerwise = s_.plan.active() && s_.K > 0;
  if (f->layerwise) {
    f->st.plan = &s_.plan;
    f->st.P = s_.P;
    for (const auto& t : s_.plan.shape.tensors) f->st.tensor_offsets.push_back(t.offset);
    f->st.covered.assign(s_.plan.shape.tensors.size(), 0);
  }
  pulls_.push_back(f);
  return algo::Incoming(f);
}

std::vector<size_t> WorkerCtx::receive_piece(IncomingFuture& f) {
  Message m = recv_tag(f.st.tag);
  const size_t off = m.offset >= 0 ? static_cast<size_t>(m.offset) : s_.shard_off[static_cast<size_t>(-m.src - 1)];
  const size_t count = m.data.count;
  return f.st.add(std::move(m), off, count);
}

void WorkerCtx::assemble(IncomingFuture& f) {
  f.done = true;
  if (!s_.real) return;
  auto& parts = f.st.parts;
  // Zero copy when every piece is a slice of one buffer laid out as the parameter vector (the
  // per-tensor server's replies all point into one snapshot of the model).
  const auto& buf = parts.front().data.buf;
  bool one = buf && buf->size() == s_.P;
  for (const auto& m : parts) {
    const size_t off = m.offset >= 0 ? static_cast<size_t>(m.offset) : s_.shard_off[static_cast<size_t>(-m.src - 1)];
    one = one && m.data.buf == buf && m.data.offset == off;
  }
  if (one) {
    f.st.full = buf;
  } else {
    auto full = std::make_shared<Vec>(s_.P, s_.model->device());
    for (const auto& m : parts) {
      const size_t off = m.offset >= 0 ? static_cast<size_t>(m.offset) : s_.shard_off[static_cast<size_t>(-m.src - 1)];
      engine::ops::copy(full->view(off, m.data.count), m.data.view());
    }
    f.st.full = full;
  }
  parts.clear();
}

void WorkerCtx::complete_pull(IncomingFuture& f) {
  if (f.done) return;
  if (!f.layerwise) {
    f.st.full = pull(f.st.tag);
    f.done = true;
    return;
  }
  while (!f.st.complete()) receive_piece(f);
  assemble(f);
}

void WorkerCtx::receive_pulls() {
  for (auto& w : pulls_)
    if (auto f = w.lock()) complete_pull(*f);
  pulls_.clear();
}

Future<Gradient> WorkerCtx::compute_async(algo::Incoming& params) {
  std::erase_if(pulls_, [](const std::weak_ptr<IncomingFuture>& w) { return w.expired(); });
  auto* inc = dynamic_cast<IncomingFuture*>(params.impl().get());
  if (!inc || !inc->layerwise || inc->done) {  // the whole pull first
    const std::shared_ptr<const Vec> W = params.wait();
    return compute_async_at(W ? W->view() : engine::ConstVecView{}, W);
  }
  const LayerPlan& p = s_.plan;
  auto c = new_chain();
  const Minibatch mb = begin_minibatch(c->g);
  c->minibatch = mb.k;
  c->amount = amount();
  c->needs_math = true;
  const size_t L = p.shape.layers.size();
  std::vector<size_t> missing(L);
  c->layer_in.assign(L, 0);
  for (size_t l = 0; l < L; ++l) {
    for (size_t t : p.shape.layers[l].tensors) missing[l] += inc->st.covered[t] < p.shape.tensors[t].size;
    c->layer_in[l] = missing[l] == 0;
  }
  start_chain(c);
  while (!inc->st.complete()) {  // layer l's forward starts once its tensors are in
    const std::vector<size_t> done = receive_piece(*inc);
    if (inc->st.complete()) {
      assemble(*inc);
      c->params = inc->st.full;
      const MathPtr m = issue_math(mb, c->params ? c->params->view() : engine::ConstVecView{}, c->params, c->g);
      c->math = [this, m, c] {
        if (m) await_math(*m, c->g);
      };
    }
    for (size_t t : done)
      if (--missing[p.tensor_layer[t]] == 0) c->layer_in[p.tensor_layer[t]] = 1;
    c->note.notify();
  }
  return chain_future(c);
}

// ------------------------------------------------------------------ per-tensor pushes
Pending WorkerCtx::push(Future<Gradient>& gf, int tag, int64_t step) {
  auto c = chain_of(gf);
  if (!c || s_.plan.overlap.kind != OverlapSpec::Kind::PerTensor || s_.K == 0) {
    Gradient& g = gf.wait();
    return push(g.payload(s_.P), tag, step);
  }
  auto r = std::make_shared<TensorPush>();
  r->chain = c;
  r->block = [this](const std::string& what, std::function<void()> f) { block_on(what, f); };
  r->sync_server = s_.plan.comm == algo::Algorithm::LayerComm::SyncServer;
  r->total = s_.plan.shape.tensors.size();
  r->tag = tag;
  r->step = step;
  // The sender: the queued tensors, one at a time, each to the shard(s) holding it.
  auto send_queued = [this, r] {
    const LayerPlan& p = s_.plan;
    while (!r->queue.empty()) {
      auto pick = r->queue.begin();  // FIFO: in the order they became ready
      if (p.overlap.priority)        // input-side first (MXNet's priority = -layer index)
        pick = std::min_element(r->queue.begin(), r->queue.end(), [&](size_t a, size_t b) {
          return p.tensor_layer[a] != p.tensor_layer[b] ? p.tensor_layer[a] < p.tensor_layer[b] : a < b;
        });
      const size_t tensor = *pick;
      r->queue.erase(pick);
      const Payload whole = r->chain->g.payload(s_.P);
      std::vector<sg4::CommPtr> comms;
      for (size_t pi : p.pieces_of_tensor[tensor]) {
        const Piece& piece = p.pieces[pi];
        Message m{.tag = r->tag, .step = r->step, .data = whole.slice(piece.offset, piece.count)};
        m.offset = static_cast<int64_t>(piece.offset);
        comms.push_back(send_comm(s_.server_inbox[static_cast<size_t>(piece.shard)], std::move(m)));
      }
      for (auto& cm : comms) wait_comm(cm);
      waited(live_count(comms));
      ++r->sent;
    }
  };
  c->listen([this, r, send_queued](size_t t) {
    r->queue.push_back(t);
    if (r->sending) return;
    r->sending = true;
    jobs_.spawn({"push-" + std::to_string(rank_) + "-" + std::to_string(r->step), send_queued, [r] {
                   r->sending = false;
                   r->note.notify();
                 }});
  });
  return Pending(r);
}

// ------------------------------------------------------------------ layer-wise all-reduces
void WorkerCtx::contribute(uint64_t seq, const Payload& mine, algo::Reduce op, double weight, int64_t samples, bool defer) {
  auto& c = s_.collectives[seq];
  if (c.members.empty()) {  // its first caller forms it
    if (s_.elastic) {       // the current group (sim/elastic.hpp)
      c.members = s_.elastic->group();
      c.samples.assign(static_cast<size_t>(s_.N), 0);
      c.got.assign(static_cast<size_t>(s_.N), 0);
    } else {
      for (int i = 0; i < s_.N; ++i) c.members.push_back(i);
    }
    c.parts.resize(static_cast<size_t>(s_.N));
    c.weights.assign(static_cast<size_t>(s_.N), 0.0);
    c.count = mine.count;
    c.op = op;
  }
  if (mine.count != c.count || op != c.op)
    throw RuntimeError("allreduce #" + std::to_string(seq) + ": worker " + std::to_string(rank_) +
                       " contributed a different size or operation than the others");
  if (!(weight > 0)) throw RuntimeError("allreduce: weights must be positive");
  if (s_.elastic && !std::binary_search(c.members.begin(), c.members.end(), rank_))
    throw RuntimeError("allreduce #" + std::to_string(seq) + ": worker " + std::to_string(rank_) + " is not a member (on_failure elastic)");
  c.parts[static_cast<size_t>(rank_)] = mine;
  c.weights[static_cast<size_t>(rank_)] = weight;
  if (s_.elastic) c.samples[static_cast<size_t>(rank_)] = samples;
  if (++c.arrived == static_cast<int>(c.members.size())) {
    if (defer && s_.real && !s_.elastic) {  // the gradients' math may still be going on: reduced by the first reader
      c.reduce_pending = true;
      return;
    }
    s_.reduce(c);
    if (!s_.elastic) c.parts.clear();  // release the contributions (elastic: once complete, a loss may need them again)
  }
}

void WorkerCtx::memory_work(double bytes) {
  if (bytes <= 0 || !(s_.plan.memory_bandwidth[static_cast<size_t>(rank_)] > 0)) return;
  s_.check_stop();
  sg4::this_actor::execute(bytes / s_.plan.memory_bandwidth[static_cast<size_t>(rank_)] * host_->get_speed());
}

void WorkerCtx::comm_begin() {
  if (++comm_active_ != 1 || !(s_.plan.overlap_slowdown[static_cast<size_t>(rank_)] > 0)) return;
  const double priority = s_.plan.overlap_slowdown[static_cast<size_t>(rank_)];  // compute then gets 1 / (1 + s) of the host
  interference_ = sg4::Actor::create("interference-" + std::to_string(rank_), host_, [priority] {
    sg4::ExecPtr e = sg4::this_actor::exec_init(1e300);
    e->set_priority(priority);
    e->start();
    e->wait();
  });
  interference_->daemonize();
}

void WorkerCtx::comm_end() {
  if (--comm_active_ != 0 || !interference_) return;
  interference_->kill();
  interference_ = nullptr;
}

void WorkerCtx::layer_collective(size_t count, double element_bytes, uint64_t seq, int label) {
  // One worker reduces nothing: no copies either (its all-reduce is the identity).
  const bool cpu = s_.plan.cpu[static_cast<size_t>(rank_)] != 0 && s_.N > 1;
  comm_begin();
  if (cpu) memory_work(2.0 * element_bytes * static_cast<double>(count));  // gradients into the bucket / fusion buffer
  ring(count, element_bytes, seq, label, cpu);
  if (cpu) memory_work(2.0 * element_bytes * static_cast<double>(count));  // and back
  comm_end();
}

algo::Future<std::shared_ptr<const Vec>> WorkerCtx::allreduce_async(Future<Gradient>& gf, algo::Reduce op, double weight) {
  auto c = chain_of(gf);
  const auto kind = s_.plan.overlap.kind;
  if (!c || (kind != OverlapSpec::Kind::Ddp && kind != OverlapSpec::Kind::Horovod)) {
    Gradient& g = gf.wait();
    return allreduce_async(g.payload(s_.P), op, weight);
  }
  unsent_samples_ = 0;  // this worker's work so far leaves it in the collective
  auto r = std::make_shared<LayerAllreduce>();
  r->self = this;
  r->s = &s_;
  r->chain = c;
  ++c->uncontributed;
  r->block = [this](const std::string& what, std::function<void()> f) { block_on(what, f); };
  r->seq = ar_seq_++;
  r->op = op;
  r->weight = weight;
  if (!(weight > 0)) throw RuntimeError("allreduce: weights must be positive");
  kind == OverlapSpec::Kind::Ddp ? ddp_allreduce(r) : horovod_allreduce(r);
  return algo::Future<std::shared_ptr<const Vec>>(r);
}

void WorkerCtx::ddp_allreduce(const std::shared_ptr<LayerAllreduce>& r) {
  const LayerPlan& p = s_.plan;
  for (const auto& b : p.buckets) r->missing.push_back(b.size());
  auto launch = [this, r](size_t b) {
    const LayerPlan& p = s_.plan;
    if (!r->contributed) {
      contribute(r->seq, r->chain->contribution(s_.P), r->op, r->weight, 0, s_.plan.math_to_first_reader());
      r->contributed = true;
    }
    size_t count = 0;
    for (size_t t : p.buckets[b]) count += p.shape.tensors[t].size;
    const bool last = b + 1 == p.buckets.size();  // one all-reduce at a time (one stream)
    after(
        ring_seq_, "ddp-" + std::to_string(rank_) + "-" + std::to_string(r->seq) + "-" + std::to_string(b),
        [this, r, count, b] { layer_collective(count, 4.0, r->seq, static_cast<int>(b) + 1); },
        [r, last] {
          if (!last) return;
          r->finished = true;
          r->note.notify();
        });
  };
  r->chain->listen([this, r, launch](size_t t) {  // bucket k launches when full and k-1 has launched
    const LayerPlan& p = s_.plan;
    --r->missing[p.bucket_of[t]];
    while (r->next < p.buckets.size() && r->missing[r->next] == 0) launch(r->next++);
  });
}

}  // namespace dtsim::sim::detail
