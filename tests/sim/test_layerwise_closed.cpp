// Layer-wise timing against its closed forms (docs/timing.md, "Layer-wise timing"), exact network:
// per-tensor (MXNet KVStore) with and without priority, and Horovod across one cycle boundary, on a
// 3-layer model profile whose per-layer times and tensor sizes the test chooses. (none and ddp:
// tests/sim/test_layerwise.cpp.) Each case first checks that its numbers are in the regime the
// closed form is derived for, so that a change of numbers cannot silently test something else.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <string>

#include "tests/sim/test_alg_helpers.hpp"
#include "tests/rel.hpp"

namespace test_layerwise_closed_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace layerwise_closed {

constexpr int kN = 2;  // workers

// Layer l of the model (index 0 = input side): its forward and backward seconds per minibatch and
// the elements of its one parameter tensor.
struct Layer {
  double f, b, c;
};
using Model = std::array<Layer, 3>;
double Tc(const Model& m) { return m[0].f + m[0].b + m[1].f + m[1].b + m[2].f + m[2].b; }  // a step's compute

// The model as a model profile (docs/profiles.md) measured at batch 16 (the training batch, so
// each phase takes exactly its listed time), in a directory removed with this object.
struct Profile {
  std::string dir, path;
  explicit Profile(const Model& m) {
    char tmpl[] = "/tmp/dtsim-closed-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/three.profile.json";
    json tensors = json::array(), layers = json::array();
    size_t total = 0;
    for (size_t l = 0; l < m.size(); ++l) {
      const auto c = static_cast<size_t>(m[l].c);
      const std::string name = "l" + std::to_string(l + 1);
      tensors.push_back({{"name", name + ".weight"}, {"shape", {c}}, {"elements", c}});
      layers.push_back({{"name", name}, {"type", "linear"}, {"tensors", {l}}, {"forward_s", {m[l].f}}, {"backward_s", {m[l].b}}});
      total += c;
    }
    const json doc = {{"format", "dtsim-model-profile/1"}, {"name", "three"}, {"tensors", tensors},
                      {"num_params", total},           {"batches", {16}},    {"layers", layers}};
    io::atomic_write(path, doc.dump());
  }
  ~Profile() { std::filesystem::remove_all(dir); }
};

// kN workers of the small experiment (1 Gb/s NICs, 50 µs each: route latency kLat) running SSGD on
// the profile for `steps` synchronous steps of batch 16, its own per-layer times as compute.
json config(const Profile& p, int steps, int servers, const json& algorithm) {
  json cfg = small_config(kN, servers);
  cfg["model"] = {{"kind", "profile"}, {"path", p.path}};
  cfg["compute"] = {{"mode", "timing-only"}, {"time", {{"kind", "profile"}}}};
  cfg["training"]["samples"] = kN * 16 * steps;
  cfg["algorithm"] = algorithm;
  return cfg;
}

// ---- per-tensor: one shard on a 1 Gflop/s host
constexpr double kServerSpeed = 1e9;
// One tensor of c elements between the kN workers and the shard, either way: the shard's NIC
// carries the kN pushes (or replies) at once, a worker's NIC one.
double msg(double c) { return kLat + std::max(4 * c / kB, kN * 4 * c / kB); }
// The shard's update of it: update_flops_per_param (4) + kN - 1 flops per element.
double upd(double c) { return c * (4 + kN - 1) / kServerSpeed; }

// ---- horovod: negotiation of a cycle in which k tensors are ready on every rank: each rank but 0
// sends rank 0 a request of 64 + 64 k bytes (the kN - 1 share rank 0's NIC), rank 0 answers each
// with a response of the same size.
double nego(int k) { return 2 * (kLat + (kN - 1) * (64.0 + 64.0 * k) / kB); }
// The first cycle tick at or after t (the grid starts at 0).
double tick(double t, double cycle) { return cycle * std::ceil(t / cycle); }

}  // namespace layerwise_closed

using namespace layerwise_closed;

namespace {

// The per-tensor model: the output layer's push (m3) is still on the wire when the two other
// gradients become ready (b2 + b1 < m3); sizes c3 < c1 < c2.
const Model kPerTensor = {{{0.49e-3, 0.15e-3, 4000}, {0.7e-3, 0.1e-3, 5200}, {0.4e-3, 1.5e-3, 3000}}};
constexpr int kSteps = 3;

json per_tensor(const Profile& p, bool priority) {
  json cfg = config(p, kSteps, 1, {{"name", "ssgd"}, {"comm", "ps"}, {"lr", 0.05}});
  cfg["platform"]["servers"]["speed"] = "1Gf";
  cfg["algorithm"]["overlap"] = {{"kind", "per-tensor"}, {"priority", priority}};
  return cfg;
}

}  // namespace

