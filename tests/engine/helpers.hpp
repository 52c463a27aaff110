// Shared helpers for the engine tests (header-only; each test file includes it).
#pragma once
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "common/rng.hpp"
#include "engine/model.hpp"

namespace dtsim::engine::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("dtsim_engine_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// An MLP built through make_model from a JSON spec, as the config layer does.
inline std::unique_ptr<Model> make_mlp(const std::vector<int>& hidden, SampleShape in, int classes, Device d,
                                       int threads = 1) {
  const json spec = {{"kind", "mlp"}, {"hidden", hidden}};
  ObjectReader r(spec, JsonOrigin{"test.json", "model"});
  auto m = make_model(r, in, classes, ComputeOptions{d, threads});
  r.finish();
  return m;
}

inline std::vector<float> random_floats(size_t n, uint64_t key, float lo = -1.0f, float hi = 1.0f) {
  Rng rng(12345, Stream::Algorithm, {key});
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

inline Batch random_batch(size_t n, SampleShape shape, int classes, uint64_t key) {
  Batch b;
  b.shape = shape;
  b.x = random_floats(n * shape.size(), key, 0.0f, 1.0f);
  Rng rng(777, Stream::Algorithm, {key});
  b.y.resize(n);
  for (auto& y : b.y) y = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return b;
}

// max |a - b| / max |b| (0 when both are all zero).
inline double max_rel_diff(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return den > 0 ? num / den : num;
}

}  // namespace dtsim::engine::test
