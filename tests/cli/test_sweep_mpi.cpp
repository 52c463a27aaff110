// `mpirun -np R dtsim sweep` (issue 17, tools/dtsim/sweep_mpi.cpp) on localhost: the same
// results.csv as the local sweep, largest cells first, a killed rank's runs re-queued, SIGINT to
// mpirun leaves complete outputs, a resumed sweep runs nothing twice. Skipped (exit 77) when dtsim
// was built without MPI or mpirun is missing.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "sweep_helpers.hpp"

namespace test_sweep_mpi_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace clitest;
using namespace sweeptest;

bool mpi_or_skip() {
#ifndef DTSIM_TEST_MPI
  skip("dtsim was built without MPI (DTSIM_MPI=OFF or no libopenmpi-dev)");
  return false;
#else
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    skip("mpirun is missing (apt-get install openmpi-bin)");
    return false;
  }
  return true;
#endif
}

// mpirun's options for localhost in a container: more ranks than cores, as root, no shared-memory
// single-copy (CMA needs ptrace rights containers rarely give).
std::vector<std::string> mpirun(int ranks, bool recovery = false) {
  std::vector<std::string> a = {"mpirun", "--oversubscribe", "--allow-run-as-root", "--mca",
                                "btl_vader_single_copy_mechanism", "none"};
  if (recovery) a.push_back("--enable-recovery");  // OpenMPI: a dead rank does not end the job
  a.insert(a.end(), {"-np", std::to_string(ranks), DTSIM_BINARY, "sweep"});
  return a;
}

struct Child {
  pid_t pid;
  fs::path err;
};

Child start(const std::vector<std::string>& args, const fs::path& err) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(err.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return {pid, err};
}

// mpirun's exit code; a sweep still running after `limit_s` is killed (and the test fails).
int finish(const Child& c, int limit_s = 240) {
  int status = 0;
  for (int i = 0; i < limit_s * 20; ++i) {
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(c.pid, SIGKILL);
  ::waitpid(c.pid, &status, 0);
  FAIL("mpirun still running after " << limit_s << " s: killed");
  return -1;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// The pid of MPI rank `rank` of a sweep of `study` (from /proc: its environment and command line).
pid_t find_rank(const std::string& study, int rank) {
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    const std::string name = p.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = slurp(p.path() / "cmdline"), env = slurp(p.path() / "environ");
    for (auto& c : cmd) c = c ? c : ' ';
    if (cmd.find(" sweep " + study) == std::string::npos || cmd.find("mpirun") != std::string::npos) continue;
    if (env.find(std::string("OMPI_COMM_WORLD_RANK=") + std::to_string(rank) + '\0') != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// Whether `pid` has a child process (a rank running a `dtsim run`).
bool has_child(pid_t pid) {
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    if (p.path().filename().string().find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = slurp(p.path() / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == pid) return true;
  }
  return false;
}

std::map<std::string, fs::file_time_type> summary_times(const fs::path& out) {
  std::map<std::string, fs::file_time_type> t;
  for (const auto& d : fs::directory_iterator(out / "runs"))
    if (fs::exists(d.path() / "summary.json")) t[d.path().filename().string()] = fs::last_write_time(d.path() / "summary.json");
  return t;
}

}  // namespace

TEST_CASE("sweep over MPI: results.csv equals the local sweep's, and a resumed sweep runs nothing twice") {
  if (!mpi_or_skip()) return;
  Scratch s;
  s.write("exp.json", kTinyExperiment);
  const std::string study = s.write("study.json", R"({"base": "exp.json",
    "vary": {"algorithm.name": ["ssgd", "asgd", "local-sgd"], "platform.workers.count": [1, 2]}})");
  const fs::path local = s.dir / "local", mpi = s.dir / "mpi";
  const Result l = dtsim("sweep " + study + " --jobs 2 --quiet --out " + local.string());
  REQUIRE_MESSAGE(l.code == 0, l.err);

  const Child c = start(with(mpirun(3), {study, "--jobs", "1", "--out", mpi.string()}), s.dir / "mpi.err");
  const int code = finish(c);
  const std::string err = slurp(c.err);
  CAPTURE(err);
  REQUIRE(code == 0);
  CHECK(err.find("6 runs (0 already complete) over 3 MPI ranks") != std::string::npos);
  CHECK(err.find("6 ran, 0 already complete, 0 failed") != std::string::npos);
  const Table a = without_wall_times(read_table(local / "results.csv")), b = without_wall_times(read_table(mpi / "results.csv"));
  REQUIRE(a.rows.size() == 6);
  CHECK(a.header == b.header);
  CHECK(a.rows == b.rows);
  // Bitwise the same runs: the parameters each run ended with.
  for (const auto& d : fs::directory_iterator(local / "runs"))
    CHECK(slurp(d.path() / "final_params.npy") == slurp(mpi / "runs" / d.path().filename() / "final_params.npy"));

  // Again: every run is complete, none runs (no summary.json is rewritten).
  const auto before = summary_times(mpi);
  const Child again = start(with(mpirun(3), {study, "--jobs", "1", "--out", mpi.string()}), s.dir / "again.err");
  CHECK(finish(again) == 0);
  CHECK(slurp(again.err).find("0 ran, 6 already complete") != std::string::npos);
  CHECK(summary_times(mpi) == before);
  CHECK(without_wall_times(read_table(mpi / "results.csv")).rows == a.rows);
}

TEST_CASE("sweep over MPI: rank 0 hands out the largest runs first") {
  if (!mpi_or_skip()) return;
  Scratch s;
  s.write("exp.json", kTinyExperiment);
  // Expected cost = samples x workers; one rank with one job runs them one at a time.
  const std::string study = s.write("study.json", R"({"base": "exp.json",
    "vary": {"training.samples": [256, 1024, 512], "platform.workers.count": [1, 2]}})");
  const Child c = start(with(mpirun(2), {study, "--jobs", "1", "--out", (s.dir / "out").string()}), s.dir / "err");
  const int code = finish(c);
  const std::string err = slurp(c.err);
  CAPTURE(err);
  REQUIRE(code == 0);
  std::vector<std::string> order;
  for (size_t at = err.find("] done "); at != std::string::npos; at = err.find("] done ", at + 1))
    order.push_back(err.substr(at + 7, err.find(' ', at + 7) - at - 7));
  // costs 2048, 1024, 1024, 512, 512, 256; equal costs in the study's order
  CHECK(order == std::vector<std::string>{"training.samples-1024_workers.count-2", "training.samples-1024_workers.count-1",
                                          "training.samples-512_workers.count-2", "training.samples-256_workers.count-2",
                                          "training.samples-512_workers.count-1", "training.samples-256_workers.count-1"});
}

TEST_CASE("sweep over MPI: a rank killed mid-sweep has its runs re-queued and the sweep completes") {
  if (!mpi_or_skip()) return;
  Scratch s;
  json exp = json::parse(kTinyExperiment);
  exp["training"]["samples"] = 20000;  // about a second per run
  exp["model"]["hidden"] = {64};
  std::ofstream(s.dir / "exp.json") << exp.dump();
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"seed": [1, 2, 3, 4, 5, 6]}})");
  const fs::path out = s.dir / "out";
  const Child c = start(with(mpirun(3, true), {study, "--jobs", "1", "--rank-timeout", "5", "--out", out.string()}),
                        s.dir / "err");
  // Rank 1, once it runs a cell: SIGKILL, as if its node had died.
  pid_t victim = -1;
  for (int i = 0; i < 600 && victim < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const pid_t r1 = find_rank(study, 1);
    if (r1 > 0 && has_child(r1)) victim = r1;
  }
  REQUIRE(victim > 0);
  ::kill(victim, SIGKILL);
  const int code = finish(c);
  const std::string err = slurp(c.err);
  CAPTURE(err);
  CHECK(code == 0);
  CHECK(err.find("MPI rank 1 silent for") != std::string::npos);
  CHECK(err.find("1 of its runs re-queued") != std::string::npos);
  CHECK(err.find("6 ran, 0 already complete, 0 failed, 1 re-queued from 1 lost MPI rank (1)") != std::string::npos);
  const Table t = read_table(out / "results.csv");
  REQUIRE(t.rows.size() == 6);
  for (size_t i = 0; i < t.rows.size(); ++i) CHECK(column(t, i, "status") == "completed");
}

