// The CLI as a user meets it: exit codes, one-line errors naming file + JSON path, help, version.
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

namespace test_cli_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

// A scratch directory with a valid base config (synthetic data, tiny) to break in one place.
const char* kPlatform = R"({
  "network": {"model": "exact"},
  "topology": {"kind": "star"},
  "workers": {"count": 2, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}},
  "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}}
})";

std::string config(const std::string& platform = "\"platform.json\"", const std::string& algorithm = R"({"name": "ssgd"})",
                   const std::string& training = R"({"batch_size": 8, "samples": 256, "target_accuracy": [0.5, 0.9]})",
                   const std::string& extra = "") {
  return R"({"name": "bad", "seed": 1, "platform": )" + platform +
         R"(, "model": {"kind": "mlp", "hidden": [8]}, "dataset": {"kind": "synthetic", "train": 256, "test": 64, "features": 8},)" +
         R"( "algorithm": )" + algorithm + R"(, "training": )" + training + extra + "}";
}

// Every bad input: exit 2, exactly one line on stderr, starting "error: <file>: <path>: ...".
void expect_input_error(const Result& r, const std::string& file, const std::string& path, const std::string& reason) {
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(r.err.find(file) != std::string::npos);
  if (!path.empty()) CHECK(r.err.find(": " + path + ": ") != std::string::npos);
  CHECK(r.err.find(reason) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
  CHECK(r.err.find("Aborted") == std::string::npos);
  CHECK(r.out.empty());
}

struct Case {
  const char* name;
  std::string config;          // text of bad.json
  std::string platform;        // text of platform.json
  std::string path, reason;    // expected in the message
  bool in_platform = false;    // the error names platform.json instead of bad.json
};

}  // namespace

