// SSGD — synchronous SGD (BSP) on a parameter server.
//
//   worker i, step t:  g_i = ∇ on its t-th minibatch at W_t      (compute)
//                      push g_i to every shard                    (all shards concurrently)
//                      W_{t+1} <- pull from every shard           (blocks until step t is applied)
//   shard k, step t:   wait for all N gradients of step t
//                      W_{t+1}[k] = Opt(W_t[k], (1/N) Σ_i g_i[k])  (one optimizer step, PyTorch SGD)
//                      send W_{t+1}[k] to every worker
//
// Nothing overlaps: a step costs max_i(compute_i) + push + server update + pull. With N workers of
// batch b this is exactly single-worker SGD with batch N·b on the same sample order (invariant 1).
#include "algorithms/api.hpp"
#include "engine/ops.hpp"

namespace dtsim::algo {
namespace {

class Ssgd final : public Algorithm {
 public:
  explicit Ssgd(engine::SgdConfig opt) : opt_(opt) {}
  bool needs_servers() const override { return true; }

  void worker(Worker& w) override {
    std::shared_ptr<const Vec> W = w.initial_params();
    for (int64_t t = 0; t < w.sync_steps(); ++t) {
      Gradient g = w.compute(W ? W->view() : ConstVecView{});
      W.reset();  // this step's weights are no longer needed: let the shards reuse their buffers
      w.push(g.payload(w.num_params()), kGradient, t).wait();
      W = w.pull(kParams);
    }
  }

  void server(Server& s) override {
    engine::Sgd sgd(opt_, s.real() ? s.size() : 0, engine::Device::Cpu);
    Vec sum = s.real() ? Vec(s.size()) : Vec();
    const float inv_n = 1.0f / static_cast<float>(s.workers());
    for (int64_t t = 0; t < s.sync_steps(); ++t) {
      // Gradients are summed in rank order whatever their arrival order: bitwise reproducible.
      std::vector<Message> grads(s.workers());
      for (int i = 0; i < s.workers(); ++i) {
        Message m = s.recv(kGradient);
        grads[m.src] = std::move(m);
      }
      if (s.real()) {
        std::vector<ConstVecView> parts;
        for (const auto& m : grads) parts.push_back(m.data.view());
        engine::ops::sum_scaled(sum.view(), parts, inv_n);  // (1/N) Σ_i g_i, in rank order
        sgd.step(s.global_range(), sum.view());
      }
      grads.clear();
      s.update_cost(s.workers());
      s.committed();
      const auto W = s.snapshot();
      std::vector<Pending> sends;
      for (int i = 0; i < s.workers(); ++i)
        sends.push_back(s.send_to_worker(i, {.tag = kParams, .step = t + 1, .data = Payload::whole(W, s.size())}));
      for (auto& p : sends) p.wait();
    }
  }

 private:
  engine::SgdConfig opt_;
};

}  // namespace

AlgorithmInfo ssgd_info() {
  const engine::SgdConfig d{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.0, .nesterov = false};
  return {"ssgd", "synchronous SGD (BSP) on a parameter server: N gradients averaged, one step, workers pull",
          sgd_param_docs(d), [d](ObjectReader& r) -> std::unique_ptr<Algorithm> {
            r.choice("comm", {"ps"}, "ps");
            return std::make_unique<Ssgd>(read_sgd(r, d));
          }};
}

}  // namespace dtsim::algo
