// ASGD — asynchronous SGD on a parameter server (Downpour with a fetch every step).
//
//   worker i:  loop while the shared sample budget lasts
//                g = ∇ on its next minibatch at its last pulled W      (compute, on stale weights)
//                push g to every shard                                 (concurrently)
//                W <- pull from every shard                            (the reply to this push)
//   shard k:   on each gradient, in arrival order:
//                W[k] = Opt(W[k], g[k])                                (applied at once, no waiting)
//                reply the new W[k] to that worker
//
// The pull is piggybacked on the push (the shard answers each gradient with its current weights),
// so "pull the current weights before each minibatch" costs no extra request message. Workers
// never wait for each other: the trajectory depends on event order (invariant 3), and faster
// workers contribute more gradients.
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class Asgd final : public Algorithm {
 public:
  explicit Asgd(engine::SgdConfig opt) : opt_(opt) {}
  bool needs_servers() const override { return true; }

  // compute at the last pulled W, push, pull the reply (common.cpp: asgd_worker, shared with DC-ASGD)
  void worker(Worker& w) override { asgd_worker(w); }
  LayerComm layer_comm() const override { return LayerComm::AsyncServer; }
  // platform.failures: a failed worker's in-flight gradient is lost; when its host recovers it
  // starts again from the current global model (docs/platforms.md, Failures).
  OnFailure on_failure() const override { return OnFailure::Restart; }

  // Checkpoint and resume (docs/robustness.md): cut at the shards (Algorithm::checkpoint_at_servers):
  // each saves its optimizer state and, per worker, how many of its minibatches it has applied. On
  // resume every worker computes again from the first minibatch not applied by all shards; a shard
  // that had applied it already replies without applying it twice.
  bool checkpointable() const override { return true; }
  bool checkpoint_at_servers() const override { return true; }

  void server(Server& s) override {
    struct ShardState {
      engine::Sgd sgd;
      std::vector<int64_t> applied;  // per worker: its minibatches 0..applied-1 are applied here
    } st{engine::Sgd(opt_, s.real() ? s.size() : 0, s.device()), std::vector<int64_t>(static_cast<size_t>(s.workers()), 0)};
    if (const State* r = s.resumed()) {
      load_sgd(*r, st.sgd);
      st.applied = load_acked(*r, s.workers());
    }
    while (true) {  // until every worker has returned (servers are daemons)
      Message m = s.recv(kGradient);
      int64_t& applied = st.applied[static_cast<size_t>(m.src)];
      if (m.step >= applied) {  // below: sent again after a resume, applied here before the cut
        if (s.real()) st.sgd.step(s.global_range(), m.data.view(), scheduled_lr(opt_, s, async_epoch(s)));
        s.update_cost(1);
        s.committed();
        applied = m.step + 1;
      }
      m.data = {};
      s.send_to_worker(m.src, {.tag = kParams, .step = m.step, .data = Payload::whole(s.snapshot(), s.size())});
      s.checkpoint(0, [&st](State& out) {
        save_sgd(out, st.sgd);
        save_acked(out, st.applied);
      });
    }
  }

 private:
  engine::SgdConfig opt_;
};

}  // namespace

AlgorithmInfo asgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.0, .weight_decay = 0.0, .nesterov = false};
  return {"asgd", "asynchronous SGD on a parameter server: each gradient applied on arrival, the reply carries the new weights",
          docs({sgd_param_docs(d), {{"comm", "ps", "ps only"}}}), [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            r.choice("comm", {"ps"}, "ps");
            return std::make_unique<Asgd>(read_sgd(r, d));
          }};
}

}  // namespace dtsim::algo
