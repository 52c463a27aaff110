// Checkpoint and resume (docs/robustness.md): training.checkpoint_every_samples writes
// <run dir>/checkpoint.dtck; `dtsim run --resume DIR` continues it. For synchronous algorithms the
// resumed run ends with bitwise the same parameters and the same metrics rows as an uninterrupted
// one; bad checkpoints and misuse are refused with exit 2 and one line naming the file.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"

namespace test_checkpoint_cpp {  // one namespace per test file: the test targets are unity builds

namespace fs = std::filesystem;

namespace {

using namespace clitest;

// 3 workers x batch 8 = 24 samples per synchronous step, 2400 samples = 100 steps. With
// checkpoint_every_samples = C the cuts are the first steps at which 24 * step crosses a multiple of C.
const std::string kMlp = R"("model": {"kind": "mlp", "hidden": [16]}, "dataset": {"kind": "synthetic", "train": 512, "test": 128, "features": 8})";
// A model with BatchNorm running statistics (per-worker state the checkpoint must carry).
const std::string kResnet8 =
    R"("model": {"kind": "resnet8"}, "dataset": {"kind": "synthetic", "train": 512, "test": 64, "shape": [3, 8, 8]})";

std::string ckpt_config(const std::string& algorithm, const std::string& every, const std::string& extra_training = "",
                        const std::string& model_data = kMlp) {
  return R"({"name": "ck", "seed": 3,
 "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
   "workers": {"count": 3, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}},
   "servers": {"count": 2, "speed": "1Tf", "link": {"bandwidth": "10Gbps", "latency": "10us"}}},
 )" + model_data + R"(,
 "algorithm": )" + algorithm + R"(,
 "training": {"batch_size": 8, "samples": 2400, "eval_every_samples": 240, "checkpoint_every_samples": )" + every +
         extra_training + "}}";
}

// metrics.csv rows without the wall-clock column and without the last one,
// exposed_comm_s_per_step (the run's clock minus its busy seconds: a resumed worker restarts at
// its cut's instant as read back from the file; exposed_near checks it to a relative 1e-6).
std::vector<std::string> rows_without_wall(const fs::path& csv) {
  std::vector<std::string> rows;
  std::istringstream in(slurp(csv));
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(','), b = line.find(',', a + 1);
    rows.push_back(line.substr(0, a) + line.substr(b, line.rfind(',') - b));
  }
  return rows;
}

void exposed_near(const fs::path& a, const fs::path& b) {
  std::istringstream ia(slurp(a)), ib(slurp(b));
  std::string la, lb;
  std::getline(ia, la);
  std::getline(ib, lb);
  while (std::getline(ia, la) && std::getline(ib, lb)) {
    const std::string ea = la.substr(la.rfind(',') + 1), eb = lb.substr(lb.rfind(',') + 1);
    CHECK(ea.empty() == eb.empty());
    // relative (doctest's Approx adds 1 to the scale of its margin: at 1e-5 s per step, no check)
    if (ea.empty() || eb.empty()) continue;
    const double x = std::stod(ea), y = std::stod(eb);
    CAPTURE(la);
    CAPTURE(lb);
    CHECK(std::fabs(x - y) <= 1e-6 * std::max(std::fabs(x), std::fabs(y)));
  }
}

uint64_t samples_of(const std::string& row) {  // the samples column (third, second without wall time)
  const auto a = row.find(',');
  return std::stoull(row.substr(a + 1, row.find(',', a + 1) - a - 1));
}

