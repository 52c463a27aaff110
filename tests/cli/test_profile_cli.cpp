// `dtsim profile`: writes a compute profile with per-layer times, refuses bad usage with exit 2; a
// run refuses a profile whose per-layer list is not its model's.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "tests/rel.hpp"

namespace test_profile_cli_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace profile_cli_test {

struct Out {
  int code = -1;
  std::string out, err;
};

std::string read_all(const std::string& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Out profile(const std::string& args) {
  const std::string o = fs::temp_directory_path() / ("dtsim-profile-out-" + std::to_string(::getpid()));
  const std::string cmd = std::string(DTSIM_BINARY) + " profile " + args + " >" + o + " 2>" + o + ".err </dev/null";
  const int st = std::system(cmd.c_str());
  Out r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_all(o);
  r.err = read_all(o + ".err");
  fs::remove(o);
  fs::remove(o + ".err");
  return r;
}

// A timing-only SSGD config of `model` on 64 synthetic features, compute from `profile_file`.
std::string config(const fs::path& dir, const nlohmann::json& model, const std::string& profile_file) {
  const nlohmann::json cfg = {
      {"name", "p"},
      {"platform",
       {{"workers", {{"count", 2}, {"speed", "v100"}, {"link", {{"bandwidth", "1Gbps"}, {"latency", "50us"}}}}},
        {"servers", {{"count", 0}}}}},
      {"model", model},
      {"dataset", {{"kind", "synthetic"}, {"train", 256}, {"test", 32}, {"features", 64}, {"classes", 3}}},
      {"algorithm", {{"name", "ssgd"}, {"comm", "allreduce"}, {"overlap", {{"kind", "ddp"}}}}},
      {"training", {{"batch_size", 8}, {"samples", 64}}},
      {"compute", {{"mode", "timing-only"}, {"time", {{"kind", "profile"}, {"file", profile_file}}}}}};
  const std::string file = (dir / "c.json").string();
  std::ofstream(file) << cfg.dump(2);
  return file;
}

}  // namespace profile_cli_test

using namespace profile_cli_test;

TEST_CASE("dtsim profile writes a compute profile with the four times, the device and the thread count") {
  char t[] = "/tmp/dtsim-profile-XXXXXX";
  const fs::path dir = ::mkdtemp(t);
  const std::string file = (dir / "p.json").string();
  const Out r = profile("'{\"kind\":\"mlp\",\"hidden\":[16]}' --input 1,4,4 --batch 8 --classes 3 --warmup 1 --out " + file);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("forward") != std::string::npos);
  CHECK(r.out.find("profile written to " + file) != std::string::npos);
  const auto j = nlohmann::json::parse(read_all(file));
  CHECK(j["format"] == "dtsim-compute-profile/1");
  CHECK(j["model_kind"] == "mlp");
  CHECK(j["model"]["hidden"] == nlohmann::json::array({16}));
  CHECK(j["batch"] == 8);
  CHECK(j["classes"] == 3);
  CHECK(j["device"] == "cpu");
  CHECK(j["threads"] == 1);
  CHECK(j["steps"] == 20);
  CHECK(j["device_name"].get<std::string>().size() > 0);
  for (const char* k : {"forward_s", "backward_s", "update_s", "step_s"}) {
    CAPTURE(k);
    CHECK(j[k].get<double>() > 0);
  }
  // Default path: traces/profiles/<kind>-<device>-b<B>.json under the current directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);
  const Out d = profile("mlp --input 1,4,4 --batch 4 --warmup 0 --device reference --clock thread-cpu");
  fs::current_path(cwd);
  CHECK(d.code == 0);
  const auto dj = nlohmann::json::parse(read_all((dir / "traces/profiles/mlp-reference-b4.json").string()));
  CHECK(dj["clock"] == "thread-cpu");
  CHECK(dj["device"] == "reference");
  fs::remove_all(dir);
}

TEST_CASE("dtsim profile: bad usage and bad models exit with code 2 and say why") {
  auto err = [](const std::string& args, const char* expect) {
    const Out r = profile(args);
    CAPTURE(args);
    CAPTURE(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(expect) != std::string::npos);
  };
  err("resnet20 --batch 4", "missing --input");
  err("resnet20 --input 3,32,32", "missing --batch");
  err("resnet20 --input 3,32 --batch 4", "--input expects C,H,W");
  err("resnet20 --input 3,32,32 --batch 4 --steps 5", "--steps expects an integer in [20");
  err("resnet20 --input 3,32,32 --batch 4 --devcie cpu", "did you mean '--device'");
  err("resnet20 --input 3,32,32 --batch 4 --device gpu", "unknown device 'gpu'");
  err("resnet21 --input 3,32,32 --batch 4", "did you mean 'resnet20'");
  err("resnet50 --input 3,224,224 --batch 4", "timing-only");
  err("'{\"kind\":\"mlp\",\"hiden\":[4]}' --input 1,4,4 --batch 4", "unknown key 'hiden'");
  err("mlp --input 1,4,4 --batch 2 --clock thread-cpu --threads 2", "--clock thread-cpu measures one host thread");  // said "clock: ..."
  // Input sizes as a config's dataset.shape: 1,65536,65536 overflowed ("0 x 256 weights", exit 1).
  err("mlp --input 1,65536,65536 --batch 1", "--input expects an integer in [1, 4096]");
  err("mlp --input 3,1024,1024 --batch 1", "--input 3,1024,1024 is 3145728 values per sample: at most 1000000");
  // --out is checked before measuring: a directory, or a path under a regular file, failed at the
  // end with "internal" (exit 1); a special file (/dev/null as root) was replaced by a regular file.
  char t[] = "/tmp/dtsim-profile-XXXXXX";
  const fs::path dir = ::mkdtemp(t);
  err("mlp --input 1,4,4 --batch 2 --out " + dir.string(), "is not a regular file");
  const std::string file = (dir / "f").string();
  std::ofstream(file) << "x";
  err("mlp --input 1,4,4 --batch 2 --out " + file + "/p.json", "is not a directory");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  err("mlp --input 1,4,4 --batch 2 --out " + (dir / "fifo").string(), "is not a regular file");
  CHECK(fs::is_fifo(dir / "fifo"));
  fs::remove_all(dir);
}

