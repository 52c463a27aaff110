// Pipe-SGD — one-step-stale synchronous SGD (Li et al., arXiv 1811.03619).
//
//   W_{t+1} = Opt( W_t, (1/N) Σ_i g_i(W_{t−1}) ),   W_{−1} = W_0   (Opt: the SGD step, docs/algorithms/ssgd.md)
//
// The gradient of step t is computed while the previous step's gradient is being reduced and
// applied, so communication hides behind computation (a pipeline of width 2).
//
// All-reduce ("comm": "allreduce", the paper's decentralised form; every worker keeps a replica):
//   step t:  start compute g_t at W                 ─┐ overlap
//            wait allreduce(g_{t−1}) -> ḡ_{t−1}      ─┘
//            W <- Opt(W, ḡ_{t−1});  start allreduce(g_t)
// PS ("comm": "ps", SSGD's server unchanged; OD-SGD with local_lr = 0 is this schedule):
//   step t:  start compute g_t at W_{t−1}           ─┐ overlap
//            W_t <- pull (the reply to push t−1)     ─┘
//            push g_t
// Step time: all-reduce max(T_compute, T_ring) + T_update (the update waits for both); PS
// max(T_compute, T_push + T_server_update + T_pull) (docs/algorithms/pipe-sgd.md). The parameter
// sequence does not depend on the network (invariant 3).
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class PipeSgd final : public Algorithm {
 public:
  PipeSgd(engine::SgdConfig opt, bool ps) : opt_(opt), ps_(ps) {}
  bool needs_servers() const override { return ps_; }
  double buffers_per_worker() const override { return ps_ ? 3.0 : 4.0 + (opt_.momentum != 0); }

  // Checkpoint and resume (docs/robustness.md): the cut of step t is taken at the end of step t just
  // before g_t is sent (pushed, or its all-reduce launched): the previous exchange has landed, so
  // nothing is in flight. Each worker saves g_t (and, all-reduce form, its optimizer state; the
  // model is the checkpoint's global model); the resumed run sends g_t first.
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override { ps_ ? worker_ps(w) : worker_allreduce(w); }

  void server(Server& s) override {
    sync_gradient_server(s, opt_, s.sync_steps(), [](int64_t) { return true; });
  }

 private:
  void worker_ps(Worker& w) {
    const size_t P = w.num_params();
    std::shared_ptr<const Vec> W = w.initial_params();  // W_{t−1}: the newest weights this worker has
    int64_t start = 0;
    if (const State* st = w.resumed()) {  // W = W_c, the global model of the cut; g_c not sent yet
      start = w.resume_step();
      w.push(resumed_gradient(w, *st), kGradient, start);
      ++start;
    }
    for (int64_t t = start; t < w.sync_steps(); ++t) {
      Future<Gradient> c = w.compute_async(view_of(W));  // g_t at W_{t−1}
      if (t > 0) W = w.pull(kParams);                    // W_t, the reply to push t−1 (overlapped)
      Gradient g = c.wait();
      w.checkpoint(t, [&g](State& st) { st.put("g", view_of(g)); });
      w.push(g.payload(P), kGradient, t);                // async: the next compute overlaps it
    }
    w.pull(kParams);  // the reply to the last push: its update is applied
  }

  void worker_allreduce(Worker& w) {
    const size_t P = w.num_params();
    Vec W = copy_of(w, view_of(w.initial_params()));
    engine::Sgd opt(opt_, W.size(), w.device());
    Future<std::shared_ptr<const Vec>> reducing;  // allreduce of g_{t−1}
    auto apply = [&](const std::shared_ptr<const Vec>& mean, int64_t step) {  // ḡ of `step`, at its lr
      if (w.real()) opt.step(W.view(), mean->view(), scheduled_lr(opt_, w, sync_epoch(w, step)));
      w.update_cost();
      if (w.rank() == 0) w.publish_global(W.view());
    };
    int64_t start = 0;
    if (const State* st = w.resumed()) {  // W = the global model of the cut; g_c not reduced yet
      load_sgd(*st, opt);
      start = w.resume_step();
      reducing = w.allreduce_async(resumed_gradient(w, *st), Reduce::Mean, w.batch_size());
      ++start;
    }
    for (int64_t t = start; t < w.sync_steps(); ++t) {
      Future<Gradient> c = w.compute_async(W.view());  // g_t at the current replica
      const bool pending = reducing.valid();
      std::shared_ptr<const Vec> mean;
      if (pending) mean = reducing.wait();               // ḡ_{t−1}, overlapped with the compute
      Gradient g = c.wait();
      if (pending) apply(mean, t - 1);
      w.checkpoint(t, [&g, &opt](State& st) {
        st.put("g", view_of(g));
        save_sgd(st, opt);
      });
      reducing = w.allreduce_async(g.payload(P), Reduce::Mean, w.batch_size());
    }
    if (reducing.valid()) apply(reducing.wait(), w.sync_steps() - 1);  // drain the pipeline
  }

  engine::SgdConfig opt_;
  bool ps_;
};

}  // namespace

AlgorithmInfo pipe_sgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"pipe-sgd", "one-step-stale synchronous SGD: the gradient of step t is reduced and applied while step t+1 computes",
          docs({sgd_param_docs(d),
                {{"comm", "allreduce", "allreduce (the paper's decentralised pipeline) | ps (SSGD's server, pull overlapped)"}}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            const bool ps = read_comm(r, {"allreduce", "ps"}, "allreduce") == "ps";
            return std::make_unique<PipeSgd>(read_sgd(r, d), ps);
          }};
}

}  // namespace dtsim::algo