// Uninterrupted run vs. a run resumed from its checkpoint into another directory.
void expect_resume_bitwise(const std::string& algorithm, const std::string& every, const std::string& last_step,
                           const std::string& model_data = kMlp) {
  Scratch s;
  const std::string cfg = s.write("ck.json", ckpt_config(algorithm, every, "", model_data));
  const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
  const Result a = dtsim("run " + cfg + " --out " + full.string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  REQUIRE(fs::exists(full / "checkpoint.dtck"));
  CHECK(slurp(full / "summary.json").find("\"last_step\": " + last_step) != std::string::npos);

  const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
  REQUIRE_MESSAGE(b.code == 0, b.err);
  const std::string summary = slurp(resumed / "summary.json");
  CHECK(summary.find("\"resumed_from_step\": " + last_step) != std::string::npos);
  CHECK(summary.find("\"status\": \"completed\"") != std::string::npos);

  // Bitwise equal final parameters.
  const std::string pa = slurp(full / "final_params.npy"), pb = slurp(resumed / "final_params.npy");
  REQUIRE(pa.size() > 128);
  CHECK(pa == pb);
  // Every metrics row equal (sim time, samples, epoch, losses, accuracy), including those computed
  // after the cut by the resumed run.
  const auto ra = rows_without_wall(full / "metrics.csv"), rb = rows_without_wall(resumed / "metrics.csv");
  CHECK(ra == rb);
  exposed_near(full / "metrics.csv", resumed / "metrics.csv");
  const uint64_t cut_samples = static_cast<uint64_t>(std::stoll(last_step)) * 24;
  CHECK(std::count_if(rb.begin() + 1, rb.end(), [&](const std::string& r) { return samples_of(r) > cut_samples; }) >= 2);
  // Same totals: samples, simulated time, bytes on the wire.
  for (const char* key : {"\"samples\": ", "\"simulated_time_s\": ", "\"bytes_on_wire\": ", "\"updates\": "}) {
    const std::string sa = slurp(full / "summary.json");
    const auto ia = sa.find(key), ib = summary.find(key);
    REQUIRE(ia != std::string::npos);
    REQUIRE(ib != std::string::npos);
    CAPTURE(key);
    CHECK(sa.substr(ia, sa.find_first_of(",\n", ia) - ia) == summary.substr(ib, summary.find_first_of(",\n", ib) - ib));
  }
  // The same warnings: those of the run as first started, naming its config (not the run
  // directory's config.resolved.json, in which a replaced setting is already replaced).
  const auto wa = nlohmann::json::parse(slurp(full / "summary.json"))["warnings"];
  CHECK(wa == nlohmann::json::parse(summary)["warnings"]);
  if (algorithm.find("\"ssgd\"") != std::string::npos && algorithm.find("allreduce") == std::string::npos)
    CHECK(wa.dump().find("algorithm.overlap: checkpoints cut") != std::string::npos);  // SSGD PS: per-tensor replaced
}

}  // namespace

TEST_CASE("checkpoint: SSGD on a PS resumed at half the budget ends bitwise equal to the uninterrupted run") {
  expect_resume_bitwise(R"({"name": "ssgd", "comm": "ps", "momentum": 0.9, "weight_decay": 0.001})", "1200", "50");
}

TEST_CASE("checkpoint: SSGD all-reduce resumed from its last checkpoint ends bitwise equal to the uninterrupted run") {
  // cuts at steps 42 (1008 samples) and 84 (2016): the file holds the last one
  expect_resume_bitwise(R"({"name": "ssgd", "comm": "allreduce", "momentum": 0.9, "nesterov": true})", "1000", "84");
}

TEST_CASE("checkpoint: Local SGD resumed mid-round and at a round boundary ends bitwise equal to the uninterrupted run") {
  // all-reduce, H = 4: the cut at step 50 is in the middle of round 12 (workers' models differ)
  expect_resume_bitwise(R"({"name": "local-sgd", "comm": "allreduce", "period": 4, "momentum": 0.9})", "1200", "50");
  // PS, H = 3: the last cut, step 84, ends round 27
  expect_resume_bitwise(R"({"name": "local-sgd", "comm": "ps", "period": 3, "momentum": 0.9})", "1000", "84");
}

TEST_CASE("checkpoint: CoCoD-SGD resumed from a cut inside a round ends bitwise equal to the uninterrupted run") {
  // k = 4: the cut at step 50 lies in round 12 (steps 48..51) and is taken at its end, after the merge
  expect_resume_bitwise(R"({"name": "cocod-sgd", "period": 4, "momentum": 0.9})", "1200", "50");
  expect_resume_bitwise(R"({"name": "cocod-sgd", "period": 3, "momentum": 0.9, "proportional_batch": true})", "1000", "84");
}

