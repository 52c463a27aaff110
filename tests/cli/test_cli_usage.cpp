// The command line of every dtsim command (CLI11, tools/dtsim/cli.hpp): one --help layout, one
// error wording, exit code 2 for every usage error; the wrong kind of file recognised
// (issue 16, item 5); `dtsim algorithms NAME`.
#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "helpers.hpp"

namespace test_cli_usage_cpp {  // one namespace per test file: the test targets are unity builds

namespace {

using namespace clitest;

const std::vector<std::string> kCommands = {"run", "validate", "sweep", "profile", "algorithms"};

// A usage error: exit 2, nothing on stdout, exactly "error: <msg>" and the hint naming the command.
void expect_usage_error(const Result& r, const std::string& command, const std::string& msg) {
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(r.err.find(msg) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);
  CHECK(r.err.find("\nRun '" + command + " --help' for usage.\n") != std::string::npos);
}

}  // namespace

TEST_CASE("usage: every command's --help has the same layout: usage lines, description, options") {
  for (const auto& c : kCommands) {
    CAPTURE(c);
    for (const char* flag : {"--help", "-h"}) {
      const Result r = dtsim(c + " " + flag);
      CHECK(r.code == 0);
      CHECK(r.err.empty());
      CHECK(r.out.rfind("Usage: dtsim " + c, 0) == 0);
      CHECK(r.out.find("\nOptions:\n") != std::string::npos);
      CHECK(r.out.find("-h,--help") != std::string::npos);
    }
  }
  const Result top = dtsim("--help");
  CHECK(top.code == 0);
  CHECK(top.out.rfind("Usage: dtsim run CONFIG.json", 0) == 0);
  for (const auto& c : kCommands) CHECK(top.out.find("\n  " + c + " ") != std::string::npos);  // the commands, listed
  CHECK(top.out.find("Exit codes:") != std::string::npos);
  CHECK(dtsim("help").out == top.out);
  // Options keep their value names in the help (the test of each command pins a few more).
  CHECK(dtsim("sweep --help").out.find("--slurm") != std::string::npos);
  CHECK(dtsim("profile --help").out.find("--input C,H,W") != std::string::npos);
}

TEST_CASE("usage: unknown options, missing values and extra arguments are exit 2 in one wording") {
  const std::string study = DTSIM_SOURCE_DIR "/examples/quickstart-study.json";
  const std::string config = DTSIM_SOURCE_DIR "/examples/quickstart.json";
  expect_usage_error(dtsim("run " + config + " --qiuet"), "dtsim run", "unknown option '--qiuet' (did you mean '--quiet'?)");
  expect_usage_error(dtsim("validate " + config + " --rout=a,b"), "dtsim validate", "did you mean '--route'?");
  expect_usage_error(dtsim("sweep " + study + " --job 2"), "dtsim sweep", "unknown option '--job' (did you mean '--jobs'?)");
  expect_usage_error(dtsim("profile mlp --input 1,4,4 --batch 4 --devcie cpu"), "dtsim profile",
                     "unknown option '--devcie' (did you mean '--device'?)");
  expect_usage_error(dtsim("algorithms ssgd asgd"), "dtsim algorithms", "unexpected argument 'asgd'");
  expect_usage_error(dtsim("run " + config + " other.json"), "dtsim run", "unexpected argument 'other.json'");
  expect_usage_error(dtsim("run " + config + " --out"), "dtsim run", "--out needs a value");
  expect_usage_error(dtsim("sweep " + study + " --jobs"), "dtsim sweep", "--jobs needs a value");
  expect_usage_error(dtsim("sweep " + study + " --jobs two"), "dtsim sweep", "--jobs needs a whole number in [1, 4096], got 'two'");
  expect_usage_error(dtsim("sweep " + study + " --cell 1 --collect"), "dtsim sweep", "at most one of");
  expect_usage_error(dtsim("sweep " + study + " --partition gpu"), "dtsim sweep", "go with --slurm");
  expect_usage_error(dtsim("profile mlp --batch 4"), "dtsim profile", "missing --input C,H,W");
  expect_usage_error(dtsim("--bogus"), "dtsim", "unknown option '--bogus'");
  expect_usage_error(dtsim("swep " + study), "dtsim", "unknown command 'swep' (did you mean 'sweep'?)");
  expect_usage_error(dtsim(""), "dtsim", "missing command");
  // --set takes one KEY=VALUE each time: a second word is not another override.
  expect_usage_error(dtsim("validate " + config + " --set seed=2 seed=3"), "dtsim validate", "unexpected argument 'seed=3'");
}

TEST_CASE("usage: options in every spelling: --opt=value, -j N, repeated --set") {
  const std::string config = DTSIM_SOURCE_DIR "/examples/quickstart.json";
  Result r = dtsim("validate " + config + " --set=platform.workers.count=6 --set seed=5 --route=worker-0,server-0");
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("6 x ") != std::string::npos);
  CHECK(r.out.find("worker-0") != std::string::npos);
  r = dtsim("sweep " DTSIM_SOURCE_DIR "/examples/quickstart-study.json -j 2 --dry-run --set=training.samples=100");
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("valid, 4 runs") != std::string::npos);
  // "--" ends the options (it was "unknown option '--' (did you mean '-h'?)"); what follows is an argument
  r = dtsim("algorithms -- ssgd");
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("ssgd\n", 0) == 0);
  r = dtsim("validate -- " + config + " --set seed=2");
  CHECK(r.code == 2);
  CHECK(r.err.find("unexpected argument '--set'") != std::string::npos);
}

TEST_CASE("usage: dtsim run on a study and dtsim sweep on an experiment say which command runs it") {
  // Before: "platform: missing required key" and "unknown key 'algorithm'".
  Scratch s;
  const std::string study = DTSIM_SOURCE_DIR "/examples/quickstart-study.json";
  const std::string config = DTSIM_SOURCE_DIR "/examples/quickstart.json";
  Result r = dtsim("run " + study + " --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err == "error: " + study + ": this is a study (it has \"base\" and \"vary\"), not an experiment: run it with 'dtsim sweep " +
                     study + "'\n");
  CHECK(!fs::exists(s.dir / "out"));
  r = dtsim("sweep " + config + " --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("error: " + config + ": this is an experiment, not a study") == 0);
  CHECK(r.err.find("run it with 'dtsim run " + config + "'") != std::string::npos);
  CHECK(!fs::exists(s.dir / "out"));
  // validate still takes both.
  CHECK(dtsim("validate " + study).code == 0);
  CHECK(dtsim("validate " + config).code == 0);
}

TEST_CASE("usage: dtsim algorithms NAME prints that algorithm only, an unknown name is exit 2 with the nearest") {
  const Result all = dtsim("algorithms");
  REQUIRE(all.code == 0);
  const Result one = dtsim("algorithms od-sgd");
  CAPTURE(one.err);
  REQUIRE(one.code == 0);
  CHECK(one.out.rfind("od-sgd\n", 0) == 0);
  CHECK(one.out.find("\nssgd\n") == std::string::npos);
  CHECK(one.out.find("\nasgd\n") == std::string::npos);
  CHECK(one.out.find("    local_optimizer     dc-asgd-adaptive  worker-side optimizer") != std::string::npos);
  CHECK(all.out.find(one.out) != std::string::npos);  // the same block as in the full list
  CHECK(one.out.size() < all.out.size() / 4);
  expect_usage_error(dtsim("algorithms ssdg"), "dtsim algorithms", "unknown algorithm 'ssdg' (did you mean 'ssgd'?)");
}

}  // namespace test_cli_usage_cpp
