// `dtsim sweep`: the grid, zip and repeat; results.csv against each run's summary.json; resuming;
// validation before anything runs; failed runs recorded; SIGINT; --plot.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "helpers.hpp"
#include <nlohmann/json.hpp>

namespace test_sweep_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace clitest;

// A tiny experiment (synthetic data, fixed compute time): a run takes a fraction of a second.
const char* kExperiment = R"({
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

// results.csv as header + rows of column -> value (RFC 4180 quoting).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

std::vector<std::string> split_csv_line(const std::string& text, size_t& pos) {
  std::vector<std::string> f;
  std::string cur;
  bool q = false;
  for (; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (q) {
      if (c == '"' && pos + 1 < text.size() && text[pos + 1] == '"') { cur += '"'; ++pos; }
      else if (c == '"') q = false;
      else cur += c;
    } else if (c == '"') q = true;
    else if (c == ',') { f.push_back(cur); cur.clear(); }
    else if (c == '\n') { ++pos; break; }
    else cur += c;
  }
  f.push_back(cur);
  return f;
}

Csv read_csv(const fs::path& p) {
  const std::string t = slurp(p);
  Csv c;
  size_t pos = 0;
  c.header = split_csv_line(t, pos);
  while (pos < t.size()) {
    auto f = split_csv_line(t, pos);
    REQUIRE(f.size() == c.header.size());
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < f.size(); ++i) row[c.header[i]] = f[i];
    c.rows.push_back(row);
  }
  return c;
}

std::string scalar(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

// The study file shown in docs/sweeps.md is valid and has the 48 runs the text counts (it named
// keys it did not vary in "zip" and "plot.regime", and was refused).
TEST_CASE("sweep: the study example of docs/sweeps.md is valid, 48 runs") {
  const std::string doc = slurp(fs::path(DTSIM_SOURCE_DIR) / "docs" / "sweeps.md");
  const size_t at = doc.find("## The study file\n\n```json\n");
  REQUIRE(at != std::string::npos);
  const size_t from = doc.find('{', at), to = doc.find("```", from);
  json study = json::parse(doc.substr(from, to - from));
  study["base"] = std::string(DTSIM_SOURCE_DIR) + "/examples/quickstart.json";
  Scratch s;
  study["out"] = (s.dir / "out").string();
  const Result r = dtsim("sweep " + s.write("study.json", study.dump()) + " --dry-run");
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK((r.out + r.err).find("valid, 48 runs") != std::string::npos);
}

// A run that diverges is a result of the study (exit 3, "status": "diverged"), not a failure: it is
// recorded "diverged" and the sweep exits 0, as when a rerun finds it complete. The first sweep
// recorded it "failed" and exited 1, the rerun "diverged" and exited 0.
TEST_CASE("sweep: a diverged run is recorded diverged, not failed, on the first sweep as on a rerun") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"algorithm.lr": [0.1, 1e30]}})");
  for (int pass = 0; pass < 2; ++pass) {
    CAPTURE(pass);
    const Result r = dtsim("sweep " + study + " --jobs 2 --out " + (s.dir / "out").string());
    CAPTURE(r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find(pass == 0 ? "2 ran, 0 already complete, 0 failed" : "0 ran, 2 already complete, 0 failed") != std::string::npos);
    // the start line: not "2 runs (2 already complete), 1 at a time" when nothing is left to run
    CHECK(r.err.find(pass == 0 ? "sweep study: 2 runs (0 already complete), 2 at a time" : "sweep study: all 2 runs already complete") !=
          std::string::npos);
    const Csv c = read_csv(s.dir / "out" / "results.csv");
    REQUIRE(c.rows.size() == 2);
    for (const auto& row : c.rows) {
      CHECK(row.at("status") == (row.at("algorithm.lr") == "0.1" ? "completed" : "diverged"));
      CHECK(row.at("error").empty());
    }
  }
}