TEST_CASE("checkpoint: DiLoCo with AdamW and with SGD inside resumed mid-round ends bitwise equal") {
  expect_resume_bitwise(R"({"name": "diloco", "period": 4, "local_lr": 0.01})", "1200", "50");
  expect_resume_bitwise(R"({"name": "diloco", "period": 3, "local_optimizer": "sgd", "local_lr": 0.05, "local_momentum": 0.9})",
                        "1000", "84");
}

TEST_CASE("checkpoint: DaSGD resumed from a cut inside a round ends bitwise equal (the in-flight average is relaunched)") {
  // The cut is taken at the round's end, before its average is launched; the resumed run launches it first.
  expect_resume_bitwise(R"({"name": "dasgd", "period": 4, "delay": 1, "local_optimizer": "sgd", "lr": 0.05, "momentum": 0.9})", "1200", "50");
  expect_resume_bitwise(R"({"name": "dasgd", "period": 3, "delay": 2, "merge": "replace"})", "1000", "84");
}

TEST_CASE("checkpoint: a resumed run's exposed_comm_s_per_step equals the uninterrupted run's in every row") {
  // 8 identical DaSGD workers: the evaluation after 1664 samples falls at the very instant the
  // workers' local updates end. The resumed run's actors are new, so SimGrid runs those same-time
  // events in another order; counting only finished updates as busy made that row read 3.924e-05
  // against 3.912e-05 (sim/busy_spans.hpp counts running spans up to the instant instead).
  Scratch s;
  const std::string cfg = s.write("ck.json", R"({"name": "t", "seed": 1,
 "platform": {"network": {"model": "exact"}, "topology": {"kind": "star"},
   "workers": {"count": 8, "speed": "10Gf", "link": {"bandwidth": "10Gbps", "latency": "10us"}}, "servers": {"count": 0}},
 "model": {"kind": "mlp", "hidden": [32]}, "dataset": {"kind": "synthetic", "train": 512, "test": 64, "features": 784},
 "algorithm": {"name": "dasgd", "period": 4, "delay": 1},
 "training": {"batch_size": 16, "samples": 2048, "eval_every_samples": 512, "checkpoint_every_samples": 1126},
 "compute": {"mode": "timing-only", "time": {"kind": "flops"}}})");
  const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
  const Result a = dtsim("run " + cfg + " --out " + full.string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
  REQUIRE_MESSAGE(b.code == 0, b.err);
  CHECK(rows_without_wall(full / "metrics.csv") == rows_without_wall(resumed / "metrics.csv"));
  exposed_near(full / "metrics.csv", resumed / "metrics.csv");
}

TEST_CASE("checkpoint: Pipe-SGD (all-reduce and PS) resumed ends bitwise equal (the unsent gradient is sent first)") {
  // The cut of step t is taken just before g_t is sent; the resumed run sends it, then goes on.
  expect_resume_bitwise(R"({"name": "pipe-sgd", "comm": "allreduce", "lr": 0.05, "momentum": 0.9})", "1200", "50");
  expect_resume_bitwise(R"({"name": "pipe-sgd", "comm": "ps", "lr": 0.05, "momentum": 0.9})", "1000", "84");
}

TEST_CASE("checkpoint: OD-SGD resumed in its warm-up and after it ends bitwise equal (every local optimizer)") {
  // 100 steps; cuts at 50 (C = 1200) and 84 (C = 1000). Warm-up 60: the cut at 50 is an SSGD one.
  expect_resume_bitwise(R"({"name": "od-sgd", "lr": 0.05, "momentum": 0.5, "warmup_steps": 60})", "1200", "50");
  // Warm-up 20: the cuts fall after it, with the default local optimizer (dc-asgd-adaptive; a decay
  // m > 0 so that its mean square carries over the cut) and sgd.
  expect_resume_bitwise(R"({"name": "od-sgd", "lr": 0.05, "momentum": 0.5, "warmup_steps": 20, "mean_square": 0.9})",
                        "1000", "84");
  expect_resume_bitwise(
      R"({"name": "od-sgd", "lr": 0.05, "momentum": 0.5, "warmup_steps": 20, "local_optimizer": "sgd", "local_lr": 0.2})",
      "1200", "50");
}

