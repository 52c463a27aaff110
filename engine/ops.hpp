// Vector ops used by optimizers and algorithms (server averaging, model merges, stale copies).
// They dispatch on the views' device; on the host they are plain, deterministic loops
// (fixed summation order), so results never depend on threads or scheduling.
#pragma once
#include <vector>

#include "engine/vec.hpp"

namespace dtsim::engine::ops {

void copy(VecView dst, ConstVecView src);              // dst = src
void fill(VecView dst, float value);                   // dst = value
void scale(VecView y, float a);                        // y *= a
void axpy(VecView y, float a, ConstVecView x);         // y += a*x
void axpby(VecView y, float a, ConstVecView x, float b);  // y = a*x + b*y
void sub(VecView out, ConstVecView a, ConstVecView b);   // out = a - b
void add(VecView y, ConstVecView x);                   // y += x
// out = scale * (xs[0] + xs[1] + ... + xs[n-1]), accumulated left to right in float (the same
// bits as a copy followed by adds and a scale), in cache-sized blocks: one pass over the inputs.
// With `weights`, out = Σ_i weights[i] * xs[i] (left to right; no scale).
void sum_scaled(VecView out, const std::vector<ConstVecView>& xs, float scale);
void weighted_sum(VecView out, const std::vector<ConstVecView>& xs, const std::vector<float>& weights);
double dot(ConstVecView a, ConstVecView b);            // in double
double sum_squares(ConstVecView a);                    // in double
bool all_finite(ConstVecView a);
// Copies to a host std::vector (for tests, .npy output and checksums).
void to_host(ConstVecView src, float* dst);

}  // namespace dtsim::engine::ops