TEST_CASE("dtsim profile writes per-layer times: the model's layers in order, adding up to the pass medians") {
  char t[] = "/tmp/dtsim-profile-XXXXXX";
  const fs::path dir = ::mkdtemp(t);
  const std::string file = (dir / "lenet5.json").string();
  const Out r = profile("lenet5 --input 1,28,28 --batch 2 --warmup 1 --out " + file);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("layers") != std::string::npos);
  const auto j = nlohmann::json::parse(read_all(file));
  for (const char* k : {"format", "model_kind", "batch", "forward_s", "backward_s", "update_s", "step_s", "steps", "clock"}) {
    CAPTURE(k);
    CHECK(j.contains(k));  // every key of before
  }
  // engine/models.cpp's LeNet-5, in execution order: the layers layer-wise timing splits a step into.
  const std::vector<std::string> names = {"conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                                          "flatten", "fc1", "relu3", "fc2", "relu4", "fc3"};
  REQUIRE(j["layers"].size() == names.size());
  double f = 0, b = 0;
  for (size_t l = 0; l < names.size(); ++l) {
    const auto& e = j["layers"][l];
    CAPTURE(l);
    CHECK(e["name"] == names[l]);
    CHECK(e["forward_s"].get<double>() >= 0);
    CHECK(e["backward_s"].get<double>() >= 0);
    f += e["forward_s"].get<double>();
    b += e["backward_s"].get<double>();
  }
  CHECK(j["layers"][3]["type"] == "conv2d");
  CHECK(j["layers"][3]["backward_s"].get<double>() > 0);
  // Scaled to add up to the hook-free medians (docs/profiles.md: to rounding).
  CHECK(f == dtsim_test::Rel(j["forward_s"].get<double>()).epsilon(1e-9));
  CHECK(b == dtsim_test::Rel(j["backward_s"].get<double>()).epsilon(1e-9));
  CHECK(j["layer_scale"]["forward"].get<double>() > 0);
  CHECK(j["layer_scale"]["backward"].get<double>() > 0);
  fs::remove_all(dir);
}

// A language model was fed one label per sample: "error: forward_backward: batch has 1 labels per
// sample, the model predicts 16", exit 1. It trains on token sequences, one label per token.
TEST_CASE("dtsim profile measures a gpt on random token sequences, one label per token") {
  char t[] = "/tmp/dtsim-profile-XXXXXX";
  const fs::path dir = ::mkdtemp(t);
  const std::string file = (dir / "gpt.json").string();
  const Out r = profile(R"('{"kind":"gpt","n_layer":1,"n_head":2,"n_embd":16}' --input 16,1,1 --batch 4 --classes 30 --warmup 1 --out )" + file);
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(read_all(file));
  CHECK(j["model_kind"] == "gpt");
  CHECK(j["classes"] == 30);
  CHECK(j["forward_s"].get<double>() > 0);
  CHECK(j["backward_s"].get<double>() > 0);
  CHECK(!j["layers"].empty());
  fs::remove_all(dir);
}

TEST_CASE("dtsim profile: a run whose model's layers are not the profile's exits 2 naming the profile's key") {
  char t[] = "/tmp/dtsim-profile-XXXXXX";
  const fs::path dir = ::mkdtemp(t);
  const std::string prof = (dir / "mlp.json").string();
  REQUIRE(profile("'{\"kind\":\"mlp\",\"hidden\":[16]}' --input 1,1,64 --batch 8 --classes 3 --warmup 1 --out " + prof).code == 0);
  auto validate = [&](const nlohmann::json& model) {
    const Out r = [&] {
      const std::string cfg = config(dir, model, prof);
      const std::string o = (dir / "v.out").string();
      const int st = std::system((std::string(DTSIM_BINARY) + " validate " + cfg + " >" + o + " 2>" + o + ".err").c_str());
      return Out{WIFEXITED(st) ? WEXITSTATUS(st) : -1, read_all(o), read_all(o + ".err")};
    }();
    return r;
  };
  const Out same = validate({{"kind", "mlp"}, {"hidden", {16}}});
  CHECK(same.code == 0);
  CHECK(same.err.empty());  // the profile's own model and input: no warning
  // The same layers with other sizes pass the layer check: a warning says whose times these are
  // (accepted in silence before; a profile of mlp [2048] made an mlp [16] run ~7x slower).
  const Out wider = validate({{"kind", "mlp"}, {"hidden", {32}}});
  CAPTURE(wider.err);
  CHECK(wider.code == 0);
  CHECK(wider.err.find("warning: " + (dir / "c.json").string() +
                       ": compute.time.file: the profile was measured for model {\"hidden\":[16],\"kind\":\"mlp\"} (the config's: "
                       "{\"hidden\":[32],\"kind\":\"mlp\"}); its times are used as they are") == 0);
  const Out r = validate({{"kind", "mlp"}, {"hidden", {16, 16}}});
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + (dir / "c.json").string() + ": compute.time.file: " + prof +
                   ": layers: lists 4 layers, the model 'mlp' has 6 (flatten, fc1, relu1, fc2, relu2, fc3)") == 0);
  fs::remove_all(dir);
}

}  // namespace test_profile_cli_cpp
