// Issue 16, items 2-5 and 7 at the library level: servers inherit the workers' settings, warnings
// for degenerate settings (Experiment::warnings, summary.json), preflight refusals shared by
// `dtsim validate` and `dtsim run`, implausible plain numbers, host-name ranges, the one FNV-1a,
// and docs/outputs.md kept in step with summary.json.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "common/hash.hpp"
#include "common/rng.hpp"
#include "common/units.hpp"
#include "sim/platform.hpp"
#include "sim/preflight.hpp"
#include "sim/stragglers.hpp"
#include "tests/sim/helpers.hpp"
#include "tests/rel.hpp"

namespace test_preflight_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

bool has_warning(const Experiment& x, const std::string& path, const std::string& text) {
  for (const auto& w : x.warnings)
    if (w.find(": " + path + ": ") != std::string::npos && w.find(text) != std::string::npos) return true;
  return false;
}

std::string all_warnings(const Experiment& x) {
  std::string s;
  for (const auto& w : x.warnings) s += w + "\n";
  return s;
}

std::string error_of(json doc, const std::vector<std::string>& sets = {}) {
  try {
    load(std::move(doc), sets);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// small_config() without the servers' own speed and link.
json inheriting_config() {
  json j = small_config();
  j["platform"]["workers"]["speed"] = "10Gf";
  j["platform"]["workers"]["link"] = {{"bandwidth", "1Gbps"}, {"latency", "50us"}};
  j["platform"]["servers"] = {{"count", 1}};
  return j;
}

}  // namespace

// ------------------------------------------------------------------ item 2: server defaults
TEST_CASE("servers inherit the workers' speed and NIC, key by key, unless set") {
  const Experiment a = load(inheriting_config());
  CHECK(a.platform.servers.speed == dtsim_test::Rel(1e10));
  CHECK(a.platform.servers.link.bandwidth == dtsim_test::Rel(1e9 / 8));
  CHECK(a.platform.servers.link.latency == dtsim_test::Rel(50e-6));
  // The resolved config records the inherited values, so it runs the same on its own.
  CHECK(a.resolved["platform"]["servers"]["speed"].get<double>() == dtsim_test::Rel(1e10));
  CHECK(a.resolved["platform"]["servers"]["link"]["bandwidth"].get<double>() == dtsim_test::Rel(1e9 / 8));
  const Experiment again = sim::load_experiment_json(a.resolved, "config.resolved.json", DTSIM_SOURCE_DIR "/tests", {});
  CHECK(again.platform.servers.speed == dtsim_test::Rel(1e10));
  CHECK(again.resolved == a.resolved);

  // Overriding the workers' link moves the servers' with it (the README's --set example).
  const Experiment b = load(inheriting_config(), {"platform.workers.link.bandwidth=10Mbps"});
  CHECK(b.platform.servers.link.bandwidth == dtsim_test::Rel(10e6 / 8));

  // A server key that is given wins; the others are still the workers'.
  json c = inheriting_config();
  c["platform"]["servers"]["link"] = {{"bandwidth", "40Gbps"}};
  const Experiment xc = load(c);
  CHECK(xc.platform.servers.link.bandwidth == dtsim_test::Rel(40e9 / 8));
  CHECK(xc.platform.servers.link.latency == dtsim_test::Rel(50e-6));
  CHECK(xc.platform.servers.speed == dtsim_test::Rel(1e10));

  // Heterogeneous workers: group 0's settings.
  json g = inheriting_config();
  g["platform"]["workers"] = json::parse(R"({"groups": [
      {"count": 2, "speed": "2Tf", "link": {"bandwidth": "25Gbps", "latency": "5us"}},
      {"count": 2, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}}]})");
  const Experiment xg = load(g);
  CHECK(xg.platform.servers.speed == dtsim_test::Rel(2e12));
  CHECK(xg.platform.servers.link.bandwidth == dtsim_test::Rel(25e9 / 8));
  CHECK(xg.platform.servers.link.latency == dtsim_test::Rel(5e-6));
}

