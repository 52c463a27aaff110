#include "engine/quantize.hpp"

#include <cmath>

#include "common/error.hpp"

namespace dtsim::engine {

float quantize_e3m0(VecView x) {
  if (!is_host(x.device)) throw RuntimeError("quantize_e3m0: host buffers only (no CUDA kernel yet)");
  float s = 0;
  for (size_t i = 0; i < x.size; ++i) s = std::fmax(s, std::fabs(x.ptr[i]));
  if (s == 0 || !std::isfinite(s)) return s;
  // Magnitude levels s*2^-k, k = 0..6; midpoints between neighbours decide the rounding.
  for (size_t i = 0; i < x.size; ++i) {
    const float a = std::fabs(x.ptr[i]);
    float q = 0;
    float level = s;
    for (int k = 0; k < 7; ++k, level *= 0.5f) {
      const float lower = k < 6 ? level * 0.5f : 0.0f;  // next level down (0 after the last)
      if (a >= (level + lower) * 0.5f) {
        q = level;
        break;
      }
    }
    x.ptr[i] = std::copysign(q, x.ptr[i]);
  }
  return s;
}

}  // namespace dtsim::engine
