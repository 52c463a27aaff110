// Shared by the CLI tests: run the real `dtsim` binary as a child process and capture its exit
// code, stdout and stderr; a scratch directory removed at the end of the test.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace clitest {

namespace fs = std::filesystem;

struct Result {
  int code = -1;  // exit code, or 128 + signal
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `dtsim ARGS` through the shell (ARGS may hold redirections or quoted values), stdin from /dev/null.
inline Result dtsim(const std::string& args) {
  static std::atomic<int> counter{0};
  const std::string o = fs::temp_directory_path() /
                        ("dtsim-cli-out-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  const std::string e = o + ".err";
  const std::string cmd = std::string(DTSIM_BINARY) + " " + args + " >" + o + " 2>" + e + " </dev/null";
  const int st = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(o);
  r.err = slurp(e);
  fs::remove(o);
  fs::remove(e);
  return r;
}

// A fresh directory under /tmp, removed with everything in it when the test ends.
struct Scratch {
  fs::path dir;
  Scratch() {
    char t[] = "/tmp/dtsim-cli-XXXXXX";
    dir = ::mkdtemp(t);
  }
  ~Scratch() { fs::remove_all(dir); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
};

}  // namespace clitest
