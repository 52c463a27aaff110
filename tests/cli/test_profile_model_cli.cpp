// The "profile" model kind through the CLI (engine/profile_model.hpp, docs/profiles.md), on the
// PyTorch profile traces/profiles/tiny_vit.profile.json that tools/torch_profile.py measured on the
// development machine: a 1-worker timing-only run predicts the step time PyTorch measured; relative
// paths resolve against the config's directory; bad profiles exit 2 with file, path and reason.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_profile_model_cli_cpp {  // one namespace per test file: the test targets are unity builds

using clitest::dtsim;
using clitest::Scratch;
using clitest::slurp;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kProfile = std::string(DTSIM_SOURCE_DIR) + "/traces/profiles/tiny_vit.profile.json";

// One worker, SSGD with all-reduce (nothing to send), compute from the profile, and the worker's
// optimizer step costing the profile's measured update_s (update_flops_per_param x P / speed).
json one_worker(const json& prof, int batch, int k) {
  const double update_s = prof["step"]["update_s"][k].get<double>();
  const double per_param = update_s * 1e9 / prof["num_params"].get<double>();
  return {{"name", "one"},
          {"platform",
           {{"network", {{"model", "exact"}}},
            {"workers", {{"count", 1}, {"speed", "1Gf"}, {"link", {{"bandwidth", "1Gbps"}, {"latency", "10us"}}}}},
            {"servers", {{"count", 0}, {"update_flops_per_param", per_param}}}}},
          {"model", {{"kind", "profile"}, {"path", "tiny_vit.profile.json"}}},
          {"dataset", {{"kind", "synthetic"}, {"train", 10 * batch}, {"test", 16}, {"features", 4}}},
          {"algorithm", {{"name", "ssgd"}, {"comm", "allreduce"}}},
          {"training", {{"batch_size", batch}, {"samples", 10 * batch}}},
          {"compute", {{"mode", "timing-only"}, {"time", {{"kind", "profile"}}}}}};
}

}  // namespace

TEST_CASE("profile model CLI: a 1-worker run predicts the step PyTorch measured within 10 percent") {
  const json prof = json::parse(slurp(kProfile));
  Scratch s;
  fs::copy_file(kProfile, s.dir / "tiny_vit.profile.json");
  for (size_t k = 0; k < prof["batches"].size(); ++k) {
    const int batch = prof["batches"][k].get<int>();
    const std::string cfg = s.write("one.json", one_worker(prof, batch, static_cast<int>(k)).dump());
    const auto r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "out").string());
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const json sum = json::parse(slurp(s.dir / "out" / "summary.json"));
    const double per_step = sum["simulated_time_s"].get<double>() / sum["updates"].get<double>();
    // PyTorch's whole step (forward + backward + optimizer), measured as such, hook-free.
    const double measured = prof["step"]["step_s"][k].get<double>();
    CAPTURE(batch);
    CAPTURE(per_step);
    CAPTURE(measured);
    CHECK(std::abs(per_step - measured) <= 0.10 * measured);
    CHECK(sum["model"] == "profile");
    CHECK(sum["model_parameters"] == prof["num_params"]);
    // The resolved config records the absolute profile path and the batch the layers are read at.
    const json res = json::parse(slurp(s.dir / "out" / "config.resolved.json"));
    CHECK(res["model"]["path"] == (s.dir / "tiny_vit.profile.json").string());
    CHECK(res["model"]["batch"] == batch);
  }
  // Halfway between the two measured batches the step is the mean of the two measured steps.
  const int b0 = prof["batches"][0].get<int>(), b1 = prof["batches"][1].get<int>();
  REQUIRE((b0 + b1) % 2 == 0);
  json mid = one_worker(prof, (b0 + b1) / 2, 0);
  mid["platform"]["servers"]["update_flops_per_param"] = 0;
  const auto r = dtsim("run " + s.write("mid.json", mid.dump()) + " --quiet --out " + (s.dir / "mid").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const json sum = json::parse(slurp(s.dir / "mid" / "summary.json"));
  const auto& st = prof["step"];
  const double s0 = st["forward_s"][0].get<double>() + st["backward_s"][0].get<double>();
  const double s1 = st["forward_s"][1].get<double>() + st["backward_s"][1].get<double>();
  CHECK(sum["simulated_time_s"].get<double>() / sum["updates"].get<double>() == dtsim_test::Rel(0.5 * (s0 + s1)).epsilon(1e-3));
}

