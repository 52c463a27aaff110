// Shared by the sweep tests (tests/cli/test_sweep*.cpp): a tiny experiment, results.csv reading and
// comparing, and the skip rule for tests that need something optional (MPI, Slurm).
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "helpers.hpp"

namespace sweeptest {

namespace fs = std::filesystem;

// A tiny experiment (synthetic data, fixed compute time): a run takes a fraction of a second.
inline const char* kTinyExperiment = R"({
  "name": "tiny", "seed": 1,
  "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
    "workers": {"count": 2, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}},
    "servers": {"count": 1, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}}},
  "model": {"kind": "mlp", "hidden": [8]},
  "dataset": {"kind": "synthetic", "train": 256, "test": 64, "features": 8},
  "algorithm": {"name": "ssgd", "lr": 0.1},
  "training": {"batch_size": 8, "samples": 512, "eval_every_samples": 128, "target_accuracy": [0.2, 0.99]},
  "compute": {"time": {"kind": "fixed", "seconds": 0.001}},
  "output": {"trace": false}
})";

// results.csv: its header and rows, as text lines split on commas outside quotes.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

inline std::vector<std::string> split_line(const std::string& text, size_t& pos) {
  std::vector<std::string> f;
  std::string cur;
  bool q = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (q) {
      if (c == '"' && pos + 1 < text.size() && text[pos + 1] == '"') {
        cur += '"';
        ++pos;
      } else if (c == '"') {
        q = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      q = true;
    } else if (c == ',') {
      f.push_back(cur);
      cur.clear();
    } else if (c == '\n') {
      ++pos;
      break;
    } else {
      cur += c;
    }
  }
  f.push_back(cur);
  return f;
}

inline Table read_table(const fs::path& p) {
  const std::string t = clitest::slurp(p);
  Table c;
  size_t pos = 0;
  if (t.empty()) return c;
  c.header = split_line(t, pos);
  while (pos < t.size()) c.rows.push_back(split_line(t, pos));
  return c;
}

// results.csv without the columns that measure wall-clock time (they differ between any two runs)
// and compute_pool (the threads a run got depend on how the sweep shares the cores).
inline Table without_wall_times(Table t) {
  std::vector<size_t> keep;
  for (size_t i = 0; i < t.header.size(); ++i)
    if (t.header[i].find("wall") == std::string::npos && t.header[i] != "compute_pool") keep.push_back(i);
  Table out;
  for (size_t i : keep) out.header.push_back(t.header[i]);
  for (const auto& r : t.rows) {
    std::vector<std::string> row;
    for (size_t i : keep) row.push_back(i < r.size() ? r[i] : "");
    out.rows.push_back(row);
  }
  return out;
}

// Every occurrence of `dir` in the cells as "OUT" (an error naming the inline base copy in the
// output directory, DIR/base.json, names a different directory for each sweep).
inline Table with_out_dir(Table t, const std::string& dir) {
  for (auto& r : t.rows)
    for (auto& c : r)
      for (size_t at = c.find(dir); at != std::string::npos; at = c.find(dir, at)) c.replace(at, dir.size(), "OUT");
  return t;
}

inline std::string column(const Table& t, size_t row, const std::string& name) {
  for (size_t i = 0; i < t.header.size(); ++i)
    if (t.header[i] == name) return t.rows.at(row).at(i);
  return "<no column " + name + ">";
}

// Tests that need something optional: exit 77 (ctest's SKIP_RETURN_CODE) when ctest runs this test
// case alone, else a MESSAGE and the caller returns (the other test cases of the binary still run).
inline bool running_one_test_case() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  while (pos < cmd.size()) {
    const std::string arg = cmd.substr(pos, cmd.find('\0', pos) - pos);
    if (arg.rfind("--test-case=", 0) == 0 && arg.find_first_of("*?") == std::string::npos) return true;
    pos += arg.size() + 1;
  }
  return false;
}

inline void skip(const std::string& why) {
  if (running_one_test_case()) {
    std::printf("SKIPPED (exit 77): %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
  }
  MESSAGE("skipped: " << why);
}

}  // namespace sweeptest