TEST_CASE("bad input: each malformed config or platform gives exit 2 and names file, path and reason") {
  const std::vector<Case> cases = {
      {"syntax error", R"({"name": "bad", "seed": 1,,})", kPlatform, "", "invalid JSON at line 1, column 27"},
      {"unknown top-level key", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"batch_size": 8})", R"(, "trainng": {})"),
       kPlatform, "trainng", "unknown key 'trainng' (did you mean 'training'?)"},
      {"unknown algorithm key", config("\"platform.json\"", R"({"name": "ssgd", "lrr": 0.1})"), kPlatform, "algorithm.lrr",
       "did you mean 'lr'?"},
      {"wrong type", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"batch_size": "32"})"), kPlatform,
       "training.batch_size", "expected an integer, got a string"},
      {"negative bandwidth", config(), std::string(kPlatform).replace(std::string(kPlatform).find("\"10Gbps\""), 8, "\"-10Gbps\""),
       "workers.link.bandwidth", "negative", true},
      {"zero workers", config(), std::string(kPlatform).replace(std::string(kPlatform).find("\"count\": 2"), 10, "\"count\": 0"),
       "workers.count", "must be at least 1", true},
      {"unknown algorithm", config("\"platform.json\"", R"({"name": "ssdg"})"), kPlatform, "algorithm.name",
       "unknown algorithm 'ssdg' (did you mean 'ssgd'?)"},
      {"unit typo", config(), std::string(kPlatform).replace(std::string(kPlatform).find("\"10Gbps\""), 8, "\"10Gbsp\""),
       "workers.link.bandwidth", "unknown unit 'Gbsp'", true},
      {"latency unit typo", config(), std::string(kPlatform).replace(std::string(kPlatform).find("\"10us\""), 6, "\"10uss\""),
       "workers.link.latency", "unknown unit 'uss'", true},
      {"missing platform file", config("\"nowhere.json\""), kPlatform, "platform", "does not exist"},
      {"negative straggler index", config(R"({"workers": {"count": 2}, "stragglers": [{"workers": [-5], "slowdown": 2}]})"), "",
       "platform.stragglers[0].workers", "worker index -5 is negative"},
      {"accuracy above 1", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"target_accuracy": [0.5, 1.5]})"), kPlatform,
       "training.target_accuracy[1]", "an accuracy must be in (0, 1]"},
      {"epochs and samples", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"epochs": 1, "samples": 10})"), kPlatform,
       "training.samples", "not both"},
      {"unknown model kind", R"({"platform": "platform.json", "model": {"kind": "mlpp"}, "dataset": {"kind": "synthetic"}, "algorithm": {"name": "ssgd"}})",
       kPlatform, "model.kind", "did you mean 'mlp'?"},
      {"mode typo", config("\"platform.json\"", R"({"name": "ssgd"})", R"({})", R"(, "compute": {"mode": "timing_only"})"),
       kPlatform, "compute.mode", "did you mean 'timing-only'?"},
      {"zero batch", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"batch_size": 0})"), kPlatform,
       "training.batch_size", "must be in [1, 1000000]"},
      {"negative learning rate", config("\"platform.json\"", R"({"name": "ssgd", "lr": -0.1})"), kPlatform, "algorithm.lr",
       "must be positive"},
      {"no servers for a PS algorithm", config(R"({"workers": {"count": 2}, "servers": {"count": 0}})"), "",
       "platform.servers.count", "needs at least one parameter server"},
      {"missing dataset directory", R"({"platform": "platform.json", "model": {"kind": "mlp"}, "dataset": {"kind": "mnist", "path": "no-such-dir"}, "algorithm": {"name": "ssgd"}})",
       kPlatform, "dataset.path", "does not exist"},
      {"top level is not an object", "[1, 2]", kPlatform, "", "expected a JSON object"},
      // nlohmann keeps the later of two equal keys without a word: the first batch_size was lost.
      {"a key given twice", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"batch_size": 8, "samples": 256, "batch_size": 64})"),
       kPlatform, "training.batch_size", "key given twice in one object"},
      {"a key given twice in a list's object", config(R"({"workers": {"count": 2}, "stragglers": [{"workers": [0], "slowdown": 2, "slowdown": 3}]})"),
       "", "platform.stragglers[0].slowdown", "key given twice in one object"},
      {"a key given twice in the platform file", config(), std::string(kPlatform).replace(1, 0, R"("topology": {"kind": "star"},)"),
       "topology", "key given twice in one object", true},
      {"a platform that is a directory", config("\".\""), kPlatform, "platform", "'.' is a directory, not a platform file"},
      {"a compute profile that is a directory", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"batch_size": 8})",
                                                       R"(, "compute": {"time": {"kind": "profile", "file": "."}})"),
       kPlatform, "compute.time.file", "is a directory, not a compute profile"},
      {"an integer too large for int64, written as a float", config("\"platform.json\"", R"({"name": "ssgd"})", R"({"samples": 1e19})"),
       kPlatform, "training.samples", "expected an integer, got 1e+19"},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      Scratch s;
      const std::string cfg = s.write("bad.json", c.config);
      if (!c.platform.empty()) s.write("platform.json", c.platform);
      for (const char* cmd : {"validate", "run"}) {
        CAPTURE(cmd);
        const Result r = dtsim(std::string(cmd) + " " + cfg + " --out " + (s.dir / "out").string());
        expect_input_error(r, c.in_platform ? "platform.json" : "bad.json", c.path, c.reason);
        CHECK(!fs::exists(s.dir / "out" / "summary.json"));
      }
    }
  }
}