TEST_CASE("sweep over MPI: SIGINT to mpirun leaves results.csv and complete runs, resuming runs the rest once") {
  if (!mpi_or_skip()) return;
  Scratch s;
  json exp = json::parse(kTinyExperiment);
  exp["training"]["samples"] = 30000;
  exp["model"]["hidden"] = {64};
  std::ofstream(s.dir / "exp.json") << exp.dump();
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"seed": [1, 2, 3, 4, 5, 6, 7, 8]}})");
  const fs::path out = s.dir / "out";
  const Child c = start(with(mpirun(3), {study, "--jobs", "1", "--out", out.string()}), s.dir / "err");
  bool one_done = false;
  for (int i = 0; i < 4800 && !one_done; ++i) {  // up to 4 min: a sanitizer build under load is slow
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::error_code ec;
    if (fs::exists(out / "runs", ec))
      for (const auto& d : fs::directory_iterator(out / "runs", ec)) one_done |= fs::exists(d.path() / "summary.json");
  }
  REQUIRE(one_done);
  ::kill(c.pid, SIGINT);
  finish(c);  // mpirun's own exit code (1 after SIGINT)
  CAPTURE(slurp(c.err));
  const Table t = read_table(out / "results.csv");
  REQUIRE(t.rows.size() == 8);
  int completed = 0;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const std::string st = column(t, i, "status");
    CAPTURE(st);
    CHECK((st == "completed" || st == "interrupted" || st == "not_run"));
    const fs::path dir = out / column(t, i, "run_dir");
    if (st == "completed") {
      ++completed;
      CHECK(json::parse(slurp(dir / "summary.json"))["status"] == "completed");
    }
  }
  CHECK(completed >= 1);
  CHECK(completed < 8);
  // No run of this sweep is left running.
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) CHECK(slurp(p.path() / "cmdline").find(out.string() + "/runs") == std::string::npos);
  // Resuming: the complete runs are kept as they are, the others run once.
  const auto before = summary_times(out);
  std::set<std::string> completed_before;  // (an interrupted run's summary.json is rewritten when it runs again)
  for (const auto& [run, t0] : before)
    if (json::parse(slurp(out / "runs" / run / "summary.json"))["status"] == "completed") completed_before.insert(run);
  const Child again = start(with(mpirun(3), {study, "--jobs", "1", "--out", out.string()}), s.dir / "again.err");
  CHECK(finish(again) == 0);
  const std::string err = slurp(again.err);
  CAPTURE(err);
  CHECK(err.find(std::to_string(8 - completed) + " ran, " + std::to_string(completed) + " already complete, 0 failed") !=
        std::string::npos);
  const auto after = summary_times(out);
  for (const auto& [run, t0] : before)
    if (completed_before.count(run)) CHECK(after.at(run) == t0);
  const Table done = read_table(out / "results.csv");
  for (size_t i = 0; i < done.rows.size(); ++i) CHECK(column(done, i, "status") == "completed");
}

}  // namespace test_sweep_mpi_cpp
