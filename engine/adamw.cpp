#include "engine/adamw.hpp"

#include <cmath>
#include <string>

#include "common/error.hpp"
#include "engine/parallel.hpp"
#include "engine/cuda/cuda.hpp"

namespace dtsim::engine {

AdamW::AdamW(AdamWConfig cfg, size_t n, Device d) : cfg_(cfg), m_(n, d), v_(n, d) {}

void AdamW::step(VecView w, ConstVecView g) {
  if (w.size != g.size || w.size != m_.size())
    throw RuntimeError("AdamW::step: weights (" + std::to_string(w.size) + "), gradient (" + std::to_string(g.size) +
                       ") and state (" + std::to_string(m_.size()) + ") sizes differ");
  const bool cuda = w.device == Device::Cuda;
  if ((cuda && (g.device != Device::Cuda || m_.device() != Device::Cuda)) ||
      (!cuda && (!is_host(g.device) || !is_host(m_.device()))))
    throw RuntimeError("AdamW::step: weights, gradient and moments must be on one device (" +
                       std::string(device_name(w.device)) + ", " + device_name(g.device) + ", " +
                       device_name(m_.device()) + ")");
  ++t_;
  // The scalars as torch.optim.AdamW makes them: in double (Python floats), rounded once to the
  // tensors' float. 1 - 0.999 taken in float is 0.00099998713 (1.3e-5 off), a bias in every
  // second moment (tests/sim/test_alg_allreduce.cpp, "AdamW matches PyTorch's").
  const float b1 = static_cast<float>(cfg_.beta1), b2 = static_cast<float>(cfg_.beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - cfg_.beta1), one_minus_b2 = static_cast<float>(1.0 - cfg_.beta2);
  const float decay = static_cast<float>(1.0 - cfg_.lr * cfg_.weight_decay);
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(cfg_.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float eps = static_cast<float>(cfg_.eps);
  if (cuda)
    return cuda::adamw_step(w, g, m_.data(), v_.data(), decay, b1, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps);
  float* pw = w.ptr;
  const float* pg = g.ptr;
  float* pm = m_.data();
  float* pv = v_.data();
  // Element-wise: cut across a run's compute pool (engine/parallel.hpp), the bits unchanged.
  parallel_elementwise(w.size, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      pw[i] *= decay;
      pm[i] = b1 * pm[i] + one_minus_b1 * pg[i];
      pv[i] = b2 * pv[i] + one_minus_b2 * pg[i] * pg[i];
      pw[i] -= step_size * pm[i] / (std::sqrt(pv[i]) / bc2_sqrt + eps);
    }
  });
}

}  // namespace dtsim::engine