TEST_CASE("bad input: truncated and corrupt IDX dataset files are rejected with the file named") {
  Scratch s;
  fs::create_directories(s.dir / "data");
  auto idx = [&](const std::string& name, std::vector<unsigned char> header, size_t payload) {
    gzFile f = gzopen((s.dir / "data" / name).c_str(), "wb");
    gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
    std::vector<unsigned char> zeros(payload, 0);
    if (payload) gzwrite(f, zeros.data(), static_cast<unsigned>(payload));
    gzclose(f);
  };
  // 10 train / 4 test samples of 28x28; the train images are cut short.
  idx("train-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28}, 784 * 10 - 100);
  idx("train-labels-idx1-ubyte.gz", {0, 0, 8, 1, 0, 0, 0, 10}, 10);
  idx("t10k-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 28, 0, 0, 0, 28}, 784 * 4);
  idx("t10k-labels-idx1-ubyte.gz", {0, 0, 8, 1, 0, 0, 0, 4}, 4);
  s.write("platform.json", kPlatform);
  const std::string cfg = s.write(
      "bad.json", R"({"platform": "platform.json", "model": {"kind": "mlp"}, "dataset": {"kind": "mnist", "path": "data"}, "algorithm": {"name": "ssgd"}, "training": {"batch_size": 2, "samples": 4}})");
  const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("train-images-idx3-ubyte.gz") != std::string::npos);
  CHECK(r.err.find("dataset.path") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(!fs::exists(s.dir / "out" / "summary.json"));

  // Bad magic.
  idx("train-images-idx3-ubyte.gz", {1, 2, 3, 4, 0, 0, 0, 10}, 0);
  const Result m = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string());
  CHECK(m.code == 2);
  CHECK(m.err.find("train-images-idx3-ubyte.gz") != std::string::npos);
}

TEST_CASE("bad input: a number too large for a double is exit 2 naming where (fuzz_config finding)") {
  // Regression for fuzz/fuzz_config crash-2a46b197: nlohmann throws out_of_range (not parse_error)
  // for 1e308128; it escaped as "error: internal", exit 1.
  Scratch s;
  const std::string f = s.write("big.json", R"({"name": "x", "seed": 1e308128})");
  auto r = dtsim("validate " + f);
  CHECK(r.code == 2);
  CHECK(r.err.find(f + ": invalid JSON: number overflow") != std::string::npos);
  r = dtsim("validate " DTSIM_SOURCE_DIR "/examples/quickstart.json --set training.samples=1e99999");
  CHECK(r.code == 2);
  CHECK(r.err.find("training.samples") != std::string::npos);
  CHECK(r.err.find("number overflow") != std::string::npos);
}

TEST_CASE("config: a whole number written as a float is that integer, up to 2^63 (1e18 was 'expected an integer')") {
  Scratch s;
  const std::string cfg = s.write("big.json", config("\"platform.json\"", R"({"name": "ssgd"})",
                                                     R"({"batch_size": 8, "samples": 1e18})", R"(, "output": {"trace": false})"));
  s.write("platform.json", kPlatform);
  const Result r = dtsim("validate " + cfg);
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find(", 1000000000000000000 samples,") != std::string::npos);
  CHECK(r.out.find(" years of simulation") != std::string::npos);  // the estimate, not "1013500000.0 h"
  // A list of integers takes them too, as a single integer does.
  const Result l = dtsim("validate " + cfg + " --set model.hidden=[8.0,4e0]");
  CAPTURE(l.err);
  CHECK(l.code == 0);
  const Result f = dtsim("validate " + cfg + " --set model.hidden=[8.5]");
  CHECK(f.code == 2);
  CHECK(f.err.find("model.hidden[0]: expected an integer, got 8.5") != std::string::npos);
}

// docs/config.md: a warning about a key of a platform file names that file. The aggregated-ring
// warning named the experiment's (a docs audit); the grouping warning already named the platform's.
TEST_CASE("warnings: the aggregated-ring warning names the platform file that holds the key") {
  Scratch s;
  s.write("platform.json", kPlatform);
  const std::string cfg = s.write("exp.json", config("\"platform.json\"", R"({"name": "ssgd", "comm": "allreduce"})"));
  const Result r = dtsim("validate " + cfg + R"( --set 'platform.collective={"transfers": "aggregated"}' --set algorithm.overlap.kind=horovod)");
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("warning: " + (s.dir / "platform.json").string() + ": collective.transfers: \"aggregated\" is not used") !=
        std::string::npos);
}

