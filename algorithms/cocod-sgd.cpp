// CoCoD-SGD — computation/communication decoupled SGD (Shen, Xu, Liu, Liang, Cheng; IJCAI 2019,
// arXiv 1906.12043), after the authors' proof appendix and the third-party
// reimplementation JYWa/Overlap_Local_SGD (docs/algorithms/cocod-sgd.md).
//
//   worker i, round r (k = period local steps):
//     x^(r) <- x_i                                         (the round-start model)
//     start  X̄_r = allreduce_mean(x^(r)), weighted by M_i ─┐ comm "thread"
//     k local steps  x_i <- Opt(x_i, ∇ at x_i)            ─┘ comp "thread", overlapped
//     X̄_r <- wait
//     x_i <- X̄_r + (x_i − x^(r))                           (last completed average + all own steps)
//
// i.e. x_t^i = x̂_{(⌊t/k⌋−1)k} − Σ γG_τ^i over its own steps since then (the appendix's eq. 9), with
// the average weighted by the workers' minibatch sizes M_i/ΣM (eq. 10). The merge preserves the
// (weighted) mean of the models (invariant 9). A round costs max(k·T_c, T_allreduce) (invariant 21).
// Rank 0 publishes X̄_r, the last completed average. After the last round one closing all-reduce
// averages the final models (the budget's end), so the final model is the workers' mean.
//
// "proportional_batch": heterogeneous workers get b_i ∝ compute rate (Σ b_i = N·b, largest
// remainder), so all finish their k steps together ("proportional sampling"); the average is then
// weighted by b_i.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class CocodSgd final : public Algorithm {
 public:
  CocodSgd(engine::SgdConfig opt, int64_t k, bool proportional, OnFailure policy)
      : opt_(opt), k_(k), proportional_(proportional), policy_(policy) {}
  bool needs_servers() const override { return false; }
  OnFailure on_failure() const override { return policy_; }  // drop or elastic (sim/elastic.hpp)
  double buffers_per_worker() const override { return 5.0 + (opt_.momentum != 0); }
  // Checkpoint and resume (docs/robustness.md): the round's all-reduce overlaps its steps, so the
  // cut of a step inside round r is taken at the end of round r (after the merge, nothing in
  // flight); each worker saves x, its optimizer state and the step it continues from.
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override {
    if (proportional_) w.set_batch_size(proportional_batch(w));
    const double M = w.batch_size();
    const int64_t T = w.sync_steps();
    Vec x = copy_of(w, view_of(w.initial_params()));
    engine::Sgd opt(opt_, x.size(), w.device());
    struct {
      Vec* x;
      engine::Sgd* opt;
      int64_t next;  // the step the next round starts at
    } ck{&x, &opt, 0};
    if (const State* st = w.resumed()) {
      st->get("x", x.view());
      load_sgd(*st, opt);
      ck.next = st->get_int("next_step");
    }
    for (int64_t t0 = ck.next, r = ck.next / k_; t0 < T; t0 += k_, ++r) {
      const auto start = snapshot_of(w, x.view());                                    // x^(r)
      auto avg = w.allreduce_async(Payload::whole(start, w.num_params()), Reduce::Mean, M);  // X̄_r, in the background
      for (int64_t t = t0; t < std::min(t0 + k_, T); ++t) {                           // k local steps meanwhile
        Gradient g = w.compute(x.view());
        if (w.real()) opt.step(x.view(), view_of(g), scheduled_lr(opt_, w, sync_epoch(w, t)));
        w.update_cost();
      }
      const auto mean = avg.wait();
      w.observe("cocod.before", r, x.view());
      if (w.real()) {  // x <- X̄_r + (x − x^(r))
        engine::ops::axpy(x.view(), -1.0f, start->view());
        engine::ops::add(x.view(), mean->view());
      }
      w.update_cost(2);
      w.observe("cocod.after", r, x.view());
      if (w.leads()) w.publish_global(view_of(mean));
      ck.next = std::min(t0 + k_, T);
      for (int64_t c = t0 + 1; c <= ck.next; ++c)  // the cuts crossed during this round
        w.checkpoint(c, [&ck](State& st) {
          st.put("x", ck.x->view());
          save_sgd(st, *ck.opt);
          st.put_int("next_step", ck.next);
        });
    }
    const auto final_avg = w.allreduce(Payload::whole(snapshot_of(w, x.view()), w.num_params()), Reduce::Mean, M);
    if (w.leads()) w.publish_global(view_of(final_avg));
  }

 private:
  // b_i ∝ compute rate_i with Σ_i b_i = N·b (largest remainder, ties to the lower rank), b_i >= 1.
  static int proportional_batch(const Worker& w) {
    const int N = w.workers();
    std::vector<double> rate(static_cast<size_t>(N));
    for (int i = 0; i < N; ++i) rate[static_cast<size_t>(i)] = w.compute_rate(i);
    const double total = std::accumulate(rate.begin(), rate.end(), 0.0);
    const int64_t budget = static_cast<int64_t>(N) * w.batch_size();
    std::vector<int64_t> b(static_cast<size_t>(N));
    std::vector<std::pair<double, int>> frac;
    int64_t used = 0;
    for (int i = 0; i < N; ++i) {
      const double q = static_cast<double>(budget) * rate[static_cast<size_t>(i)] / total;
      b[static_cast<size_t>(i)] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(q)));
      used += b[static_cast<size_t>(i)];
      frac.push_back({q - std::floor(q), i});
    }
    std::stable_sort(frac.begin(), frac.end(), [](const auto& a, const auto& c) { return a.first > c.first; });
    for (size_t j = 0; used < budget; j = (j + 1) % frac.size(), ++used) ++b[static_cast<size_t>(frac[j].second)];
    return static_cast<int>(b[static_cast<size_t>(w.rank())]);
  }

  engine::SgdConfig opt_;
  int64_t k_;
  bool proportional_;
  OnFailure policy_;
};

}  // namespace

AlgorithmInfo cocod_sgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"cocod-sgd",
          "computation/communication decoupled SGD: the all-reduce of the round-start models overlaps k local steps",
          docs({sgd_param_docs(d, "each worker's SGD"),
                {{"period", "4", "k: local steps per round (overlapping the round's all-reduce)"},
                 {"proportional_batch", "false", "batch sizes proportional to the workers' compute rates (Σ = N·batch)"},
                 {"comm", "allreduce", "allreduce only"}, on_failure_doc("drop (a lost worker ends the run, exit 1) | elastic (the survivors re-form the ring)")}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"allreduce"}, "allreduce");
            auto opt = read_sgd(r, d);
            const int64_t k = read_count(r, "period", 4);
            const bool proportional = r.boolean("proportional_batch", false);
            return std::make_unique<CocodSgd>(opt, k, proportional, read_on_failure(r, {"drop", "elastic"}));
          }};
}

}  // namespace dtsim::algo
