// FNV-1a, 64 bits: a small, portable string hash (unlike std::hash, the same on every platform
// and standard library). Used wherever a name or a byte string keys something that must not
// change between machines: random draws keyed by a host or link name (sim/failures.cpp,
// sim/stragglers.cpp), checkpoint and config hashes (sim/checkpoint.cpp), sweep directory names
// (tools/dtsim/sweep.cpp). Constants: offset basis 14695981039346656037, prime 1099511628211
// (Fowler, Noll, Vo; the 64-bit FNV parameters).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dtsim {

inline constexpr uint64_t kFnv1aOffsetBasis = 14695981039346656037ull;
inline constexpr uint64_t kFnv1aPrime = 1099511628211ull;

// Hash of `n` bytes at `p`, continuing from `h` (pass a previous result to hash several parts as one).
inline uint64_t fnv1a_bytes(const void* p, size_t n, uint64_t h = kFnv1aOffsetBasis) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * kFnv1aPrime;
  return h;
}

constexpr uint64_t fnv1a(std::string_view s, uint64_t h = kFnv1aOffsetBasis) {
  for (unsigned char c : s) h = (h ^ c) * kFnv1aPrime;
  return h;
}

}  // namespace dtsim