TEST_CASE("a deadlock is one error line naming the blocked actors, without SimGrid's own 'Oops' line before it") {
  Scratch s;
  const std::string cfg = s.write(
      "dl.json", config(R"({"network": {"model": "exact"}, "topology": {"kind": "star"}, "workers": {"count": 4}, "servers": {"count": 0},
                           "failures": [{"host": "worker-2", "at_s": 0.035}]})",
                        R"({"name": "ssgd", "comm": "allreduce", "overlap": {"kind": "none"}})",
                        R"({"batch_size": 8, "samples": 256})", R"(, "compute": {"time": {"kind": "fixed", "seconds": 0.01}})"));
  const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "o").string());
  CAPTURE(r.err);
  CHECK(r.code == 1);
  CHECK(r.err.rfind("error: deadlock at simulated time ", 0) == 0);
  CHECK(r.err.find("which failed (platform.failures)") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("Oops") == std::string::npos);
}

TEST_CASE("bad usage: empty values, --version with arguments, and a key twice in a --set value are exit 2") {
  const std::string config = DTSIM_SOURCE_DIR "/examples/quickstart.json";
  const std::string study = DTSIM_SOURCE_DIR "/examples/quickstart-study.json";
  for (const auto& [args, what] : std::vector<std::pair<std::string, std::string>>{
           {"run " + config + " --out ''", "--out needs a value, got an empty string"},  // was: results/<name>
           {"run ''", "CONFIG.json needs a value, got an empty string"},
           {"run --resume ''", "--resume needs a value, got an empty string"},
           {"sweep " + study + " --out '' --dry-run", "--out needs a value, got an empty string"},
           {"validate " + config + " --set ''", "--set needs a value, got an empty string"},
           {"--version x", "--version takes no argument, got 'x'"},  // was: printed the version, exit 0
           {"--version validate " + config, "--version takes no command, got 'validate'"},
       }) {
    CAPTURE(args);
    const Result q = dtsim(args);
    CAPTURE(q.err);
    CHECK(q.code == 2);
    CHECK(q.err.rfind("error: " + what + "\n", 0) == 0);
    CHECK(q.out.empty());
  }
  const Result route = dtsim("validate " + study + " --route worker-0,nosuch");  // was ignored, exit 0
  CHECK(route.code == 2);
  CHECK(route.err.rfind("error: --route prints a route of an experiment's platform, not of a study's", 0) == 0);
  const Result shape = dtsim("validate " + config + R"( --set 'dataset={"kind": "synthetic", "shape": [3, 1024, 1024]}')");
  CHECK(shape.code == 2);  // it named dataset.features, a key not given
  CHECK(shape.err.find(": dataset.shape: C x H x W = 3145728 values per sample: at most 1000000") != std::string::npos);
  const Result d = dtsim("validate " + config + R"( --set 'model={"kind": "mlp", "kind": "cnn"}')");
  CHECK(d.code == 2);
  CHECK(d.err.find("error: --set: model.kind: key given twice in one object") == 0);
}

TEST_CASE("bad usage: unknown command, option or missing config gives exit 2 with a hint") {
  auto r = dtsim("frobnicate");
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown command 'frobnicate'") != std::string::npos);
  r = dtsim("rnu x.json");
  CHECK(r.code == 2);
  CHECK(r.err.find("did you mean 'run'?") != std::string::npos);
  r = dtsim("run");
  CHECK(r.code == 2);
  r = dtsim("run x.json --bogus");
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown option '--bogus'") != std::string::npos);
  r = dtsim("run /nonexistent/config.json");
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent/config.json") != std::string::npos);
  r = dtsim("run " DTSIM_SOURCE_DIR "/examples/quickstart.json --set =3");
  CHECK(r.code == 2);
  CHECK(r.err.find("--set") != std::string::npos);
  r = dtsim("");
  CHECK(r.code == 2);
}

TEST_CASE("start-up: dtsim does not link cuBLAS, whose constructors cost every process 0.5 s (loaded on first use)") {
  Scratch s;
  const std::string out = (s.dir / "needed").string();
  REQUIRE(std::system(("readelf -d " + std::string(DTSIM_BINARY) + " > " + out).c_str()) == 0);
  const std::string needed = slurp(out);
  CHECK(needed.find("(NEEDED)") != std::string::npos);
  CHECK(needed.find("libcublas") == std::string::npos);
}

