// DiLoCo — distributed low-communication training (Douillard et al., arXiv 2311.08105).
//
//   every worker keeps θ (the global model, replicated) and the outer optimizer's state
//   round (H = period inner steps):
//     x <- θ
//     H inner steps   x <- Inner(x, ∇ at x)            (AdamW or SGD; its state persists across rounds)
//     Δ̄ <- allreduce_mean(θ − x)                        (the outer gradient; blocking)
//     θ <- Outer(θ, Δ̄)                                  (SGD with Nesterov momentum)
//   rank 0 publishes θ after each outer step.
//
// One all-reduce of |W| per H steps (2(N−1)/N·|W| sent per worker). With outer SGD lr 1 and no
// momentum, θ − Δ̄ = mean_i x_i: Local SGD with the same H (invariant 7). The last round is
// shortened to the budget's end.
#include <utility>

#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

struct DilocoConfig {
  engine::SgdConfig outer;  // constant lr (the paper)
  LocalOptConfig inner;
  engine::LrSchedule inner_schedule;  // algorithm.schedule: of the inner lr (local_lr)
  int64_t period = 500;
  Algorithm::OnFailure policy = Algorithm::OnFailure::Drop;
};

class Diloco final : public Algorithm {
 public:
  explicit Diloco(DilocoConfig c) : c_(std::move(c)) {}
  bool needs_servers() const override { return false; }
  OnFailure on_failure() const override { return c_.policy; }  // drop or elastic (sim/elastic.hpp)
  double buffers_per_worker() const override { return 7.0; }
  // Checkpoint and resume (docs/robustness.md): a cut after any step; each worker saves θ, x and
  // both optimizers' states (inner: sgd or adamw).
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps();
    Vec theta = copy_of(w, view_of(w.initial_params()));
    Vec x = copy_of(w, theta.view());
    engine::Sgd outer(c_.outer, theta.size(), w.device());
    auto inner = make_local_optimizer(c_.inner, w);
    if (const State* st = w.resumed()) {
      st->get("theta", theta.view());
      st->get("x", x.view());
      load_sgd(*st, outer, "outer");
      inner->load(*st, "inner");
    }
    struct {
      Vec *theta, *x;
      engine::Sgd* outer;
      LocalOptimizer* inner;
    } ck{&theta, &x, &outer, inner.get()};
    for (int64_t t = w.resume_step(); t < T; ++t) {
      Gradient g = w.compute(x.view());
      inner->set_lr(scheduled_lr(c_.inner_schedule, c_.inner.lr, w, sync_epoch(w, t)));
      inner->step(x.view(), view_of(g));
      w.update_cost();
      if ((t + 1) % c_.period == 0 || t + 1 == T) {  // outer step
        auto delta = std::make_shared<Vec>(copy_of(w, theta.view()));
        if (w.real()) engine::ops::axpy(delta->view(), -1.0f, x.view());  // Δ = θ − x
        const auto mean = w.allreduce(Payload::whole(delta, w.num_params()), Reduce::Mean, w.batch_size());
        if (w.real()) outer.step(theta.view(), mean->view());
        w.update_cost(2);
        assign(x.view(), theta.view());
        if (w.leads()) w.publish_global(theta.view());
      }
      w.checkpoint(t + 1, [&ck](State& st) {
        st.put("theta", ck.theta->view());
        st.put("x", ck.x->view());
        save_sgd(st, *ck.outer, "outer");
        ck.inner->save(st, "inner");
      });
    }
  }

 private:
  DilocoConfig c_;
};

}  // namespace

// Shared with streaming-diloco.cpp.
engine::SgdConfig diloco_outer_defaults() { return {.lr = 0.7, .momentum = 0.9, .weight_decay = 0.0, .nesterov = true}; }
LocalOptConfig diloco_inner_defaults() { return {.kind = "adamw", .lr = 4e-4, .weight_decay = 0.1}; }
// algorithm.schedule drives the inner lr: read_sgd read it into the outer config, move it.
engine::LrSchedule diloco_take_schedule(engine::SgdConfig& outer) { return std::exchange(outer.schedule, {}); }
std::vector<ParamDoc> diloco_docs(std::vector<ParamDoc> v) {
  for (auto& p : v)
    if (p.key == "schedule") p = schedule_doc("the inner optimizer (local_lr; the outer lr stays constant, as in the paper)");
  return v;
}
const std::vector<std::string>& diloco_inner_kinds() {
  static const std::vector<std::string> k = {"adamw", "sgd"};
  return k;
}

AlgorithmInfo diloco_info() {
  return {"diloco", "H inner AdamW/SGD steps per worker, then an outer Nesterov step on the averaged outer gradient θ − x",
          diloco_docs(docs({sgd_param_docs(diloco_outer_defaults(), "the outer optimizer"),
                local_opt_docs(diloco_inner_kinds(), diloco_inner_defaults()),
                {{"period", "500", "H: inner steps per outer step (the paper: 500)"},
                 {"comm", "allreduce", "allreduce only"}, on_failure_doc("drop (a lost worker ends the run, exit 1) | elastic (the survivors re-form the ring)")}})),
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"allreduce"}, "allreduce");
            DilocoConfig c;
            c.outer = read_sgd(r, diloco_outer_defaults());
            c.inner_schedule = diloco_take_schedule(c.outer);
            c.inner = read_local_opt(r, diloco_inner_kinds(), diloco_inner_defaults());
            c.period = read_count(r, "period", 500);
            c.policy = read_on_failure(r, {"drop", "elastic"});
            return std::make_unique<Diloco>(c);
          }};
}

}  // namespace dtsim::algo
