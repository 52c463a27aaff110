// Post-local SGD (Lin et al., "Don't use large mini-batches, use local SGD", ICLR 2020), as an
// out-of-tree dtsim plugin (docs/plugins.md):
//
//   worker i, step t < warmup:  ḡ = allreduce_mean(g_i);  x <- SGD(x, ḡ)        (synchronous SGD)
//   worker i, step t >= warmup: x <- SGD(x, g_i); every `period` steps x <- allreduce_mean(x)
//
// Nothing overlaps: each all-reduce blocks. warmup >= the run's steps is SSGD ("comm":
// "allreduce"); warmup = 0 is local SGD with the same period; both bitwise (its ctest checks it).
#include "algorithms/plugin.hpp"

namespace {

using namespace dtsim::algo;

class PostLocalSgd final : public Algorithm {
 public:
  PostLocalSgd(dtsim::engine::SgdConfig opt, int64_t warmup, int64_t period)
      : opt_(opt), warmup_(warmup), period_(period) {}
  bool needs_servers() const override { return false; }
  double buffers_per_worker() const override { return 4.0 + (opt_.momentum != 0); }
  // A cut after any step: the worker's model and momentum (docs/robustness.md).
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps();
    Vec x = copy_of(w, view_of(w.initial_params()));
    dtsim::engine::Sgd opt(opt_, x.size(), w.device());
    if (const State* st = w.resumed()) {
      st->get("x", x.view());
      load_sgd(*st, opt);
    }
    for (int64_t t = w.resume_step(); t < T; ++t) {
      const double lr = scheduled_lr(opt_, w, sync_epoch(w, t));
      Gradient g = w.compute(x.view());
      if (t < warmup_) {  // synchronous SGD: the same averaged gradient on every worker
        const auto mean = w.allreduce(g.payload(w.num_params()), Reduce::Mean, w.batch_size());
        if (w.real()) opt.step(x.view(), mean->view(), lr);
        w.update_cost();
        if (w.rank() == 0) w.publish_global(x.view());
      } else {  // local SGD: own gradient, then average the models every `period` steps
        if (w.real()) opt.step(x.view(), view_of(g), lr);
        w.update_cost();
        if ((t + 1 - warmup_) % period_ == 0 || t + 1 == T) {
          const auto avg = w.allreduce(Payload::whole(snapshot_of(w, x.view()), w.num_params()), Reduce::Mean,
                                       w.batch_size());
          assign(x.view(), view_of(avg));
          if (w.rank() == 0) w.publish_global(view_of(avg));
        }
      }
      w.checkpoint(t + 1, [&x, &opt](State& st) {
        st.put("x", x.view());
        save_sgd(st, opt);
      });
    }
  }

 private:
  dtsim::engine::SgdConfig opt_;
  int64_t warmup_, period_;
};

AlgorithmInfo post_local_sgd_info() {
  const dtsim::engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"post-local-sgd", "synchronous SGD for `warmup` steps, then local SGD averaging the models every `period` steps",
          docs({sgd_param_docs(d, "each worker's SGD"),
                {{"warmup", "100", "steps of synchronous SGD (all-reduced gradients) before local SGD"},
                 {"period", "4", "H: local steps between two model averagings after the warm-up"}}}),
          [d](dtsim::ObjectReader& r) -> std::unique_ptr<Algorithm> {
            auto opt = read_sgd(r, d);
            const int64_t warmup = read_count(r, "warmup", 100, 0);
            return std::make_unique<PostLocalSgd>(opt, warmup, read_count(r, "period", 4));
          }};
}

}  // namespace

DTSIM_PLUGIN(registry) { registry.add(post_local_sgd_info()); }