TEST_CASE("validate's platform summary shows the servers' resolved speed and NIC and which came from the workers") {
  const Experiment a = load(inheriting_config());
  const std::string s = sim::platform_summary(a.platform);
  CAPTURE(s);
  CHECK(s.find("4 x 10 Gflop/s, NIC 1 Gb/s / 50 us (worker-0..worker-3)") != std::string::npos);
  CHECK(s.find("1 x 10 Gflop/s, NIC 1 Gb/s / 50 us (dedicated hosts; speed, NIC bandwidth, NIC latency as the workers')") !=
        std::string::npos);
  const Experiment b = load(small_config());  // every server key given: nothing inherited
  const std::string t = sim::platform_summary(b.platform);
  CHECK(t.find("1 x 1 Tflop/s, NIC 1 Gb/s / 50 us (dedicated hosts)") != std::string::npos);
  json c = inheriting_config();
  c["platform"]["servers"]["link"] = {{"bandwidth", "40Gbps"}};
  const Experiment xc = load(c);
  CHECK(xc.platform.servers_inherited == std::vector<std::string>{"speed", "NIC latency"});
  CHECK(sim::platform_summary(xc.platform).find("NIC 40 Gb/s / 50 us (dedicated hosts; speed, NIC latency as the workers')") !=
        std::string::npos);
}

// ------------------------------------------------------------------ item 3: degenerate settings
TEST_CASE("warnings: an OD-SGD or SSD-SGD warm-up at least as long as the run") {
  json j = small_config();  // 2048 samples / (4 x 16) = 32 steps
  j["algorithm"] = {{"name", "od-sgd"}};  // default warm-up: 200 steps
  const Experiment a = load(j);
  CAPTURE(all_warnings(a));
  CHECK(has_warning(a, "algorithm.warmup_steps", "200 is at least the run's 32 steps"));
  CHECK(has_warning(a, "algorithm.warmup_steps", "no od-sgd step happens"));
  j["algorithm"] = {{"name", "ssd-sgd"}, {"warmup_steps", 32}};
  CHECK(has_warning(load(j), "algorithm.warmup_steps", "32 is at least the run's 32 steps"));
  j["algorithm"] = {{"name", "ssd-sgd"}, {"warmup_steps", 31}};
  CHECK(load(j).warnings.empty());
}

TEST_CASE("warnings: a Local SGD, DiLoCo or Streaming DiLoCo period that leaves a single round") {
  json j = small_config();  // 32 steps (the server is unused by these all-reduce algorithms)
  for (const char* name : {"local-sgd", "diloco", "streaming-diloco", "dasgd", "cocod-sgd"}) {
    CAPTURE(name);
    j["algorithm"] = {{"name", name}, {"period", 32}};
    const Experiment a = load(j);
    CHECK(has_warning(a, "algorithm.period", "32 is at least the run's 32 steps"));
    CHECK(has_warning(a, "algorithm.period", "one-shot averaging"));
    j["algorithm"] = {{"name", name}, {"period", 8}};
    CHECK(load(j).warnings.empty());
  }
  j["algorithm"] = {{"name", "diloco"}};  // the paper's default H = 500
  CHECK(has_warning(load(j), "algorithm.period", "500 is at least"));
}

TEST_CASE("synchronous EASGD with a period beyond the run is an error, asynchronous EASGD a warning") {
  json j = small_config();
  j["algorithm"] = {{"name", "easgd"}, {"period", 40}, {"sync", true}};
  const std::string e = error_of(j);
  CHECK(e.find("test.json: algorithm.period: 40 is at least the run's 32 steps") == 0);
  CHECK(e.find("never moves") != std::string::npos);
  j["algorithm"]["sync"] = false;
  CHECK(has_warning(load(j), "algorithm.period", "the only elastic exchange is at step 0"));
}

