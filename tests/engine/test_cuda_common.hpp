// Shared by the CUDA tests (tests/engine/test_cuda*.cpp): the skip rule and host <-> device helpers.
//
// Skip rule: without a usable device (no backend built, no driver, no GPU) a CUDA test case exits
// with code 77 — ctest's SKIP_RETURN_CODE (tests/CMakeLists.txt) — when ctest runs it alone
// (`--test-case=NAME` without wildcards, one process per test case); otherwise (the whole binary,
// or a wildcard filter) it returns early with a MESSAGE so the other test cases still run.
#pragma once
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/cuda/cuda.hpp"
#include "engine/ops.hpp"
#include "engine/vec.hpp"

namespace dtsim::engine::test {

inline bool running_one_test_case() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  while (pos < cmd.size()) {
    const std::string arg = cmd.substr(pos, cmd.find('\0', pos) - pos);
    // ctest's form (doctest_discover_tests): --test-case=<exact name>, no wildcards.
    if (arg.rfind("--test-case=", 0) == 0 && arg.find_first_of("*?") == std::string::npos) return true;
    pos += arg.size() + 1;
  }
  return false;
}

// True when CUDA tests can run; otherwise skips (see above) and returns false.
inline bool cuda_or_skip() {
  if (cuda::available()) return true;
  const std::string why = cuda::unavailable_reason();
  if (running_one_test_case()) {
    std::printf("SKIPPED (exit 77): no CUDA device: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
  }
  MESSAGE("skipped, no CUDA device: " << why);
  return false;
}
#define DTSIM_REQUIRE_CUDA() \
  if (!::dtsim::engine::test::cuda_or_skip()) return

inline Vec to_device(const std::vector<float>& h) {
  Vec v(h.size(), Device::Cuda);
  ops::copy(v.view(), ConstVecView(h.data(), h.size(), Device::Cpu));
  return v;
}

inline std::vector<float> to_host(const Vec& v) {
  std::vector<float> h(v.size());
  ops::to_host(v.view(), h.data());
  return h;
}

inline std::vector<float> to_host(const float* device_ptr, size_t n) {
  std::vector<float> h(n);
  ops::to_host(ConstVecView(device_ptr, n, Device::Cuda), h.data());
  return h;
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  return true;
}

}  // namespace dtsim::engine::test
