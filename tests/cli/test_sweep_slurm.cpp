// `dtsim sweep --slurm | --cell I | --collect` (issue 17, tools/dtsim/sweep_slurm.cpp): the job array
// script, each array task's command run here with SLURM_ARRAY_TASK_ID set, and --collect giving
// the local sweep's results.csv; then the same through a real single-node Slurm (slurmctld, slurmd
// and munged from Debian's slurm-wlm and munge, started by the test in its own directory), skipped
// (exit 77) where those cannot start.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "sweep_helpers.hpp"

namespace test_sweep_slurm_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace clitest;
using namespace sweeptest;

// A study of 6 runs, 3 of which fail (an IDX dataset cut short): failures recorded the same way
// by both paths.
std::string write_study(const Scratch& s) {
  fs::create_directories(s.dir / "bad");
  auto idx = [&](const std::string& name, std::vector<unsigned char> header, size_t payload) {
    gzFile f = gzopen((s.dir / "bad" / name).c_str(), "wb");
    gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
    std::vector<unsigned char> zeros(payload, 0);
    if (payload) gzwrite(f, zeros.data(), static_cast<unsigned>(payload));
    gzclose(f);
  };
  idx("train-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28}, 784 * 10 - 100);
  idx("train-labels-idx1-ubyte.gz", {0, 0, 8, 1, 0, 0, 0, 10}, 10);
  idx("t10k-images-idx3-ubyte.gz", {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 28, 0, 0, 0, 28}, 784 * 4);
  idx("t10k-labels-idx1-ubyte.gz", {0, 0, 8, 1, 0, 0, 0, 4}, 4);
  json exp = json::parse(kTinyExperiment);
  exp.erase("name");
  const json good = exp["dataset"], bad = {{"kind", "mnist"}, {"path", (s.dir / "bad").string()}};
  // An inline base (the tasks read it from the output directory); "vary" in this order: the
  // broken dataset makes runs 3, 4 and 5 fail.
  return s.write("study.json", R"({"name": "arr", "base": )" + exp.dump() + R"(, "vary": {"dataset": [)" + good.dump() + ", " +
                                   bad.dump() + R"(], "algorithm.name": ["ssgd", "asgd", "local-sgd"]}})");
}

std::string script_line(const std::string& script, const std::string& prefix) {
  std::istringstream in(script);
  for (std::string l; std::getline(in, l);)
    if (l.rfind(prefix, 0) == 0) return l;
  return "";
}

}  // namespace