TEST_CASE("checkpoint: SSD-SGD resumed after its warm-up ends bitwise equal (GLU and dc-asgd-adaptive)") {
  // k = 5 after a warm-up of 20: step 50 is s = 30 (no pull after it), step 84 is s = 64 (pull after it).
  expect_resume_bitwise(
      R"({"name": "ssd-sgd", "lr": 0.05, "momentum": 0.5, "local_lr": 0.2, "warmup_steps": 20, "pull_every": 5})", "1200",
      "50");
  expect_resume_bitwise(R"({"name": "ssd-sgd", "lr": 0.05, "momentum": 0.5, "local_lr": 0.2, "warmup_steps": 20,
                            "pull_every": 5, "local_optimizer": "dc-asgd-adaptive"})",
                        "1000", "84");
}

TEST_CASE("checkpoint: synchronous EASGD resumed mid-period and at an exchange ends bitwise equal") {
  // τ = 4: the cut at 50 is mid-period (next exchange at 52), the one at 84 right before an exchange.
  expect_resume_bitwise(R"({"name": "easgd", "sync": true, "period": 4, "momentum": 0.9})", "1200", "50");
  expect_resume_bitwise(R"({"name": "easgd", "sync": true, "period": 3, "momentum": 0.9, "nesterov": true})", "1000", "84");
}

TEST_CASE("checkpoint: Streaming DiLoCo resumed at the first step with no exchange in flight ends bitwise equal") {
  // H = 8, P = 2: fragment 0 sends after steps 7, 15, ..., fragment 1 after 3, 11, ..., each applied τ
  // steps later. τ = 1: nothing is in flight after step 49, so the cut at 50 is taken there. τ = 2:
  // the cut at 84 (2016 samples) comes right after fragment 1's send after step 83, so it is deferred
  // to the end of step 85, when that exchange has been applied (the state is that of step 86).
  expect_resume_bitwise(
      R"({"name": "streaming-diloco", "period": 8, "fragments": 2, "delay": 1, "local_lr": 0.01, "quantize": true})", "1200",
      "50");
  expect_resume_bitwise(
      R"({"name": "streaming-diloco", "period": 8, "fragments": 2, "delay": 2, "local_optimizer": "sgd", "local_lr": 0.05, "local_momentum": 0.9})",
      "1000", "84");
}

TEST_CASE("checkpoint: Streaming DiLoCo with a delay that leaves no quiet step is refused with the reason") {
  Scratch s;
  const std::string bad = s.write(
      "sd.json", ckpt_config(R"({"name": "streaming-diloco", "period": 8, "fragments": 4, "delay": 2})", "1200"));
  const Result r = dtsim("validate " + bad);
  CHECK(r.code == 2);
  CHECK(r.err.find("training.checkpoint_every_samples: algorithm 'streaming-diloco' cannot checkpoint with these settings: "
                   "the delay τ = 2 is not shorter than the smallest gap between two fragments' sends (2 steps)") !=
        std::string::npos);
}

TEST_CASE("checkpoint: a BatchNorm model's per-worker running statistics are carried across the cut") {
  // ResNet-8's BatchNorm statistics are not parameters: evaluated with worker 0's, they must be
  // restored at every worker's cut for the metrics after the cut to be equal.
  expect_resume_bitwise(R"({"name": "ssgd", "comm": "allreduce", "lr": 0.05, "momentum": 0.9})", "1200", "50", kResnet8);
  expect_resume_bitwise(R"({"name": "local-sgd", "comm": "allreduce", "period": 4, "lr": 0.05})", "1000", "84", kResnet8);
}

