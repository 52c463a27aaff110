#include "engine/layer_timer.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include "common/error.hpp"
#include "engine/model.hpp"

namespace dtsim::engine {

LayerClock::LayerClock(size_t layers, bool thread_cpu) : thread_cpu_(thread_cpu), fwd_(layers, 0.0), bwd_(layers, 0.0) {}

double LayerClock::now() const {
  if (thread_cpu_) return thread_cpu_seconds();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void LayerClock::begin(Pass) { last_ = now(); }

void LayerClock::lap(Pass pass, size_t layer) {
  const double t = now();
  std::vector<double>& v = pass == Pass::Forward ? fwd_ : bwd_;
  if (layer >= v.size())
    throw RuntimeError("layer timer: layer " + std::to_string(layer) + " of a timer for " + std::to_string(v.size()) +
                       " layers");
  v[layer] += t - last_;
  last_ = t;
}

void LayerClock::clear() {
  std::fill(fwd_.begin(), fwd_.end(), 0.0);
  std::fill(bwd_.begin(), bwd_.end(), 0.0);
}

}  // namespace dtsim::engine
