#include "engine/devices.hpp"

#include <algorithm>
#include <cctype>

namespace dtsim::engine {

// Peak fp32: NVIDIA spec sheets (boost clock, dense, no TF32). Efficiency: a public fp32
// ResNet-50 training throughput x 24.5 GFLOP per image (3 x 4.09 GMAC x 2) / peak where one is
// known; 0.5 (an assumption, to calibrate with `dtsim profile` on the real device) elsewhere.
// traces/devices.json holds the same table (tests/engine/test_devices.cpp checks it).
const std::vector<DeviceSpec>& device_catalog() {
  static const std::vector<DeviceSpec> c{
      {"gtx1080ti", "NVIDIA GeForce GTX 1080 Ti", 11.34e12, 0.43,
       "peak: NVIDIA GTX 1080 Ti spec (3584 cores x 1582 MHz x 2); efficiency: ~200 img/s fp32 ResNet-50 "
       "training (Lambda Labs GPU benchmarks)"},
      {"v100", "NVIDIA Tesla V100 SXM2", 15.7e12, 0.57,
       "peak: NVIDIA V100 datasheet (SXM2, 15.7 TFLOPS fp32); efficiency: ~367 img/s fp32 ResNet-50 v1.5 "
       "training (NVIDIA DeepLearningExamples, 1 x V100 16GB)"},
      {"v100-pcie", "NVIDIA Tesla V100 PCIe", 14.0e12, 0.57,
       "peak: NVIDIA V100 datasheet (PCIe, 14 TFLOPS fp32); efficiency: as v100"},
      {"a100", "NVIDIA A100 (SXM4 or PCIe)", 19.5e12, 0.5,
       "peak: NVIDIA A100 datasheet (19.5 TFLOPS fp32, TF32 off); efficiency: assumed"},
      {"h100", "NVIDIA H100 SXM5", 66.9e12, 0.5,
       "peak: NVIDIA H100 datasheet (SXM5, 67 TFLOPS fp32); efficiency: assumed"},
      {"h100-pcie", "NVIDIA H100 PCIe", 51.2e12, 0.5,
       "peak: NVIDIA H100 datasheet (PCIe, 51 TFLOPS fp32); efficiency: assumed"},
      {"h200", "NVIDIA H200 SXM", 66.9e12, 0.5,
       "peak: NVIDIA H200 datasheet (SXM, 67 TFLOPS fp32, the H100 SXM5 compute die); efficiency: assumed"},
  };
  return c;
}

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
}  // namespace

const DeviceSpec* find_device(const std::string& name) {
  const std::string n = lower(name);
  for (const DeviceSpec& d : device_catalog())
    if (d.name == n) return &d;
  return nullptr;
}

std::vector<std::string> device_names() {
  std::vector<std::string> out;
  for (const DeviceSpec& d : device_catalog()) out.push_back(d.name);
  return out;
}

}  // namespace dtsim::engine
