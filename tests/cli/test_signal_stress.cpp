// Stress: SIGINT and SIGTERM at many instants of real-mode runs and of a running sweep
// (docs/robustness.md, "Signals"). Before tools/dtsim/signals.hpp a signal that arrived while
// oneDNN's sgemm ran corrupted the heap (exit 134 in about 1 of 10 tries of this very test).
// Every exit must be 130/143, or 0 when the run had finished, and whatever was written complete.
// DTSIM_STRESS_BINARY=path runs the test against another dtsim binary (to show it failing on an
// older one).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/helpers.hpp"

namespace test_signal_stress_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string binary() {
  const char* b = std::getenv("DTSIM_STRESS_BINARY");
  return b && *b ? b : DTSIM_BINARY;
}

// The issue's run, shrunk to a few seconds: a 2-layer MLP whose gemm shapes are the ones that
// corrupted the heap, data generation, evaluation every 2048 samples, outputs at the end.
json stress_config() {
  return json::parse(R"({
    "name": "stress", "seed": 1,
    "platform": {"network": {"model": "lv08"}, "topology": {"kind": "star"},
      "workers": {"count": 4, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "10us"}},
      "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "10us"}}},
    "model": {"kind": "mlp", "hidden": [256, 256]},
    "dataset": {"kind": "synthetic", "train": 8192, "test": 512, "features": 128, "classes": 10},
    "algorithm": {"name": "ssgd", "lr": 0.05},
    "training": {"batch_size": 16, "samples": 49152, "eval_every_samples": 2048},
    "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.01}}
  })");
}

struct Child {
  pid_t pid = -1;
  fs::path dir;
  double delay_s = 0;
  int sig = 0;
  std::chrono::steady_clock::time_point started;
  bool signalled = false;
};

pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen(log.c_str(), "w", stderr);
    std::vector<char*> argv;
    for (auto a : args) argv.push_back(::strdup(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int exit_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

// No temporary file left, and every result file there parses; a summary's status matches the code.
void check_run_dir(const fs::path& out, int code, const std::string& what) {
  if (!fs::exists(out)) return;
  for (const auto& e : fs::directory_iterator(out))
    CHECK_MESSAGE(e.path().filename().string().find(".tmp") == std::string::npos, what, ": left over ", e.path());
  if (fs::exists(out / "config.resolved.json"))
    CHECK_MESSAGE(json::parse(clitest::slurp(out / "config.resolved.json"), nullptr, false).is_object(), what);
  if (!fs::exists(out / "summary.json")) return;
  const json s = json::parse(clitest::slurp(out / "summary.json"), nullptr, false);
  REQUIRE_MESSAGE(s.is_object(), what, ": summary.json does not parse");
  const std::string status = s.value("status", "");
  if (code == 0) CHECK_MESSAGE(status == "completed", what, ": exit 0 with status ", status);
  else CHECK_MESSAGE((status == "interrupted" || status == "completed"), what, ": status ", status);
  const std::string metrics = clitest::slurp(out / "metrics.csv");
  CHECK_MESSAGE((!metrics.empty() && metrics.back() == '\n'), what, ": metrics.csv incomplete");
  const std::string npy = clitest::slurp(out / "final_params.npy");
  REQUIRE_MESSAGE(npy.size() > 10, what);
  const size_t header = 10 + (static_cast<unsigned char>(npy[8]) | (static_cast<size_t>(static_cast<unsigned char>(npy[9])) << 8));
  CHECK_MESSAGE(npy.size() == header + 4 * s["model_parameters"].get<size_t>(), what, ": final_params.npy truncated");
}

// Starts `count` children (at most `parallel` at once), each signalled `sig` at a random instant
// in [0, 3 s) after its start; checks every exit.
void stress(const std::vector<std::string>& (*args_of)(const fs::path&), const fs::path& root, int sig, int count,
            int parallel, uint64_t seed, bool sweep) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> when(0.0, 3.0);
  std::vector<Child> running;
  int started = 0, codes[256] = {};
  auto check = [&](const Child& c, int st) {
    const int code = exit_code(st);
    if (!c.signalled) CHECK_MESSAGE(code == 0, "finished before its signal with exit ", code);
    ++codes[code & 255];
    const std::string what = (sweep ? "sweep" : "run") + std::string(" signalled ") + std::to_string(c.sig) + " at " +
                              std::to_string(c.delay_s) + " s: exit " + std::to_string(code) + " (" +
                              clitest::slurp(c.dir / "stderr.txt").substr(0, 400) + ")";
    CHECK_MESSAGE((code == 128 + sig || code == 0), what);  // never 134 (abort) or 139 (crash)
    // No SimGrid report either: a receive posted when the stop came printed ~Comm's backtrace.
    CHECK_MESSAGE(clitest::slurp(c.dir / "stderr.txt").find("Backtrace") == std::string::npos, what);
    if (sweep) {
      const fs::path out = c.dir / "out";
      if (fs::exists(out / "results.csv")) CHECK_MESSAGE(clitest::slurp(out / "results.csv").back() == '\n', what);
      if (fs::exists(out / "runs"))
        for (const auto& r : fs::directory_iterator(out / "runs")) check_run_dir(r.path(), code == 0 ? 0 : 130, what);
    } else {
      check_run_dir(c.dir / "out", code, what);
    }
    fs::remove_all(c.dir);
  };
  while (started < count || !running.empty()) {
    while (started < count && static_cast<int>(running.size()) < parallel) {
      Child c;
      c.dir = root / (std::to_string(sig) + "-" + std::to_string(started));
      fs::create_directories(c.dir);
      c.delay_s = when(rng);
      c.sig = sig;
      c.pid = spawn(args_of(c.dir), c.dir / "stderr.txt");
      c.started = std::chrono::steady_clock::now();
      running.push_back(c);
      ++started;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (size_t i = 0; i < running.size();) {
      Child& c = running[i];
      const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - c.started).count();
      if (!c.signalled && age >= c.delay_s) {
        ::kill(c.pid, sig);
        c.signalled = true;
      }
      int st = 0;
      const pid_t r = ::waitpid(c.pid, &st, WNOHANG);
      if (r == c.pid) {
        check(c, st);
        running.erase(running.begin() + static_cast<long>(i));
        continue;
      }
      if (age > 120) {  // a hang is a failure too
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &st, 0);
        FAIL("no exit within 120 s after the signal at ", c.delay_s, " s");
      }
      ++i;
    }
  }
  MESSAGE("signal ", sig, ": ", codes[0], " finished before it, ", codes[128 + sig], " stopped by it, ",
          count - codes[0] - codes[128 + sig], " other exits");
}

