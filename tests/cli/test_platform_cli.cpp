// dtsim validate on the platform library (platforms/*.json) and its one-screen summary with
// --route (issue 5).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
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

TEST_CASE("validate: the summary's columns line up, also for a dragonfly's long link names") {
  Scratch s;
  const fs::path f = s.dir / "df.json";
  std::ofstream(f) << R"({"name": "df", "platform": {"topology": {"kind": "dragonfly", "groups": [3, 1], "chassis": [2, 1],
     "routers": [3, 1], "nodes": 2}, "workers": {"count": 16}},
   "model": {"kind": "mlp", "hidden": [8]}, "dataset": {"kind": "synthetic", "train": 256, "test": 64},
   "algorithm": {"name": "ssgd"}, "training": {"batch_size": 8, "samples": 256}})";
  const Result r = dtsim("validate " + f.string() + " --route worker-0,worker-15");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CAPTURE(r.out);
  std::istringstream in(r.out);
  std::string line;
  std::set<size_t> value_at, bandwidth_at;
  int link_rows = 0;
  while (std::getline(in, line)) {
    if (line.rfind("  ", 0) != 0) continue;  // the "valid" line
    if (line.rfind("    ", 0) == 0) {  // a link of the route: name, bandwidth, latency
      ++link_rows;
      bandwidth_at.insert(line.find("Gb/s"));
    } else {
      value_at.insert(line.find_first_not_of(' ', line.find(' ', 2)));  // after "  <key>"
    }
  }
  CHECK(link_rows == 7);
  CHECK(value_at.size() == 1);      // topology, workers, ..., route, training, estimate
  CHECK(bandwidth_at.size() == 1);  // the long green/blue link names did not push theirs right
}

}  // namespace test_platform_cli_cpp
