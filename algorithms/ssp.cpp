// SSP — stale-synchronous parallel SGD on a parameter server (Ho et al., "More Effective
// Distributed ML via a Stale Synchronous Parallel Parameter Server", NeurIPS 2013).
//
//   worker i, clock c = 0 .. T−1:   g = ∇ on its c-th minibatch at its cached W
//                                   push g (tagged with c)
//                                   W <- read for clock c+1 (the server's reply)
//   server, on each gradient (arrival order):
//                                   W <- Opt(W, g) with learning rate η/N   (applied at once)
//                                   clock_i <- c + 1
//                                   answer every waiting worker j whose next clock c_j satisfies
//                                   min_k clock_k >= c_j − s   with the current W
//
// So a worker may run at most s clocks ahead of the slowest one, and a read for clock c includes
// every update of clocks <= c − s − 1 (and whatever newer ones have arrived). s = 0 is BSP (the
// N updates of a clock, each scaled 1/N, add up to SSGD's step: invariant 5); s = ∞ is ASGD with a
// 1/N learning rate. Every worker runs exactly sync_steps() clocks, so the sample budget is SSGD's.
// Updates are applied on arrival, so the trajectory depends on event order (invariant 3).
#include <algorithm>
#include <limits>

#include "algorithms/common.hpp"

namespace dtsim::algo {
namespace {

class Ssp final : public Algorithm {
 public:
  Ssp(engine::SgdConfig opt, int64_t s) : opt_(opt), s_(s) {}
  bool needs_servers() const override { return true; }
  // Checkpoint and resume (docs/robustness.md): ASGD's cut at the shards: each saves its optimizer
  // state and every worker's clock (= its pushes applied there). On resume worker i restarts at
  // clock min_k clock_k,i from the checkpoint's global model; a shard that had applied that push
  // already does not apply it again but answers it under the SSP rule.
  bool checkpointable() const override { return true; }
  bool checkpoint_at_servers() const override { return true; }

  LayerComm layer_comm() const override { return LayerComm::AsyncServer; }

  void worker(Worker& w) override {
    std::shared_ptr<const Vec> W0 = w.initial_params();
    Incoming W;  // released once the slowest worker is within s clocks
    for (int64_t c = w.next_minibatch(); c < w.sync_steps(); ++c) {  // 0, or where a resume restarts
      Future<Gradient> g = W.valid() ? w.compute_async(W) : w.compute_async(view_of(W0));
      W0.reset();
      w.push(g, kGradient, c).wait();
      W = w.pull_async(kParams);
    }
    if (W.valid()) W.wait();
  }

  void server(Server& sv) override {
    engine::Sgd sgd(opt_, sv.real() ? sv.size() : 0, sv.device());
    std::vector<int64_t> clock(static_cast<size_t>(sv.workers()), 0);
    std::vector<bool> waiting(clock.size(), false);
    if (const State* r = sv.resumed()) {
      load_sgd(*r, sgd);
      clock = load_acked(*r, sv.workers());
    }
    auto release = [&] {  // answer every waiting worker within s clocks of the slowest
      const int64_t slowest = *std::min_element(clock.begin(), clock.end());
      for (size_t j = 0; j < clock.size(); ++j)
        if (waiting[j] && slowest >= clock[j] - s_) {
          waiting[j] = false;
          sv.send_to_worker(static_cast<int>(j), {.tag = kParams, .step = clock[j], .data = Payload::whole(sv.snapshot(), sv.size())});
        }
    };
    while (true) {  // until every worker has returned (servers are daemons)
      Message m = sv.recv_or_lost(kGradient);  // = recv(kGradient) in a run without failures
      if (m.tag == kWorkerLost || sv.worker_lost(m.src)) {
        // platform.failures (drop): a lost worker no longer holds the others back; its late
        // gradients are dropped (docs/platforms.md, Failures).
        clock[static_cast<size_t>(m.src)] = std::numeric_limits<int64_t>::max();
        waiting[static_cast<size_t>(m.src)] = false;
        release();
        continue;
      }
      int64_t& ci = clock[static_cast<size_t>(m.src)];
      if (m.step >= ci) {  // below: sent again after a resume, applied here before the cut
        if (sv.real()) sgd.step(sv.global_range(), m.data.view(), scheduled_lr(opt_, sv, async_epoch(sv)) / sv.workers());
        sv.update_cost(1);
        sv.committed();
        ci = m.step + 1;
      }
      m.data = {};
      waiting[static_cast<size_t>(m.src)] = true;
      release();
      sv.checkpoint(0, [&](State& out) {
        save_sgd(out, sgd);
        save_acked(out, clock);
      });
    }
  }

 private:
  engine::SgdConfig opt_;
  int64_t s_;
};

}  // namespace

AlgorithmInfo ssp_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.0, .weight_decay = 0.0, .nesterov = false};
  return {"ssp", "stale-synchronous parallel SGD on a parameter server: workers may run at most s clocks ahead of the slowest",
          docs({sgd_param_docs(d),
                {{"staleness", "3", "s: a worker starts clock c only when every worker has finished clock c − s − 1"},
                 {"comm", "ps", "ps only"}}}),
          [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            read_comm(r, {"ps"}, "ps");
            auto opt = read_sgd(r, d);
            return std::make_unique<Ssp>(opt, read_count(r, "staleness", 3, 0));
          }};
}

}  // namespace dtsim::algo
