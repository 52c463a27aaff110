// OD-SGD — One-step Delay SGD (Xu, Dong, Xu, Liao; arXiv 2005.06728), after the authors' MXNet
// fork CynthiaProtector/OD-SGD (docs/algorithms/od-sgd.md).
//
// Roles: the PS holds W and the global optimizer (SSGD's server, unchanged: it answers the N pushes
// of step t with W_{t+1} once all N are applied). Worker i holds L (local copy + local optimizer
// state) and computes on w̃ = L.
//
//   warm-up, t < warmup_steps:  plain SSGD (compute at W_t, push, pull W_{t+1}); then L <- W
//   t >= warmup_steps:
//     g_t <- ∇ at w̃_t = L                  ─┐ overlaps push/update/pull of step t−1
//     L   <- pull  (= W_t, reply to t−1)    ─┘ (the local update must wait for it: it writes L)
//     L   <- LocalOpt(L, g_t / N)            (= W_t − η_l·u(g_t)  = w̃_{t+1})
//     push g_t                               (async; the server applies step t, replies W_{t+1})
//   PS:  W_{t+1} = GlobalOpt(W_t, (1/N) Σ_i g_i(w̃_t^i))
//
// With plain SGD on both sides: W_{t+1} = W_t − η·ḡ, w̃_{t+1} = W_t − (η_l/N)·g_i. The local step
// sees the same 1/N rescale as the server (MXNet's rescale_grad = 1/(b·N)), hence the scripts'
// η_l = 0.5 > η = 0.1. Local optimizer "dc-asgd-adaptive" is the code's CADCASGD with the scalars the
// authors meant (λ = lambda, m = mean_square); the compiled code passed them permuted (λ_eff = wd,
// m = rescale_grad), see docs/algorithms/od-sgd.md. A worker pushes step t only after the reply to
// step t−1 arrived, so it leads the slowest worker by at most about one step.
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class OdSgd final : public Algorithm {
 public:
  explicit OdSgd(DelayedPsConfig c) : c_(std::move(c)) {}
  bool needs_servers() const override { return true; }
  double buffers_per_worker() const override { return 7.0; }
  // Checkpoint and resume (docs/robustness.md): in the warm-up, SSGD's cuts (after each pull);
  // after it, the cut of step t is taken at the end of step t just before g_t is pushed (the reply
  // to step t−1 has landed: nothing in flight). Each worker saves L, its local optimizer and g_t;
  // the resumed run pushes g_t first.
  bool checkpointable() const override { return true; }
  // Per-tensor pushes leave during the backward: no point between g_t and its push to cut at.
  LayerComm layer_comm() const override { return LayerComm::SyncServer; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps(), Tw = std::min(c_.warmup, T);
    std::shared_ptr<const Vec> W = ssgd_ps_steps(w, Tw);  // warm-up: SSGD
    Vec L = copy_of(w, view_of(W));                       // L <- W_{Tw}
    W.reset();
    LocalOptConfig lc = c_.local;
    if (c_.rescale_by_n) lc.grad_scale = 1.0 / w.workers();
    auto local = make_local_optimizer(lc, w);
    int64_t start = Tw;
    if (const State* st = w.resumed(); st && w.resume_step() > Tw) {  // a cut after the warm-up
      st->get("L", L.view());
      local->load(*st, "local");
      start = w.resume_step();
      w.push(resumed_gradient(w, *st), kGradient, start);  // g_c, not pushed yet
      ++start;
    }
    for (int64_t t = start; t < T; ++t) {
      // g_t on w̃_t = L, the locally updated weights. With layer-wise timing its tensors are pushed
      // as the backward produces them (MXNet's engine runs each key's push when its gradient is
      // ready); otherwise the whole gradient goes after the local update, as in the authors' code.
      Future<Gradient> c = w.compute_async(L.view());
      const bool per_tensor = w.layerwise();
      if (!per_tensor) c.wait();
      if (t > Tw) assign(L.view(), view_of(w.pull(kParams)));  // L <- W_t (the pull of step t−1)
      if (per_tensor) w.push(c, kGradient, t);
      const Gradient& g = c.wait();
      local->set_lr(lc.lr * lr_factor(c_.global, w, sync_epoch(w, t)));  // the global schedule
      local->step(L.view(), view_of(g));  // L = W_t − η_l u(g_t) = w̃_{t+1}
      w.update_cost();
      if (t > Tw)  // (the cut at Tw is the warm-up's last one)
        w.checkpoint(t, [&](State& st) {
          st.put("L", L.view());
          local->save(st, "local");
          st.put("g", view_of(g));
        });
      if (!per_tensor) w.push(c, kGradient, t);  // async: overlaps the next compute
    }
    if (T > Tw) w.pull(kParams);  // the reply to the last push: its update is applied
  }

  void server(Server& s) override {
    sync_gradient_server(s, c_.global, s.sync_steps(), [](int64_t) { return true; });
  }

 private:
  DelayedPsConfig c_;
};

const engine::SgdConfig kGlobal{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
const LocalOptConfig kLocal{.kind = "dc-asgd-adaptive", .lr = 0.5, .lambda = 2, .mean_square = 0};

}  // namespace

AlgorithmInfo od_sgd_info() {
  return {"od-sgd",
          "one-step delay SGD: SSGD on the PS, workers compute on a locally updated copy while the global update is in flight",
          delayed_ps_docs(kGlobal, kLocal, 200, {"dc-asgd-adaptive", "sgd"}),
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            return std::make_unique<OdSgd>(read_delayed_ps(r, kGlobal, kLocal, 200, {"dc-asgd-adaptive", "sgd"}));
          }};
}

}  // namespace dtsim::algo
