// Streaming DiLoCo with overlapping communication (Douillard et al. 2025, arXiv 2501.18512).
//
// The parameters are split into P = fragments ranges; fragment p synchronises every H = period
// inner steps, staggered by p·H/P steps, and its exchange overlaps τ = delay inner steps:
//
//   inner step t on every worker:  x <- Inner(x, ∇ at x)                        (AdamW or SGD)
//   after step t, for every fragment p with t+1 ≡ p·H/P (mod H):                 (send)
//       Δ_p <- θ_p − x_p   [4-bit quantised when "quantize"]
//       start Δ̄_p = allreduce_mean(Δ_p)                                        ─┐ overlaps the next
//   after step t+τ, for that fragment:                                          ─┘ τ inner steps
//       θ_p <- Outer_p(θ_p, wait Δ̄_p)                                           (Nesterov SGD per fragment)
//       x_p <- α·x_p + (1−α)·θ_p                                                (merge)
//   rank 0 publishes θ after each fragment update.
//
// Wire: |W|/P per fragment sync and worker (ring: 2(N−1)/N of it sent), × 4/32 when quantised.
// P = 1, τ = 0, α = 0 is DiLoCo (invariant 8). At the budget's end the exchanges in flight are
// completed, then every fragment with inner steps since its last sync is synchronised once more
// (blocking), so the final θ contains every worker's progress.
// Fragments are P contiguous, nearly equal ranges of the flat parameter vector (the paper uses
// strided groups of layers; see docs/algorithms/streaming-diloco.md).
#include <algorithm>

#include "algorithms/common.hpp"
#include "engine/quantize.hpp"

namespace dtsim::algo {

engine::SgdConfig diloco_outer_defaults();
LocalOptConfig diloco_inner_defaults();
const std::vector<std::string>& diloco_inner_kinds();
engine::LrSchedule diloco_take_schedule(engine::SgdConfig& outer);
std::vector<ParamDoc> diloco_docs(std::vector<ParamDoc> v);

namespace {

struct StreamingConfig {
  engine::SgdConfig outer;  // constant lr
  LocalOptConfig inner;
  engine::LrSchedule inner_schedule;  // algorithm.schedule: of the inner lr, as DiLoCo
  int64_t period = 100, fragments = 2, delay = 1;
  double alpha = 0.5;
  bool quantize = false;
  Algorithm::OnFailure policy = Algorithm::OnFailure::Drop;
};

class StreamingDiloco final : public Algorithm {
 public:
  explicit StreamingDiloco(StreamingConfig c) : c_(std::move(c)) {}
  bool needs_servers() const override { return false; }
  OnFailure on_failure() const override { return c_.policy; }  // drop or elastic (sim/elastic.hpp)
  double buffers_per_worker() const override { return 7.0; }
  // Checkpoint and resume (docs/robustness.md): a cut is deferred to the end of the first step after
  // it with no exchange in flight (every sent fragment applied); each worker saves θ, x, the inner
  // optimizer, every fragment's outer momentum and last send, and the step it continues from. Such a
  // step exists every round only when the delay τ is shorter than the gap between two fragments'
  // sends (about H/P steps).
  bool checkpointable() const override { return checkpoint_refusal().empty(); }
  std::string checkpoint_refusal() const override {
    if (min_send_gap() <= c_.delay)
      return "the delay τ = " + std::to_string(c_.delay) + " is not shorter than the smallest gap between two fragments' sends (" +
             std::to_string(min_send_gap()) + " steps), so an exchange is always in flight and no cut exists";
    return {};
  }

  // One fragment: its range, its outer optimizer, its exchange in flight.
  struct Fragment {
    size_t off = 0, len = 0;
    int64_t offset = 0;        // p·H/P: the stagger of its schedule
    std::unique_ptr<engine::Sgd> outer;
    Future<std::shared_ptr<const Vec>> pending;
    int64_t due = -1;          // the inner step after which the pending exchange is applied
    int64_t last_sync = -1;    // the inner step after which it was last sent
  };

  // Fragment p sends after the inner steps t with t+1 ≡ p·H/P (mod H); the smallest distance
  // between two consecutive sends of any fragments.
  int64_t min_send_gap() const {
    const int64_t H = c_.period, P = c_.fragments;
    int64_t gap = H - (H * (P - 1) / P);  // from the last fragment's send to the first's next one
    for (int64_t p = 1; p < P; ++p) gap = std::min(gap, H * p / P - H * (p - 1) / P);
    return gap;
  }

