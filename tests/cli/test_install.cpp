// `cmake --install` (README "Install", cmake/install.cmake): this build installed to a temporary
// prefix holds bin/dtsim, share/dtsim/{plot.py, platforms, examples, traces}, the plugin SDK
// headers only and the CMake package; the installed dtsim runs a sweep with --plot from another
// directory, using its own plot.py and a shipped platform named without a path; the example plugin
// builds out of tree against the installed package and runs with the installed dtsim.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

namespace test_install_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

// A shell command's exit code, stdout and stderr.
Result sh(const std::string& cmd, const fs::path& scratch) {
  const fs::path o = scratch / "sh.out", e = scratch / "sh.err";
  const int st = std::system((cmd + " >" + o.string() + " 2>" + e.string() + " </dev/null").c_str());
  Result r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(o);
  r.err = slurp(e);
  return r;
}

fs::path install(const Scratch& s) {
  const fs::path prefix = s.dir / "prefix";
  const Result r = sh(std::string(DTSIM_CMAKE) + " --install " DTSIM_BUILD_DIR " --prefix " + prefix.string(), s.dir);
  REQUIRE_MESSAGE(r.code == 0, (r.out + r.err));
  return prefix;
}

nlohmann::json json_of(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

}  // namespace

TEST_CASE("install: the prefix holds dtsim, its shipped files, the SDK headers only and the CMake package") {
  Scratch s;
  const fs::path p = install(s);
  for (const char* f : {"bin/dtsim", "share/dtsim/plot.py", "share/dtsim/platforms/star-10g.json",
                        "share/dtsim/examples/quickstart.json", "share/dtsim/examples/plugin/post_local_sgd.cpp",
                        "share/dtsim/examples/plugin/CMakeLists.txt", "share/dtsim/traces/devices.json",
                        "include/dtsim/algorithms/plugin.hpp", "include/dtsim/algorithms/api.hpp",
                        "include/dtsim/algorithms/common.hpp", "include/dtsim/engine/vec.hpp",
                        "include/dtsim/common/json_reader.hpp", "lib/cmake/dtsim/dtsimConfig.cmake",
                        "lib/cmake/dtsim/dtsimConfigVersion.cmake", "lib/cmake/dtsim/dtsimTargets.cmake"}) {
    CAPTURE(f);
    CHECK(fs::is_regular_file(p / f));
  }
  // The SDK only: no simulator, model or CLI headers.
  CHECK(!fs::exists(p / "include/dtsim/sim"));
  CHECK(!fs::exists(p / "include/dtsim/tools"));
  CHECK(!fs::exists(p / "include/dtsim/engine/model.hpp"));
  CHECK(!fs::exists(p / "include/dtsim/algorithms/plugin_loader.hpp"));
  const std::string version = slurp(p / "lib/cmake/dtsim/dtsimConfigVersion.cmake");
  CHECK(version.find("PACKAGE_VERSION \"") != std::string::npos);
  CHECK(slurp(p / "lib/cmake/dtsim/dtsimConfig.cmake").find("dtsim_add_plugin") != std::string::npos);
  const Result v = sh((p / "bin/dtsim").string() + " --version", s.dir);
  CHECK(v.code == 0);
  CHECK(v.out.rfind("dtsim ", 0) == 0);
}