TEST_CASE("sweep --slurm: a job array script, every task run here with SLURM_ARRAY_TASK_ID, then --collect, gives the local results.csv") {
  Scratch s;
  const std::string study = write_study(s);
  const fs::path local = s.dir / "local", arr = s.dir / "arr";
  const Result l = dtsim("sweep " + study + " --jobs 2 --quiet --out " + local.string());
  REQUIRE_MESSAGE(l.code == 1, l.err);  // the failing runs

  Result r = dtsim("sweep " + study + " --slurm --partition debug --time 0:10:00 --cpus-per-task 2 --max-parallel 3 --out " +
                   arr.string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const std::string file = (arr / "slurm" / "arr.sbatch").string();
  CHECK(r.out == "sbatch " + file + "\n");
  CHECK(r.err.find("6 of 6 runs to do") != std::string::npos);
  CHECK(r.err.find(" --collect --plot") != std::string::npos);
  const std::string script = slurp(file);
  CAPTURE(script);
  CHECK(script.rfind("#!/bin/bash\n", 0) == 0);
  CHECK(script_line(script, "#SBATCH --array=") == "#SBATCH --array=0-5%3");
  CHECK(script_line(script, "#SBATCH --partition=") == "#SBATCH --partition=debug");
  CHECK(script_line(script, "#SBATCH --time=") == "#SBATCH --time=0:10:00");
  CHECK(script_line(script, "#SBATCH --cpus-per-task=") == "#SBATCH --cpus-per-task=2");
  CHECK(script_line(script, "exec ").find(" sweep " + study + " --out " + arr.string() + " --cell \"$SLURM_ARRAY_TASK_ID\"") !=
        std::string::npos);
  CHECK(fs::exists(arr / "base.json"));  // the inline base, for the tasks

  // Every array task, here, in a scrambled order.
  for (int i : {3, 0, 5, 1, 4, 2}) {
    const int st = std::system(("SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " bash " + file + " >/dev/null 2>&1").c_str());
    CHECK(WEXITSTATUS(st) == (i >= 3 ? 1 : 0));  // runs 3-5 use the broken dataset
  }
  r = dtsim("sweep " + study + " --collect --out " + arr.string());
  CAPTURE(r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("6 runs: 3 complete, 3 failed, 0 interrupted, 0 not run") != std::string::npos);
  const Table a = with_out_dir(without_wall_times(read_table(local / "results.csv")), local.string()),
              b = with_out_dir(without_wall_times(read_table(arr / "results.csv")), arr.string());
  REQUIRE(a.rows.size() == 6);
  CHECK(a.header == b.header);
  CHECK(a.rows == b.rows);
  CHECK(column(b, 3, "status") == "failed");
  CHECK(column(b, 3, "error").find("exit code 2") == 0);
  // --collect over the local sweep's directory records its failed runs as failed too (it listed
  // them as not_run: only --cell left their record).
  r = dtsim("sweep " + study + " --collect --out " + local.string());
  CHECK(r.code == 1);
  CHECK_MESSAGE(r.err.find("6 runs: 3 complete, 3 failed, 0 interrupted, 0 not run") != std::string::npos, r.err);
  CHECK(with_out_dir(without_wall_times(read_table(local / "results.csv")), local.string()).rows == a.rows);

  // Resubmitting: a task of a complete run does nothing; a new --slurm lists only the failed runs.
  CHECK(std::system(("SLURM_ARRAY_TASK_ID=1 bash " + file + " >/dev/null 2>&1").c_str()) == 0);
  r = dtsim("sweep " + study + " --slurm --out " + arr.string());
  CHECK(r.code == 0);
  CHECK(script_line(slurp(file), "#SBATCH --array=") == "#SBATCH --array=3-5");
  // A task index that is not a run of the study.
  const Result bad = dtsim("sweep " + study + " --cell 6 --out " + arr.string());
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--cell 6 is not a run of") != std::string::npos);
  // Each option is one #SBATCH line: a line break put a shell command into the script, exit 0.
  const Result nl = dtsim("sweep " + study + " --slurm --partition 'gpu\necho INJECTED' --out " + arr.string());
  CHECK(nl.code == 2);
  CHECK(nl.err.find("--partition needs partition names") != std::string::npos);
  CHECK(slurp(file).find("INJECTED") == std::string::npos);
  const Result t = dtsim("sweep " + study + " --slurm --time banana --out " + arr.string());
  CHECK(t.code == 2);
  CHECK(t.err.find("--time needs a Slurm time limit") != std::string::npos);
  // --collect where nothing of the study was run or submitted (a typo): it made the directory and
  // a results.csv of not_run rows.
  const Result typo = dtsim("sweep " + study + " --collect --out " + (s.dir / "arrr").string());
  CHECK(typo.code == 2);
  CHECK(typo.err.find("holds neither runs/ nor slurm/") != std::string::npos);
  CHECK(!fs::exists(s.dir / "arrr"));
  for (const char* ok : {"30", "1:30:00", "2-12", "2-12:30:00", "UNLIMITED"})
    CHECK(dtsim("sweep " + study + " --slurm --time " + ok + " --partition a,b_c.d-e --out " + arr.string()).code == 0);
}

// Under an MPI launcher with several ranks every rank ran the cell in the same directory at once
// (3 of 26 tries recorded a complete run as failed). Only rank 0 does it now.
TEST_CASE("sweep --cell, --slurm and --collect under an MPI launcher run on rank 0 only") {
  Scratch s;
  const std::string study = write_study(s);
  const fs::path out = s.dir / "out";
  auto as_rank = [&](int rank, const std::string& args) {
    ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    ::setenv("OMPI_COMM_WORLD_RANK", std::to_string(rank).c_str(), 1);
    const Result r = dtsim(args);
    ::unsetenv("OMPI_COMM_WORLD_SIZE");
    ::unsetenv("OMPI_COMM_WORLD_RANK");
    return r;
  };
  const Result one = as_rank(1, "sweep " + study + " --cell 0 --out " + out.string());
  CHECK(one.code == 0);
  CHECK(one.err.empty());
  CHECK(!fs::exists(out / "runs"));
  const Result zero = as_rank(0, "sweep " + study + " --cell 0 --out " + out.string());
  CAPTURE(zero.err);
  CHECK(zero.code == 0);
  CHECK(zero.err.find("warning: --cell runs in one process: rank 0 does it, ranks 1 to 1 of the MPI launcher do nothing") != std::string::npos);
  CHECK(fs::exists(out / "runs"));
}

TEST_CASE("sweep --slurm through a real single-node Slurm: sbatch the array, --collect the results") {
  // Needs Debian's slurmctld, slurmd, slurm-client and munge, and root (slurmd runs the jobs).
  for (const char* b : {"slurmctld", "slurmd", "sbatch", "squeue", "munged"})
    if (std::system(("command -v " + std::string(b) + " >/dev/null 2>&1 || test -x /usr/sbin/" + b).c_str()) != 0)
      return skip(std::string(b) + " is missing (apt-get install slurmctld slurmd slurm-client munge)");
  if (::geteuid() != 0) return skip("a private Slurm needs root (slurmd runs the jobs as their user)");
  const int st = std::system("bash " DTSIM_SOURCE_DIR "/tests/cli/slurm_single_node.sh check >/dev/null 2>&1");
  if (WEXITSTATUS(st) == 77) return skip("slurm_single_node.sh cannot start a Slurm here");
  Scratch s;
  const std::string study = write_study(s);
  const fs::path local = s.dir / "local", arr = s.dir / "arr";
  REQUIRE(dtsim("sweep " + study + " --jobs 2 --quiet --out " + local.string()).code == 1);
  const Result r = dtsim("sweep " + study + " --slurm --max-parallel 2 --time 0:05:00 --out " + arr.string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  // tests/cli/slurm_single_node.sh: starts munged, slurmctld and slurmd in its own directory,
  // submits with sbatch --wait, stops them; 77 when they cannot start.
  const int rc = std::system(("bash " DTSIM_SOURCE_DIR "/tests/cli/slurm_single_node.sh run " + s.dir.string() + "/slurm " +
                              r.out.substr(7, r.out.size() - 8) + " > " + (s.dir / "slurm.log").string() + " 2>&1")
                                 .c_str());
  CAPTURE(slurp(s.dir / "slurm.log"));
  if (WEXITSTATUS(rc) == 77) return skip("slurm_single_node.sh could not start Slurm: " + slurp(s.dir / "slurm.log"));
  REQUIRE(WEXITSTATUS(rc) == 0);
  const Result c = dtsim("sweep " + study + " --collect --out " + arr.string());
  CAPTURE(c.err);
  CHECK(c.err.find("6 runs: 3 complete, 3 failed") != std::string::npos);
  CHECK(with_out_dir(without_wall_times(read_table(local / "results.csv")), local.string()).rows ==
        with_out_dir(without_wall_times(read_table(arr / "results.csv")), arr.string()).rows);
}

}  // namespace test_sweep_slurm_cpp