TEST_CASE("profile model CLI: flops and fixed timing work, real compute and a missing file are refused") {
  const json prof = json::parse(slurp(kProfile));
  Scratch s;
  fs::copy_file(kProfile, s.dir / "tiny_vit.profile.json");
  json cfg = one_worker(prof, 32, 0);
  cfg["platform"]["servers"]["update_flops_per_param"] = 0;
  // flops: FLOPs per sample x batch / host speed.
  cfg["compute"]["time"] = {{"kind", "flops"}};
  auto r = dtsim("run " + s.write("f.json", cfg.dump()) + " --quiet --out " + (s.dir / "f").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  double flops = 0;
  for (const auto& l : prof["layers"])
    flops += l["forward_flops"].get<double>() + l["backward_input_flops"].get<double>() +
             l["backward_weight_flops"].get<double>();
  json sum = json::parse(slurp(s.dir / "f" / "summary.json"));
  CHECK(sum["flops_per_sample"].get<double>() == dtsim_test::Rel(flops));
  CHECK(sum["simulated_time_s"].get<double>() / sum["updates"].get<double>() == dtsim_test::Rel(flops * 32 / 1e9));
  // fixed
  cfg["compute"]["time"] = {{"kind", "fixed"}, {"seconds", 0.25}};
  r = dtsim("run " + s.write("x.json", cfg.dump()) + " --quiet --out " + (s.dir / "x").string());
  REQUIRE_MESSAGE(r.code == 0, r.err);
  sum = json::parse(slurp(s.dir / "x" / "summary.json"));
  CHECK(sum["simulated_time_s"].get<double>() / sum["updates"].get<double>() == dtsim_test::Rel(0.25));
  // real compute: no compute path
  cfg["compute"] = {{"mode", "real"}};
  const std::string real = s.write("r.json", cfg.dump());
  r = dtsim("validate " + real);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + real + ": model.kind: ") == 0);
  CHECK(r.err.find("timing-only") != std::string::npos);
  // a profile file that does not exist, relative to the config's directory
  cfg = one_worker(prof, 32, 0);
  cfg["model"]["path"] = "nope.profile.json";
  const std::string missing = s.write("m.json", cfg.dump());
  r = dtsim("validate " + missing);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + missing + ": model.path: model profile '" + (s.dir / "nope.profile.json").string() +
                   "' does not exist") == 0);
}

TEST_CASE("profile model CLI: a malformed profile exits 2 naming the profile, the JSON path and the reason") {
  json prof = json::parse(slurp(kProfile));
  Scratch s;
  const std::string cfg = s.write("c.json", one_worker(prof, 32, 0).dump());
  const std::string pf = (s.dir / "tiny_vit.profile.json").string();
  // An index out of range.
  prof["layers"][1]["tensors"][0] = 999;
  s.write("tiny_vit.profile.json", prof.dump());
  auto r = dtsim("validate " + cfg);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + pf + ": layers[1].tensors[0]: tensor index 999 out of range") == 0);
  // Truncated.
  const std::string whole = slurp(kProfile);
  s.write("tiny_vit.profile.json", whole.substr(0, whole.size() / 3));
  r = dtsim("run " + cfg + " --quiet --out " + (s.dir / "t").string());
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + pf + ": invalid JSON") == 0);
  CHECK_FALSE(fs::exists(s.dir / "t" / "summary.json"));
  // Tensor sizes that do not add up.
  prof = json::parse(whole);
  prof["num_params"] = prof["num_params"].get<long>() + 1;
  s.write("tiny_vit.profile.json", prof.dump());
  r = dtsim("validate " + cfg);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + pf + ": num_params: ") == 0);
  // Negative time.
  prof = json::parse(whole);
  prof["layers"][2]["forward_s"][0] = -1;
  s.write("tiny_vit.profile.json", prof.dump());
  r = dtsim("validate " + cfg);
  CHECK(r.code == 2);
  CHECK(r.err.find("error: " + pf + ": layers[2].forward_s[0]: must be a finite, non-negative time") == 0);
}

}  // namespace test_profile_model_cli_cpp
