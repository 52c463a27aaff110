// Optimizers over flat buffers (or any contiguous range of one, e.g. a PS shard).
#pragma once
#include "engine/schedule.hpp"
#include "engine/vec.hpp"

namespace dtsim::engine {

struct SgdConfig {
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  // The learning rate over training (engine/schedule.hpp); constant `lr` by default. Sgd::step
  // never reads it: callers that track progress pass lr_at(epoch, total) to step().
  LrSchedule schedule{};
};

// SGD with momentum in PyTorch's form (dampening 0):
//   g' = g + wd*w;  v = mu*v + g' (v = g' on the first step);  w -= lr * (nesterov ? g' + mu*v : v)
// With momentum 0 no state is allocated and the step is w -= lr * g'.
class Sgd {
 public:
  Sgd(SgdConfig cfg, size_t n, Device d);
  void step(VecView w, ConstVecView g);          // uses cfg.lr
  void step(VecView w, ConstVecView g, double lr);
  const SgdConfig& config() const { return cfg_; }
  // The scheduled learning rate at `epoch` (fractional) of a run of `total_epochs`.
  double lr_at(double epoch, double total_epochs) const { return cfg_.schedule.lr(cfg_.lr, epoch, total_epochs); }
  const Vec& momentum_buffer() const { return v_; }
  // Checkpoint and resume: the momentum buffer (empty with momentum 0) and whether the next step
  // is the first one (v = g').
  Vec& momentum_buffer() { return v_; }
  bool first_step() const { return first_; }
  void set_first_step(bool first) { first_ = first; }

 private:
  SgdConfig cfg_;
  Vec v_;
  bool first_ = true;
};

}  // namespace dtsim::engine