TEST_CASE("warnings: a target accuracy that is only checked at the end, or never measured") {
  json j = small_config();
  j["training"]["target_accuracy"] = {0.5};
  j["training"]["eval_every_samples"] = 0;
  CHECK(has_warning(load(j), "training.eval_every_samples", "0 (evaluate only at the end)"));
  // The suggestion is whole steps (4 workers x 16 = 64): a tenth of 2048 is 204, which no run evaluates at.
  CHECK(has_warning(load(j), "training.eval_every_samples", "evaluate more often (e.g. 192)"));
  json one = j;
  one["training"]["samples"] = 64;  // one step: no other evaluation to suggest (it said "e.g. 6")
  CHECK(has_warning(load(one), "training.eval_every_samples", "time_to_accuracy_s is the run's end or null"));
  CHECK(!has_warning(load(one), "training.eval_every_samples", "evaluate more often"));
  j["training"]["eval_every_samples"] = 4096;
  CHECK(has_warning(load(j), "training.eval_every_samples", "4096 is at least the budget (2048 samples)"));
  j["training"]["eval_every_samples"] = 256;
  CHECK(load(j).warnings.empty());
  j["compute"]["mode"] = "timing-only";
  CHECK(has_warning(load(j), "training.target_accuracy", "measures no accuracy"));
  j["training"].erase("target_accuracy");  // no target: evaluation frequency is the user's business
  j["training"]["eval_every_samples"] = 0;
  CHECK(load(j).warnings.empty());
}

// training.target_loss had neither warning (a matrix found it: timing-only and eval 0 were silent).
TEST_CASE("warnings: a target loss only checked at the end, or never measured, as a target accuracy") {
  json j = small_config();
  j["training"]["target_loss"] = {1.0};
  j["training"]["eval_every_samples"] = 0;
  CHECK(has_warning(load(j), "training.eval_every_samples",
                    "0 (evaluate only at the end): the target loss is only checked on the final model, so time_to_loss_s is"));
  j["training"]["target_accuracy"] = {0.5};
  CHECK(has_warning(load(j), "training.eval_every_samples",
                    "the target accuracy and loss are only checked on the final model, so time_to_accuracy_s and time_to_loss_s are"));
  CHECK(load(j).warnings.size() == 1);
  j["compute"]["mode"] = "timing-only";
  CHECK(has_warning(load(j), "training.target_loss", "measures no loss: time_to_loss_s stays null"));
  CHECK(has_warning(load(j), "training.target_accuracy", "measures no accuracy"));
  j["training"].erase("target_accuracy");
  j["compute"]["mode"] = "real";
  j["training"]["eval_every_samples"] = 256;
  CHECK(load(j).warnings.empty());
}

TEST_CASE("warnings: a budget below one step, and checkpoints that would never be written") {
  json j = small_config();
  j["training"]["samples"] = 40;  // 4 workers x 16 = 64 per step
  CHECK(has_warning(load(j), "training.samples", "the run computes one step, 64 samples"));
  j = small_config();
  j["training"]["checkpoint_every_samples"] = 5000;
  CHECK(has_warning(load(j), "training.checkpoint_every_samples", "no checkpoint is written"));
}

TEST_CASE("a straggler index beyond the workers after --set platform.workers.count is a warning, and ignored") {
  json j = small_config();
  j["platform"]["stragglers"] = json::parse(R"([{"workers": [1, 3], "slowdown": 2}, {"workers": [3], "p": 0.5, "slowdown": 3}])");
  const Experiment a = load(j, {"platform.workers.count=2"});
  CAPTURE(all_warnings(a));
  CHECK(has_warning(a, "platform.stragglers[0].workers", "worker index 3 out of range [0, 1] (2 workers): ignored"));
  CHECK(has_warning(a, "platform.stragglers[1].workers", "this straggler slows no worker"));
  REQUIRE(a.platform.stragglers.size() == 2);  // entries keep their places (their random draws are keyed by them)
  CHECK(a.platform.stragglers[0].workers == std::vector<int>{1});
  CHECK(a.platform.stragglers[1].workers.empty());
  CHECK(a.platform.slowdown(1) == 2);
  CHECK(sim::platform_summary(a.platform).find("no worker") != std::string::npos);
  // A negative index is still an error.
  j["platform"]["stragglers"] = json::parse(R"([{"workers": [-1], "slowdown": 2}])");
  CHECK(error_of(j).find("platform.stragglers[0].workers: worker index -1 is negative") != std::string::npos);
}