// docs/sweeps.md: "platform" (a platform file, relative to the base experiment) is a key of "vary".
// Every run failed before ("expected an object, got a string" at the base's platform).
TEST_CASE("sweep: vary platform over platform files") {
  Scratch s;
  s.write("exp.json", kExperiment);
  std::string four = json::parse(kExperiment)["platform"].dump();
  four.replace(four.find("\"count\":2"), 9, "\"count\":4");
  s.write("four.json", four);
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"platform": ["four.json", "star-10g-8.json"]}})");
  const Result r = dtsim("sweep " + study + " --jobs 2 --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const Csv c = read_csv(s.dir / "out" / "results.csv");
  REQUIRE(c.rows.size() == 2);
  std::set<std::string> workers;
  for (const auto& row : c.rows) {
    CHECK(row.at("status") == "completed");
    workers.insert(json::parse(slurp(s.dir / "out" / row.at("run_dir") / "summary.json"))["workers"].dump());
  }
  CHECK(workers == std::set<std::string>{"4", "8"});
}

TEST_CASE("sweep: grid x zip x repeat gives one run and one results.csv row each, values from summary.json") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write("study.json", R"({
    "base": "exp.json",
    "vary": {"algorithm.name": ["ssgd", "asgd"], "platform.workers.count": [1, 2], "training.batch_size": [8, 16]},
    "zip": [["platform.workers.count", "training.batch_size"]],
    "repeat": 2})");
  const Result r = dtsim("sweep " + study + " --jobs 2 --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const Csv c = read_csv(s.dir / "out" / "results.csv");
  // the varied keys (in the study's order), the seed, then status
  REQUIRE(c.header.size() > 8);
  CHECK(std::vector<std::string>(c.header.begin(), c.header.begin() + 5) ==
        std::vector<std::string>{"algorithm.name", "platform.workers.count", "training.batch_size", "seed", "status"});
  REQUIRE(c.rows.size() == 2 * 2 * 2);  // 2 algorithms x 2 zipped points x 2 seeds (not 2x2x2x2)
  std::set<std::string> combos, dirs;
  for (const auto& row : c.rows) {
    CAPTURE(row.at("run_dir"));
    CHECK(row.at("status") == "completed");
    CHECK(row.at("error").empty());
    const fs::path dir = s.dir / "out" / row.at("run_dir");
    REQUIRE(fs::exists(dir / "summary.json"));
    const json sum = json::parse(slurp(dir / "summary.json"));
    // the zip pairs workers 1 with batch 8 and workers 2 with batch 16
    CHECK((row.at("platform.workers.count") == "1") == (row.at("training.batch_size") == "8"));
    CHECK(sum["workers"].dump() == row.at("platform.workers.count"));
    CHECK(sum["batch_size"].dump() == row.at("training.batch_size"));
    CHECK(sum["algorithm"] == row.at("algorithm.name"));
    CHECK(sum["seed"].dump() == row.at("seed"));
    // every scalar of summary.json, nested ones flattened with dots
    for (const char* k : {"simulated_time_s", "samples", "bytes_on_wire", "final_test_accuracy", "updates"})
      CHECK_MESSAGE(scalar(sum[k]) == row.at(k), k);
    CHECK(scalar(sum["time_to_accuracy_s"]["0.2"]) == row.at("time_to_accuracy_s.0.2"));
    CHECK(row.at("time_to_accuracy_s.0.99").empty());  // not reached: empty, not 0
    combos.insert(row.at("algorithm.name") + row.at("platform.workers.count") + row.at("seed"));
    dirs.insert(row.at("run_dir"));
    // the resolved configuration values that differ between runs, in SI units
    CHECK(row.at("config.training.batch_size") == row.at("training.batch_size"));
  }
  CHECK(combos.size() == 8);
  CHECK(dirs.size() == 8);
  for (const auto& row : c.rows) CHECK((row.at("seed") == "1" || row.at("seed") == "2"));  // seed, seed + 1
  // every run directory name is filesystem-safe
  for (const auto& d : dirs) CHECK(std::regex_match(fs::path(d).filename().string(), std::regex("[A-Za-z0-9._+~-]+")));
}

