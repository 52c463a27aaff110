// DC-ASGD — asynchronous SGD with delay compensation (Zheng et al., arXiv 1609.08326).
//
//   worker m:  loop while the sample budget lasts
//                g = ∇ on its next minibatch at its last pulled W          (stale: W_bak(m))
//                push g; W <- pull (the reply)
//   shard:     on g from worker m, in arrival order:
//                u = g + λ_eff ⊙ g ⊙ g ⊙ (W − W_bak(m))    (first-order Taylor correction of the
//                                                          delay with a diagonal Hessian estimate)
//                W <- Opt(W, u);  W_bak(m) <- W;  reply W to worker m
//   λ_eff = λ (DC-ASGD-c) or, with "adaptive": λ / sqrt(MS), MS <- m·MS + (1−m)·g² (DC-ASGD-a).
//
// ASGD's schedule exactly (the reply is piggybacked on the push); the server keeps one backup
// copy of its shard per worker. λ = 0 is ASGD (the correction is skipped, so even the timing is
// ASGD's); with one worker W − W_bak = 0 and it is SGD (invariant 5).
#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class DcAsgd final : public Algorithm {
 public:
  DcAsgd(engine::SgdConfig opt, engine::DelayCompConfig dc) : opt_(opt), dc_(dc) {}
  bool needs_servers() const override { return true; }

  // compute at the last pulled W, push, pull the reply (common.cpp, as ASGD)
  void worker(Worker& w) override { asgd_worker(w); }
  LayerComm layer_comm() const override { return LayerComm::AsyncServer; }
  // Checkpoint and resume (docs/robustness.md): ASGD's cut at the shards, each also saving its
  // mean square (adaptive). On resume every worker computes from the checkpoint's global model, so
  // each backup W_bak(m) starts as that model's range (what worker m then computes at); a
  // minibatch a shard had applied before the cut is not applied twice (its backup is refreshed).
  bool checkpointable() const override { return true; }
  bool checkpoint_at_servers() const override { return true; }

  void server(Server& s) override {
    const size_t n = s.real() ? s.size() : 0;
    engine::Sgd sgd(opt_, n, s.device());
    engine::DelayCompensation dc(dc_, n, s.device());
    std::vector<Vec> backup;  // W_bak(m): the shard as worker m last received it
    for (int m = 0; m < s.workers(); ++m) backup.push_back(copy_of_range(s, view_of(s.initial_params())));
    Vec u = new_vec(s, n);
    const bool correct = dc_.lambda != 0;
    std::vector<int64_t> applied(static_cast<size_t>(s.workers()), 0);  // per worker: minibatches 0..applied-1 applied here
    if (const State* r = s.resumed()) {
      load_sgd(*r, sgd);
      r->get("ms", dc.mean_square().view());
      applied = load_acked(*r, s.workers());
    }
    while (true) {  // until every worker has returned (servers are daemons)
      Message m = s.recv(kGradient);
      Vec& bak = backup[static_cast<size_t>(m.src)];
      const bool fresh = m.step >= applied[static_cast<size_t>(m.src)];  // else: sent again after a resume
      if (fresh && s.real()) {
        if (correct) dc.apply(u.view(), m.data.view(), s.global_range(), bak.view());
        sgd.step(s.global_range(), correct ? ConstVecView(u.view()) : m.data.view(), scheduled_lr(opt_, s, async_epoch(s)));
      }
      if (s.real()) engine::ops::copy(bak.view(), s.global_range());
      m.data = {};
      if (fresh) {
        s.update_cost(correct ? 2 : 1);  // the correction costs about one more pass over the shard
        s.committed();
        applied[static_cast<size_t>(m.src)] = m.step + 1;
      }
      s.send_to_worker(m.src, {.tag = kParams, .step = m.step, .data = Payload::whole(s.snapshot(), s.size())});
      s.checkpoint(0, [&](State& out) {
        save_sgd(out, sgd);
        out.put("ms", dc.mean_square().view());
        save_acked(out, applied);
      });
    }
  }

 private:
  static Vec copy_of_range(Server& s, ConstVecView full) {
    Vec v = new_vec(s, s.size());
    if (s.real()) engine::ops::copy(v.view(), full.sub(s.offset(), s.size()));
    return v;
  }

  engine::SgdConfig opt_;
  engine::DelayCompConfig dc_;
};

}  // namespace

AlgorithmInfo dc_asgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.0, .weight_decay = 0.0, .nesterov = false};
  return {"dc-asgd", "delay-compensated ASGD: the PS corrects each stale gradient by λ g⊙g⊙(W − W_bak)",
          docs({sgd_param_docs(d),
                {{"lambda", "0.04 (2 when adaptive)", "λ₀: strength of the delay compensation (the paper's DC-ASGD-c / -a)"},
                 {"adaptive", "false", "DC-ASGD-a: λ_eff = λ/√MS with the gradients' running mean square MS"},
                 {"mean_square", "0.95", "m: decay of MS (adaptive only)"},
                 {"comm", "ps", "ps only"}}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"ps"}, "ps");
            auto opt = read_sgd(r, d);
            engine::DelayCompConfig dc;
            dc.adaptive = r.boolean("adaptive", false);
            dc.lambda = r.number("lambda", dc.adaptive ? 2.0 : 0.04);
            r.require_non_negative("lambda", dc.lambda);
            if (!dc.adaptive && r.has("mean_square")) r.fail("mean_square", "only used with \"adaptive\": true");
            if (dc.adaptive) {
              dc.mean_square = r.number("mean_square", 0.95);
              r.require_range("mean_square", dc.mean_square, 0.0, 0.999999);
            }
            return std::make_unique<DcAsgd>(opt, dc);
          }};
}

}  // namespace dtsim::algo