TEST_CASE("install: the installed dtsim runs a sweep with --plot from another directory with its own plot.py") {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: python3-matplotlib is not installed (tools/install-deps.sh installs it)");
    std::exit(77);
  }
  Scratch s;
  const fs::path p = install(s);
  // A platform shipped with dtsim, named without a path: found in <prefix>/share/dtsim/platforms.
  s.write("base.json", R"({"name": "inst", "seed": 2, "platform": "star-10g-8.json",
    "model": {"kind": "mlp", "hidden": [16]},
    "dataset": {"kind": "synthetic", "train": 1024, "test": 256, "features": 16, "classes": 4},
    "algorithm": {"name": "ssgd", "lr": 0.05},
    "training": {"batch_size": 16, "samples": 2048, "eval_every_samples": 512, "target_accuracy": [0.3]},
    "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.01}}})");
  s.write("study.json", R"({"name": "inst", "base": "base.json",
    "vary": {"algorithm": [{"name": "ssgd", "lr": 0.05}, {"name": "local-sgd", "lr": 0.05, "period": 4}]},
    "out": "results"})");
  const std::string sweep = "cd " + s.dir.string() + " && env -u DTSIM_PLOT_SCRIPT " + (p / "bin/dtsim").string() +
                            " sweep study.json --plot --jobs 2 --quiet";
  const Result r = sh(sweep, s.dir);
  REQUIRE_MESSAGE(r.code == 0, (r.out + r.err));
  CHECK(fs::is_regular_file(s.dir / "results/results.csv"));
  CHECK(fs::is_regular_file(s.dir / "results/plots/accuracy_vs_time.png"));
  const auto resolved = json_of(s.dir / "results/runs/algorithm-ssgd/config.resolved.json");
  CHECK(resolved["platform"]["workers"]["count"] == 8);  // star-10g-8.json, inlined
  // The plot script it ran is the installed one: replace it by a wrapper that leaves a mark, redraw.
  fs::rename(p / "share/dtsim/plot.py", p / "share/dtsim/plot_real.py");
  s.write("prefix/share/dtsim/plot.py", "import pathlib, runpy, sys\npathlib.Path('" + (s.dir / "mark").string() +
                                            "').write_text('installed')\nrunpy.run_path('" +
                                            (p / "share/dtsim/plot_real.py").string() + "', run_name='__main__')\n");
  fs::remove_all(s.dir / "results/plots");
  const Result again = sh(sweep, s.dir);
  REQUIRE_MESSAGE(again.code == 0, (again.out + again.err));
  CHECK(slurp(s.dir / "mark") == "installed");
  CHECK(fs::is_regular_file(s.dir / "results/plots/accuracy_vs_time.png"));
}

TEST_CASE("install: the example plugin builds out of tree against the installed package and runs with the installed dtsim") {
  Scratch s;
  const fs::path p = install(s);
  const fs::path example = p / "share/dtsim/examples/plugin", build = s.dir / "build";
  const Result cfg = sh(std::string(DTSIM_CMAKE) + " -S " + example.string() + " -B " + build.string() +
                            " -DCMAKE_PREFIX_PATH=" + p.string() + " -DCMAKE_CXX_COMPILER=" DTSIM_CXX,
                        s.dir);
  REQUIRE_MESSAGE(cfg.code == 0, (cfg.out + cfg.err));
  const Result bld = sh(std::string(DTSIM_CMAKE) + " --build " + build.string(), s.dir);
  REQUIRE_MESSAGE(bld.code == 0, (bld.out + bld.err));
  const fs::path so = build / "libpost_local_sgd.so";
  REQUIRE(fs::is_regular_file(so));
  const std::string dtsim = (p / "bin/dtsim").string(), exp = (example / "exp.json").string();
  const Result list = sh(dtsim + " algorithms --plugin " + so.string(), s.dir);
  REQUIRE_MESSAGE(list.code == 0, list.err);
  CHECK(list.out.find("post-local-sgd") != std::string::npos);
  // The example's experiment (platform ../../platforms/star-10g-8.json, inside share/dtsim).
  const Result run = sh(dtsim + " run " + exp + " --plugin " + so.string() + " --out " + (s.dir / "run").string() +
                            " --quiet",
                        s.dir);
  REQUIRE_MESSAGE(run.code == 0, run.err);
  const auto summary = json_of(s.dir / "run/summary.json");
  CHECK(summary["status"] == "completed");
  // Its results: warmup 0 is the built-in Local SGD, bitwise.
  const Result w0 = sh(dtsim + " run " + exp + " --plugin " + so.string() + " --set algorithm.warmup=0 --out " +
                           (s.dir / "w0").string() + " --quiet",
                       s.dir);
  REQUIRE_MESSAGE(w0.code == 0, w0.err);
  const Result local = sh(dtsim + " run " + exp + " --set 'algorithm={\"name\": \"local-sgd\", \"lr\": 0.05, \"momentum\": 0.9, "
                                  "\"period\": 4}' --out " + (s.dir / "local").string() + " --quiet",
                          s.dir);
  REQUIRE_MESSAGE(local.code == 0, local.err);
  const std::string a = slurp(s.dir / "w0/final_params.npy");
  REQUIRE(a.size() > 128);
  CHECK(a == slurp(s.dir / "local/final_params.npy"));
  CHECK(a != slurp(s.dir / "run/final_params.npy"));  // warmup 16: different
}

}  // namespace test_install_cpp
