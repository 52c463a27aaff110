// HPSGD / HLSGD — hierarchical (local) SGD with stale gradients (Zhou, Ye, Zhang, Lv;
// arXiv 2009.02701), after the authors' official code Soptq/Hierarchical_Local_SGD, hlsgd.py
// (docs/algorithms/hpsgd.md).
//
// Per worker: w (the replica being trained), B (snapshot of the global model), S (gradient sum of
// the open window), L (the window sum under an asynchronous SUM all-reduce, handle h).
//
//   every iteration:  g <- ∇ at w
//                     done_i <- h not launched or finished       (each worker's test, before the barrier)
//                     barrier of all workers, ANDing the done_i  (blocking: stragglers gate every step)
//                     local <- init or not all done_i            (the code decides per rank: it hangs
//                                                                 with a straggler, docs/algorithms/hpsgd.md)
//     if local:       if init: B <- w, init <- false
//                     S <- S + g;  w <- w − η g                  (local step on the replica)
//     else (h done):  T <- S + g
//                     if a window was launched before:  w <- B − η·L/N, init <- true   (merge: the
//                                                       replica's progress is discarded)
//                     else:                             w <- w − η g                  (first launch)
//                     L <- T;  S <- 0;  h <- allreduce_sum_async(L)                   ─┐ overlaps the
//                                                                                     ─┘ next iterations
// So W_{r+1} = W_r − η·(1/N)·Σ_i (window-r gradient sum of worker i), computed on replicas that
// started one window earlier; a window closes at the first iteration whose all-reduce has finished,
// so its length is max(2, ⌈T_allreduce/T_iteration⌉) iterations (the iteration after a merge is
// always local): the parameters depend on timing. After the budget the pending window is merged and the open one is reduced and applied, so
// every computed gradient counts once. Rank 0 publishes W after each merge.
//
// Options (off by default, documented in docs/algorithms/hpsgd.md):
//   epoch_quirks  the code's epoch boundary: on an epoch's last batch it waits for h, then
//                 overwrites the merge with the new window's average (the pending window is
//                 dropped), and the next epoch's second iteration applies that average again.
//   gloo_barrier  the barrier also waits for the in-flight all-reduce (PyTorch's ProcessGroupGloo
//                 barrier completes all prior work), which makes windows 2 iterations long.
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

struct HpsgdConfig {
  double lr = 0.01;
  engine::LrSchedule schedule;  // of lr (the replica's steps and the merges)
  bool epoch_quirks = false;
  bool gloo_barrier = false;
};