  void worker(Worker& w) override {
    const int64_t T = w.sync_steps(), H = c_.period;
    const size_t P = w.num_params();
    Vec theta = copy_of(w, view_of(w.initial_params()));
    Vec x = copy_of(w, theta.view());
    auto inner = make_local_optimizer(c_.inner, w);
    std::vector<Fragment> frags(static_cast<size_t>(c_.fragments));
    for (size_t p = 0; p < frags.size(); ++p) {
      auto& f = frags[p];
      f.off = P * p / frags.size();
      f.len = P * (p + 1) / frags.size() - f.off;
      f.offset = H * static_cast<int64_t>(p) / c_.fragments;
      f.outer = std::make_unique<engine::Sgd>(c_.outer, w.real() ? f.len : 0, w.device());
    }
    auto send = [&](Fragment& f, int64_t t) {  // Δ_p = θ_p − x_p, all-reduced in the background
      std::shared_ptr<Vec> delta;
      if (w.real()) {
        delta = std::make_shared<Vec>(new_vec(w, f.len));
        engine::ops::copy(delta->view(), theta.view(f.off, f.len));
        engine::ops::axpy(delta->view(), -1.0f, x.view(f.off, f.len));
        if (c_.quantize) engine::quantize_e3m0(delta->view());
      }
      Payload part = Payload::whole(delta, f.len);
      if (c_.quantize) part.element_bytes = 0.5;  // 4 bits per element on the wire
      f.pending = w.allreduce_async(part, Reduce::Mean, w.batch_size());
      f.due = t + c_.delay;
      f.last_sync = t;
    };
    auto apply = [&](Fragment& f) {  // θ_p <- Outer(θ_p, Δ̄_p);  x_p <- α x_p + (1−α) θ_p
      const auto mean = f.pending.wait();
      f.pending = {};
      f.due = -1;
      if (w.real()) {
        f.outer->step(theta.view(f.off, f.len), mean->view());
        engine::ops::axpby(x.view(f.off, f.len), static_cast<float>(1.0 - c_.alpha), theta.view(f.off, f.len),
                           static_cast<float>(c_.alpha));
      }
      w.update_cost(2);
      if (w.leads()) w.publish_global(theta.view());
    };
    int64_t start = 0;
    if (const State* st = w.resumed()) {
      st->get("theta", theta.view());
      st->get("x", x.view());
      inner->load(*st, "inner");
      for (size_t p = 0; p < frags.size(); ++p) {
        load_sgd(*st, *frags[p].outer, "outer." + std::to_string(p));
        frags[p].last_sync = st->get_int("last_sync." + std::to_string(p));
      }
      start = st->get_int("next_step");
    }
    int64_t cut_from = start;  // the cuts at steps (cut_from, t+1] are taken at the next quiet step
    for (int64_t t = start; t < T; ++t) {
      Gradient g = w.compute(x.view());
      inner->set_lr(scheduled_lr(c_.inner_schedule, c_.inner.lr, w, sync_epoch(w, t)));
      inner->step(x.view(), view_of(g));
      w.update_cost();
      for (auto& f : frags)
        if (t + 1 >= f.offset && (t + 1 - f.offset) % H == 0) send(f, t);
      for (auto& f : frags)
        if (f.pending.valid() && f.due == t) apply(f);
      if (std::none_of(frags.begin(), frags.end(), [](const Fragment& f) { return f.pending.valid(); })) {
        for (int64_t c = cut_from + 1; c <= t + 1; ++c)
          w.checkpoint(c, [&](State& st) {
            st.put("theta", theta.view());
            st.put("x", x.view());
            inner->save(st, "inner");
            for (size_t p = 0; p < frags.size(); ++p) {
              save_sgd(st, *frags[p].outer, "outer." + std::to_string(p));
              st.put_int("last_sync." + std::to_string(p), frags[p].last_sync);
            }
            st.put_int("next_step", t + 1);
          });
        cut_from = t + 1;
      }
    }
    // The budget's end: complete the exchanges in flight, then sync every fragment with inner
    // steps since its last send once more.
    for (auto& f : frags)
      if (f.pending.valid()) apply(f);
    for (auto& f : frags)
      if (f.last_sync != T - 1) {
        send(f, T - 1);
        apply(f);
      }
  }

 private:
  StreamingConfig c_;
};

}  // namespace

AlgorithmInfo streaming_diloco_info() {
  return {"streaming-diloco",
          "DiLoCo with P fragments synchronised on a staggered schedule, each exchange overlapping τ inner steps",
          diloco_docs(docs({sgd_param_docs(diloco_outer_defaults(), "the outer optimizer"),
                local_opt_docs(diloco_inner_kinds(), diloco_inner_defaults()),
                {{"period", "100", "H: inner steps between two syncs of one fragment"},
                 {"fragments", "2", "P: parameter fragments, synchronised H/P steps apart"},
                 {"delay", "1", "τ: inner steps an exchange overlaps before it is applied (0 <= τ < H)"},
                 {"alpha", "0.5", "α: merge x_p <- α·x_p + (1−α)·θ_p (0 = replace by the global fragment)"},
                 {"quantize", "false", "4-bit (E3M0 + per-fragment scale) outer gradients: 1/8 of the bytes"},
                 {"comm", "allreduce", "allreduce only"}, on_failure_doc("drop (a lost worker ends the run, exit 1) | elastic (the survivors re-form the ring)")}})),
          [](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"allreduce"}, "allreduce");
            StreamingConfig c;
            c.outer = read_sgd(r, diloco_outer_defaults());
            c.inner_schedule = diloco_take_schedule(c.outer);
            c.inner = read_local_opt(r, diloco_inner_kinds(), diloco_inner_defaults());
            c.period = read_count(r, "period", 100);
            c.fragments = read_count(r, "fragments", 2);
            if (c.fragments > c.period) r.fail("fragments", "at most period (" + std::to_string(c.period) + ") fragments");
            c.delay = read_count(r, "delay", 1, 0);
            if (c.delay >= c.period)
              r.fail("delay", "must be smaller than period (" + std::to_string(c.period) +
                                  "): a fragment's exchange must be applied before its next one starts");
            c.alpha = r.number("alpha", 0.5);
            r.require_range("alpha", c.alpha, 0.0, 1.0);
            c.quantize = r.boolean("quantize", false);
            c.policy = read_on_failure(r, {"drop", "elastic"});
            return std::make_unique<StreamingDiloco>(c);
          }};
}

}  // namespace dtsim::algo
