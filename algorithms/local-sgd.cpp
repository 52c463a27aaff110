// Local SGD — periodic model averaging (Stich, arXiv 1805.09767; Lin et al., arXiv 1808.07217).
//
//   worker i:  H = period local steps   x_i <- Opt(x_i, ∇ at x_i)       (momentum buffers stay local)
//              then a blocking average  x_i <- (1/N) Σ_j x_j             (every worker, same result)
//   "comm": "allreduce" (default): ring all-reduce of the models; rank 0 publishes the average.
//   "comm": "ps": push x_i, the PS averages (rank order) and replies; the PS holds the average.
//
// Nothing overlaps: a round costs H·T_c (+ local updates) + the averaging (invariant 21). The last
// round is shortened to the budget's end so that the final model is the workers' average. H = 1
// with plain SGD is SSGD (invariant 6).
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class LocalSgd final : public Algorithm {
 public:
  LocalSgd(engine::SgdConfig opt, int64_t H, bool ps, OnFailure policy) : opt_(opt), H_(H), ps_(ps), policy_(policy) {}
  bool needs_servers() const override { return ps_; }
  // platform.failures: drop (the PS form averages the survivors; a ring cannot lose a rank) or,
  // with comm allreduce, elastic (the survivors re-form the ring, sim/elastic.hpp).
  OnFailure on_failure() const override { return policy_; }
  double buffers_per_worker() const override { return 4.0 + (opt_.momentum != 0); }
  // Checkpoint and resume (docs/robustness.md): a cut after any step; each worker saves its model
  // x and optimizer state (mid-round they differ from the global model, the last average).
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps();
    Vec x = copy_of(w, view_of(w.initial_params()));
    engine::Sgd opt(opt_, x.size(), w.device());
    if (const State* st = w.resumed()) {
      st->get("x", x.view());
      load_sgd(*st, opt);
    }
    for (int64_t t = w.resume_step(); t < T; ++t) {
      Gradient g = w.compute(x.view());
      if (w.real()) opt.step(x.view(), view_of(g), scheduled_lr(opt_, w, sync_epoch(w, t)));
      w.update_cost();
      if ((t + 1) % H_ == 0 || t + 1 == T) {  // end of a round: average the models (blocking)
        const int64_t round = t / H_;
        const auto mine = Payload::whole(snapshot_of(w, x.view()), w.num_params());
        std::shared_ptr<const Vec> avg;
        if (ps_) {
          w.push(mine, kModel, round).wait();
          avg = w.pull(kParams);
        } else {
          avg = w.allreduce(mine, Reduce::Mean, w.batch_size());
          if (w.leads()) w.publish_global(view_of(avg));
        }
        assign(x.view(), view_of(avg));
      }
      w.checkpoint(t + 1, [&x, &opt](State& st) {
        st.put("x", x.view());
        save_sgd(st, opt);
      });
    }
  }

  // "comm": "ps": one averaging per round, the average is the global model.
  // A checkpoint's cut at step c: rounds 0..c/H - 1 are done, the shard waits for round c/H; it
  // offers the cuts of the steps of the round it waits for (its state is the same all along).
  void server(Server& s) override {
    const int64_t T = s.sync_steps(), rounds = (T + H_ - 1) / H_;
    auto offer_cuts = [&](int64_t r) {
      for (int64_t c = r * H_; c < std::min((r + 1) * H_, T); ++c) s.checkpoint(c, {});
    };
    offer_cuts(s.resume_step() / H_);
    for (int64_t r = s.resume_step() / H_; r < rounds; ++r) {
      mean_in_rank_order(s.global_range(), gather_from_workers(s, kModel));
      s.update_cost(s.workers());
      s.committed();
      broadcast_model(s, kParams, r);
      offer_cuts(r + 1);
    }
  }

 private:
  engine::SgdConfig opt_;
  int64_t H_;
  bool ps_;
  OnFailure policy_;
};

}  // namespace

AlgorithmInfo local_sgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"local-sgd", "periodic model averaging: H local steps on every worker, then a blocking average of the models",
          docs({sgd_param_docs(d, "each worker's SGD"),
                {{"period", "4", "H: local steps between two averagings"},
                 {"comm", "allreduce", "allreduce (ring all-reduce of the models) | ps (push models, pull the average)"},
                 on_failure_doc("drop (ps: the PS averages the survivors; allreduce: exit 1) | elastic (comm allreduce: the survivors re-form the ring)")}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            const bool ps = read_comm(r, {"allreduce", "ps"}, "allreduce") == "ps";
            auto opt = read_sgd(r, d);
            const int64_t H = read_count(r, "period", 4);
            return std::make_unique<LocalSgd>(opt, H, ps, read_on_failure(r, {"drop", "elastic"}, !ps));
          }};
}

}  // namespace dtsim::algo