TEST_CASE("summary.json lists the warnings (an empty list when there are none)") {
  json j = small_config();
  j["algorithm"] = {{"name", "od-sgd"}};
  j["compute"]["mode"] = "timing-only";
  const Experiment a = load(j);
  REQUIRE(!a.warnings.empty());
  const ChildRun c = run_forked(a);
  REQUIRE(c.exit_code == 0);
  REQUIRE(c.summary.contains("warnings"));
  CHECK(c.summary["warnings"].get<std::vector<std::string>>() == a.warnings);
  json k = small_config();
  k["compute"]["mode"] = "timing-only";
  CHECK(sim::summary_json(load(k), sim::RunResult{})["warnings"] == json::array());
}

// ------------------------------------------------------------------ item 4: preflight
TEST_CASE("preflight refuses what run refuses before simulating: 100,000 real-mode ResNet-18 workers") {
  json j = small_config();
  j["model"] = {{"kind", "resnet18"}};
  j["dataset"] = json::parse(R"({"kind": "synthetic", "train": 256, "test": 64, "shape": [3, 32, 32], "classes": 10})");
  const Experiment ok = load(j);
  CHECK_NOTHROW(sim::preflight(ok));
  const Experiment big = load(j, {"platform.workers.count=100000"});  // loads: the config itself is valid
  try {
    sim::preflight(big);
    FAIL("preflight accepted a run of several TB");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("test.json: platform.workers.count: this run needs about") == 0);
    CHECK(std::string(e.what()).find("MemAvailable") != std::string::npos);
  }
}