TEST_CASE("sweep: resumable: complete runs are skipped, missing or changed ones run again") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"algorithm.name": ["ssgd", "asgd"]}})");
  const std::string out = (s.dir / "out").string();
  REQUIRE(dtsim("sweep " + study + " --out " + out).code == 0);
  Csv c = read_csv(s.dir / "out" / "results.csv");
  REQUIRE(c.rows.size() == 2);
  const fs::path kept = s.dir / "out" / c.rows[0].at("run_dir"), redo = s.dir / "out" / c.rows[1].at("run_dir");
  // Mark the first run's summary; delete the second's.
  json sum = json::parse(slurp(kept / "summary.json"));
  sum["simulated_time_s"] = 12345.5;
  std::ofstream(kept / "summary.json") << sum.dump(2);
  fs::remove(redo / "summary.json");

  Result r = dtsim("sweep " + study + " --out " + out);
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("1 ran, 1 already complete") != std::string::npos);
  c = read_csv(s.dir / "out" / "results.csv");
  CHECK(c.rows[0].at("simulated_time_s") == "12345.5");  // read back, not run again
  CHECK(c.rows[1].at("status") == "completed");
  CHECK(fs::exists(redo / "summary.json"));

  // A changed base config is a different run: everything runs again.
  r = dtsim("sweep " + study + " --out " + out + " --set training.samples=256");
  REQUIRE(r.code == 0);
  CHECK(r.err.find("2 ran, 0 already complete") != std::string::npos);
  c = read_csv(s.dir / "out" / "results.csv");
  CHECK(c.rows[0].at("simulated_time_s") != "12345.5");
  CHECK(c.rows[0].at("samples") == "256");

  // A run whose outputs say it was interrupted (or stopped by --max-wall-s) is not complete.
  for (const char* status : {"interrupted", "wall_limit"}) {
    CAPTURE(status);
    sum = json::parse(slurp(kept / "summary.json"));
    sum["status"] = status;
    std::ofstream(kept / "summary.json") << sum.dump(2);
    r = dtsim("sweep " + study + " --out " + out + " --set training.samples=256");
    REQUIRE(r.code == 0);
    CHECK(r.err.find("1 ran, 1 already complete") != std::string::npos);
    CHECK(json::parse(slurp(kept / "summary.json"))["status"] == "completed");
  }
}

TEST_CASE("sweep: an invalid run stops the study before anything runs: exit 2 naming the run") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write(
      "study.json", R"({"base": "exp.json", "vary": {"platform.workers.count": [1, 2], "algorithm.name": ["ssgd", "ssdg"]}})");
  const Result r = dtsim("sweep " + study + " --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find("study.json") != std::string::npos);
  CHECK(r.err.find("run 2 of 4 (platform.workers.count=1, algorithm.name=ssdg)") != std::string::npos);
  CHECK(r.err.find("exp.json: algorithm.name: unknown algorithm 'ssdg' (did you mean 'ssgd'?)") != std::string::npos);
  CHECK(!fs::exists(s.dir / "out" / "runs"));
  CHECK(!fs::exists(s.dir / "out" / "results.csv"));
}

