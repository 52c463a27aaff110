// The shipped studies (examples/quickstart-study.json, examples/studies/, examples/papers/, examples/validation/) stay
// valid: every run of each passes the loader (`dtsim sweep --dry-run`). And the synthetic dataset's
// "shape" option that the timing-only CIFAR studies rely on.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "helpers.hpp"
#include <nlohmann/json.hpp>

namespace test_sweep_examples_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;
inline Result run(const std::string& args) { return dtsim(args); }

}  // namespace

TEST_CASE("shipped studies: every run of every example study is valid (sweep --dry-run)") {
  std::vector<fs::path> studies = {fs::path(DTSIM_SOURCE_DIR) / "examples" / "quickstart-study.json"};
  for (const char* dir : {"examples/studies", "examples/papers", "examples/validation"}) {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(DTSIM_SOURCE_DIR) / dir, ec))
      if (e.path().extension() == ".json" && nlohmann::json::parse(slurp(e.path()), nullptr, false).contains("vary"))
        studies.push_back(e.path());
  }
  CHECK(studies.size() >= 3);
  char tmpl[] = "/tmp/dtsim-examples-XXXXXX";
  const std::string out = ::mkdtemp(tmpl);
  for (const auto& s : studies) {
    const std::string name = s.string();
    CAPTURE(name);
    const Result r = run("sweep " + name + " --dry-run --out " + out);
    CAPTURE(r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find(": valid, ") != std::string::npos);
  }
  fs::remove_all(out);
}

TEST_CASE("synthetic data with a shape feeds image models: resnet18 (CIFAR variant) on a 3x32x32 shape") {
  char tmpl[] = "/tmp/dtsim-shape-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  std::ofstream(dir / "x.json") << R"({"name": "shape", "platform": {"workers": {"count": 2}, "servers": {"count": 1}},
    "model": {"kind": "resnet18"}, "dataset": {"kind": "synthetic", "shape": [3, 32, 32], "train": 64, "test": 16},
    "algorithm": {"name": "ssgd"}, "training": {"batch_size": 8, "samples": 32, "eval_every_samples": 0},
    "compute": {"mode": "timing-only"}, "output": {"trace": false}})";
  const Result r = run("run " + (dir / "x.json").string() + " --quiet --out " + (dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const auto s = nlohmann::json::parse(slurp(dir / "out" / "summary.json"));
  // kuangliu/pytorch-cifar ResNet-18 on 3-channel 32x32 inputs: 11,173,962 parameters (with a
  // 1-channel input the stem convolution would have 1152 fewer)
  CHECK(s["model_parameters"].get<long>() == 11173962);
  // a shape and features together, or a bad shape, are input errors
  std::ofstream(dir / "bad.json") << R"({"platform": {"workers": {"count": 1}}, "model": {"kind": "mlp"},
    "dataset": {"kind": "synthetic", "shape": [3, 0, 32]}, "algorithm": {"name": "ssgd"}})";
  Result b = run("validate " + (dir / "bad.json").string());
  CHECK(b.code == 2);
  CHECK(b.err.find("dataset.shape: expected [C, H, W]") != std::string::npos);
  std::ofstream(dir / "bad.json") << R"({"platform": {"workers": {"count": 1}}, "model": {"kind": "mlp"},
    "dataset": {"kind": "synthetic", "shape": [3, 8, 8], "features": 192}, "algorithm": {"name": "ssgd"}})";
  b = run("validate " + (dir / "bad.json").string());
  CHECK(b.code == 2);
  CHECK(b.err.find("dataset.features: give either 'features' or 'shape'") != std::string::npos);
  fs::remove_all(dir);
}

}  // namespace test_sweep_examples_cpp
