// The device catalog compiled into dtsim equals the documented traces/devices.json.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/json_reader.hpp"
#include "engine/devices.hpp"
#include "tests/rel.hpp"

namespace test_devices_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

TEST_CASE("traces/devices.json and the compiled device catalog are the same table") {
  std::ifstream in(std::string(DTSIM_SOURCE_DIR) + "/traces/devices.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const json doc = json::parse(ss.str());
  const auto& devs = doc.at("devices");
  REQUIRE(devs.size() == device_catalog().size());
  for (size_t i = 0; i < devs.size(); ++i) {
    const DeviceSpec& d = device_catalog()[i];
    CAPTURE(d.name);
    CHECK(devs[i].at("name") == d.name);
    CHECK(devs[i].at("description") == d.description);
    CHECK(devs[i].at("peak_fp32_flops").get<double>() == d.peak_fp32);
    CHECK(devs[i].at("efficiency").get<double>() == d.efficiency);
    CHECK(devs[i].at("speed_flops").get<double>() == dtsim_test::Rel(d.speed()).epsilon(1e-12));
    CHECK(devs[i].at("source") == d.source);
    CHECK(d.efficiency > 0);
    CHECK(d.efficiency <= 1);
  }
  // The five devices, and case-insensitive lookup.
  for (const char* n : {"gtx1080ti", "v100", "a100", "h100", "h200"}) CHECK(find_device(n) != nullptr);
  CHECK(find_device("V100") == find_device("v100"));
  CHECK(find_device("v10") == nullptr);
  CHECK(find_device("h100")->peak_fp32 == 66.9e12);
}

}  // namespace test_devices_cpp
