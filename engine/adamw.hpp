// AdamW over flat buffers (DiLoCo's and DaSGD's inner optimizer), in PyTorch's form
// (torch.optim.AdamW, amsgrad off, maximize off), float32 like PyTorch's CPU kernels:
//   w -= lr*wd*w                                   (decoupled weight decay)
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//   w -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
// Every device: on cuda the same float operations run in a kernel (cuda::adamw_step), rounded as
// here, so a step gives the host's bits.
#pragma once
#include <cstdint>

#include "engine/vec.hpp"

namespace dtsim::engine {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

class AdamW {
 public:
  AdamW(AdamWConfig cfg, size_t n, Device d);
  void step(VecView w, ConstVecView g);
  const AdamWConfig& config() const { return cfg_; }
  // The learning rate of the following steps (a schedule changes it between steps, as PyTorch's
  // schedulers change the param group's lr; decoupled decay uses it too).
  void set_lr(double lr) { cfg_.lr = lr; }
  int64_t steps() const { return t_; }
  // Checkpoint and resume: the moments (empty when n = 0) and the step count.
  Vec& first_moment() { return m_; }
  Vec& second_moment() { return v_; }
  const Vec& first_moment() const { return m_; }
  const Vec& second_moment() const { return v_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  Vec m_, v_;
  int64_t t_ = 0;
};

}  // namespace dtsim::engine
