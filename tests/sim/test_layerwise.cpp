// Layer-wise timing (algorithm.overlap, docs/timing.md): the plans against the frameworks' own
// rules, the step time in the exact network model against its closed form, convergence untouched,
// and CPU contention.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "common/json_reader.hpp"
#include "sim/overlap_plan.hpp"
#include "tests/sim/test_alg_helpers.hpp"
#include "tests/rel.hpp"

namespace test_layerwise_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// The small experiment's model (MLP 64-30-10) as layer-wise timing sees it.
sim::StepShape small_shape() {
  json spec = {{"kind", "mlp"}, {"hidden", {30}}};
  ObjectReader r(spec, {"test.json", "model"});
  const engine::ModelInfo mi = engine::model_info(r, engine::SampleShape{1, 1, 64}, 10);
  return {mi.layers, mi.param_tensors};
}

json with_overlap(json cfg, const json& overlap) {
  cfg["algorithm"]["overlap"] = overlap;
  return cfg;
}

std::vector<float> final_params(const ChildRun& r) { return r.params; }

json timing_only(json cfg) {
  cfg["compute"]["mode"] = "timing-only";
  return cfg;
}

}  // namespace

TEST_CASE("layer-wise: DDP bucket assignment equals PyTorch's for resnet50, vgg16 and an MLP") {
  // tests/data/ddp_buckets.json: written by tests/data/make_ddp_buckets.py with Debian's python3-torch
  // (torch.distributed._compute_bucket_assignment_by_size, the c10d reducer's own function).
  const json d = json::parse(slurp(DTSIM_SOURCE_DIR "/tests/data/ddp_buckets.json"));
  REQUIRE(d["cases"].size() >= 12);
  for (const auto& c : d["cases"]) {
    CAPTURE(c["model"].get<std::string>());
    CAPTURE(c["limits"].dump());
    const auto sizes = c["sizes"].get<std::vector<uint64_t>>();
    const auto order = c["order"].get<std::vector<size_t>>();
    std::vector<uint64_t> bytes;
    for (size_t t : order) bytes.push_back(4 * sizes[t]);
    const auto got = sim::bucket_assignment(bytes, c["limits"].get<std::vector<uint64_t>>());
    std::vector<std::vector<size_t>> tensors;
    for (const auto& b : got) {
      tensors.emplace_back();
      for (size_t pos : b) tensors.back().push_back(order[pos]);
    }
    CHECK(tensors == c["buckets"].get<std::vector<std::vector<size_t>>>());
  }
}

TEST_CASE("layer-wise: phases sum to the step under every basis, fixed gives each layer 1/3 forward, 2/3 backward") {
  const sim::StepShape s = small_shape();
  REQUIRE(s.layers.size() >= 3);
  for (auto basis : {sim::ShareBasis::Flops, sim::ShareBasis::Fixed}) {
    const auto p = sim::phase_shares(s, basis);
    double sum = 0;
    for (size_t l = 0; l < s.layers.size(); ++l) sum += p.forward[l] + p.backward[l];
    CHECK(sum == dtsim_test::Rel(1.0).epsilon(1e-12));
  }
  const auto fixed = sim::phase_shares(s, sim::ShareBasis::Fixed);
  const auto flops = sim::phase_shares(s, sim::ShareBasis::Flops);
  double total = 0;
  for (const auto& l : s.layers) total += l.forward_flops + l.backward_input_flops + l.backward_weight_flops;
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const auto& c = s.layers[l];
    const double share = (c.forward_flops + c.backward_input_flops + c.backward_weight_flops) / total;
    CHECK(fixed.forward[l] == dtsim_test::Rel(share / 3).epsilon(1e-12));
    CHECK(fixed.backward[l] == dtsim_test::Rel(2 * share / 3).epsilon(1e-12));
    CHECK(flops.forward[l] == dtsim_test::Rel(c.forward_flops / total).epsilon(1e-12));
    if (!c.tensors.empty())  // a layer with parameters: backward = input + weight gradients = 2x forward
      CHECK(flops.backward[l] == dtsim_test::Rel(2 * flops.forward[l]).epsilon(1e-12));
  }
  // Measured per-layer times (a profile) are used as they are.
  sim::StepShape m = s;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    m.layers[l].forward_s = 1.0 + l;
    m.layers[l].backward_s = 2.0 + l;
  }
  const auto meas = sim::phase_shares(m, sim::ShareBasis::Measured);
  double msum = 0;
  for (size_t l = 0; l < m.layers.size(); ++l) msum += 3.0 + 2 * l;
  CHECK(meas.forward[0] == dtsim_test::Rel(1.0 / msum));
  CHECK(meas.backward.back() == dtsim_test::Rel((2.0 + m.layers.size() - 1) / msum));
}

