// EASGD — elastic averaging SGD (Zhang, Choromanska, LeCun, arXiv 1412.6651), Algorithm 1
// (asynchronous) and the synchronous form; with momentum + Nesterov it is EAMSGD.
//
//   worker i, step t (x^i its own model, τ = period, α = ηρ the moving rate):
//     g <- ∇ at x^i                                   (compute, at the pre-elastic x^i)
//     if t mod τ == 0:                                (elastic exchange, blocking)
//        send x^i to the centre;  x̃_old <- reply
//        x^i <- x^i − α(x^i − x̃_old)
//     x^i <- Opt(x^i, g)                               (local SGD step)
//   centre (PS), asynchronous: on each x^i, in arrival order
//        reply x̃;  x̃ <- x̃ + α(x^i − x̃)
//   centre, synchronous ("sync": true): waits for all N models of the exchange
//        reply x̃ to all;  x̃ <- x̃ + α Σ_i (x^i − x̃)     (old values on both sides: Σ x^i + x̃ is conserved)
//
// Wire per exchange and worker: x^i up, x̃ down (|W| each). The centre x̃ is the global model.
// Budget: the asynchronous form claims minibatches from the shared budget (fast workers do more
// steps); the synchronous form runs sync_steps() steps on every worker.
#include <algorithm>

#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

struct EasgdConfig {
  engine::SgdConfig opt;
  int64_t period = 4;
  double alpha = 0;  // 0: 0.9 / N (β = Nα = 0.9)
  bool sync = false;
};

class Easgd final : public Algorithm {
 public:
  explicit Easgd(EasgdConfig c) : c_(c) {}
  bool needs_servers() const override { return true; }
  double buffers_per_worker() const override { return 4.0 + (c_.opt.momentum != 0); }

  double alpha(const Node& n) const { return c_.alpha > 0 ? c_.alpha : 0.9 / n.workers(); }
  // Checkpoint and resume (docs/robustness.md), synchronous form: a cut after any step (the
  // exchange is blocking, so nothing is in flight); each worker saves x and its optimizer state,
  // the centre is the global model. The asynchronous form is refused.
  bool checkpointable() const override { return c_.sync; }
  std::string checkpoint_refusal() const override {
    return c_.sync ? std::string() : "only the synchronous form (\"sync\": true) can checkpoint";
  }

  void worker(Worker& w) override {
    const float a = static_cast<float>(alpha(w));
    Vec x = copy_of(w, view_of(w.initial_params()));
    engine::Sgd opt(c_.opt, x.size(), w.device());
    if (const State* st = w.resumed()) {
      st->get("x", x.view());
      load_sgd(*st, opt);
    }
    for (int64_t t = w.resume_step(); c_.sync ? t < w.sync_steps() : w.claim_batch(); ++t) {
      Gradient g = w.compute(x.view());
      if (t % c_.period == 0) {  // elastic exchange
        const int64_t round = t / c_.period;
        w.observe("easgd.x.before", round, x.view());
        w.push(Payload::whole(snapshot_of(w, x.view()), w.num_params()), kExchange, round).wait();
        const auto centre = w.pull(kParams);                      // x̃_old
        if (w.real()) engine::ops::axpby(x.view(), a, centre->view(), 1.0f - a);  // x − α(x − x̃)
        w.update_cost();
        w.observe("easgd.x.after", round, x.view());
      }
      if (w.real()) opt.step(x.view(), view_of(g), scheduled_lr(c_.opt, w, c_.sync ? sync_epoch(w, t) : async_epoch(w)));
      w.update_cost();
      w.checkpoint(t + 1, [&x, &opt](State& st) {
        st.put("x", x.view());
        save_sgd(st, opt);
      });
    }
  }

  void server(Server& s) override {
    const float a = static_cast<float>(alpha(s));
    Vec diff = new_vec(s, s.size());
    if (!c_.sync) {
      while (true) {  // until every worker has returned (servers are daemons)
        Message m = s.recv(kExchange);
        const auto old = s.snapshot();
        s.send_to_worker(m.src, {.tag = kParams, .step = m.step, .data = Payload::whole(old, s.size())});
        if (s.real()) {
          engine::ops::sub(diff.view(), m.data.view(), old->view());  // x^i − x̃
          engine::ops::axpy(s.global_range(), a, diff.view());
        }
        s.update_cost(1);
        s.committed();
      }
    }
    const int64_t T = s.sync_steps(), rounds = (T + c_.period - 1) / c_.period;
    Vec sum = new_vec(s, s.size());
    // Resumed at the cut after step c−1: the next exchange is at the first multiple of the period >= c.
    for (int64_t r = (s.resume_step() + c_.period - 1) / c_.period; r < rounds; ++r) {
      const auto xs = gather_from_workers(s, kExchange);
      const auto old = s.snapshot();
      s.observe("easgd.centre.before", r, view_of(old));
      for (int i = 0; i < s.workers(); ++i)
        s.send_to_worker(i, {.tag = kParams, .step = r, .data = Payload::whole(old, s.size())});
      if (s.real()) {
        engine::ops::fill(sum.view(), 0.0f);
        for (const auto& m : xs) {  // Σ_i (x^i − x̃_old), in rank order
          engine::ops::sub(diff.view(), m.data.view(), old->view());
          engine::ops::add(sum.view(), diff.view());
        }
        engine::ops::axpy(s.global_range(), a, sum.view());
      }
      s.update_cost(s.workers());
      s.committed();
      s.observe("easgd.centre.after", r, s.global_range());
      // The cuts after steps rτ .. (r+1)τ − 1: the centre is the global model, nothing else to save.
      for (int64_t c = r * c_.period + 1; c <= std::min((r + 1) * c_.period, T); ++c) s.checkpoint(c, {});
    }
  }

 private:
  EasgdConfig c_;
};

}  // namespace

AlgorithmInfo easgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.0, .weight_decay = 0.0, .nesterov = false};
  return {"easgd", "elastic averaging SGD: workers are pulled towards a centre variable on the PS every τ steps (async or sync)",
          docs({sgd_param_docs(d, "each worker's SGD"),
                {{"period", "4", "τ: local steps between elastic exchanges"},
                 {"alpha", "0.9/N", "α = ηρ, the moving rate (the paper's β = Nα = 0.9)"},
                 {"sync", "false", "false: Algorithm 1 (asynchronous); true: the synchronous form"},
                 {"comm", "ps", "ps only"}}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"ps"}, "ps");
            EasgdConfig c;
            c.opt = read_sgd(r, d);
            c.period = read_count(r, "period", 4);
            if (auto a = r.opt_number("alpha")) {
              if (!(*a > 0 && *a < 1)) r.fail("alpha", "must be in (0, 1), got " + number_text(*a));
              c.alpha = *a;
            }
            c.sync = r.boolean("sync", false);
            return std::make_unique<Easgd>(c);
          }};
}

}  // namespace dtsim::algo
