// ONNX models through the CLI (docs/engine.md, "ONNX models"): a config naming an exported
// network (relative to the config) runs in real and timing-only mode with the same simulated time,
// init "onnx" starts from the file's weights, and every refusal is exit 2 with one line
// `error: <config>: model.path: <file>: <reason>`.
#include <algorithm>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

namespace test_onnx_cli_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

const fs::path kData = fs::path(DTSIM_SOURCE_DIR) / "tests/data/onnx";

// 4 workers x batch 8 on a synthetic 1x12x12 dataset (the small CNN's input), 32 steps.
std::string config(const std::string& model, const std::string& mode = "real") {
  return R"({"name": "ox", "seed": 5,
 "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
   "workers": {"count": 4, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}},
   "servers": {"count": 0}},
 "model": )" + model + R"(,
 "dataset": {"kind": "synthetic", "train": 512, "test": 128, "shape": [1, 12, 12], "classes": 10},
 "algorithm": {"name": "ssgd", "comm": "allreduce", "lr": 0.05, "momentum": 0.9},
 "training": {"batch_size": 8, "samples": 1024, "eval_every_samples": 256},
 "compute": {"mode": ")" + mode + R"(", "time": {"kind": "flops"}},
 "output": {"trace": false}})";
}

nlohmann::json json_of(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

void refused(const Result& r, const std::string& prefix, const std::string& reason) {
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.rfind(prefix, 0) == 0);
  CHECK(r.err.find(reason) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

}  // namespace

TEST_CASE("onnx cli: an exported CNN trains from a config, relative path, init onnx or seed, timing-only takes the file") {
  Scratch s;
  fs::copy_file(kData / "small_cnn.onnx", s.dir / "net.onnx");
  const std::string net = R"({"kind": "onnx", "path": "net.onnx", "init": "onnx"})";
  const Result a = dtsim("run " + s.write("a.json", config(net)) + " --out " + (s.dir / "a").string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  const auto sa = json_of(s.dir / "a" / "summary.json");
  CHECK(sa["status"] == "completed");
  CHECK(json_of(s.dir / "a" / "config.resolved.json")["model"]["path"] == (s.dir / "net.onnx").string());
  const Result b = dtsim("run " + s.write("b.json", config(R"({"kind": "onnx", "path": "net.onnx"})")) + " --out " +
                         (s.dir / "b").string() + " --quiet");
  REQUIRE_MESSAGE(b.code == 0, b.err);
  CHECK(json_of(s.dir / "b" / "config.resolved.json")["model"]["init"] == "seed");
  CHECK(slurp(s.dir / "a" / "final_params.npy") != slurp(s.dir / "b" / "final_params.npy"));
  // Timing-only: no buffers, the same FLOPs, hence the same simulated time.
  const Result t = dtsim("run " + s.write("t.json", config(net, "timing-only")) + " --out " + (s.dir / "t").string() +
                         " --quiet");
  REQUIRE_MESSAGE(t.code == 0, t.err);
  CHECK(json_of(s.dir / "t" / "summary.json")["simulated_time_s"] == sa["simulated_time_s"]);
  CHECK(dtsim("validate " + (s.dir / "a.json").string()).code == 0);
}

TEST_CASE("onnx cli: unsupported operator, input not matching the dataset, malformed and truncated files: exit 2") {
  Scratch s;
  auto model = [](const fs::path& p) { return R"({"kind": "onnx", "path": ")" + p.string() + R"("})"; };
  const std::string c1 = s.write("u.json", config(model(kData / "unsupported.onnx")));
  refused(dtsim("validate " + c1), "error: " + c1 + ": model.path: " + (kData / "unsupported.onnx").string() + ": ",
          "node '/Sigmoid' (Sigmoid): operator 'Sigmoid' is not supported; supported: Conv, Gemm");
  const std::string c2 = s.write("m.json", config(model(kData / "resnet8.onnx")));
  refused(dtsim("run " + c2), "error: " + c2 + ": model.path: ",
          "input 'input' is [batch, 3, 16, 16] but the dataset's samples are 1 x 12 x 12");
  const std::string good = slurp(kData / "small_cnn.onnx");
  const std::string c3 = s.write("t.json", config(model(s.write("cut.onnx", good.substr(0, good.size() / 2)))));
  refused(dtsim("run " + c3), "error: " + c3 + ": model.path: ", "cut.onnx: ");
  const std::string c4 = s.write("g.json", config(model(s.write("text.onnx", "this is not an onnx file"))));
  refused(dtsim("validate " + c4), "error: " + c4 + ": model.path: ", "not an ONNX model: the protobuf does not parse");
  const std::string c5 = s.write("x.json", config(model(s.dir / "missing.onnx")));
  refused(dtsim("validate " + c5), "error: " + c5 + ": model.path: ", "cannot read ONNX model");
  const std::string c6 = s.write("k.json", config(R"({"kind": "onnx", "path": "net.onnx", "init": "pytorch"})"));
  refused(dtsim("validate " + c6), "error: " + c6 + ": model.init: ", "pytorch");
}

}  // namespace test_onnx_cli_cpp
