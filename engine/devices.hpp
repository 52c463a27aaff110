// The device catalog (traces/devices.json, kept identical by a test): accelerators a platform can
// name as a host speed ("speed": "v100"), with their peak fp32 rate from the vendor's spec sheet
// and an efficiency factor: the share of that peak a CNN training step sustains in fp32 (no TF32).
// A host named by device computes at peak_fp32 * efficiency flop/s. See docs/engine.md.
#pragma once
#include <string>
#include <vector>

namespace dtsim::engine {

struct DeviceSpec {
  std::string name;         // lookup key (case-insensitive), e.g. "v100"
  std::string description;  // e.g. "NVIDIA Tesla V100 SXM2"
  double peak_fp32 = 0;     // flop/s, vendor spec sheet (boost clock)
  double efficiency = 0;    // sustained share of the peak in fp32 CNN training
  std::string source;       // where the two numbers come from
  double speed() const { return peak_fp32 * efficiency; }
};

const std::vector<DeviceSpec>& device_catalog();
// Case-insensitive; null when unknown.
const DeviceSpec* find_device(const std::string& name);
std::vector<std::string> device_names();

}  // namespace dtsim::engine