TEST_CASE("sweep: malformed studies give exit 2 with the study's path and a hint") {
  struct Case {
    const char* study;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {R"({"base": "exp.json", "vari": {"seed": [1]}})", "unknown key 'vari' (did you mean 'vary'?)"},
      {R"({"base": "exp.json"})", "vary: missing required key"},
      {R"({"base": "nope.json", "vary": {"seed": [1]}})", "base: experiment file"},
      {R"({"base": "exp.json", "vary": {"seed": []}})", "vary.seed: empty list"},
      {R"({"base": "exp.json", "vary": {"seed": 3}})", "vary.seed: expected a list of values"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 1]}})", "vary.seed[1]: duplicate value 1"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 2], "training.batch_size": [4, 8]}, "zip": [["seed", "training.batch_sze"]]})",
       "zip[0][1]: 'training.batch_sze' is not a key of \"vary\" (did you mean 'training.batch_size'?)"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 2], "training.batch_size": [4]}, "zip": [["seed", "training.batch_size"]]})",
       "zipped keys need lists of equal length"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 2]}, "repeat": 2})", "repeat: cannot repeat over seeds"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 2]}, "repeat": 0})", "repeat: must be in [1, 100000]"},
      {R"({"base": "exp.json", "vary": {"a..b": [1]}})", "not a dotted config key"},
      {R"({"base": "exp.json", "vary": {"seed": [1]}, "plot": {"regime": ["seed", "x"]}})", "plot.regime"},
      {R"({"base": "exp.json", "vary": {"seed": [1, 2]}, "plot": {"regime": ["seed", "seed"]}})",
       "plot.regime[1]: the same key as regime[0]: the map needs two different keys"},  // plot.py drew a one-key map
      {R"({"base": {"platform": "nowhere.json"}, "vary": {"seed": [1]}})", "base.platform: platform file"},
      {R"({"base": "exp.json", "vary": {"seed": [1]},})", "invalid JSON at line 1"},
      // Found by a robustness matrix, each accepted before:
      {R"({"base": "exp.json", "vary": {"algorithm.lr=0.3": [1]}})", "the values go in the list, not after '='"},
      {R"({"base": "exp.json", "vary": {"training.batch_size": [2, 2.0]}})", "vary.training.batch_size[1]: duplicate value 2.0"},
      {R"({"base": ".", "vary": {"seed": [1]}})", "is a directory, not an experiment file"},
      // a line break in a value stays on the error's one line
      {"{\"base\": \"exp.json\", \"vary\": {\"algorithm.name\": [\"ss\\ngd\"]}}", "unknown algorithm 'ss\\x0agd'"},
      {R"({"base": "exp.json", "vary": {"seed": [1]}, "out": ""})", "out: must not be empty"},  // wrote into the current directory
      // plot settings the plots would refuse only after every run: checked against the runs
      {R"({"base": "exp.json", "vary": {"seed": [1]}, "plot": {"baseline": "nosuch"}})",
       "plot.baseline: 'nosuch' is not the algorithm of any run (the runs': ssgd)"},
      {R"({"base": "exp.json", "vary": {"seed": [1]}, "plot": {"target_accuracy": 0.5}})",
       "plot.target_accuracy: 0.5 is not among the training.target_accuracy of run 1 of 1 (seed=1)"},
  };
  for (const auto& k : cases) {
    const std::string text = k.study;
    CAPTURE(text);
    Scratch s;
    s.write("exp.json", kExperiment);
    const std::string study = s.write("study.json", k.study);
    const Result r = dtsim("sweep " + study + " --dry-run");
    CAPTURE(r.err);
    CHECK(r.code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.rfind("error: " + study, 0) == 0);
    CHECK(r.err.find(k.expect) != std::string::npos);
  }
  CHECK(dtsim("sweep").code == 2);
  CHECK(dtsim("sweep x.json --jobs 0").code == 2);
  const Result typo = dtsim("swep x.json");
  CHECK(typo.code == 2);
  CHECK(typo.err.find("did you mean 'sweep'?") != std::string::npos);
  const Result help = dtsim("sweep --help");
  CHECK(help.code == 0);
  CHECK(help.out.find("--jobs N") != std::string::npos);
}

TEST_CASE("sweep: an inline base's varied paths are relative to the study, and a malformed --set is a usage error") {
  Scratch s;
  json exp = json::parse(kExperiment);
  std::ofstream(s.dir / "plat.json") << exp["platform"].dump();
  exp.erase("platform");
  exp["platform"] = "plat.json";
  // The varied platform file sits next to the study: it was looked for in <out>/, where the base is
  // copied (valid or not depending on --out).
  const std::string study = s.write("study.json", json{{"base", exp}, {"vary", {{"platform", {"plat.json"}}}}}.dump());
  for (const std::string& out : {(s.dir / "o1").string(), (s.dir / "deep" / "o2").string()}) {
    const Result r = dtsim("sweep " + study + " --quiet --out " + out);
    CAPTURE(r.err);
    CHECK(r.code == 0);
  }
  const Result set = dtsim("sweep " + study + " --dry-run --set foo --out " + (s.dir / "o3").string());
  CHECK(set.code == 2);
  CHECK(set.err.rfind("error: --set: foo: expected KEY=VALUE", 0) == 0);  // not "run 1 of 1 (...): --set: ..."
  // --out, or the study's "out", that is a file: refused before any run (it failed at the first, exit 1).
  const Result file = dtsim("sweep " + study + " --out " + study);
  CHECK(file.code == 2);
  CHECK(file.err.rfind("error: --out: '" + study + "' is not a directory", 0) == 0);
  const std::string to_file = s.write("to-file.json", json{{"base", exp}, {"vary", {{"seed", {1}}}}, {"out", study}}.dump());
  const Result out_file = dtsim("sweep " + to_file + " --dry-run");
  CHECK(out_file.code == 2);
  CHECK(out_file.err.rfind("error: " + to_file + ": out: '" + study + "' is not a directory", 0) == 0);
}