TEST_CASE("layer-wise: exact network, per-tensor without priority = F + b3 + m3 + m2 + m1 + u1 + m1 per step") {
  const Model& M = kPerTensor;
  const double F = M[0].f + M[1].f + M[2].f, b3 = M[2].b;
  const double m1 = msg(M[0].c), m2 = msg(M[1].c), m3 = msg(M[2].c), u1 = upd(M[0].c), u2 = upd(M[1].c), u3 = upd(M[2].c);
  // The regime: w2 and w1 queue behind w3's push; the shard is idle when a push arrives; a reply's
  // transfer (after its latency) starts after the previous reply's ended, so no two share a link.
  REQUIRE(M[1].b + M[0].b < m3);
  REQUIRE(u3 < m2);
  REQUIRE(u2 < m1);
  REQUIRE(u3 + m3 < m2 + u2 + kLat);  // reply 3, then reply 2
  REQUIRE(u2 + m2 < m1 + u1 + kLat);  // reply 2, then reply 1
  // FIFO: pushes 3, 2, 1 back to back; layer 1's tensor is back last, so the next forward starts
  // then and never waits again: step = forward + output backward + 3 pushes + update + pull of w1.
  const double step = F + b3 + m3 + m2 + m1 + u1 + m1;
  const Profile p(M);
  const ChildRun r = run_ok(per_tensor(p, false));
  CHECK(sim_time(r) == dtsim_test::Rel(kSteps * step).epsilon(1e-9));
  CHECK(r.summary["overlap"] == "per-tensor");
  // exposed_comm_s: all but the compute (a forward waiting for its layer's pull is not computing).
  CHECK(r.summary["exposed_comm_s"].get<double>() == dtsim_test::Rel(kSteps * (step - Tc(M))).epsilon(1e-9));
}

TEST_CASE("layer-wise: exact network, per-tensor with priority: layer 1 starts on its own pull, layer 2 waits for its own") {
  const Model& M = kPerTensor;
  const double F = M[0].f + M[1].f + M[2].f, b3 = M[2].b, f1 = M[0].f, f23 = M[1].f + M[2].f;
  const double m1 = msg(M[0].c), m2 = msg(M[1].c), m3 = msg(M[2].c), u1 = upd(M[0].c), u2 = upd(M[1].c), u3 = upd(M[2].c);
  REQUIRE(M[1].b + M[0].b < m3);      // w2 and w1 both wait while w3 is pushed: priority sends w1 first
  REQUIRE(u3 < m1);                   // the shard is idle at each push
  REQUIRE(u1 < m2);
  REQUIRE(u3 + m3 < m1 + u1 + kLat);  // reply 3, then reply 1, then reply 2: never two at once
  REQUIRE(u1 + m1 < m2 + u2 + kLat);
  // Pushes 3, 1, 2 end at P3 = Y + b3 + m3 (Y: the end of the forward), P1 = P3 + m1,
  // P2 = P1 + m2; the tensors are back at A3 = P3 + u3 + m3, A1 = P1 + u1 + m1, A2 = P2 + u2 + m2.
  // The next forward of layer 1 starts at A1, before w2's push has even ended (A1 < P2): a forward
  // waits only for its own layer's pull. Layer 2 starts at max(A1 + f1, A2), here A2.
  const double A1 = u1 + m1, A2 = m2 + u2 + m2;  // after P1
  REQUIRE(A1 < m2);                   // layer 1 starts while w2 is still being pushed
  REQUIRE(A1 + f1 < A2);              // layer 2 waits for its pull
  REQUIRE(m2 + f1 > A2);              // (so starting layer 1 only after every push would show)
  const double D = b3 + m3 + m1 + std::max(A1 + f1, A2) + f23;  // from one forward's end to the next's
  const double closed = F + (kSteps - 1) * D + b3 + m3 + m1 + A2;  // the run ends when the last pull is in (A2)
  const Profile p(M);
  const ChildRun r = run_ok(per_tensor(p, true));
  const double t = sim_time(r);
  CHECK(t == dtsim_test::Rel(closed).epsilon(1e-9));
  CHECK(r.summary["exposed_comm_s"].get<double>() == dtsim_test::Rel(t - kSteps * Tc(M)).epsilon(1e-9));
  CHECK(t < kSteps * (F + b3 + m3 + m2 + 2 * m1 + u1));  // faster than FIFO here
}

