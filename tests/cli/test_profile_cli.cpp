// `dtsim profile`: writes a compute profile, refuses bad usage with exit 2.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace test_profile_cli_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

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

}  // namespace

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
}

}  // namespace test_profile_cli_cpp