// README: a platform name that is no file next to the config names a shipped platform. An inline
// base's name was made absolute against the study's directory first, so the lookup failed.
TEST_CASE("sweep: an inline base and its varied values may name shipped platforms") {
  Scratch s;
  json exp = json::parse(kExperiment);
  exp["platform"] = "star-10g-8.json";
  const std::string study =
      s.write("study.json", json{{"base", exp}, {"vary", {{"platform", {"star-10g-8.json", "star-1g-8.json"}}}}}.dump());
  const Result v = dtsim("validate " + study);
  CAPTURE(v.err);
  CHECK(v.code == 0);
  const Result r = dtsim("sweep " + study + " --quiet --out " + (s.dir / "out").string() + " --set training.samples=64");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  std::set<double> bw;
  for (const auto& d : fs::directory_iterator(s.dir / "out" / "runs"))
    bw.insert(json::parse(slurp(d.path() / "config.resolved.json"))["platform"]["workers"]["link"]["bandwidth"].get<double>());
  CHECK(bw == std::set<double>{1.25e8, 1.25e9});  // 1 and 10 Gb/s: each run got its own shipped platform
}

// A key inside a varied object, written before it: the object replaced it, so every run used the
// object's lr while results.csv labelled them with the key's values.
TEST_CASE("sweep: a varied key inside another varied key applies on top of it, whatever the order written") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write(
      "study.json", R"({"base": "exp.json", "vary": {"algorithm.lr": [0.01, 0.02], "algorithm": [{"name": "ssgd", "lr": 0.5}]}})");
  const Result r = dtsim("sweep " + study + " --quiet --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  std::set<double> lrs;
  for (const auto& d : fs::directory_iterator(s.dir / "out" / "runs"))
    lrs.insert(json::parse(slurp(d.path() / "config.resolved.json"))["algorithm"]["lr"].get<double>());
  CHECK(lrs == std::set<double>{0.01, 0.02});
}

TEST_CASE("sweep: --set reaches inside a varied object, and a --set of a varied key is refused") {
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write(
      "study.json", R"({"base": "exp.json", "vary": {"algorithm": [{"name": "ssgd", "lr": 0.1}, {"name": "asgd", "lr": 0.05}]}})");
  // Inside the varied object: applied after it, so every run gets it (a bad value is caught).
  const Result bad = dtsim("sweep " + study + " --dry-run --set algorithm.overlap.kind=bogus");
  CAPTURE(bad.err);
  CHECK(bad.code == 2);
  CHECK(bad.err.find("algorithm.overlap.kind") != std::string::npos);
  const Result ok = dtsim("sweep " + study + " --quiet --set algorithm.overlap.kind=none --out " + (s.dir / "out").string());
  CAPTURE(ok.err);
  REQUIRE(ok.code == 0);
  const Csv c = read_csv(s.dir / "out" / "results.csv");
  REQUIRE(c.rows.size() == 2);
  for (const auto& row : c.rows)  // both algorithms' defaults (per-tensor) replaced
    CHECK(json::parse(slurp(s.dir / "out" / row.at("run_dir") / "config.resolved.json"))["algorithm"]["overlap"]["kind"] == "none");
  // The varied key itself: a contradiction.
  const Result same = dtsim("sweep " + study + " --dry-run --set algorithm={\"name\":\"ssgd\"}");
  CHECK(same.code == 2);
  CHECK(same.err.find("vary.algorithm: --set algorithm=") != std::string::npos);
  CHECK(std::count(same.err.begin(), same.err.end(), '\n') == 1);
}

