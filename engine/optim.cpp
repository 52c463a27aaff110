#include "engine/optim.hpp"

#include <string>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/parallel.hpp"

namespace dtsim::engine {

Sgd::Sgd(SgdConfig cfg, size_t n, Device d) : cfg_(cfg) {
  if (cfg_.momentum != 0.0) v_ = Vec(n, d);
  else if (d == Device::Cuda && !cuda::built()) throw RuntimeError("Sgd: CUDA backend not built");
}

void Sgd::step(VecView w, ConstVecView g) { step(w, g, cfg_.lr); }

// PyTorch's torch.optim.SGD (foreach=False) with dampening 0, in float32 like PyTorch's CPU kernels:
//   g' = g + wd*w;  v = mu*v + g' (v = g' on the first step);  w -= lr * (nesterov ? g' + mu*v : v)
void Sgd::step(VecView w, ConstVecView g, double lr) {
  if (w.size != g.size)
    throw RuntimeError("Sgd::step: weights (" + std::to_string(w.size) + ") and gradient (" +
                       std::to_string(g.size) + ") sizes differ");
  if (w.device == Device::Cuda || g.device == Device::Cuda) {  // engine/cuda: the same update in a kernel
    if (cfg_.momentum != 0.0 && v_.size() != w.size)
      throw RuntimeError("Sgd::step: optimizer state holds " + std::to_string(v_.size()) + " floats, step got " +
                         std::to_string(w.size));
    if (cfg_.momentum != 0.0 && v_.device() != Device::Cuda) {  // state follows the weights' device
      Vec moved(v_.size(), Device::Cuda);
      if (!first_) cuda::copy(moved.data(), Device::Cuda, v_.data(), v_.device(), v_.size());
      v_ = std::move(moved);
    }
    cuda::sgd_step(w, g, v_.data(), static_cast<float>(lr), static_cast<float>(cfg_.weight_decay),
                   static_cast<float>(cfg_.momentum), cfg_.nesterov, first_);
    if (cfg_.momentum != 0.0) first_ = false;
    return;
  }
  if (!is_host(w.device) || !is_host(g.device) || !is_host(v_.device()))
    throw RuntimeError("Sgd::step: weights, gradient and optimizer state must be on one device");
  const float lrf = static_cast<float>(lr);
  const float wd = static_cast<float>(cfg_.weight_decay);
  const float mu = static_cast<float>(cfg_.momentum);
  const size_t n = w.size;
  if (cfg_.momentum != 0.0 && v_.size() != n)
    throw RuntimeError("Sgd::step: optimizer state holds " + std::to_string(v_.size()) + " floats, step got " +
                       std::to_string(n));
  // Element-wise: each element's update reads only its own w, g and v (engine/parallel.hpp).
  const bool first = first_, nesterov = cfg_.nesterov, plain = cfg_.momentum == 0.0;
  parallel_elementwise(n, [&](size_t lo, size_t hi) {
    float* pw = w.ptr + lo;
    const float* pg = g.ptr + lo;
    const size_t m = hi - lo;
    if (plain) {
      if (wd != 0.0f)
        for (size_t i = 0; i < m; ++i) pw[i] -= lrf * (pg[i] + wd * pw[i]);
      else
        for (size_t i = 0; i < m; ++i) pw[i] -= lrf * pg[i];
      return;
    }
    float* pv = v_.data() + lo;
    if (first)
      for (size_t i = 0; i < m; ++i) pv[i] = pg[i] + wd * pw[i];
    else
      for (size_t i = 0; i < m; ++i) pv[i] = mu * pv[i] + (pg[i] + wd * pw[i]);
    if (nesterov)
      for (size_t i = 0; i < m; ++i) pw[i] -= lrf * ((pg[i] + wd * pw[i]) + mu * pv[i]);
    else
      for (size_t i = 0; i < m; ++i) pw[i] -= lrf * pv[i];
  });
  if (!plain) first_ = false;
}

}  // namespace dtsim::engine
