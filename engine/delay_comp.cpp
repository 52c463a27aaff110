#include "engine/delay_comp.hpp"

#include <cmath>
#include <string>

#include "common/error.hpp"
#include "engine/parallel.hpp"

namespace dtsim::engine {

DelayCompensation::DelayCompensation(DelayCompConfig cfg, size_t n, Device d) : cfg_(cfg) {
  if (cfg_.adaptive) ms_ = Vec(n, d);
}

void DelayCompensation::apply(VecView u, ConstVecView g, ConstVecView w, ConstVecView w_bak) {
  const size_t n = u.size;
  if (g.size != n || w.size != n || w_bak.size != n || (cfg_.adaptive && ms_.size() != n))
    throw RuntimeError("DelayCompensation::apply: buffer sizes differ (" + std::to_string(n) + ", " +
                       std::to_string(g.size) + ", " + std::to_string(w.size) + ", " + std::to_string(w_bak.size) + ")");
  if (!is_host(u.device) || !is_host(g.device) || !is_host(w.device) || !is_host(w_bak.device))
    throw RuntimeError("DelayCompensation::apply: host buffers only (no CUDA kernel yet)");
  const float lam = static_cast<float>(cfg_.lambda);
  float* pu = u.ptr;
  const float *pg = g.ptr, *pw = w.ptr, *pb = w_bak.ptr;
  // Element-wise: cut across a run's compute pool (engine/parallel.hpp), the bits unchanged.
  if (!cfg_.adaptive) {
    parallel_elementwise(n, [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) pu[i] = pg[i] + lam * pg[i] * pg[i] * (pw[i] - pb[i]);
    });
    return;
  }
  const float m = static_cast<float>(cfg_.mean_square);
  float* ms = ms_.data();
  parallel_elementwise(n, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const float gi = pg[i];
      ms[i] = m * ms[i] + (1.0f - m) * gi * gi + 1e-7f;
      pu[i] = gi + lam / std::sqrt(ms[i]) * gi * gi * (pw[i] - pb[i]);
    }
  });
}

}  // namespace dtsim::engine