TEST_CASE("sweep: an inline base's file keys (compute profile, platform) resolve against the study file") {
  Scratch s;
  fs::copy_file(DTSIM_SOURCE_DIR "/traces/profiles/resnet8-cpu-b32.json", s.dir / "prof.json");
  json exp = json::parse(kExperiment);
  std::ofstream(s.dir / "platform.json") << exp["platform"].dump();
  exp["platform"] = "platform.json";
  exp["model"] = {{"kind", "resnet8"}};
  exp["dataset"] = {{"kind", "synthetic"}, {"train", 256}, {"test", 64}, {"shape", {3, 32, 32}}};
  exp["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "profile"}, {"file", "prof.json"}}}};
  exp.erase("name");
  exp["training"].erase("target_accuracy");
  const std::string study = s.write("study.json", json{{"base", exp}, {"vary", {{"seed", {1, 2}}}}}.dump());
  const Result dry = dtsim("sweep " + study + " --dry-run --out " + (s.dir / "elsewhere" / "out").string());
  CAPTURE(dry.err);
  CHECK(dry.code == 0);
  const Result r = dtsim("sweep " + study + " --quiet --out " + (s.dir / "elsewhere" / "out").string());
  CAPTURE(r.err);
  CHECK(r.code == 0);
}

TEST_CASE("sweep: an inline base, --dry-run, and distinct values that would share a directory name") {
  Scratch s;
  // The inline base names its platform relative to the study file.
  json exp = json::parse(kExperiment);
  std::ofstream(s.dir / "platform.json") << exp["platform"].dump();
  exp["platform"] = "platform.json";
  exp.erase("name");
  const std::string study = s.write("study.json", json{{"base", exp}, {"vary", {{"name", {"a b", "a_b", "c"}}}}}.dump());
  const Result dry = dtsim("sweep " + study + " --dry-run --out " + (s.dir / "out").string());
  CAPTURE(dry.err);
  REQUIRE(dry.code == 0);
  CHECK(dry.out.find("3 runs (0 already complete)") != std::string::npos);
  CHECK(!fs::exists(s.dir / "out" / "runs"));
  const Result r = dtsim("sweep " + study + " --out " + (s.dir / "out").string() + " --quiet");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const Csv c = read_csv(s.dir / "out" / "results.csv");
  REQUIRE(c.rows.size() == 3);
  std::set<std::string> dirs;
  for (const auto& row : c.rows) {
    CHECK(row.at("status") == "completed");
    dirs.insert(row.at("run_dir"));
    CHECK(json::parse(slurp(s.dir / "out" / row.at("run_dir") / "summary.json"))["name"] == row.at("name"));
  }
  CHECK(dirs.size() == 3);  // "a b" and "a_b" both sanitise to a_b: told apart
  const Result again = dtsim("sweep " + study + " --dry-run --out " + (s.dir / "out").string());
  CHECK(again.out.find("3 runs (3 already complete)") != std::string::npos);
}

TEST_CASE("sweep: a value with nothing printable in it (an empty list) is named, not left as a dangling key-") {
  Scratch s;
  const std::string study = s.write(
      "study.json", json{{"base", json::parse(kExperiment)},
                         {"vary", {{"platform.stragglers", {json::array(), json::parse(R"([{"workers": [1], "slowdown": 2}])")}},
                                   {"name", {"!?", "x"}}}}}.dump());
  const Result dry = dtsim("sweep " + study + " --dry-run --out " + (s.dir / "out").string());
  CAPTURE(dry.out);
  REQUIRE(dry.code == 0);
  CHECK(dry.out.find("  name-h") != std::string::npos);  // "!?" by its hash (it was "name-_platform...")
  CHECK(dry.out.find("  name-x_platform.stragglers-empty ") != std::string::npos);
  CHECK(dry.out.find("- ") == std::string::npos);  // no name ends in '-'
}

TEST_CASE("sweep and validate STUDY print the runs' warnings, each once, naming the runs that have it") {
  Scratch s;
  json exp = json::parse(kExperiment);
  exp["compute"]["mode"] = "timing-only";  // with a target accuracy: a warning in every run
  const std::string study =
      s.write("study.json", json{{"base", exp}, {"vary", {{"training.samples", {8, 512}}, {"seed", {1, 2}}}}}.dump());
  const std::string every = "warning: " + study + ": base.training.target_accuracy: compute.mode \"timing-only\" measures no accuracy";
  const std::string some = "warning: " + study + ": base.training.samples: the budget (8 samples) is less than one step";
  for (const std::string& cmd : {"validate " + study, "sweep " + study + " --dry-run --out " + (s.dir / "out").string()}) {
    CAPTURE(cmd);
    const Result r = dtsim(cmd);
    CAPTURE(r.err);
    REQUIRE(r.code == 0);
    const auto a = r.err.find(every), b = r.err.find(some);
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    CHECK(r.err.find(every, a + 1) == std::string::npos);  // once, not once per run
    CHECK(r.err.substr(a, r.err.find('\n', a) - a).find("(run") == std::string::npos);  // every run has it
    CHECK(r.err.substr(b, r.err.find('\n', b) - b).ends_with("(runs 0, 2 of 4)"));  // their --cell indices (seed is the first axis: keys sort)
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 2);
    if (cmd.starts_with("validate")) CHECK(r.out.find("(every run's config checked; 2 warnings)") != std::string::npos);
  }
}

