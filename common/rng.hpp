// Deterministic, portable random streams keyed by (seed, key...).
//
// A stream's output depends only on its key, never on the order in which actors run, so
// results cannot depend on event order by accident. The generators are our own (SplitMix64 +
// xoshiro256**) rather than std:: distributions, whose output differs between standard libraries.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace dtsim {

// Purposes, so two streams of the same worker never collide.
enum class Stream : uint64_t {
  DataOrder = 1,     // per-epoch permutation of the training set
  Init = 2,          // parameter initialisation
  Synthetic = 3,     // synthetic dataset generation
  Straggler = 4,     // random straggler draws
  Augment = 5,       // data augmentation
  Failure = 6,       // random failures
  Eval = 7,          // choice of the train-loss subset
  Algorithm = 8,     // algorithm-internal randomness
};

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes a seed and any number of keys into one 64-bit stream id.
inline uint64_t stream_key(uint64_t seed, std::initializer_list<uint64_t> keys) {
  uint64_t h = seed ^ 0x6A09E667F3BCC908ull;
  uint64_t s = splitmix64(h);
  for (uint64_t k : keys) {
    h ^= k + 0x9E3779B97F4A7C15ull + (s << 6) + (s >> 2);
    s = splitmix64(h);
  }
  return s;
}

class Rng {
 public:
  explicit Rng(uint64_t key) {
    uint64_t x = key;
    for (auto& w : s_) w = splitmix64(x);
  }
  Rng(uint64_t seed, Stream purpose, std::initializer_list<uint64_t> keys = {}) : Rng(mix(seed, purpose, keys)) {}

  uint64_t next_u64() {  // xoshiro256**
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Unbiased integer in [0, n) (Lemire's method).
  uint64_t below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
    uint64_t l = static_cast<uint64_t>(m);
    if (l < n) {
      const uint64_t t = -n % n;
      while (l < t) { m = static_cast<unsigned __int128>(next_u64()) * n; l = static_cast<uint64_t>(m); }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Standard normal (Box-Muller, no cached second value: the stream stays position-exact).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  double exponential(double rate) { return -std::log1p(-uniform()) / rate; }
  // Fisher-Yates.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  static uint64_t mix(uint64_t seed, Stream p, std::initializer_list<uint64_t> keys) {
    uint64_t h = stream_key(seed, {static_cast<uint64_t>(p)});
    for (uint64_t k : keys) h = stream_key(h, {k});
    return h;
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace dtsim
