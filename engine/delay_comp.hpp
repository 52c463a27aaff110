// Delay compensation (DC-ASGD, Zheng et al., arXiv 1609.08326): a gradient g computed at stale
// weights w_bak is corrected towards the current weights w with a cheap diagonal Hessian estimate,
//   u = g + lambda_eff (.) g (.) g (.) (w - w_bak)
// where lambda_eff = lambda (constant, "DC-ASGD-c") or lambda / sqrt(MS) with the running mean
// square MS <- m*MS + (1-m)*g*g + 1e-7 updated first ("DC-ASGD-a", MXNet's ms_update/adc_sgd_update
// as used by OD-SGD's CADCASGD). The caller then takes an ordinary optimizer step with u.
// Host devices only (no CUDA kernel yet).
#pragma once
#include "engine/vec.hpp"

namespace dtsim::engine {

struct DelayCompConfig {
  double lambda = 0.04;
  bool adaptive = false;
  double mean_square = 0.95;  // m, the decay of MS (adaptive only)
};

class DelayCompensation {
 public:
  DelayCompensation(DelayCompConfig cfg, size_t n, Device d);
  // u = g + lambda_eff*g*g*(w - w_bak); updates MS first when adaptive. u may alias g.
  void apply(VecView u, ConstVecView g, ConstVecView w, ConstVecView w_bak);
  const DelayCompConfig& config() const { return cfg_; }
  // The running mean square MS (adaptive; empty otherwise): state to save and restore.
  Vec& mean_square() { return ms_; }
  const Vec& mean_square() const { return ms_; }

 private:
  DelayCompConfig cfg_;
  Vec ms_;
};

}  // namespace dtsim::engine
