// 4-bit floating-point quantisation of communicated vectors (Streaming DiLoCo's outer gradients).
//
// Format "E3M0 + scale": each element is sign x 2^-k x s with k in 0..6, or 0 (the eighth
// exponent code), where s = max|x| over the quantised range is one fp32 scale per range. Values
// are rounded to the nearest representable magnitude (ties towards the larger one); values below
// s*2^-7 flush to 0. Quantisation happens in place, so the receiver sees exactly what was sent;
// accumulation stays in fp32. Host devices only.
#pragma once
#include "engine/vec.hpp"

namespace dtsim::engine {

// Quantises x in place; returns the scale s used (0 for an all-zero range).
float quantize_e3m0(VecView x);

}  // namespace dtsim::engine
