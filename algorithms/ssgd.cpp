// SSGD — synchronous SGD (BSP), on a parameter server ("comm": "ps") or a ring all-reduce
// ("comm": "allreduce").
//
// PS:
//   worker i, step t:  g_i = ∇ on its t-th minibatch at W_t      (compute)
//                      push g_i to every shard                    (all shards concurrently)
//                      W_{t+1} <- pull from every shard           (blocks until step t is applied)
//   shard k, step t:   wait for all N gradients of step t
//                      W_{t+1}[k] = Opt(W_t[k], (1/N) Σ_i g_i[k])  (one optimizer step, PyTorch SGD)
//                      send W_{t+1}[k] to every worker
// All-reduce (every worker keeps a replica of W and of the optimizer state):
//   worker i, step t:  g_i = ∇ at W_t;  ḡ = allreduce_mean(g_i);  W_{t+1} = Opt(W_t, ḡ)
//                      (rank 0 publishes W_{t+1} as the global model)
//
// What overlaps is algorithm.overlap's (docs/timing.md): by default each parameter tensor is pushed
// as soon as its layer's backward ends, the server updates and answers it as soon as all N are in,
// and the next forward of layer i waits only for layer i's tensors (per-tensor, MXNet's KVStore);
// with all-reduce, PyTorch DDP's buckets are all-reduced while the backward goes on (ddp). With
// overlap "none" nothing overlaps: a step costs max_i(compute_i) + push + server update + pull
// (PS), or max_i(compute_i) + ring all-reduce + local update (all-reduce). In every mode, N workers
// of batch b compute exactly single-worker SGD with batch N·b on the same sample order (invariant 1).
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class Ssgd final : public Algorithm {
 public:
  Ssgd(engine::SgdConfig opt, bool ps, OnFailure policy) : opt_(opt), ps_(ps), policy_(policy) {}
  bool needs_servers() const override { return ps_; }
  // platform.failures: drop = continue with the survivors once the loss is detected (the PS
  // averages the gradients it has, gather_from_workers); wait = the failed host is frozen until it
  // recovers, the step waits for it. The all-reduce form survives a failure only under elastic (the
  // survivors re-form the ring, sim/elastic.hpp).
  OnFailure on_failure() const override { return policy_; }
  double buffers_per_worker() const override { return ps_ ? 2.0 : 3.0 + (opt_.momentum != 0); }
  LayerComm layer_comm() const override { return ps_ ? LayerComm::SyncServer : LayerComm::AllReduce; }
  // On a PS every step is push, the shards' one update, pull: the same for every worker.
  bool interchangeable_workers() const override { return ps_; }
  // Checkpoint and resume (docs/robustness.md): a cut after step t is W_{t+1} (the global model)
  // plus the optimizer state (the shards' on a PS, every replica's with all-reduce).
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override { ps_ ? worker_ps(w) : worker_allreduce(w); }

  void server(Server& s) override {
    sync_gradient_server(s, opt_, s.sync_steps(), [](int64_t) { return true; });
  }

 private:
  // compute at W_t; push g; W_{t+1} <- pull (a cut: W_{t+1} is the global model, nothing else to save)
  void worker_ps(Worker& w) {
    std::shared_ptr<const Vec> W0 = w.initial_params();  // W_0, or the checkpoint's model on resume
    Incoming W;                                          // W_t as it arrives from the shards
    for (int64_t t = w.resume_step(); t < w.sync_steps(); ++t) {
      Future<Gradient> g = W.valid() ? w.compute_async(W) : w.compute_async(view_of(W0));
      W0.reset();
      w.push(g, kGradient, t).wait();  // each tensor as its layer's backward ends
      W = w.pull_async(kParams);
      w.checkpoint(t + 1, {});
    }
    if (W.valid()) W.wait();  // the last update is applied
  }

  void worker_allreduce(Worker& w) {
    Vec W = copy_of(w, view_of(w.initial_params()));
    engine::Sgd opt(opt_, W.size(), w.device());
    if (const State* st = w.resumed()) load_sgd(*st, opt);
    for (int64_t t = w.resume_step(); t < w.sync_steps(); ++t) {
      Future<Gradient> g = w.compute_async(W.view());
      const auto mean = w.allreduce_async(g, Reduce::Mean, w.batch_size()).wait();  // buckets during the backward
      g = {};
      if (w.real()) opt.step(W.view(), mean->view(), scheduled_lr(opt_, w, sync_epoch(w, t)));
      w.update_cost();
      if (w.leads()) w.publish_global(W.view());
      w.checkpoint(t + 1, [&opt](State& st) { save_sgd(st, opt); });
    }
  }

  engine::SgdConfig opt_;
  bool ps_;
  OnFailure policy_;
};

}  // namespace

AlgorithmInfo ssgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"ssgd", "synchronous SGD (BSP): N gradients averaged, one step; on a parameter server or a ring all-reduce",
          docs({sgd_param_docs(d), {{"comm", "ps", "ps (push gradients, pull weights) | allreduce (ring all-reduce of gradients)"},
                                    on_failure_doc("drop (continue with the survivors; all-reduce: exit 1) | wait (for the failed host) | "
                                                   "elastic (comm allreduce: the survivors re-form the ring)")}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            const bool ps = read_comm(r, {"ps", "allreduce"}, "ps") == "ps";
            const auto policy = read_on_failure(r, {"drop", "wait", "elastic"}, !ps, true);
            return std::make_unique<Ssgd>(read_sgd(r, d), ps, policy);
          }};
}

}  // namespace dtsim::algo