const std::vector<std::string>& run_args(const fs::path& dir) {
  static std::vector<std::string> a;
  static int n = 0;
  const fs::path cfg = dir / "config.json";
  json c = stress_config();
  // every other run Pipe-SGD on the PS: its server had a receive posted at most stops
  if (n++ % 2) c["algorithm"] = {{"name", "pipe-sgd"}, {"comm", "ps"}, {"lr", 0.05}};
  std::ofstream(cfg) << c.dump(2);
  a = {binary(), "run", cfg.string(), "--out", (dir / "out").string(), "--quiet"};
  return a;
}

const std::vector<std::string>& sweep_args(const fs::path& dir) {
  static std::vector<std::string> a;
  json base = stress_config();
  base["training"]["samples"] = 8192;
  std::ofstream(dir / "base.json") << base.dump(2);
  json study = {{"name", "stress-sweep"}, {"base", "base.json"},
                {"vary", {{"algorithm.name", {"ssgd", "asgd", "local-sgd", "ssp"}}}}};
  std::ofstream(dir / "study.json") << study.dump(2);
  a = {binary(), "sweep", (dir / "study.json").string(), "--out", (dir / "out").string(), "--jobs", "2", "--quiet"};
  return a;
}

}  // namespace

TEST_CASE("signals stress: SIGINT and SIGTERM at 40 random instants each of real-mode runs exit 130/143 or 0, outputs complete") {
  clitest::Scratch s;
  stress(run_args, s.dir, SIGINT, 40, 4, 11, false);
  stress(run_args, s.dir, SIGTERM, 40, 4, 12, false);
}

TEST_CASE("signals stress: SIGINT and SIGTERM at random instants of a running sweep exit 130/143 or 0, outputs complete") {
  clitest::Scratch s;
  stress(sweep_args, s.dir, SIGINT, 10, 2, 21, true);
  stress(sweep_args, s.dir, SIGTERM, 10, 2, 22, true);
}

}  // namespace test_signal_stress_cpp