TEST_CASE("layer-wise: exact network, Horovod across one cycle boundary = tick(S + T_c) + nego(2) + ring(c2 + c1) + U per step") {
  // Layer 3's gradient is ready before a tick, layers 2 and 1 after it and before the next: cycle 1
  // answers {w3} (its all-reduce is hidden behind the backward), cycle 2 {w2, w1}, fused into one
  // buffer. Every cycle's negotiation and all-reduces end within cycle_ms, so the ticks stay on the
  // grid k * cycle_ms.
  const Model M = {{{1.0e-3, 0.6e-3, 10000}, {0.8e-3, 1.4e-3, 14000}, {0.6e-3, 1.4e-3, 16000}}};
  const double cycle = 2e-3, F = M[0].f + M[1].f + M[2].f, tc = Tc(M);
  const double P = M[0].c + M[1].c + M[2].c;
  const double U = P * 4 / (15.7e12 * 0.57);  // the SGD step on a V100: peak x the catalog's efficiency
  const double delta = nego(2) + ring(kN, M[1].c + M[0].c) + U;  // from the second tick to the next step
  REQUIRE(nego(1) + ring(kN, M[2].c) < cycle);
  REQUIRE(delta - U < cycle);
  // Step s starts at S (0, then the previous end), its second tick is tick(S + T_c), it ends delta later.
  double S = 0;
  for (int s = 0; s < kSteps; ++s) {
    const double r3 = S + F + M[2].b, r2 = r3 + M[1].b, r1 = S + tc;
    CAPTURE(s);
    REQUIRE(tick(r3, cycle) < r2);                     // one tick between w3 and w2 ...
    REQUIRE(tick(r2, cycle) == tick(r1, cycle));       // ... none between w2 and w1
    S = tick(r1, cycle) + delta;
  }
  // The same in one line: the second ticks are tick(T_c), then tick(delta + T_c) apart.
  CHECK(S == dtsim_test::Rel(tick(tc, cycle) + (kSteps - 1) * tick(delta + tc, cycle) + delta).epsilon(1e-12));
  const Profile p(M);
  json cfg = config(p, kSteps, 0, {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}});
  cfg["platform"]["workers"]["speed"] = "v100";  // a device: no collective work on the compute cores
  cfg["algorithm"]["overlap"] = {{"kind", "horovod"}, {"cycle_ms", 2}, {"fusion_mb", 1}};
  const ChildRun r = run_ok(cfg);
  CHECK(sim_time(r) == dtsim_test::Rel(S).epsilon(1e-9));
  // Bytes: each ring of n elements puts 2 x 4n/2 bytes per rank on the wire; the negotiations
  // 2 x (64 + 64) for cycle 1 and 2 x (64 + 128) for cycle 2.
  CHECK(bytes(r) == dtsim_test::Rel(kSteps * (kN * 4 * P + 256 + 384)).epsilon(1e-12));
}

TEST_CASE("layer-wise: exact network, Horovod: a cycle that overruns cycle_ms is followed at once by the next") {
  // Horovod's RunLoopOnce sleeps only what is left of cycle_ms: with a 0.25 ms cycle the all-reduce
  // of w3 (cycle A) outlasts the cycle, and w2 and w1 are ready by its end, so cycle B starts the
  // moment cycle A's all-reduce ends, not at the next multiple of cycle_ms.
  const Model M = {{{1.0e-3, 0.6e-3, 10000}, {0.8e-3, 1.4e-3, 14000}, {0.6e-3, 1.4e-3, 48000}}};  // w3 large: its ring outlasts the cycle and the backward
  const double cycle = 0.25e-3, F = M[0].f + M[1].f + M[2].f, tc = Tc(M);
  const double P = M[0].c + M[1].c + M[2].c;
  const double U = P * 4 / (15.7e12 * 0.57);
  double S = 0, last = 0, free = 0;  // step start, last cycle's start, last cycle's end
  const auto next_tick = [&](double first, double ready) {
    return ready <= first ? first : first + cycle * std::ceil((ready - first) / cycle);
  };
  for (int s = 0; s < kSteps; ++s) {
    CAPTURE(s);
    const double r3 = S + F + M[2].b, r2 = r3 + M[1].b, r1 = S + tc;
    const double tick_a = next_tick(std::max(last + cycle, free), r3);
    const double end_a = tick_a + nego(1) + ring(kN, M[2].c);
    REQUIRE(tick_a < r2);              // cycle A answers w3 alone
    REQUIRE(end_a > tick_a + cycle);   // and overruns the cycle
    REQUIRE(r1 <= end_a);              // w2 and w1 are ready when it ends: cycle B starts then
    const double tick_b = std::max(tick_a + cycle, end_a);
    REQUIRE(tick_b == end_a);
    const double end_b = tick_b + nego(2) + ring(kN, M[1].c + M[0].c);
    last = tick_b, free = end_b, S = end_b + U;
  }
  const Profile p(M);
  json cfg = config(p, kSteps, 0, {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}});
  cfg["platform"]["workers"]["speed"] = "v100";
  cfg["algorithm"]["overlap"] = {{"kind", "horovod"}, {"cycle_ms", 0.25}, {"fusion_mb", 1}};
  const ChildRun r = run_ok(cfg);
  CHECK(sim_time(r) == dtsim_test::Rel(S).epsilon(1e-9));
}

}  // namespace test_layerwise_closed_cpp
