// Vectorisable float exp and tanh for the cpu paths of the transformer layers (softmax, GELU):
// no calls and no branches, so GCC turns the loops that use them into SIMD code, where std::exp
// and std::tanh would run one element at a time. Cephes' expf polynomial after range reduction
// x = n ln2 + r (|r| <= ln2 / 2), 2^n through the exponent bits: relative error below 1e-7 on
// [-80, 80], 8e-6 at the clamps (inputs outside [-87, 88] are clamped: exp(-87) = 1.6e-38 stands
// for 0 in a softmax). The reference
// backend keeps std::exp / std::tanh in double; tests compare the two.
#pragma once
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace dtsim::engine::fast {

inline float exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  // Round x / ln2 to the nearest integer with the 1.5 * 2^23 trick (default rounding mode).
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const int32_t ni = std::bit_cast<int32_t>(shifted) - 0x4B400000;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((ni + 127) << 23);
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); |u| > 9 is +-1 to float precision.
inline float tanh(float u) {
  u = std::min(std::max(u, -9.0f), 9.0f);
  return 1.0f - 2.0f / (fast::exp(2.0f * u) + 1.0f);
}

// Sum of n floats with 8 independent partial sums (vectorisable; a fixed order for a given n).
inline float sum(const float* x, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) acc[j] += x[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += x[i];
  return s;
}

// Dot product of n floats, the same way.
inline float dot(const float* a, const float* b, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace dtsim::engine::fast
