// Test helpers: small experiments built in memory, each run in a forked child process (SimGrid keeps
// its clock, config and callbacks across Engines in one process: DEVELOPERS.md, "Building and testing").
#pragma once
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/io.hpp"
#include "sim/config.hpp"
#include "sim/outputs.hpp"
#include "sim/runtime.hpp"

namespace dtsim::test {

using sim::Experiment;

// A small synthetic experiment: timing knobs are exact and easy to reason about.
inline json small_config(int workers = 4, int servers = 1) {
  json j = json::parse(R"({
    "name": "t",
    "seed": 7,
    "platform": {
      "network": {"model": "exact"},
      "topology": {"kind": "star"},
      "workers": {"count": 4, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}},
      "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}}
    },
    "model": {"kind": "mlp", "hidden": [30]},
    "dataset": {"kind": "synthetic", "train": 2048, "test": 512, "features": 64, "classes": 10},
    "algorithm": {"name": "ssgd", "lr": 0.05, "momentum": 0.9},
    "training": {"batch_size": 16, "samples": 2048, "eval_every_samples": 0},
    "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.01}},
    "output": {"trace": false}
  })");
  j["platform"]["workers"]["count"] = workers;
  j["platform"]["servers"]["count"] = servers;
  return j;
}

// The tests written for whole-vector timing (closed forms, failures, checkpoints) pin it: a config
// whose algorithm section names no overlap runs with {"kind": "none"} here, not with the
// algorithm's layer-wise default (tests/sim/test_layerwise.cpp tests those).
inline Experiment load(json doc, const std::vector<std::string>& sets = {}) {
  if (doc.contains("algorithm") && doc["algorithm"].is_object() && !doc["algorithm"].contains("overlap"))
    doc["algorithm"]["overlap"] = {{"kind", "none"}};
  return sim::load_experiment_json(std::move(doc), "test.json", DTSIM_SOURCE_DIR "/tests", sets);
}

struct ChildRun {
  int exit_code = -1;
  std::string error;
  json summary;
  std::string metrics;
  std::string params_npy;  // raw .npy bytes
  std::vector<float> params;
  std::string trace;
  std::string links;  // links.csv
  long max_rss_kb = 0;
};

inline std::vector<float> npy_floats(const std::string& npy) {
  if (npy.size() < 10) return {};
  const size_t hl = static_cast<unsigned char>(npy[8]) | (static_cast<size_t>(static_cast<unsigned char>(npy[9])) << 8);
  const size_t off = 10 + hl;
  std::vector<float> v((npy.size() - off) / 4);
  std::memcpy(v.data(), npy.data() + off, v.size() * 4);
  return v;
}

// A temporary directory, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dtsim-test-dir-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path; }
  std::string file(const std::string& n) const { return path + "/" + n; }
};

// A tiny CIFAR-10 binary set in `dir`: `records` images per training file and in the test file,
// labels r % 10.
inline void write_cifar(const std::string& dir, int records) {
  std::filesystem::create_directories(dir);
  auto one = [&](const std::string& name, int seed) {
    FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
    REQUIRE(f);
    for (int r = 0; r < records; ++r) {
      std::fputc(r % 10, f);
      for (int p = 0; p < 3072; ++p) std::fputc((p * 7 + r * 13 + seed) % 256, f);
    }
    std::fclose(f);
  };
  for (int i = 1; i <= 5; ++i) one("data_batch_" + std::to_string(i) + ".bin", i);
  one("test_batch.bin", 0);
}

inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `x` in a child process and reads back what it wrote.
inline ChildRun run_forked(const Experiment& x, const sim::RunHooks& hooks = {}) {
  char tmpl[] = "/tmp/dtsim-test-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      sim::RunResult r = sim::run(x, hooks);
      sim::write_outputs(x, r, dir);
    } catch (const InputError& e) {
      io::atomic_write(dir + "/error.txt", e.what());
      code = 2;
    } catch (const std::exception& e) {
      io::atomic_write(dir + "/error.txt", e.what());
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ChildRun out;
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  out.max_rss_kb = ru.ru_maxrss;
  out.error = slurp(dir + "/error.txt");
  if (io::file_exists(dir + "/summary.json")) out.summary = json::parse(slurp(dir + "/summary.json"));
  out.metrics = slurp(dir + "/metrics.csv");
  out.params_npy = slurp(dir + "/final_params.npy");
  out.params = npy_floats(out.params_npy);
  out.trace = slurp(dir + "/trace.json");
  out.links = slurp(dir + "/links.csv");
  std::filesystem::remove_all(dir);
  if (out.exit_code != 0) MESSAGE("child run failed: ", out.error);
  return out;
}

// A new empty file under /tmp (for a forked child's answer), named /tmp/dtsim-<what>-XXXXXX.
inline std::string temp_file(const std::string& what) {
  std::string tmpl = "/tmp/dtsim-" + what + "-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  REQUIRE(fd >= 0);
  ::close(fd);
  return tmpl;
}

// A CSV text's rows, split at commas (dtsim's own CSVs quote nothing in links.csv or metrics.csv).
inline std::vector<std::vector<std::string>> csv_rows(const std::string& csv) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    out.push_back(f);
  }
  return out;
}

// Two numbers equal to a relative `tol`.
inline bool near(double a, double b, double tol = 1e-9) {
  return std::fabs(a - b) <= tol * std::max(std::fabs(a), std::fabs(b)) + 1e-15;
}

// Every field of two summaries, numbers to `tol` (the wall time, the busiest link's name, which
// can tie, and workers_simulated excepted).
inline void check_json(const json& a, const json& b, const std::string& path, double tol = 1e-9) {
  CAPTURE(path);
  if (a.is_number() && b.is_number()) {
    CHECK(near(a.get<double>(), b.get<double>(), tol));
    return;
  }
  REQUIRE(a.type() == b.type());
  if (a.is_object()) {
    REQUIRE(a.size() == b.size());
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (it.key() == "wall_time_s" || it.key() == "workers_simulated" || (path == "busiest_link" && it.key() == "name")) continue;
      REQUIRE(b.contains(it.key()));
      check_json(it.value(), b[it.key()], path.empty() ? it.key() : path + "." + it.key(), tol);
    }
  } else if (a.is_array()) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) check_json(a[i], b[i], path + "[" + std::to_string(i) + "]", tol);
  } else {
    CHECK(a == b);
  }
}

// Two CSV files with the same rows, numeric cells to `tol` (column `skip`, e.g. the wall time, excepted).
inline void check_csv(const std::string& a, const std::string& b, int skip, double tol = 1e-9) {
  const auto ra = csv_rows(a), rb = csv_rows(b);
  REQUIRE(ra.size() == rb.size());
  REQUIRE(ra.size() > 1);
  for (size_t i = 0; i < ra.size(); ++i) {
    REQUIRE(ra[i].size() == rb[i].size());
    for (size_t c = 0; c < ra[i].size(); ++c) {
      if (static_cast<int>(c) == skip || ra[i][c] == rb[i][c]) continue;
      CAPTURE(ra[i][0]);
      CAPTURE(c);
      char* end = nullptr;
      const double x = std::strtod(ra[i][c].c_str(), &end);
      REQUIRE(*end == '\0');  // text cells (link names) must be equal
      CHECK(near(x, std::stod(rb[i][c]), tol));
    }
  }
}

// metrics.csv without its wall_time_s column (the only column that differs between equal runs).
inline std::string metrics_without_wall(const std::string& csv) {
  std::string out, line;
  std::istringstream in(csv);
  while (std::getline(in, line)) {
    const auto a = line.find(','), b = line.find(',', a + 1);
    out += line.substr(0, a) + line.substr(b) + "\n";
  }
  return out;
}

// ||a - b|| / ||b||
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace dtsim::test