TEST_CASE("checkpoint: a run killed by SIGTERM once its checkpoint exists, resumed in place, ends bitwise equal") {
  // 24000 samples = 1000 steps, cuts at steps 250, 500 and 750. Whenever the kill lands (even after
  // the run's end), resuming from the checkpoint on disk must give the uninterrupted result.
  Scratch s;
  const std::string cfg = s.write("ck.json", ckpt_config(R"({"name": "ssgd", "momentum": 0.9})", "6000"));
  const std::string set = " --set training.samples=24000 --set training.eval_every_samples=2400 --set output.trace=false --quiet";
  const fs::path full = s.dir / "full", killed = s.dir / "killed";
  REQUIRE(dtsim("run " + cfg + " --out " + full.string() + set).code == 0);
  const std::string bin = DTSIM_BINARY;
  const std::string script = "(" + bin + " run " + cfg + " --out " + killed.string() + set + " 2>/dev/null & p=$!; i=0; " +
                             "while [ ! -f " + (killed / "checkpoint.dtck").string() + " ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; " +
                             "kill -TERM $p 2>/dev/null; wait $p; exit $?)";
  const int st = std::system(("sh -c '" + script + "'").c_str());
  const int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  CHECK((code == 143 || code == 0));  // 0: it ended before the signal arrived
  REQUIRE(fs::exists(killed / "checkpoint.dtck"));
  const Result r = dtsim("run --resume " + killed.string() + " --quiet");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(slurp(killed / "summary.json").find("\"status\": \"completed\"") != std::string::npos);
  CHECK(slurp(killed / "summary.json").find("\"resumed_from_step\"") != std::string::npos);
  CHECK(slurp(full / "final_params.npy") == slurp(killed / "final_params.npy"));
  CHECK(rows_without_wall(full / "metrics.csv") == rows_without_wall(killed / "metrics.csv"));
}

TEST_CASE("checkpoint: a run without checkpoint_every_samples writes no checkpoint and a resolved config") {
  Scratch s;
  const std::string cfg = s.write("ck.json", ckpt_config(R"({"name": "ssgd"})", "0"));
  const Result a = dtsim("run " + cfg + " --out " + (s.dir / "out").string() + " --quiet");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  CHECK_FALSE(fs::exists(s.dir / "out" / "checkpoint.dtck"));
  CHECK(fs::exists(s.dir / "out" / "config.resolved.json"));
  CHECK(slurp(s.dir / "out" / "summary.json").find("\"checkpoint\"") == std::string::npos);
  const Result b = dtsim("run --resume " + (s.dir / "out").string() + " --out " + (s.dir / "x").string());
  CHECK(b.code == 2);
  CHECK(b.err.find("checkpoint.dtck") != std::string::npos);
}

