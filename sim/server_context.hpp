// A parameter-server shard's context (algo::Server): its range of the global model, immutable
// snapshots of it to send, the cost of its optimizer steps and the commits the runtime counts and
// evaluates; under per-tensor overlap, the synchronous step tensor by tensor. Internal to sim/.
#pragma once
#include <memory>
#include <vector>

#include "sim/node_context.hpp"

namespace dtsim::sim::detail {

class ServerCtx final : public NodeImpl<algo::Server> {
 public:
  ServerCtx(RunState& s, int shard)
      : NodeImpl(s, s.hosts.servers[static_cast<size_t>(shard)], s.server_inbox[static_cast<size_t>(shard)],
                 -(shard + 1), s.server_host_index[static_cast<size_t>(shard)]),
        shard_(shard) {}
  int shard() const override { return shard_; }
  engine::VecView global_range() override {
    return s_.real ? s_.global.view(offset(), size()) : engine::VecView{};
  }
  std::shared_ptr<const Vec> snapshot() override {
    if (!s_.real) return nullptr;
    std::shared_ptr<Vec> snap;
    for (auto& v : snapshots_)
      if (v.use_count() == 1) { snap = v; break; }
    if (!snap) {
      snapshots_.push_back(std::make_shared<Vec>(size(), s_.model->device()));
      snap = snapshots_.back();
    }
    engine::ops::copy(snap->view(), s_.global.view(offset(), size()));
    return snap;
  }
  void update_cost(int gradients) override {
    gradients *= s_.group;  // grouped: each message stands for `group` workers' (sim/grouping.hpp)
    work(static_cast<double>(size()) * (s_.x.platform.update_flops_per_param + std::max(0, gradients - 1)));
  }
  void committed() override { s_.committed(sg4::Engine::get_clock()); }
  // Per-tensor overlap: each tensor aggregated, updated and answered as its N pushes come in
  // (sim/server_context.cpp); otherwise algo::Server's whole-range step.
  void sync_step(int tag, int64_t reply_step, bool reply_model, engine::VecView mean, const std::function<void()>& apply) override;

 private:
  // The step's one real update: every shard's mean and optimizer step, then the model the replies carry.
  void apply_all(SyncStepState& st);

  int shard_;
  std::vector<std::shared_ptr<Vec>> snapshots_;
};

}  // namespace dtsim::sim::detail
