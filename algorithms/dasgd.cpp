// DaSGD — local SGD with delayed averaging (Zhou et al., arXiv 2006.00441), after the authors'
// code sweetwenwen/fastai-dasgd (train.py; docs/algorithms/dasgd.md).
//
//   worker i, round r (τ = period local steps, d = delay):
//     for s = 0 .. τ−1:
//        if s == d and an average is in flight:      A_{r−1} <- wait   (launched d steps ago)
//           merge "convex" (the code):   x <- p·x + (1−p)·A_{r−1}       (p = mix)
//           merge "replace":             x <- A_{r−1} + (x − x_sent)    (own progress since the send)
//        x <- Opt(x, ∇ at x)
//     x_sent <- x;  start A_r = allreduce_mean(x_sent)                 (hidden behind the next d steps)
//
// One all-reduce of |W| per τ steps, fully hidden when T_allreduce <= d·T_step. d = 0 merges at
// once (no overlap). The paper's own merge equation was not available: "convex" is the authors'
// code (the default), "replace" is the reading that preserves the workers' mean (invariant 9 tells
// them apart). Rank 0 publishes A_{r−1} at each merge; after the budget the last average is waited
// for and published, so the final model is the workers' mean. Budget: sync_steps() steps, the last
// round shortened.
#include <algorithm>

#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

struct DasgdConfig {
  LocalOptConfig opt;
  engine::LrSchedule schedule;  // of opt.lr
  int64_t period = 4, delay = 1;
  bool replace = false;
  double mix = 0.25;
  Algorithm::OnFailure policy = Algorithm::OnFailure::Drop;
};

class Dasgd final : public Algorithm {
 public:
  explicit Dasgd(DasgdConfig c) : c_(std::move(c)) {}
  bool needs_servers() const override { return false; }
  OnFailure on_failure() const override { return c_.policy; }  // drop or elastic (sim/elastic.hpp)
  double buffers_per_worker() const override { return 6.0; }
  // Checkpoint and resume (docs/robustness.md): a cut inside round r is taken at the end of round r,
  // just before its average is launched (the previous one was merged d steps into the round, so
  // nothing is in flight). Each worker saves x (= the x_sent it is about to contribute), its
  // optimizer state and the step it continues from; on resume it first launches that average.
  bool checkpointable() const override { return true; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps();
    Vec x = copy_of(w, view_of(w.initial_params()));
    auto opt = make_local_optimizer(c_.opt, w);
    std::shared_ptr<const Vec> sent;            // x_sent: the model this worker contributed
    Future<std::shared_ptr<const Vec>> average; // A_{r−1}, in flight
    int64_t merges = 0;
    int64_t start = 0;  // the step the first round starts at
    auto launch = [&] {  // x_sent <- x; A_r = allreduce_mean(x_sent), hidden behind the next d steps
      sent = snapshot_of(w, x.view());
      average = w.allreduce_async(Payload::whole(sent, w.num_params()), Reduce::Mean, w.batch_size());
    };
    auto merge = [&] {
      const auto A = average.wait();
      average = {};
      w.observe("dasgd.before", merges, x.view());
      if (w.real()) {
        if (c_.replace) {  // x <- A + (x − x_sent)
          engine::ops::axpy(x.view(), -1.0f, sent->view());
          engine::ops::add(x.view(), A->view());
        } else {           // x <- p·x + (1−p)·A
          engine::ops::axpby(x.view(), static_cast<float>(1.0 - c_.mix), A->view(), static_cast<float>(c_.mix));
        }
      }
      w.update_cost(2);
      w.observe("dasgd.after", merges++, x.view());
      if (w.leads()) w.publish_global(view_of(A));
    };
    if (const State* st = w.resumed()) {
      st->get("x", x.view());
      opt->load(*st, "opt");
      start = st->get_int("next_step");
      merges = st->get_int("merges");
      launch();  // the round-end average the cut came just before
    }
    for (int64_t t0 = start; t0 < T; t0 += c_.period) {
      for (int64_t s = 0; s < std::min(c_.period, T - t0); ++s) {
        if (s == c_.delay && average.valid()) merge();  // d steps into the round
        opt->set_lr(scheduled_lr(c_.schedule, c_.opt.lr, w, sync_epoch(w, t0 + s)));
        Gradient g = w.compute(x.view());
        opt->step(x.view(), view_of(g));
        w.update_cost();
      }
      if (average.valid()) merge();  // a round shorter than d steps (the budget's end)
      const int64_t next = std::min(t0 + c_.period, T);
      for (int64_t c = t0 + 1; c <= next; ++c)  // the cuts crossed during this round
        w.checkpoint(c, [&](State& st) {
          st.put("x", x.view());
          opt->save(st, "opt");
          st.put_int("next_step", next);
          st.put_int("merges", merges);
        });
      launch();
    }
    const auto final_avg = average.wait();  // the last round's average is the final model
    if (w.leads()) w.publish_global(view_of(final_avg));
  }

 private:
  DasgdConfig c_;
};

const LocalOptConfig kOpt{.kind = "adamw", .lr = 0.01, .momentum = 0.9, .weight_decay = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-5};

}  // namespace

AlgorithmInfo dasgd_info() {
  return {"dasgd", "local SGD with delayed averaging: the average launched at a round's end is merged d steps into the next round",
          docs({local_opt_docs({"adamw", "sgd"}, kOpt, ""), {schedule_doc("the workers' optimizer (lr)")},
                {{"period", "4", "τ: local steps per round"},
                 {"delay", "1", "d: local steps of the next round the average overlaps (0 <= d < τ)"},
                 {"merge", "convex", "convex: x <- p·x + (1−p)·A (the authors' code) | replace: x <- A + (x − x_sent)"},
                 {"mix", "0.25", "p: weight of the local model in the convex merge (the code's update_proportion 8/32)"},
                 {"comm", "allreduce", "allreduce only"}, on_failure_doc("drop (a lost worker ends the run, exit 1) | elastic (the survivors re-form the ring)")}}),
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"allreduce"}, "allreduce");
            DasgdConfig c;
            c.opt = read_local_opt(r, {"adamw", "sgd"}, kOpt, "");
            c.schedule = read_schedule(r);
            c.period = read_count(r, "period", 4);
            c.delay = read_count(r, "delay", 1, 0);
            if (c.delay >= c.period) r.fail("delay", "must be smaller than period (" + std::to_string(c.period) + ")");
            c.replace = r.choice("merge", {"convex", "replace"}, "convex") == "replace";
            if (c.replace && r.has("mix")) r.fail("mix", "only used with \"merge\": \"convex\"");
            if (!c.replace) {
              c.mix = r.number("mix", 0.25);
              r.require_range("mix", c.mix, 0.0, 1.0);
            }
            c.policy = read_on_failure(r, {"drop", "elastic"});
            return std::make_unique<Dasgd>(c);
          }};
}

}  // namespace dtsim::algo