TEST_CASE("sweep: a failing run is reported with its error and recorded as failed, exit 1") {
  Scratch s;
  // An IDX dataset whose headers pass validation but whose images are cut short: the run fails.
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
  s.write("exp.json", kExperiment);
  const json good = json::parse(kExperiment)["dataset"];
  const json bad = {{"kind", "mnist"}, {"path", (s.dir / "bad").string()}};
  const std::string study = s.write(
      "study.json", json{{"base", "exp.json"}, {"vary", {{"dataset", {good, bad}}}}, {"out", (s.dir / "out").string()}}.dump());
  const Result r = dtsim("sweep " + study + " --jobs 2");
  CAPTURE(r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("FAILED") != std::string::npos);
  CHECK(r.err.find("train-images-idx3-ubyte.gz") != std::string::npos);  // the run's own error, shown
  CHECK(r.err.find("1 failed") != std::string::npos);
  const Csv c = read_csv(s.dir / "out" / "results.csv");  // the study's "out"
  REQUIRE(c.rows.size() == 2);
  CHECK(c.rows[0].at("status") == "completed");
  CHECK(c.rows[1].at("status") == "failed");
  CHECK(c.rows[1].at("error").find("exit code 2") != std::string::npos);
  CHECK(c.rows[1].at("error").find("train-images-idx3-ubyte.gz") != std::string::npos);
  CHECK(c.rows[1].at("simulated_time_s").empty());
  CHECK(fs::exists(s.dir / "out" / c.rows[1].at("run_dir") / "dtsim.log"));
}

