// Algorithm plugins (docs/plugins.md): the example plugin (examples/plugin/post_local_sgd.cpp,
// built here as a MODULE library) is listed by `dtsim algorithms --plugin`, runs from `--plugin`
// and from `algorithm.plugin`, equals Local SGD bitwise with warmup 0, and checkpoints and resumes
// like a built-in; every refusal (a name clashing with a built-in, another ABI version, no entry
// point, not a shared object, a missing file, an undefined symbol, a registration that throws) is
// exit 2 with one line giving the reason.
#include <algorithm>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

namespace test_plugins_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

const std::string kPlugin = DTSIM_TEST_PLUGIN_post_local_sgd;

// 4 workers x batch 16 = 64 samples per step, 2048 samples = 32 steps.
std::string config(const std::string& algorithm, const std::string& extra_training = "") {
  return R"({"name": "pl", "seed": 3,
 "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
   "workers": {"count": 4, "speed": "1Tf", "link": {"bandwidth": "1Gbps", "latency": "50us"}},
   "servers": {"count": 0}},
 "model": {"kind": "mlp", "hidden": [16]},
 "dataset": {"kind": "synthetic", "train": 1024, "test": 256, "features": 32, "classes": 4},
 "algorithm": )" + algorithm + R"(,
 "training": {"batch_size": 16, "samples": 2048, "eval_every_samples": 512)" + extra_training + R"(},
 "compute": {"mode": "real", "time": {"kind": "fixed", "seconds": 0.01}},
 "output": {"trace": false}})";
}

nlohmann::json json_of(const fs::path& p) { return nlohmann::json::parse(slurp(p)); }

