// Issue 16, items 3-5 through the real binary: warnings on stderr from `dtsim run` and
// `dtsim validate` and in summary.json; validate refuses what run refuses before simulating; a
// host beyond the platform names the valid range; implausible plain numbers.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/helpers.hpp"

namespace test_preflight_cli_cpp {  // one namespace per test file: the test targets are unity builds

using namespace clitest;

namespace {

// 8 workers x batch 16, 1280 samples: 10 synchronous steps.
std::string config(const std::string& algorithm, const std::string& topology = R"({"kind": "star"})") {
  return R"({"name": "pre", "seed": 1,
    "platform": {"network": {"model": "exact"}, "topology": )" + topology + R"(,
      "workers": {"count": 8, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}},
      "servers": {"count": 1}},
    "model": {"kind": "mlp", "hidden": [16]},
    "dataset": {"kind": "synthetic", "train": 640, "test": 64, "features": 16, "classes": 4},
    "algorithm": )" + algorithm + R"(,
    "training": {"batch_size": 16, "samples": 1280, "eval_every_samples": 0},
    "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.001}},
    "output": {"trace": false}})";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("an OD-SGD warm-up that swallows the run: a warning from validate and run, and in summary.json") {
  Scratch s;
  const std::string cfg = s.write("od.json", config(R"({"name": "od-sgd"})"));  // warm-up 200 > 10 steps
  const Result v = dtsim("validate " + cfg);
  CAPTURE(v.err);
  CHECK(v.code == 0);
  CHECK(v.out.find("od.json: valid (1 warning)") != std::string::npos);
  CHECK(count(v.err, "warning: ") == 1);
  CHECK(v.err.find("warning: " + cfg + ": algorithm.warmup_steps: 200 is at least the run's 10 steps") != std::string::npos);

  const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CHECK(count(r.err, "warning: ") == 1);  // also with --quiet
  CHECK(r.err.find("algorithm.warmup_steps") != std::string::npos);
  const auto summary = nlohmann::json::parse(slurp(s.dir / "out" / "summary.json"));
  REQUIRE(summary["warnings"].size() == 1);
  CHECK(summary["warnings"][0].get<std::string>().find("algorithm.warmup_steps: 200 is at least") != std::string::npos);

  // No warning: nothing on stderr, an empty list.
  const std::string ok = s.write("ok.json", config(R"({"name": "od-sgd", "warmup_steps": 2})"));
  const Result v2 = dtsim("validate " + ok);
  CHECK(v2.code == 0);
  CHECK(v2.err.find("warning") == std::string::npos);
  CHECK(v2.out.find("ok.json: valid\n") != std::string::npos);
}

TEST_CASE("validate refuses what run refuses before simulating: 100,000 real-mode ResNet-18 workers") {
  Scratch s;
  const std::string cfg = s.write("big.json", R"({"name": "big",
    "platform": {"workers": {"count": 4}, "servers": {"count": 1}},
    "model": {"kind": "resnet18"},
    "dataset": {"kind": "synthetic", "train": 256, "test": 64, "shape": [3, 32, 32], "classes": 10},
    "algorithm": {"name": "ssgd"}, "training": {"batch_size": 32, "samples": 2560}})");
  CHECK(dtsim("validate " + cfg).code == 0);
  for (const char* cmd : {"validate", "run"}) {
    CAPTURE(cmd);
    const Result r = dtsim(std::string(cmd) + " " + cfg + " --set platform.workers.count=100000 --out " + (s.dir / "out").string());
    CAPTURE(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("error: " + cfg + ": platform.workers.count: this run needs about") != std::string::npos);
  }
}

TEST_CASE("validate --route with a host beyond the platform names the valid range") {
  Scratch s;
  const std::string cfg = s.write("c.json", config(R"({"name": "ssgd"})"));
  const Result r = dtsim("validate " + cfg + " --route worker-9,server-0");
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("--route: unknown host 'worker-9'; hosts are worker-0..worker-7 and server-0") != std::string::npos);
  CHECK(r.err.find("did you mean") == std::string::npos);
}

TEST_CASE("a plain-number bandwidth or latency that looks like a forgotten unit is a warning naming the path and the unit") {
  Scratch s;
  const std::string cfg = s.write("u.json", config(R"({"name": "ssgd"})", R"({"kind": "star", "backbone": {"bandwidth": 10, "latency": 10}})"));
  const Result r = dtsim("validate " + cfg);
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("warning: " + cfg + ": platform.topology.backbone.bandwidth: 10 without a unit is taken as 10 bytes/s (80 b/s)") !=
        std::string::npos);
  CHECK(r.err.find("platform.topology.backbone.latency: 10 without a unit is taken as 10 seconds") != std::string::npos);
  CHECK(r.out.find("valid (2 warnings)") != std::string::npos);
}

}  // namespace test_preflight_cli_cpp