TEST_CASE("sweep: SIGINT stops launching, kills the running run, writes results.csv, exits 130, resumable") {
  Scratch s;
  json exp = json::parse(kExperiment);
  exp["training"]["samples"] = 20000;  // about 0.3 s of wall time per run (10 s under the sanitizers)
  exp["model"]["hidden"] = {64};
  std::ofstream(s.dir / "exp.json") << exp.dump();
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"seed": [1, 2, 3, 4, 5, 6]}})");
  const std::string out = (s.dir / "out").string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string log = (s.dir / "sweep.log").string();
    std::freopen(log.c_str(), "w", stderr);
    ::execl(DTSIM_BINARY, DTSIM_BINARY, "sweep", study.c_str(), "--jobs", "1", "--out", out.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  // Wait until the first run is complete, then interrupt (the second one is running by then).
  bool first_done = false;
  for (int i = 0; i < 4800 && !first_done; ++i) {  // up to 4 min: a sanitizer build under load is slow
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::error_code ec;
    if (fs::exists(s.dir / "out" / "runs", ec))
      for (const auto& d : fs::directory_iterator(s.dir / "out" / "runs", ec))
        if (fs::exists(d.path() / "summary.json")) first_done = true;
  }
  REQUIRE(first_done);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CAPTURE(slurp(s.dir / "sweep.log"));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  const Csv c = read_csv(s.dir / "out" / "results.csv");
  REQUIRE(c.rows.size() == 6);
  int completed = 0, other = 0;
  for (const auto& row : c.rows) {
    CAPTURE(row.at("run_dir"));
    const bool has_summary = fs::exists(s.dir / "out" / row.at("run_dir") / "summary.json");
    if (row.at("status") == "completed") {
      ++completed;
      CHECK(has_summary);
    } else {
      ++other;
      CHECK((row.at("status") == "interrupted" || row.at("status") == "not_run"));
      // A run stopped while simulating writes complete outputs marked "interrupted" (exit 143);
      // one stopped before that has none. Either way it is not complete: a re-run redoes it.
      if (has_summary)
        CHECK(json::parse(slurp(s.dir / "out" / row.at("run_dir") / "summary.json"))["status"] == "interrupted");
    }
  }
  CHECK(completed >= 1);
  CHECK(other >= 1);
  // No run of this sweep is left running.
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    const std::string cmd = slurp(p.path() / "cmdline");
    const std::string who = p.path().string();
    CAPTURE(who);
    CHECK(cmd.find(out + "/runs") == std::string::npos);
  }
  // Resuming: the completed runs are recognised.
  const Result again = dtsim("sweep " + study + " --dry-run --out " + out);
  CHECK(again.out.find("6 runs (" + std::to_string(completed) + " already complete)") != std::string::npos);
}

TEST_CASE("sweep --plot draws the plots and prints the table") {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") != 0)
    FAIL("python3-matplotlib is missing: run tools/install-deps.sh");
  Scratch s;
  s.write("exp.json", kExperiment);
  const std::string study = s.write("study.json", R"({"base": "exp.json",
    "vary": {"algorithm.name": ["ssgd", "asgd"], "platform.workers.count": [1, 2]},
    "plot": {"target_accuracy": 0.2}})");
  const Result r = dtsim("sweep " + study + " --plot --quiet --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  for (const char* f : {"speedup_time.png", "speedup_time.svg", "speedup_time.csv", "accuracy_vs_time.png",
                        "tta_bars.png", "table.csv"})
    CHECK_MESSAGE(fs::exists(s.dir / "out" / "plots" / f), f);
  CHECK(r.out.find("speedup vs ssgd") != std::string::npos);
  CHECK(r.out.find("time to 0.2") != std::string::npos);
}

TEST_CASE("sweep --plot on a study it cannot plot says which plots it skipped and why") {
  // A fixed-scale, timing-only comparison: no accuracy, one worker count, one bandwidth, no trace.
  // Before: only table.csv was written and nothing was said.
  if (std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") != 0)
    FAIL("python3-matplotlib is missing: run tools/install-deps.sh");
  Scratch s;
  json exp = json::parse(kExperiment);
  exp["compute"]["mode"] = "timing-only";
  std::ofstream(s.dir / "exp.json") << exp.dump();
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"algorithm.name": ["ssgd", "asgd"]}})");
  const Result r = dtsim("sweep " + study + " --plot --out " + (s.dir / "out").string());
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(s.dir / "out" / "plots" / "table.csv"));
  CHECK(!fs::exists(s.dir / "out" / "plots" / "speedup_time.png"));
  CHECK(r.err.find("plots skipped: ") != std::string::npos);
  for (const char* why : {"  speedup: fewer than two worker counts\n", "  accuracy: no run has test accuracy",
                          "  tta: no run reached a target accuracy", "  throughput: no varied bandwidth",
                          "  regime: needs two varied keys besides the algorithm\n",
                          "  timeline: no run wrote a trace.json (output.trace)\n"})
    CHECK_MESSAGE(r.err.find(why) != std::string::npos, why);
}

}  // namespace test_sweep_cpp