// Exit 2, one line on stderr starting with `prefix` and containing `reason`.
void refused(const Result& r, const std::string& prefix, const std::string& reason) {
  CAPTURE(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.rfind(prefix, 0) == 0);
  CHECK(r.err.find(reason) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

}  // namespace

TEST_CASE("plugins: dtsim algorithms --plugin lists the plugin's algorithms with their parameters") {
  const Result r = dtsim("algorithms --plugin " + kPlugin);
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const auto at = r.out.find("post-local-sgd");
  REQUIRE(at != std::string::npos);
  const std::string entry = r.out.substr(at, r.out.find("\n\n", at) == std::string::npos ? std::string::npos : 600);
  CHECK(entry.find("plugin " + fs::canonical(kPlugin).string()) != std::string::npos);
  for (const char* key : {"warmup", "period", "lr", "momentum", "schedule", "clip_grad_norm"}) CHECK(entry.find(key) != std::string::npos);
  CHECK(r.out.find("ssgd") != std::string::npos);                             // the built-ins too
  CHECK(dtsim("algorithms").out.find("post-local-sgd") == std::string::npos);  // not without the plugin
}

TEST_CASE("plugins: a plugin algorithm runs from --plugin and from algorithm.plugin, equal to Local SGD with warmup 0") {
  Scratch s;
  const std::string plugin_alg = R"({"name": "post-local-sgd", "warmup": 0, "period": 4, "momentum": 0.9})";
  const Result a = dtsim("run " + s.write("a.json", config(plugin_alg)) + " --plugin " + kPlugin + " --out " +
                         (s.dir / "a").string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  // The config key, relative to the config file; resolved to an absolute path either way.
  const std::string rel = fs::relative(fs::canonical(kPlugin), s.dir).string();
  const std::string keyed = R"({"plugin": ")" + rel + R"(", "name": "post-local-sgd", "warmup": 0, "period": 4, "momentum": 0.9})";
  const Result b = dtsim("run " + s.write("b.json", config(keyed)) + " --out " + (s.dir / "b").string() + " --quiet");
  REQUIRE_MESSAGE(b.code == 0, b.err);
  const Result c = dtsim("run " + s.write("c.json", config(R"({"name": "local-sgd", "period": 4, "momentum": 0.9})")) +
                         " --out " + (s.dir / "c").string() + " --quiet");
  REQUIRE_MESSAGE(c.code == 0, c.err);
  for (const char* run : {"a", "b"})
    CHECK(json_of(s.dir / run / "config.resolved.json")["algorithm"]["plugin"] == fs::canonical(kPlugin).string());
  const std::string pa = slurp(s.dir / "a" / "final_params.npy");
  REQUIRE(pa.size() > 128);
  CHECK(pa == slurp(s.dir / "b" / "final_params.npy"));
  CHECK(pa == slurp(s.dir / "c" / "final_params.npy"));  // warmup 0 = Local SGD, bitwise
  CHECK(json_of(s.dir / "a" / "summary.json")["simulated_time_s"] == json_of(s.dir / "c" / "summary.json")["simulated_time_s"]);
  // warmup 16 of the 32 steps: different from both Local SGD and SSGD.
  const Result d = dtsim("run " + s.write("d.json", config(R"({"name": "post-local-sgd", "warmup": 16, "period": 4})")) +
                         " --plugin " + kPlugin + " --out " + (s.dir / "d").string() + " --quiet");
  REQUIRE_MESSAGE(d.code == 0, d.err);
  CHECK(slurp(s.dir / "d" / "final_params.npy") != pa);
}

TEST_CASE("plugins: a plugin algorithm checkpoints and resumes bitwise like a built-in") {
  Scratch s;
  const std::string cfg =
      s.write("ck.json", config(R"({"name": "post-local-sgd", "warmup": 8, "period": 3, "momentum": 0.9})",
                                R"(, "checkpoint_every_samples": 1200)"));
  const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
  const Result a = dtsim("run " + cfg + " --plugin " + kPlugin + " --out " + full.string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  REQUIRE(fs::exists(full / "checkpoint.dtck"));
  // No --plugin: config.resolved.json names it.
  const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
  REQUIRE_MESSAGE(b.code == 0, b.err);
  const auto summary = json_of(resumed / "summary.json");
  CHECK(summary["resumed_from_step"].get<int>() > 0);
  CHECK(summary["status"] == "completed");
  CHECK(slurp(full / "final_params.npy") == slurp(resumed / "final_params.npy"));
}

// A plugin that never publishes its model ran to "completed", exit 0, silently: final_params.npy
// and the final metrics were the initial model's; one that never cut a checkpoint wrote none, and
// --resume then said to set checkpoint_every_samples, which the run had.
TEST_CASE("plugins: a run that published no model or cut no checkpoint completes with a warning for each") {
  Scratch s;
  const std::string cfg = s.write("silent.json", config(R"({"name": "silent-sgd"})", R"(, "checkpoint_every_samples": 1024)"));
  const Result r = dtsim("run " + cfg + " --plugin " + DTSIM_TEST_PLUGIN_silent + " --out " + (s.dir / "out").string() + " --quiet");
  CAPTURE(r.err);
  REQUIRE(r.code == 0);
  const std::string no_update = cfg + ": algorithm.name: 'silent-sgd' committed no global update in the whole run";
  const std::string no_ckpt = cfg + ": training.checkpoint_every_samples: no checkpoint was written";
  CHECK(r.err.find("warning: " + no_update) != std::string::npos);
  CHECK(r.err.find("warning: " + no_ckpt) != std::string::npos);
  const auto summary = json_of(s.dir / "out" / "summary.json");
  CHECK(summary["status"] == "completed");
  std::string warnings = summary["warnings"].dump();
  CHECK(warnings.find("committed no global update") != std::string::npos);
  CHECK(warnings.find("no checkpoint was written") != std::string::npos);
  // The example plugin does both: no warning.
  const std::string ok = s.write("ok.json", config(R"({"name": "post-local-sgd", "warmup": 8})", R"(, "checkpoint_every_samples": 1024)"));
  const Result good = dtsim("run " + ok + " --plugin " + kPlugin + " --out " + (s.dir / "ok").string() + " --quiet");
  CHECK(good.code == 0);
  CHECK(good.err.empty());
}

// `validate STUDY --plugin` said valid for a study that `dtsim sweep` (which has no --plugin) then
// refused at its first run; the study's configs name the plugin instead, and that validates.
TEST_CASE("plugins: validate STUDY --plugin is a usage error, a study naming algorithm.plugin validates") {
  Scratch s;
  s.write("exp.json", config(R"({"name": "post-local-sgd", "warmup": 8})"));
  const std::string study = s.write("study.json", R"({"base": "exp.json", "vary": {"seed": [1, 2]}})");
  const Result usage = dtsim("validate " + study + " --plugin " + kPlugin);  // a usage error: its line, then the --help hint
  CHECK(usage.code == 2);
  CHECK(usage.err.rfind("error: --plugin is for a config; a study names its plugin", 0) == 0);
  s.write("exp2.json", config(R"({"name": "post-local-sgd", "warmup": 8, "plugin": ")" + kPlugin + R"("})"));
  const std::string study2 = s.write("study2.json", R"({"base": "exp2.json", "vary": {"seed": [1, 2]}})");
  const Result ok = dtsim("validate " + study2);
  CAPTURE(ok.err);
  CHECK(ok.code == 0);
}

TEST_CASE("plugins: refusals are exit 2 with the reason: clash, ABI version, no entry point, not a shared object") {
  refused(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_clash), "error: --plugin: plugin '",
          "registers algorithm 'ssgd', which clashes with the built-in algorithm of that name");
  refused(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_abi), "error: --plugin: plugin '",
          "was built for plugin ABI version 999; this dtsim has version");
  refused(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_nosym), "error: --plugin: plugin '",
          "has no dtsim_plugin_register function");
  refused(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_undefined), "error: --plugin: plugin '",
          "does not load: ");
  CHECK(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_undefined).err.find("dtsim_no_such_function") != std::string::npos);
  refused(dtsim("algorithms --plugin " DTSIM_TEST_PLUGIN_throws), "error: --plugin: plugin '",
          "failed while registering: no licence for this algorithm");
  Scratch s;
  refused(dtsim("algorithms --plugin " + s.write("fake.so", "not an ELF file\n")), "error: --plugin: plugin '",
          "is not a shared object (no ELF header)");
  refused(dtsim("algorithms --plugin " + (s.dir / "missing.so").string()), "error: --plugin: plugin '", "does not exist");
  // A plugin cut short (a half-written build output): glibc's dlopen died of SIGBUS on it (exit 135).
  const std::string whole = slurp(fs::path(kPlugin));
  REQUIRE(whole.size() > 8192);
  for (const size_t keep : {size_t{4096}, whole.size() / 2, whole.size() - 100}) {
    CAPTURE(keep);
    const std::string cut = s.write("cut.so", whole.substr(0, keep));
    refused(dtsim("algorithms --plugin " + cut), "error: --plugin: plugin '", "is truncated or corrupt");
  }
  // The same plugin twice is loaded once (no clash with itself).
  CHECK(dtsim("algorithms --plugin " + kPlugin + " --plugin " + kPlugin).code == 0);
  // Through the config: the file and algorithm.plugin.
  const std::string cfg = s.write("x.json", config(R"({"plugin": "missing.so", "name": "post-local-sgd"})"));
  refused(dtsim("validate " + cfg), "error: " + cfg + ": algorithm.plugin: plugin '" + (s.dir / "missing.so").string() + "'",
          "does not exist");
  const std::string cfg2 = s.write("y.json", config(R"({"plugin": ")" DTSIM_TEST_PLUGIN_clash R"(", "name": "ssgd"})"));
  refused(dtsim("run " + cfg2), "error: " + cfg2 + ": algorithm.plugin: plugin '", "clashes with the built-in");
  // Without the plugin the algorithm is unknown (the usual message).
  refused(dtsim("validate " + s.write("z.json", config(R"({"name": "post-local-sgd"})"))), "error: ",
          "unknown algorithm 'post-local-sgd'");
}

}  // namespace test_plugins_cpp