TEST_CASE("layer-wise: ready order is backward's (last layer first, bias before weight), DDP's steady-state buckets") {
  const sim::StepShape s = small_shape();
  REQUIRE(s.tensors.size() == 4);  // W1, b1, W2, b2
  CHECK(sim::ready_order(s) == std::vector<size_t>{3, 2, 1, 0});
  sim::OverlapSpec o;
  o.kind = sim::OverlapSpec::Kind::Ddp;
  o.first_bucket_mb = 1000.0 / (1 << 20);  // 1000 bytes: b2 + W2 (1240 bytes) close the first bucket
  o.bucket_cap_mb = 25;
  CHECK(sim::ddp_buckets(s, o) == std::vector<std::vector<size_t>>{{3, 2}, {1, 0}});
  o.first_bucket_mb = 25;  // one bucket
  CHECK(sim::ddp_buckets(s, o) == std::vector<std::vector<size_t>>{{3, 2, 1, 0}});
}

TEST_CASE("layer-wise: Horovod fusion and MXNet's placement of tensors on shards") {
  const std::vector<uint64_t> bytes = {100, 200, 300, 400};
  CHECK(sim::fuse({3, 2, 1, 0}, bytes, 500) == std::vector<std::vector<size_t>>{{3}, {2, 1}, {0}});
  CHECK(sim::fuse({0, 1, 2}, bytes, 0) == std::vector<std::vector<size_t>>{{0}, {1}, {2}});
  const sim::StepShape s = small_shape();
  // Below split_elements a tensor goes whole to shard (key * 9973) % K; above it, over all K.
  auto pieces = sim::kvstore_pieces(s, 3, 1000000);
  REQUIRE(pieces.size() == 4);
  for (const auto& p : pieces) {
    CHECK(p.shard == static_cast<int>((p.tensor * 9973) % 3));
    CHECK(p.count == s.tensors[p.tensor].size);
    CHECK(p.offset == s.tensors[p.tensor].offset);
  }
  pieces = sim::kvstore_pieces(s, 3, 1000);  // W1 (1920 elements) is split: 640 each
  size_t w1 = 0;
  for (const auto& p : pieces)
    if (p.tensor == 0) {
      CHECK(p.count == 640);
      CHECK(p.offset == static_cast<size_t>(p.shard) * 640);
      ++w1;
    }
  CHECK(w1 == 3);
}