TEST_CASE("help, version, algorithms and validate of the shipped examples succeed") {
  auto r = dtsim("--help");
  CHECK(r.code == 0);
  CHECK(r.out.find("dtsim run CONFIG.json") != std::string::npos);
  r = dtsim("run --help");
  CHECK(r.code == 0);
  CHECK(r.out.find("--set KEY=VALUE") != std::string::npos);
  r = dtsim("--version");
  CHECK(r.code == 0);
  CHECK(r.out.rfind("dtsim ", 0) == 0);
  r = dtsim("algorithms");
  CHECK(r.code == 0);
  CHECK(r.out.find("ssgd") != std::string::npos);
  CHECK(r.out.find("asgd") != std::string::npos);
  // Keys and defaults in aligned columns, also past a long default (dc-asgd-adaptive).
  CHECK(r.out.find("    local_optimizer     dc-asgd-adaptive  worker-side optimizer") != std::string::npos);
  int experiments = 0, studies = 0;
  for (const auto& e : fs::recursive_directory_iterator(DTSIM_SOURCE_DIR "/examples")) {
    if (e.path().extension() != ".json") continue;
    // examples/plugin/ needs its plugin built out of tree: test_install.cpp builds and runs it.
    if (e.path().parent_path().filename() == "plugin") continue;
    CAPTURE(e.path().string());
    r = dtsim("validate " + e.path().string());
    CHECK(r.code == 0);
    const bool study = r.out.find(": valid study '") != std::string::npos;
    CHECK((study || r.out.find(": valid\n") != std::string::npos));
    (study ? studies : experiments) += 1;
  }
  CHECK(experiments >= 2);  // quickstart.json, compare-algorithms.json
  CHECK(studies >= 1);      // quickstart-study.json, studies/, papers/
  // A study with a bad cell is refused naming the study file and the cell's key.
  Scratch s;
  const std::string bad = s.write("bad-study.json", R"({"base": ")" DTSIM_SOURCE_DIR
                                                    R"(/examples/quickstart.json", "vary": {"training.batch_size": [32, -1]}})");
  r = dtsim("validate " + bad);
  CHECK(r.code == 2);
  CHECK(r.err.find("bad-study.json") != std::string::npos);
  CHECK(r.err.find("batch_size") != std::string::npos);
}

TEST_CASE("run: --set overrides reach the platform, --quiet prints nothing, outputs land in --out") {
  Scratch s;
  s.write("platform.json", kPlatform);
  const std::string cfg = s.write("ok.json", config());
  const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string() +
                         " --set platform.workers.count=3 --set algorithm.name=asgd --set output.trace=true");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
  for (const char* f : {"summary.json", "metrics.csv", "trace.json", "final_params.npy", "config.resolved.json"})
    CHECK_MESSAGE(fs::exists(s.dir / "out" / f), f);
  const std::string summary = slurp((s.dir / "out" / "summary.json").string());
  CHECK(summary.find("\"workers\": 3") != std::string::npos);
  CHECK(summary.find("\"algorithm\": \"asgd\"") != std::string::npos);
  const std::string resolved = slurp((s.dir / "out" / "config.resolved.json").string());
  CHECK(resolved.find("\"update_flops_per_param\"") != std::string::npos);  // defaults filled in
  CHECK(resolved.find("\"count\": 3") != std::string::npos);               // platform inlined
  // The numpy header is a valid .npy of the model's parameter count (8*8+8 + 8*10+10 = 162).
  const std::string npy = slurp((s.dir / "out" / "final_params.npy").string());
  CHECK(npy.rfind("\x93NUMPY", 0) == 0);
  CHECK(npy.find("'shape': (162,)") != std::string::npos);
}

TEST_CASE("bad input: an output directory that is a file or cannot be made is exit 2, named (was exit 1, 'internal')") {
  Scratch s;
  s.write("platform.json", kPlatform);
  const std::string cfg = s.write("ok.json", config());
  const std::string file = s.write("a-file", "x");
  expect_input_error(dtsim("run " + cfg + " --quiet --out " + file), "--out", "", "is not a directory");
  expect_input_error(dtsim("run " + cfg + " --quiet --set output.dir=" + file), "ok.json", "output.dir",
                     "is not a directory");
  expect_input_error(dtsim("run " + cfg + " --quiet --out " + file + "/below"), "--out", "",
                     "cannot create the directory");
}