TEST_CASE("checkpoint: refusals exit 2 with one line naming the file") {
  Scratch s;
  const std::string cfg = s.write("ck.json", ckpt_config(R"({"name": "ssgd", "momentum": 0.9})", "1200"));
  const fs::path full = s.dir / "full";
  REQUIRE(dtsim("run " + cfg + " --out " + full.string() + " --quiet").code == 0);
  auto one_line = [](const Result& r, const std::string& what) {
    CAPTURE(r.err);
    CHECK(r.code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.rfind("error: ", 0) == 0);
    CHECK(r.err.find(what) != std::string::npos);
  };
  auto copy_run = [&](const std::string& name) {
    const fs::path d = s.dir / name;
    fs::copy(full, d, fs::copy_options::recursive);
    return d;
  };

  SUBCASE("--set with --resume") {
    const Result r = dtsim("run --resume " + full.string() + " --set seed=2");
    CHECK(r.code == 2);
    CHECK(r.err.find("--set cannot be combined with --resume") != std::string::npos);
  }
  SUBCASE("a CONFIG.json with --resume") {
    const Result r = dtsim("run " + cfg + " --resume " + full.string());
    CHECK(r.code == 2);
    CHECK(r.err.find("takes no CONFIG.json") != std::string::npos);
  }
  SUBCASE("config changed since the checkpoint (hash mismatch)") {
    const fs::path d = copy_run("edited");
    std::string text = slurp(d / "config.resolved.json");
    const auto at = text.find("\"seed\": 3");
    REQUIRE(at != std::string::npos);
    text.replace(at, 9, "\"seed\": 4");
    std::ofstream(d / "config.resolved.json") << text;
    one_line(dtsim("run --resume " + d.string() + " --out " + (s.dir / "x").string()),
             (d / "checkpoint.dtck").string() + ": written for a different config");
  }
  SUBCASE("truncated checkpoint") {
    const fs::path d = copy_run("truncated");
    fs::resize_file(d / "checkpoint.dtck", fs::file_size(d / "checkpoint.dtck") - 7);
    one_line(dtsim("run --resume " + d.string() + " --out " + (s.dir / "x").string()),
             (d / "checkpoint.dtck").string() + ": not a usable dtsim checkpoint: truncated");
  }
  SUBCASE("truncated inside the header") {
    const fs::path d = copy_run("header");
    fs::resize_file(d / "checkpoint.dtck", 40);
    one_line(dtsim("run --resume " + d.string() + " --out " + (s.dir / "x").string()),
             (d / "checkpoint.dtck").string() + ": not a usable dtsim checkpoint");
  }
  SUBCASE("a flipped byte in the data") {
    const fs::path d = copy_run("flipped");
    std::string bytes = slurp(d / "checkpoint.dtck");
    bytes[bytes.size() - 5] ^= 0x40;
    std::ofstream(d / "checkpoint.dtck", std::ios::binary) << bytes;
    one_line(dtsim("run --resume " + d.string() + " --out " + (s.dir / "x").string()), "checksum mismatch");
  }
  SUBCASE("an algorithm that is not checkpointable is named") {
    const std::string bad = s.write("hpsgd.json", ckpt_config(R"({"name": "hpsgd"})", "1200"));
    one_line(dtsim("run " + bad + " --out " + (s.dir / "x").string()),
             "training.checkpoint_every_samples: algorithm 'hpsgd' does not support checkpoint and resume");
    one_line(dtsim("validate " + bad), "algorithm 'hpsgd' does not support checkpoint and resume");
    const std::string async = s.write("easgd.json", ckpt_config(R"({"name": "easgd"})", "1200"));
    one_line(dtsim("validate " + async), "algorithm 'easgd' cannot checkpoint with these settings: only the synchronous form");
  }
  SUBCASE("negative checkpoint_every_samples") {
    const std::string bad = s.write("neg.json", ckpt_config(R"({"name": "ssgd"})", "-5"));
    one_line(dtsim("validate " + bad), "training.checkpoint_every_samples: must not be negative");
  }
}

// ASGD (docs/robustness.md): the cut is taken at the shards; on resume each worker computes again
// from its first minibatch not applied by every shard. Not bitwise (event order differs), but the
// sample budget is preserved exactly and the run completes normally.
TEST_CASE("checkpoint: a resumed ASGD, DC-ASGD or SSP run completes with the same total samples and a finite loss") {
  for (const std::string algorithm : {R"({"name": "asgd", "momentum": 0.5})", R"({"name": "dc-asgd", "adaptive": true, "mean_square": 0.9})",
                                R"({"name": "ssp", "staleness": 2})"})
  for (const char* shards : {"1", "3"}) {
    CAPTURE(algorithm);
    CAPTURE(shards);
    Scratch s;
    const std::string cfg = s.write("ck.json", ckpt_config(algorithm, "1000"));
    const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
    const Result a = dtsim("run " + cfg + " --set platform.servers.count=" + shards + " --out " + full.string() + " --quiet");
    REQUIRE_MESSAGE(a.code == 0, a.err);
    REQUIRE(fs::exists(full / "checkpoint.dtck"));
    const std::string sa = slurp(full / "summary.json");
    CHECK(sa.find("\"written\": 2") != std::string::npos);  // thresholds 1000 and 2000 of 2400 samples
    const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
    REQUIRE_MESSAGE(b.code == 0, b.err);
    const std::string sb = slurp(resumed / "summary.json");
    CHECK(sb.find("\"status\": \"completed\"") != std::string::npos);
    CHECK(sb.find("\"resumed_from_step\": 2") != std::string::npos);
    CHECK(sa.find("\"samples\": 2400,") != std::string::npos);
    CHECK(sb.find("\"samples\": 2400,") != std::string::npos);  // the budget, exactly
    CHECK(sb.find("\"gradients\": 300,") != std::string::npos);
    // A finite final loss, and rows after the cut.
    const auto rows = rows_without_wall(resumed / "metrics.csv");
    REQUIRE(rows.size() >= 3);
    CHECK(samples_of(rows.back()) == 2400);
    const std::string last = rows.back();
    CHECK(last.find("nan") == std::string::npos);
    CHECK(last.find("inf") == std::string::npos);
    CHECK(sb.find("\"final_test_loss\": null") == std::string::npos);
  }
}

