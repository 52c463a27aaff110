// Gradient-norm clipping, for algorithms whose papers use it (option `clip_grad_norm`).
//
// PyTorch's torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2): with the total L2 norm
// ||g|| of the gradient, g *= min(1, max_norm / (||g|| + 1e-6)). The norm is accumulated in double
// (PyTorch: float32 per tensor), so results may differ from PyTorch in the last bits.
// Where to clip is the algorithm's choice: a worker clipping its own gradient before sending it is
// independent of the sharding; clipping the averaged gradient (DDP's usual place) needs the norm of
// the whole vector, not of one parameter-server shard.
#pragma once
#include <cmath>

#include "algorithms/api.hpp"
#include "engine/ops.hpp"

namespace dtsim::algo {

// Clips `g` in place to L2 norm `max_norm` (max_norm <= 0: no clipping). Returns the norm before
// clipping (NaN/Inf gradients are left as they are: the runtime reports the divergence).
inline double clip_grad_norm(VecView g, double max_norm) {
  if (g.size == 0) return 0;
  const double norm = std::sqrt(engine::ops::sum_squares(g));
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) engine::ops::scale(g, static_cast<float>(coef));
  }
  return norm;
}

// Reads the optional `clip_grad_norm` key of an algorithm section (0 = off, the default).
inline double read_clip_grad_norm(ObjectReader& r) {
  const double v = r.number("clip_grad_norm", 0.0);
  r.require_non_negative("clip_grad_norm", v);
  return v;
}

inline ParamDoc clip_grad_norm_doc() {
  return {"clip_grad_norm", "0", "clip each minibatch gradient to this L2 norm on its worker (0: off; PyTorch clip_grad_norm_)"};
}

}  // namespace dtsim::algo
