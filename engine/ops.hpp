// Vector ops used by optimizers and algorithms (server averaging, model merges, stale copies).
// They dispatch on the views' device; on the host they are plain, deterministic loops
// (fixed summation order), so results never depend on threads or scheduling. copy, sum_scaled
// and weighted_sum cut large host passes across the compute pool in scope (engine/parallel.hpp).
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
// out = (xs[0] + xs[1] + ... + xs[n-1]) * scale, added left to right in float: the same bits as
// copy(out, xs[0]), add(out, xs[i]) for each later i, scale(out, scale), in one streaming pass over
// the inputs (8 at a time). Host only; `out` must not overlap an input.
void sum_scaled(VecView out, const std::vector<ConstVecView>& xs, float scale);
// out = weights[0]*xs[0] + weights[1]*xs[1] + ..., left to right in float, in the same streaming
// passes (the all-reduce's weighted mean, sim/run_state.cpp). Host only; no overlap.
void weighted_sum(VecView out, const std::vector<ConstVecView>& xs, const std::vector<float>& weights);
double dot(ConstVecView a, ConstVecView b);            // in double
double sum_squares(ConstVecView a);                    // in double
bool all_finite(ConstVecView a);
// Copies to a host std::vector (for tests, .npy output and checksums).
void to_host(ConstVecView src, float* dst);

}  // namespace dtsim::engine::ops