TEST_CASE("checkpoint: with one worker a resumed ASGD, DC-ASGD or SSP run ends bitwise equal (no event order to replay)") {
  // One worker: the shards' cut holds exactly its applied minibatches and the model it computes on.
  for (const std::string algorithm : {R"({"name": "asgd", "momentum": 0.5})", R"({"name": "dc-asgd", "adaptive": true, "mean_square": 0.9, "momentum": 0.5})",
                                R"({"name": "ssp", "staleness": 1, "momentum": 0.5})"})
  for (const char* shards : {"1", "2"}) {
    CAPTURE(algorithm);
    CAPTURE(shards);
    Scratch s;
    const std::string cfg = s.write("ck.json", ckpt_config(algorithm, "1000"));
    const std::string sets = " --set platform.workers.count=1 --set platform.servers.count=" + std::string(shards);
    const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
    const Result a = dtsim("run " + cfg + sets + " --out " + full.string() + " --quiet");
    REQUIRE_MESSAGE(a.code == 0, a.err);
    REQUIRE(fs::exists(full / "checkpoint.dtck"));
    const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
    REQUIRE_MESSAGE(b.code == 0, b.err);
    const std::string pa = slurp(full / "final_params.npy"), pb = slurp(resumed / "final_params.npy");
    REQUIRE(pa.size() > 128);
    CHECK(pa == pb);
    CHECK(slurp(resumed / "summary.json").find("\"samples\": 2400,") != std::string::npos);
  }
}

TEST_CASE("checkpoint: after an asynchronous resume a shard does not apply again a minibatch it applied before its cut") {
  // One worker, two shards. The checkpoint is edited so that shard 1 claims to have applied the
  // worker's next minibatch already (as when the shards' cuts fall on either side of a push): the
  // resumed worker sends it to both, shard 1 answers without applying it, so the run ends with one
  // shard commit fewer — updates (= shard commits / K) 299 instead of 300.
  for (const std::string algorithm : {R"({"name": "asgd"})", R"({"name": "dc-asgd"})", R"({"name": "ssp", "staleness": 1})"}) {
    CAPTURE(algorithm);
    Scratch s;
    const std::string cfg = s.write("ck.json", ckpt_config(algorithm, "1000"));
    const fs::path full = s.dir / "full", resumed = s.dir / "resumed";
    const Result a = dtsim("run " + cfg + " --set platform.workers.count=1 --set platform.servers.count=2 --out " + full.string() +
                           " --quiet");
    REQUIRE_MESSAGE(a.code == 0, a.err);
    CHECK(slurp(full / "summary.json").find("\"updates\": 300,") != std::string::npos);
    std::string bytes = slurp(full / "checkpoint.dtck");
    uint64_t len = 0;
    std::memcpy(&len, bytes.data() + 8, sizeof len);
    nlohmann::json h = nlohmann::json::parse(bytes.substr(16, len));
    auto& acked = h["servers"][1]["ints"]["acked.0"];
    REQUIRE(acked.get<int64_t>() == h["servers"][0]["ints"]["acked.0"].get<int64_t>());
    acked = acked.get<int64_t>() + 1;
    const std::string header = h.dump();
    const uint64_t new_len = header.size();
    std::string edited = bytes.substr(0, 8);
    edited.append(reinterpret_cast<const char*>(&new_len), sizeof new_len);
    edited += header + bytes.substr(16 + len);
    std::ofstream(full / "checkpoint.dtck", std::ios::binary | std::ios::trunc) << edited;
    const Result b = dtsim("run --resume " + full.string() + " --out " + resumed.string() + " --quiet");
    REQUIRE_MESSAGE(b.code == 0, b.err);
    const std::string sb = slurp(resumed / "summary.json");
    CHECK(sb.find("\"samples\": 2400,") != std::string::npos);
    CHECK(sb.find("\"updates\": 299,") != std::string::npos);
  }
}

}  // namespace test_checkpoint_cpp