TEST_CASE("preflight with load_dataset refuses a truncated dataset whose headers pass the loader") {
  char tmpl[] = "/tmp/dtsim-preflight-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  auto idx = [&](const std::string& name, uint8_t type, uint32_t n, bool images, size_t present) {
    std::string h = {0, 0, 0x08, static_cast<char>(type)};
    for (uint32_t v : images ? std::vector<uint32_t>{n, 28, 28} : std::vector<uint32_t>{n})
      for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((v >> s) & 0xff);
    std::ofstream(dir + "/" + name, std::ios::binary) << h << std::string(present, '\0');
  };
  idx("train-labels-idx1-ubyte", 1, 100, false, 100);
  idx("train-images-idx3-ubyte", 3, 100, true, 28 * 28 * 10);  // 10 of the 100 images
  idx("t10k-labels-idx1-ubyte", 1, 20, false, 20);
  idx("t10k-images-idx3-ubyte", 3, 20, true, 28 * 28 * 20);
  json j = small_config();
  j["dataset"] = {{"kind", "mnist"}, {"path", dir}};
  const Experiment x = load(j);  // the loader reads headers only
  CHECK_NOTHROW(sim::preflight(x));
  try {
    sim::preflight(x, {.load_dataset = true});
    FAIL("a truncated dataset passed");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("dataset.path") != std::string::npos);
    CHECK(std::string(e.what()).find("truncated") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("trace_enabled and sync_steps follow output.trace, trace_max_events and the budget") {
  json j = small_config();  // 32 steps x 4 workers x (3 + 4) = 896 events
  j["output"]["trace"] = "auto";
  j["output"]["trace_max_events"] = 896;
  const Experiment a = load(j);
  CHECK(sim::sync_steps(a) == 32);
  CHECK(sim::trace_enabled(a, 1));
  CHECK(!sim::trace_enabled(a, 2));  // 32 x 4 x 11
  j["output"]["trace"] = false;
  CHECK(!sim::trace_enabled(load(j), 0));
}

// The memory estimate's "trace on?" left out the two spans per worker step that layer-wise timing
// adds, which the run counts: near output.trace_max_events it counted a trace the run did not keep.
TEST_CASE("trace_enabled under layer-wise timing decides as the run does, on both sides of the limit") {
  json j = small_config();  // 32 steps x 4 workers: 128 worker steps
  j["compute"]["mode"] = "timing-only";
  j["algorithm"]["overlap"] = {{"kind", "per-tensor"}};
  j["output"]["trace"] = "auto";
  for (const int64_t limit : {896 + 2 * 128 - 1, 896 + 2 * 128}) {  // 128 x (3 + 4) + 2 x 128
    CAPTURE(limit);
    j["output"]["trace_max_events"] = limit;
    const Experiment x = load(j);
    REQUIRE(x.overlap.layerwise());
    const test::ChildRun r = test::run_forked(x);
    REQUIRE(r.exit_code == 0);
    CHECK(sim::trace_enabled(x, 1) == !r.trace.empty());
    CHECK(sim::trace_enabled(x, 1) == (limit == 896 + 2 * 128));
  }
}

// ------------------------------------------------------------------ item 5: first contact
TEST_CASE("a plain-number bandwidth below 1 MB/s or latency above 1 s warns with the path and the unit assumed") {
  json j = small_config();
  j["platform"]["workers"]["link"] = {{"bandwidth", 10}, {"latency", 10}};
  j["platform"]["topology"]["backbone"] = {{"bandwidth", "1Mbps"}, {"latency", 2e-6}};  // a unit string: no warning
  const Experiment a = load(j);
  CAPTURE(all_warnings(a));
  CHECK(has_warning(a, "platform.workers.link.bandwidth", "10 without a unit is taken as 10 bytes/s (80 b/s)"));
  CHECK(has_warning(a, "platform.workers.link.latency", "10 without a unit is taken as 10 seconds"));
  CHECK(a.warnings.size() == 2);
  j["platform"]["workers"]["link"] = {{"bandwidth", 1.25e9}, {"latency", 1e-5}};  // plausible plain numbers
  j["platform"]["network"]["loopback_bandwidth"] = 100;
  const Experiment b = load(j);
  CHECK(has_warning(b, "platform.network.loopback_bandwidth", "100 bytes/s"));
  CHECK(b.warnings.size() == 1);
  CHECK(units::implausible_plain_bandwidth(1e6).empty());
  CHECK(units::implausible_plain_latency(1.0).empty());
  CHECK(units::format_speed(1e10) == "10 Gflop/s");
}

TEST_CASE("an unknown numbered host names the valid range instead of a misleading neighbour") {
  const Experiment a = load(small_config(8, 1));
  const std::string r = sim::unknown_host_reason("worker-9", a.platform);
  CHECK(r == "unknown host 'worker-9'; hosts are worker-0..worker-7 and server-0");
  CHECK(sim::unknown_host_reason("wroker-2", a.platform) == "unknown host 'wroker-2' (did you mean 'worker-2'?)");
  json j = small_config(8, 1);
  j["platform"]["failures"] = json::parse(R"([{"host": "worker-8", "at_s": 1}])");
  CHECK(error_of(j).find("platform.failures[0].host: unknown host 'worker-8'; hosts are worker-0..worker-7 and server-0") !=
        std::string::npos);
}

TEST_CASE("examples/quickstart.json is the quickstart study's base experiment") {
  const json study = json::parse(io::read_file(DTSIM_SOURCE_DIR "/examples/quickstart-study.json"));
  CHECK(study["base"] == "quickstart.json");
  const Experiment q = sim::load_experiment(DTSIM_SOURCE_DIR "/examples/quickstart.json");
  CHECK(q.platform.workers.count == 8);
  CHECK(q.platform.workers.speed == dtsim_test::Rel(10e9));
  CHECK(q.platform.servers.speed == dtsim_test::Rel(10e9));
  CHECK(q.platform.slowdown(3) == 3);
  // The study's SSGD row is this config with the study's first algorithm: the same algorithm section.
  CHECK(study["vary"]["algorithm"][0] == json::parse(io::read_file(DTSIM_SOURCE_DIR "/examples/quickstart.json"))["algorithm"]);
}

TEST_CASE("docs/outputs.md names every file, every summary.json key and every status") {
  const std::string doc = io::read_file(DTSIM_SOURCE_DIR "/docs/outputs.md");
  // A summary with every optional part present.
  sim::RunResult r;
  r.stop = sim::StopInfo{"diverged", "loss of worker 1 at its step 3 is nan", 0.5, 3, 1, 3};
  r.checkpoints_written = 1;
  r.checkpoint_step = 2;
  r.resumed_from_step = 1;
  const json s = sim::summary_json(load(small_config()), r);
  for (auto it = s.begin(); it != s.end(); ++it) {
    CAPTURE(it.key());
    CHECK(doc.find("`" + it.key() + "`") != std::string::npos);
  }
  for (const char* k : {"reason", "detail", "sim_time_s", "step", "worker"}) CHECK(doc.find("\"" + std::string(k) + "\"") != std::string::npos);
  for (const char* status : {"completed", "time_limit", "interrupted", "wall_limit", "diverged"}) {
    CAPTURE(status);
    CHECK(doc.find("| `" + std::string(status) + "` |") != std::string::npos);
  }
  // Every file a run directory can hold (a checkpointed real-compute run writes them all).
  json j = small_config();
  j["training"]["checkpoint_every_samples"] = 1024;
  j["output"]["trace"] = true;
  char tmpl[] = "/tmp/dtsim-outputs-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const Experiment x = load(j);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      sim::RunHooks hooks;
      hooks.checkpoint_path = dir + "/checkpoint.dtck";
      sim::write_outputs(x, sim::run(x, hooks), dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    CAPTURE(f.path().filename().string());
    CHECK(doc.find("## " + f.path().filename().string()) != std::string::npos);
    ++files;
  }
  CHECK(files == 7);
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------------------------ item 7: one FNV-1a
TEST_CASE("FNV-1a: the 64-bit offset basis and published test vectors") {
  static_assert(fnv1a("") == 14695981039346656037ull);
  CHECK(fnv1a("a") == 0xaf63dc4c8601ec8cull);
  CHECK(fnv1a("foobar") == 0x85944171f73967e8ull);
  static_assert(fnv1a("worker-0-nic") == 0x32d747651ce09421ull);  // the key used below
  const std::string foobar = "foobar";
  CHECK(fnv1a_bytes(foobar.data(), 3, fnv1a_bytes(nullptr, 0)) == fnv1a("foo"));
  CHECK(fnv1a("bar", fnv1a("foo")) == fnv1a("foobar"));
  CHECK(sim::config_hash("foobar") == "85944171f73967e8");  // checkpoints: the same function
}

TEST_CASE("latency jitter is keyed by FNV-1a 64 of the link name with the correct offset basis") {
  // Drawn from Rng(seed, Straggler, {FNV-1a(link name), period}); 0x32d747651ce09421 is FNV-1a 64
  // of "worker-0-nic" (three copies of the hash used to miss a digit of the offset basis).
  sim::StragglerSpec s;
  s.kind = sim::StragglerSpec::Kind::LatencyJitter;
  s.jitter = sim::StragglerSpec::Jitter::Uniform;
  s.jitter_scale = 1e-3;
  s.every_s = 0.01;
  for (int slot : {0, 7}) {
    Rng rng(5, Stream::Straggler, {0x32d747651ce09421ull, static_cast<uint64_t>(slot)});
    CHECK(sim::jitter_at(s, 5, "worker-0-nic", slot * 0.01 + 0.001) == rng.uniform(0, 1e-3));
  }
}

// ------------------------------------------------------------------ issue 14, goal 5: the cost estimate
TEST_CASE("the cost estimate counts the transfers a timing-only run makes (parameter server and collectives)") {
  struct Case {
    const char* what;
    std::vector<std::string> sets;
    double tolerance;  // relative; 0 = the formula is exact for this form
  };
  const std::vector<Case> cases = {
      {"ssgd ps, 2 shards", {"platform.servers.count=2"}, 0},
      {"ssgd ring", {"algorithm.comm=allreduce"}, 0},
      {"ssgd tree", {"algorithm.comm=allreduce", "platform.collective.algorithm=tree"}, 0},
      {"ssgd recursive doubling", {"algorithm.comm=allreduce", "platform.collective.algorithm=recursive-doubling"}, 0},
      {"local-sgd ring, period 4", {"algorithm.name=local-sgd", "algorithm.comm=allreduce", "algorithm.period=4"}, 0.25},
      {"ssgd ps per-tensor", {"platform.servers.count=2", "algorithm.overlap.kind=per-tensor"}, 0.25},
      {"ssgd ring ddp", {"algorithm.comm=allreduce", "algorithm.overlap.kind=ddp"}, 0.25},
  };
  for (const auto& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    json j = small_config(6, 1);
    j["compute"]["mode"] = "timing-only";
    j["algorithm"] = {{"name", "ssgd"}};
    std::vector<std::string> sets = c.sets;
    const Experiment x = load(j, sets);
    const sim::RunCost cost = sim::estimate_cost(x);
    const ChildRun r = run_forked(x);
    REQUIRE(r.exit_code == 0);
    const double messages = r.summary.at("messages").get<double>();
    MESSAGE(what, ": estimated ", cost.transfers, ", made ", messages);
    if (c.tolerance == 0) CHECK(cost.transfers == messages);
    else CHECK(std::abs(cost.transfers - messages) <= c.tolerance * messages);
    CHECK(cost.memory_bytes > 0);
    CHECK(cost.wall_s > 0);
  }
}

// An asynchronous server's flows are in flight together, each event re-solving all of them: at 800
// workers a transfer cost 305 us against 7.5 us for the synchronous step's (bench/README.md,
// "Asynchronous servers at scale"). The estimate of such a run must not be the synchronous one's.
TEST_CASE("the cost estimate of an asynchronous server grows with the workers in flight") {
  json j = small_config(4, 1);
  j["compute"]["mode"] = "timing-only";
  const std::vector<std::string> big = {"platform.workers.count=800", "training.samples=640000"};
  const sim::RunCost sync = sim::estimate_cost(load(j, big));
  j["algorithm"] = {{"name", "asgd"}};
  const sim::RunCost async = sim::estimate_cost(load(j, big));
  CHECK(async.transfers == sync.transfers);  // the same pushes and pulls
  CHECK(async.wall_s > 10 * sync.wall_s);
  const sim::RunCost few = sim::estimate_cost(load(j, {"platform.workers.count=25", "training.samples=640000"}));
  CHECK(few.wall_s < async.wall_s / 10);  // the same transfers among 25 workers: the fitted 8.8 us each
}

TEST_CASE("the cost estimate grows faster than the workers (the solver's cost per transfer) and says so in words") {
  const json j = small_config(4, 1);
  const sim::RunCost small = sim::estimate_cost(load(j, {"platform.workers.count=1000", "training.samples=320000"}));
  const sim::RunCost big = sim::estimate_cost(load(j, {"platform.workers.count=10000", "training.samples=3200000"}));
  CHECK(big.transfers == dtsim_test::Rel(10 * small.transfers));
  CHECK(big.wall_s > 10 * small.wall_s);
  const std::string text = sim::cost_text(big);
  CHECK(text.find(" transfers, ~") != std::string::npos);
  CHECK(text.find(" of simulation") != std::string::npos);
  CHECK(text.find("plus the real compute") != std::string::npos);  // small_config is real-mode
  // Long estimates in days and years, not "1013500000.0 h".
  sim::RunCost c = big;
  c.wall_s = 5 * 86400.0;
  CHECK(sim::cost_text(c).find("~5 days of simulation") != std::string::npos);
  c.wall_s = 3.6e12;
  CHECK(sim::cost_text(c).find("~1.14e+05 years of simulation") != std::string::npos);
  c.wall_s = 7200;
  CHECK(sim::cost_text(c).find("~2.0 h of simulation") != std::string::npos);
}

}  // namespace test_preflight_cpp