TEST_CASE("bad input: settings whose minibatch overflows simulated time are exit 2, named (were a 'deadlock at inf')") {
  Scratch s;
  s.write("platform.json", kPlatform);
  const std::string cfg = s.write("ok.json", config());
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {R"(--set 'compute.time={"kind":"fixed","seconds":1e299}')", "compute.time.seconds", "1e+299 s of simulated time"},
      {"--set platform.workers.speed=1e-310", "platform.workers.speed", "an infinite simulated time"},
      {R"(--set 'compute.time={"kind":"fixed","seconds":0.01}' --set 'platform.stragglers=[{"workers":[0],"slowdown":1e308}]')",
       "platform.stragglers", "1e+306 s of simulated time"},
      // a finite fixed time beyond the bound: the key that holds it (it named platform.workers.speed)
      {R"(--set 'compute.time={"kind":"fixed","seconds":1e16}')", "compute.time.seconds", "1e+16 s of simulated time"}};
  for (const auto& [set, path, reason] : cases) {
    CAPTURE(set);
    expect_input_error(dtsim("validate " + cfg + " " + set), "ok.json", path, reason);
    expect_input_error(dtsim("run " + cfg + " --quiet --out " + (s.dir / "o").string() + " " + set), "ok.json", path,
                       reason);
  }
  // A distribution's tail is unbounded: an exponential of mean 1e300 drew factors that overflowed
  // simulated time ("deadlock at simulated time inf", exit 1). A minibatch's transient slowdown is
  // at most 1e6: 16 steps of 10 ms x 1e6.
  const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "t").string() +
                         R"( --set 'compute.time={"kind":"fixed","seconds":0.01}' --set 'platform.stragglers=[{"distribution":{"kind":"exponential","mean":1e300}}]')");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const double t = nlohmann::json::parse(slurp(s.dir / "t" / "summary.json"))["simulated_time_s"].get<double>();
  CHECK(t >= 16 * 1e4);
  CHECK(t < 16 * 1e4 * 1.01);
}

// A whole platform by --set (a file relative to the experiment, then the current directory, then a
// shipped one by name); dotted platform.* keys apply on top of it whatever their order. It failed
// with "<the experiment's platform file>: expected an object, got a string" before.
TEST_CASE("run: --set platform=FILE replaces the experiment's platform, dotted platform keys apply on top") {
  Scratch s;
  s.write("platform.json", kPlatform);
  fs::create_directories(s.dir / "cfg");
  const std::string cfg = s.write("cfg/ok.json", config("\"../platform.json\""));
  std::string other = kPlatform;
  other.replace(other.find("\"count\": 2"), 10, "\"count\": 4");
  s.write("cfg/four.json", other);
  auto workers = [&](const std::string& sets) {
    const Result r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string() + sets);
    CAPTURE(r.err);
    REQUIRE(r.code == 0);
    const std::string sum = slurp((s.dir / "out" / "summary.json").string());
    const size_t at = sum.find("\"workers\": ");
    REQUIRE(at != std::string::npos);
    return std::stoi(sum.substr(at + 11));
  };
  CHECK(workers("") == 2);
  CHECK(workers(" --set platform=four.json") == 4);  // relative to the experiment
  CHECK(workers(" --set platform.workers.count=3 --set platform=four.json") == 3);
  CHECK(workers(" --set platform=star-10g-16.json") == 16);  // shipped, by name
  CHECK(workers(" --set platform=platforms/star-1g-8.json") == 8);
  const std::string here = (s.dir / "four.json").string();
  s.write("four.json", other);
  CHECK(workers(" --set platform=" + here) == 4);
  expect_input_error(dtsim("run " + cfg + " --out " + (s.dir / "out").string() + " --set platform=nowhere.json"), "--set",
                     "platform", "platform file");
}

}  // namespace test_cli_cpp