TEST_CASE("layer-wise: exact network, DDP with two buckets = max(T_c, F + B_out + ring_0) + ring_1 + U per step") {
  // 2 accelerator workers (a device: no collective work on the compute cores), fixed 10 ms steps
  // split by FLOPs (1/3 forward, 2/3 backward per layer), MLP 64-30-10 in two buckets: {b2, W2}
  // launched when the output layer's backward ends, {b1, W1} at the end of backward.
  json cfg = timing_only(small_config(2, 0));
  cfg["platform"]["workers"]["speed"] = "v100";
  cfg["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}};
  const sim::StepShape s = small_shape();
  const auto sh = sim::phase_shares(s, sim::ShareBasis::Fixed);
  double F = 0;
  for (double f : sh.forward) F += f;
  F *= kTc;
  const double B_out = kTc * sh.backward.back();
  const double U = kP * 4 / (15.7e12 * 0.57);  // the SGD step on a V100: peak x the catalog's efficiency
  const int T = 2048 / (2 * 16);
  const double r0 = ring(2, 310), r1 = ring(2, 1950);
  const double ddp = T * (std::max(kTc, F + B_out + r0) + r1 + U);
  const double one_bucket = T * (kTc + ring(2, kP) + U);
  const ChildRun two = run_ok(with_overlap(cfg, {{"kind", "ddp"}, {"first_bucket_mb", 1000.0 / (1 << 20)}}));
  CHECK(sim_time(two) == dtsim_test::Rel(ddp).epsilon(1e-9));
  CHECK(sim_time(run_ok(with_overlap(cfg, {{"kind", "ddp"}, {"first_bucket_mb", 25}}))) ==
        dtsim_test::Rel(one_bucket).epsilon(1e-9));
  CHECK(sim_time(run_ok(with_overlap(cfg, {{"kind", "none"}}))) == dtsim_test::Rel(one_bucket).epsilon(1e-9));
  CHECK(ddp < one_bucket);
  // exposed_comm_s: per step, what the buckets leave after the backward (the update U is busy time).
  CHECK(two.summary["exposed_comm_s"].get<double>() ==
        dtsim_test::Rel(T * (std::max(kTc, F + B_out + r0) - kTc + r1)).epsilon(1e-9));
  CHECK(two.summary["overlap"] == "ddp");
}

TEST_CASE("layer-wise: SSGD's final parameters are bitwise equal under every overlap kind") {
  const json ar_cfg = alg_config({{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"momentum", 0.9}}, 4, 0, 1024);
  const auto base = final_params(run_ok(with_overlap(ar_cfg, {{"kind", "none"}})));
  REQUIRE(!base.empty());
  for (const json& o : {json{{"kind", "ddp"}}, json{{"kind", "ddp"}, {"bucket_cap_mb", 0.001}, {"first_bucket_mb", 0.001}},
                        json{{"kind", "horovod"}}, json{{"kind", "horovod"}, {"fusion_mb", 0}, {"cycle_ms", 0.1}}}) {
    CAPTURE(o.dump());
    CHECK(final_params(run_ok(with_overlap(ar_cfg, o))) == base);
  }
  for (int shards : {1, 3}) {
    const json ps = alg_config({{"name", "ssgd"}, {"comm", "ps"}, {"lr", 0.05}, {"momentum", 0.9}}, 4, shards, 1024);
    const auto ps_base = final_params(run_ok(with_overlap(ps, {{"kind", "none"}})));
    CHECK(ps_base == base);  // invariant 2
    for (const json& o : {json{{"kind", "per-tensor"}}, json{{"kind", "per-tensor"}, {"priority", false}},
                          json{{"kind", "per-tensor"}, {"split_elements", 500}}}) {
      CAPTURE(shards);
      CAPTURE(o.dump());
      CHECK(final_params(run_ok(with_overlap(ps, o))) == base);
    }
  }
}

TEST_CASE("layer-wise: overlap never makes a step slower than none here, per-tensor and ddp hide part of it") {
  // A model whose exchange is bandwidth-bound (a tiny one is latency-bound, and per-tensor
  // messages then cost more than they hide, as in MXNet).
  const json mlp = {{"kind", "mlp"}, {"hidden", {512, 512}}};
  json ps = timing_only(small_config(4, 1));  // one shard: MXNet places whole small tensors by key, unevenly over several
  ps["model"] = mlp;
  ps["platform"]["workers"]["speed"] = "v100";
  ps["algorithm"] = {{"name", "ssgd"}, {"comm", "ps"}, {"lr", 0.05}};
  const double none = sim_time(run_ok(with_overlap(ps, {{"kind", "none"}})));
  const double pt = sim_time(run_ok(with_overlap(ps, {{"kind", "per-tensor"}})));
  const double fifo = sim_time(run_ok(with_overlap(ps, {{"kind", "per-tensor"}, {"priority", false}})));
  CHECK(pt < none);
  CHECK(fifo < none);
  json ar = timing_only(small_config(4, 0));
  ar["model"] = mlp;
  ar["platform"]["workers"]["speed"] = "v100";
  ar["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}};
  const double ar_none = sim_time(run_ok(with_overlap(ar, {{"kind", "none"}})));
  // DDP's buckets hide the output-side buckets behind the rest of backward.
  CHECK(sim_time(run_ok(with_overlap(ar, {{"kind", "ddp"}, {"first_bucket_mb", 0.1}}))) < ar_none);
}

TEST_CASE("layer-wise: on a CPU host the collective's copies and reductions share the cores with backward") {
  // Same flop rate (15.7 Tflop/s) as a CPU and as a V100, same fixed compute time: the CPU run
  // pays its reductions and copies (default memory_bandwidth, 10 GB/s) on the compute cores and is
  // slower, yet not slower than none.
  json cfg = timing_only(small_config(4, 0));
  cfg["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}};
  cfg["model"] = {{"kind", "mlp"}, {"hidden", {512, 512}}};
  cfg["compute"]["time"]["seconds"] = 0.05;  // backward long enough to hide the buckets
  json gpu = cfg, cpu = cfg;
  gpu["platform"]["workers"]["speed"] = "v100";
  cpu["platform"]["workers"]["speed"] = "15.7Tf";
  const double t_gpu = sim_time(run_ok(with_overlap(gpu, {{"kind", "ddp"}, {"first_bucket_mb", 0.1}})));
  const double t_cpu = sim_time(run_ok(with_overlap(cpu, {{"kind", "ddp"}, {"first_bucket_mb", 0.1}})));
  const double t_none = sim_time(run_ok(with_overlap(cpu, {{"kind", "none"}})));
  CHECK(t_cpu > t_gpu);
  CHECK(t_cpu <= t_none * (1 + 1e-12));
}

TEST_CASE("layer-wise: the same config and seed give identical outputs, asynchronous PS included") {
  // (each with its default overlap, named: the test helpers' load() pins "none" otherwise)
  for (const json& a : {json{{"name", "ssgd"}, {"comm", "allreduce"}, {"overlap", {{"kind", "ddp"}}}},
                        json{{"name", "ssgd"}, {"comm", "allreduce"}, {"overlap", {{"kind", "horovod"}}}},
                        json{{"name", "asgd"}, {"overlap", {{"kind", "per-tensor"}}}},
                        json{{"name", "ssgd"}, {"comm", "ps"}, {"overlap", {{"kind", "per-tensor"}}}}}) {
    CAPTURE(a.dump());
    const bool ring = a.value("comm", "") == "allreduce";
    json cfg = alg_config(a, 4, ring ? 0 : 2, 1024);
    const ChildRun x = run_ok(cfg), y = run_ok(cfg);
    CHECK(x.params == y.params);
    CHECK(metrics_without_wall(x.metrics) == metrics_without_wall(y.metrics));
    CHECK(sim_time(x) == sim_time(y));
  }
}

namespace {

// Loads without the test helpers' pinning (load() sets "none" when no overlap is named).
sim::Experiment load_as_written(const json& cfg) {
  return sim::load_experiment_json(cfg, "test.json", DTSIM_SOURCE_DIR "/tests");
}

// The InputError's path, or "" when the config loads.
std::string error_path(const json& cfg) {
  try {
    load_as_written(cfg);
  } catch (const InputError& e) {
    return e.path();
  }
  return "";
}

bool warns(const sim::Experiment& x, const std::string& what) {
  for (const auto& w : x.warnings)
    if (w.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("layer-wise config: defaults per algorithm, kinds that do not fit are exit-2 errors, needless ones warn") {
  json ps = small_config(4, 1), ar = small_config(4, 0);
  ar["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}};
  CHECK(load_as_written(ps).overlap.kind == sim::OverlapSpec::Kind::PerTensor);
  CHECK(load_as_written(ar).overlap.kind == sim::OverlapSpec::Kind::Ddp);
  CHECK(load_as_written(ar).resolved["algorithm"]["overlap"]["kind"] == "ddp");
  CHECK(error_path(with_overlap(ps, {{"kind", "ddp"}})) == "algorithm.overlap.kind");
  CHECK(error_path(with_overlap(ar, {{"kind", "per-tensor"}})) == "algorithm.overlap.kind");
  CHECK(error_path(with_overlap(ar, {{"kind", "ddp"}, {"bucket_cap_mb", 0}})) == "algorithm.overlap.bucket_cap_mb");
  CHECK(error_path(with_overlap(ar, {{"kind", "ddp"}, {"bucket_size", 5}})) == "algorithm.overlap.bucket_size");
  json local = small_config(4, 0);
  local["algorithm"] = {{"name", "local-sgd"}, {"overlap", {{"kind", "ddp"}}}};
  const auto lx = load_as_written(local);
  CHECK(lx.overlap.kind == sim::OverlapSpec::Kind::None);
  CHECK(warns(lx, "has no effect"));
}

TEST_CASE("layer-wise config: failures and checkpoints are timed with none, a warning for the default, exit 2 when asked") {
  json f = small_config(4, 1);
  f["platform"]["failures"] = json::parse(R"([{"host": "worker-2", "at_s": 0.035, "detect_s": 0.02}])");
  const auto fx = load_as_written(f);
  CHECK(fx.overlap.kind == sim::OverlapSpec::Kind::None);
  CHECK(fx.resolved["algorithm"]["overlap"]["kind"] == "none");
  CHECK(warns(fx, "platform.failures"));
  CHECK(error_path(with_overlap(f, {{"kind", "per-tensor"}})) == "algorithm.overlap.kind");
  json c = small_config(4, 1);
  c["training"]["checkpoint_every_samples"] = 512;
  const auto cx = load_as_written(c);
  CHECK(cx.overlap.kind == sim::OverlapSpec::Kind::None);
  CHECK(warns(cx, "checkpoints"));
  CHECK(error_path(with_overlap(c, {{"kind", "per-tensor"}})) == "training.checkpoint_every_samples");
  CHECK(error_path(with_overlap(c, {{"kind", "none"}})).empty());
}

}  // namespace test_layerwise_cpp
