// SSD-SGD — Several Steps Delay SGD (arXiv 2012.05396), after the authors' MXNet fork
// main-520/SSD-SGD (docs/algorithms/ssd-sgd.md): OD-SGD with a pull only every k = pull_every steps.
//
//   warm-up, t < warmup_steps:  plain SSGD; then L <- W
//   t >= warmup_steps (s = t − warmup_steps):
//     g_t <- ∇ at w̃_t = L                        ─┐ overlaps push/update (and pull) of step t−1
//     if step t−1 pulled: L <- pull (= W_t)        │
//     else:               wait for the push ack    ─┘ (push-ack coupling: lead <= ~1 step)
//     L <- LocalOpt(L, g_t)                         (sgd | dc-asgd-adaptive | glu)
//     push g_t                                      (every step; async)
//     the reply is W_{t+1} when s mod k == k−1, else a zero-byte ack
//   PS: an ordinary SSGD step every iteration, on N gradients computed at N stale local models.
//
// Wire per worker and step: |W| up; |W| down every k steps (+ zero-byte acks).
//
// GLU ("global gradient for local update") — RECONSTRUCTION. The paper's equation was not
// available (docs/algorithms/ssd-sgd.md, "GLU") and the authors' GLU kernel is broken (permuted scalars, output
// overwrites the weights), so this is dtsim's reading of the name, not the paper's rule:
//   at each pull:  Δ̂ = (W_prev_pull − W_pull) / k       (the global model's mean step per iteration;
//                                                        W_prev_pull starts as the warm-up's last
//                                                        model, W0 when warmup_steps = 0, so the
//                                                        first pull sets Δ̂; 0 before it)
//   local step:    L <- L − η_l·(s·g_t + wd_l·L) − (1 − s)·Δ̂,   s = local gradient scale (1/N)
// i.e. the worker's own fresh gradient takes its 1/N share of the step and the last interval's
// global movement stands in for the other N−1 workers' share (cf. DiLoCo's eager updates).
// With N = 1 it is plain SGD.
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class SsdSgd final : public Algorithm {
 public:
  SsdSgd(DelayedPsConfig c, int64_t k) : c_(std::move(c)), k_(k) {}
  bool needs_servers() const override { return true; }
  double buffers_per_worker() const override { return 8.0; }
  // Checkpoint and resume (docs/robustness.md): as OD-SGD's — SSGD's cuts in the warm-up, then the
  // cut of step t at the end of step t just before g_t is pushed; each worker saves L, its local
  // optimizer, the GLU state and g_t, and the resumed run pushes g_t first.
  bool checkpointable() const override { return true; }
  LayerComm layer_comm() const override { return LayerComm::SyncServer; }

  // Does the server answer the push of step t with the weights (else with an ack)?
  bool pulls(int64_t t, int64_t Tw) const { return t < Tw || (t - Tw) % k_ == k_ - 1; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps(), Tw = std::min(c_.warmup, T);
    std::shared_ptr<const Vec> W = ssgd_ps_steps(w, Tw);  // warm-up: SSGD
    Vec L = copy_of(w, view_of(W));
    Glu glu(*this, w, view_of(W));
    W.reset();
    LocalOptConfig lc = c_.local;
    if (c_.rescale_by_n) lc.grad_scale = 1.0 / w.workers();
    if (lc.kind == "glu") lc.kind = "sgd";  // GLU = a local SGD step + the extrapolation below
    auto local = make_local_optimizer(lc, w);
    const bool use_glu = c_.local.kind == "glu";
    int64_t start = Tw;
    if (const State* st = w.resumed(); st && w.resume_step() > Tw) {  // a cut after the warm-up
      st->get("L", L.view());
      local->load(*st, "local");
      glu.load(*st);
      start = w.resume_step();
      w.push(resumed_gradient(w, *st), kGradient, start);  // g_c, not pushed yet
      ++start;
    }
    for (int64_t t = start; t < T; ++t) {
      // g_t on w̃_t = L; its tensors pushed during the backward with layer-wise timing (as OD-SGD)
      Future<Gradient> c = w.compute_async(L.view());
      const bool per_tensor = w.layerwise();
      if (!per_tensor) c.wait();
      if (t > Tw) {
        if (pulls(t - 1, Tw)) {          // L <- W_t: the pull of step t−1 replaces the local copy
          W = w.pull(kParams);
          glu.observe_pull(view_of(W));
          assign(L.view(), view_of(W));
          W.reset();
        } else {
          await_acks(w);                 // the push of step t−1 was applied (buffer reuse)
        }
      }
      if (per_tensor) w.push(c, kGradient, t);
      const Gradient& g = c.wait();
      local->set_lr(lc.lr * lr_factor(c_.global, w, sync_epoch(w, t)));  // the global schedule
      local->step(L.view(), view_of(g));  // L − η_l·(s·g + wd·L)
      if (use_glu) glu.extrapolate(L.view());  // − (1 − s)·Δ̂ (GLU reconstruction)
      w.update_cost(use_glu ? 2 : 1);
      if (t > Tw)  // (the cut at Tw is the warm-up's last one)
        w.checkpoint(t, [&](State& st) {
          st.put("L", L.view());
          local->save(st, "local");
          glu.save(st);
          st.put("g", view_of(g));
        });
      if (!per_tensor) w.push(c, kGradient, t);  // async: overlaps the next compute
    }
    if (T > Tw) {  // the reply to the last push: its update is applied
      if (pulls(T - 1, Tw)) w.pull(kParams);
      else await_acks(w);
    }
  }

  void server(Server& s) override {
    const int64_t Tw = std::min(c_.warmup, s.sync_steps());
    sync_gradient_server(s, c_.global, s.sync_steps(), [&](int64_t t) { return pulls(t, Tw); });
  }

 private:
  // The reconstructed GLU term (see the header comment).
  class Glu {
   public:
    Glu(const SsdSgd& a, const Worker& w, ConstVecView W0)
        : on_(a.c_.local.kind == "glu"), share_(a.c_.rescale_by_n ? 1.0 - 1.0 / w.workers() : 0.0), k_(a.k_) {
      if (!on_ || !w.real()) return;
      prev_ = copy_of(w, W0);
      step_ = w.new_buffer();
    }
    void observe_pull(ConstVecView W) {  // Δ̂ = (W_prev − W) / k
      if (!on_ || !W.size) return;
      engine::ops::sub(step_.view(), prev_.view(), W);
      engine::ops::scale(step_.view(), static_cast<float>(1.0 / static_cast<double>(k_)));
      engine::ops::copy(prev_.view(), W);
      have_ = true;
    }
    void extrapolate(VecView L) {  // L −= (1 − s)·Δ̂
      if (have_ && L.size && share_ != 0) engine::ops::axpy(L, static_cast<float>(-share_), step_.view());
    }
    void save(State& st) const {
      if (!on_) return;
      st.put("glu.prev", prev_.view());
      st.put("glu.step", step_.view());
      st.put_int("glu.have", have_ ? 1 : 0);
    }
    void load(const State& st) {
      if (!on_) return;
      st.get("glu.prev", prev_.view());
      st.get("glu.step", step_.view());
      have_ = st.get_int("glu.have") != 0;
    }

   private:
    bool on_;
    double share_;
    int64_t k_;
    bool have_ = false;
    Vec prev_, step_;
  };

  DelayedPsConfig c_;
  int64_t k_;
};

const engine::SgdConfig kSsdGlobal{.lr = 0.4, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = false};
const LocalOptConfig kSsdLocal{.kind = "glu", .lr = 1.6, .weight_decay = 1e-4, .lambda = 2, .mean_square = 0};
const std::vector<std::string> kKinds = {"glu", "dc-asgd-adaptive", "sgd"};

}  // namespace

AlgorithmInfo ssd_sgd_info() {
  return {"ssd-sgd",
          "several-steps delay SGD: OD-SGD with gradients pushed every step and the global model pulled every k steps",
          docs({delayed_ps_docs(kSsdGlobal, kSsdLocal, 500, kKinds),
                {{"pull_every", "5", "k: pull the global model every k steps (the authors' code: 5)"}}}),
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            auto c = read_delayed_ps(r, kSsdGlobal, kSsdLocal, 500, kKinds);
            const int64_t k = read_count(r, "pull_every", 5);
            return std::make_unique<SsdSgd>(std::move(c), k);
          }};
}

}  // namespace dtsim::algo
