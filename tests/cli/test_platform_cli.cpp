// dtsim validate on the platform library (platforms/*.json) and its one-screen summary with
// --route (issue 5).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "helpers.hpp"

namespace test_platform_cli_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

// A config that uses `platform` (a path) with a tiny synthetic run.
std::string config_for(const fs::path& dir, const std::string& platform) {
  const fs::path f = dir / "cfg.json";
  std::ofstream(f) << R"({"name": "v", "platform": ")" + platform +
                          R"(", "model": {"kind": "mlp", "hidden": [8]}, "dataset": {"kind": "synthetic", "train": 256, "test": 64},
                          "algorithm": {"name": "ssgd"}, "training": {"batch_size": 8, "samples": 256}})";
  return f.string();
}

}  // namespace

TEST_CASE("platform library: every platforms/*.json validates and routes worker-0 to its last worker") {
  Scratch s;
  int n = 0;
  for (const auto& e : fs::directory_iterator(DTSIM_SOURCE_DIR "/platforms")) {
    if (e.path().extension() != ".json") continue;
    CAPTURE(e.path().string());
    ++n;
    const Result r = dtsim("validate " + config_for(s.dir, e.path().string()) + " --route worker-0,worker-7");
    CAPTURE(r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find(": valid") != std::string::npos);
    CHECK(r.out.find("bisection") != std::string::npos);
    CHECK(r.out.find("route       worker-0 -> worker-7") != std::string::npos);
    CHECK(r.out.find("worker-7-nic_DOWN") != std::string::npos);
  }
  CHECK(n >= 11);
}

TEST_CASE("validate: summary of a 2-rack 4:1 platform names hosts, bisection and the cross-rack route") {
  Scratch s;
  const Result r = dtsim("validate " + config_for(s.dir, DTSIM_SOURCE_DIR "/platforms/racks-2x8-4to1.json") +
                         " --route worker-0,worker-15 --route worker-0,worker-1");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CAPTURE(r.out);
  CHECK(r.out.find("racks, 2 racks, uplinks 4:1 oversubscribed, spine 100 Gb/s") != std::string::npos);
  CHECK(r.out.find("16 x 10 Tflop/s") != std::string::npos);
  CHECK(r.out.find("2 shard(s) co-located on worker hosts (worker-0, worker-8)") != std::string::npos);
  CHECK(r.out.find("bisection   20 Gb/s") != std::string::npos);
  CHECK(r.out.find("worker-0 -> worker-15: 5 links, latency 25 us") != std::string::npos);
  CHECK(r.out.find("rack-0-uplink_UP") != std::string::npos);
  CHECK(r.out.find("worker-0 -> worker-1: 2 links, latency 20 us") != std::string::npos);
}

}  // namespace test_platform_cli_cpp