class Hpsgd final : public Algorithm {
 public:
  explicit Hpsgd(HpsgdConfig c) : c_(c) {}
  bool needs_servers() const override { return false; }
  double buffers_per_worker() const override { return 6.0; }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps();
    float eta = static_cast<float>(c_.lr), eta_n = static_cast<float>(c_.lr / w.workers());  // η at iteration t
    const int64_t epoch_steps =  // iterations per epoch: ceil(train_size / (N·b))
        static_cast<int64_t>((w.train_size() + uint64_t(w.workers()) * w.batch_size() - 1) /
                             (uint64_t(w.workers()) * w.batch_size()));
    Vec x = copy_of(w, view_of(w.initial_params()));  // w, the replica
    Vec B = w.new_buffer(), S = w.new_buffer();
    Future<std::shared_ptr<const Vec>> h;  // the all-reduce of the last launched window (L)
    bool launched = false, unapplied = false, init = true;
    int64_t in_S = 0, merges = 0, launches = 0, t = 0;
    auto sgd_step = [&](ConstVecView g) {  // w <- w − η g
      if (w.real()) engine::ops::axpy(x.view(), -eta, g);
      w.update_cost();
    };
    auto merge = [&](ConstVecView base, const std::shared_ptr<const Vec>& L) {  // w <- base − η L/N
      if (w.real()) {
        engine::ops::copy(x.view(), base);
        engine::ops::axpy(x.view(), -eta_n, L->view());
      }
      w.update_cost();
      w.observe("hpsgd.W", ++merges, x.view());
      w.observe("hpsgd.merge_at", t, {});  // the iteration of merge number `merges`
      if (w.rank() == 0) w.publish_global(x.view());
    };
    auto launch = [&](ConstVecView g) {  // L <- S + g;  S <- 0;  h <- allreduce_sum(L)
      std::shared_ptr<const Vec> L;
      if (w.real()) {
        auto sum = std::make_shared<Vec>(copy_of(w, S.view()));
        engine::ops::add(sum->view(), g);
        engine::ops::fill(S.view(), 0.0f);
        L = sum;
      }
      w.observe("hpsgd.window", launches++, view_of(L));
      h = w.allreduce_async(Payload::whole(L, w.num_params()), Reduce::Sum);
      launched = unapplied = true;
      in_S = 0;
    };
    w.observe("hpsgd.W", 0, x.view());
    for (; t < T; ++t) {
      const double lr_t = scheduled_lr(c_.schedule, c_.lr, w, sync_epoch(w, t));  // the end's merges keep the last
      eta = static_cast<float>(lr_t), eta_n = static_cast<float>(lr_t / w.workers());
      Gradient g = w.compute(x.view());
      const bool finished_here = !launched || h.done();  // this worker's check, before the barrier
      const bool force = c_.epoch_quirks && (t + 1) % epoch_steps == 0;  // an epoch's last batch
      if (c_.gloo_barrier && launched) h.wait();
      // The window closes when every worker's check found the all-reduce finished: the votes ride
      // in the barrier's messages (a straggler checks later than the others; deciding alone, it
      // would launch an all-reduce the others do not, and the run would hang at its end).
      const bool all_finished = barrier(w, t, finished_here);  // every iteration, whatever the state
      const bool local = init || (launched && !all_finished);
      if (local && !force) {
        if (init) assign(B.view(), x.view());
        init = false;
        if (w.real()) engine::ops::add(S.view(), view_of(g));
        ++in_S;
        sgd_step(view_of(g));
      } else if (!force) {
        if (launched) {
          const auto L = h.wait();  // the previous window's sum (done: not local)
          launch(view_of(g));       // L <- T = S + g, all-reduced in the background
          merge(B.view(), L);       // w <- B − η·L/N
          init = true;
        } else {
          const Vec g_copy = copy_of(w, view_of(g));
          launch(view_of(g));
          sgd_step(g_copy.view());
        }
      } else {  // epoch_quirks: the code's last-batch path (force_async)
        const bool had = launched;
        if (had) h.wait();
        const Vec base = copy_of(w, had ? ConstVecView(B.view()) : ConstVecView(x.view()));
        launch(view_of(g));
        merge(base.view(), h.wait());  // the new window's average overwrites the pending one
        unapplied = false;             // ... and stays "L" for the next merge (quirk 3)
        if (had) init = true;
      }
    }
    // The budget's end: merge the pending window, then reduce and apply the open one.
    if (unapplied) {
      if (init) assign(B.view(), x.view());
      merge(B.view(), h.wait());
    }
    if (in_S > 0) {
      const Vec base = copy_of(w, x.view());
      auto S_ptr = std::make_shared<const Vec>(copy_of(w, S.view()));
      w.observe("hpsgd.window", launches++, view_of(S_ptr));
      const auto L = w.allreduce(Payload::whole(S_ptr, w.num_params()), Reduce::Sum);
      merge(base.view(), L);
    }
  }

 private:
  HpsgdConfig c_;
};

}  // namespace

AlgorithmInfo hpsgd_info() {
  return {"hpsgd",
          "hierarchical SGD with stale gradients: window gradient sums all-reduced while a replica trains; W_{r+1} = W_r − η·mean",
          {{"lr", "0.01", "η, the learning rate of the replica's SGD and of the merge (the official code: 0.01)"},
           schedule_doc("η (the replica's steps and the merges, at the iteration they happen)"),
           {"epoch_quirks", "false", "reproduce the official code's two epoch-boundary quirks (see docs/algorithms/hpsgd.md)"},
           {"gloo_barrier", "false", "the per-iteration barrier also waits for the in-flight all-reduce (gloo semantics)"},
           {"comm", "allreduce", "allreduce only"}},
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"allreduce"}, "allreduce");
            HpsgdConfig c;
            c.lr = r.number("lr", 0.01);
            r.require_positive("lr", c.lr);
            c.schedule = read_schedule(r);
            c.epoch_quirks = r.boolean("epoch_quirks", false);
            c.gloo_barrier = r.boolean("gloo_barrier", false);
            return std::make_unique<Hpsgd>(c);
          }};
}

}  // namespace dtsim::algo
