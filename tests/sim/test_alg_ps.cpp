// The parameter-server family (OD-SGD, SSD-SGD, Pipe-SGD, SSP, DC-ASGD, EASGD): the invariants that
// concern them (docs/algorithms/README.md, "Invariant tests"; each test is named after its
// invariant), exact traffic counters, closed-form timing in the exact
// network model, network independence / event-order dependence. Small synthetic runs (32 steps).
#include "tests/sim/test_alg_helpers.hpp"
#include "tests/rel.hpp"

namespace test_alg_ps_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

const char* kSlowNet[] = {"platform.workers.link.bandwidth=10Mbps", "platform.workers.link.latency=2ms",
                          "platform.servers.link.bandwidth=10Mbps"};
const char* kStraggler = R"(platform.stragglers=[{"workers":[2],"slowdown":4}])";
// "Zero" communication time: 10^15 B/s and no latency.
const std::vector<std::string> kFreeNet = {"platform.workers.link.bandwidth=1e15", "platform.workers.link.latency=0",
                                           "platform.servers.link.bandwidth=1e15", "platform.servers.link.latency=0"};

json ssgd(double momentum = 0.9) { return {{"name", "ssgd"}, {"lr", 0.05}, {"momentum", momentum}}; }

}  // namespace

// ---------------------------------------------------------------------------- OD-SGD / SSD-SGD
TEST_CASE("invariant 11: during warm-up OD-SGD and SSD-SGD equal SSGD exactly") {
  const auto base = run_ok(alg_config(ssgd()));  // 32 steps
  for (const char* name : {"od-sgd", "ssd-sgd"}) {
    CAPTURE(name);
    json a = {{"name", name}, {"lr", 0.05}, {"momentum", 0.9}, {"weight_decay", 0.0}, {"warmup_steps", 32}};
    const auto all_warm = run_ok(alg_config(a));
    CHECK(all_warm.params_npy == base.params_npy);
    CHECK(bytes(all_warm) == bytes(base));
    a["warmup_steps"] = 16;  // half warm-up: the delayed stage changes the trajectory
    const auto half = run_ok(alg_config(a));
    CHECK(rel_diff(half.params, base.params) > 1e-4);
  }
}

TEST_CASE("invariant 12: OD-SGD and SSD-SGD with N=1, local optimizer = global SGD, local_lr = lr are sequential SGD") {
  json seq = alg_config(ssgd(0.0), 1);
  seq["training"]["samples"] = 512;
  const auto sgd = run_ok(seq);
  json od = seq;
  od["algorithm"] = {{"name", "od-sgd"}, {"lr", 0.05}, {"momentum", 0.0}, {"local_optimizer", "sgd"},
                     {"local_lr", 0.05}, {"warmup_steps", 0}};
  CHECK(run_ok(od).params_npy == sgd.params_npy);
  for (int k : {1, 3, 5}) {
    for (const char* local : {"sgd", "glu"}) {
      CAPTURE(k);
      CAPTURE(local);
      json ssd = seq;
      ssd["algorithm"] = {{"name", "ssd-sgd"}, {"lr", 0.05}, {"momentum", 0.0}, {"weight_decay", 0.0},
                          {"local_optimizer", local}, {"local_lr", 0.05}, {"local_weight_decay", 0.0},
                          {"warmup_steps", 2}, {"pull_every", k}};
      CHECK(run_ok(ssd).params_npy == sgd.params_npy);
    }
  }
  // ... and the reduction needs local_lr = lr: another local rate is another trajectory.
  od["algorithm"]["local_lr"] = 0.1;
  CHECK(rel_diff(run_ok(od).params, sgd.params) > 1e-4);
}

TEST_CASE("invariant 13: OD-SGD with local_lr = 0 is one-step-stale SSGD (Pipe-SGD on a PS)") {
  json od = {{"name", "od-sgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"local_optimizer", "sgd"}, {"local_lr", 0.0},
             {"warmup_steps", 0}};
  json pipe = {{"name", "pipe-sgd"}, {"comm", "ps"}, {"lr", 0.05}, {"momentum", 0.9}};
  const auto a = run_ok(alg_config(od)), b = run_ok(alg_config(pipe));
  CHECK(a.params_npy == b.params_npy);
  // Pipe-SGD's all-reduce form is the same schedule (up to the reduction's summation order) ...
  pipe["comm"] = "allreduce";
  const auto c = run_ok(alg_config(pipe, 4, 0));
  CHECK(rel_diff(c.params, b.params) < 1e-5);
  // ... and none of them is SSGD.
  CHECK(rel_diff(run_ok(alg_config(ssgd())).params, b.params) > 1e-3);
}

TEST_CASE("invariant 14: SSD-SGD with pull_every = 1 equals OD-SGD (same local optimizer and warm-up)") {
  for (const char* local : {"sgd", "dc-asgd-adaptive"}) {
    CAPTURE(local);
    json od = {{"name", "od-sgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"weight_decay", 1e-4},
               {"local_optimizer", local}, {"local_lr", 0.2}, {"local_weight_decay", 1e-4}, {"warmup_steps", 8}};
    json ssd = od;
    ssd["name"] = "ssd-sgd";
    ssd["pull_every"] = 1;
    const auto a = run_ok(alg_config(od)), b = run_ok(alg_config(ssd));
    CHECK(a.params_npy == b.params_npy);
    CHECK(sim_time(a) == sim_time(b));
    ssd["pull_every"] = 4;
    CHECK(rel_diff(run_ok(alg_config(ssd)).params, a.params) > 1e-4);
  }
}

TEST_CASE("invariant 15: OD-SGD and SSD-SGD delays are algorithmic: zero communication time is not SSGD") {
  const auto base = run_ok(alg_config(ssgd(0.0)), kFreeNet);
  for (const char* name : {"od-sgd", "ssd-sgd"}) {
    CAPTURE(name);
    json a = {{"name", name}, {"lr", 0.05}, {"momentum", 0.0}, {"local_optimizer", "sgd"}, {"local_lr", 0.05},
              {"warmup_steps", 0}};
    const auto free = run_ok(alg_config(a), kFreeNet), slow = run_ok(alg_config(a));
    CHECK(rel_diff(free.params, base.params) > 1e-3);
    CHECK(free.params_npy == slow.params_npy);  // the same parameters whatever the network
    CHECK(sim_time(free) < sim_time(slow));
  }
}

// ---------------------------------------------------------------------------- network independence
TEST_CASE("invariant 3: OD-SGD, SSD-SGD, Pipe-SGD (PS and all-reduce) and sync EASGD do not depend on the network") {
  const std::vector<std::pair<json, int>> algos = {
      {{{"name", "od-sgd"}, {"lr", 0.05}, {"warmup_steps", 4}}, 1},
      {{{"name", "ssd-sgd"}, {"lr", 0.05}, {"local_lr", 0.2}, {"warmup_steps", 4}, {"pull_every", 3}}, 1},
      {{{"name", "pipe-sgd"}, {"comm", "ps"}}, 1},
      {{{"name", "pipe-sgd"}, {"comm", "allreduce"}}, 0},
      {{{"name", "easgd"}, {"sync", true}, {"period", 3}}, 1}};
  for (const auto& [a, K] : algos) {
    CAPTURE(a.dump());
    const json cfg = alg_config(a, 4, K);
    const auto base = run_ok(cfg);
    const auto slow = run_ok(cfg, {std::begin(kSlowNet), std::end(kSlowNet)});
    const auto strag = run_ok(cfg, {kStraggler});
    REQUIRE(!base.params_npy.empty());
    CHECK(slow.params_npy == base.params_npy);
    CHECK(strag.params_npy == base.params_npy);
    CHECK(sim_time(slow) > sim_time(base) * 1.2);   // only the time axis moves
    CHECK(sim_time(strag) > sim_time(base) * 1.5);
  }
}

TEST_CASE("invariant 3: SSP (s > 0), DC-ASGD and async EASGD depend on event order") {
  const std::vector<json> algos = {{{"name", "ssp"}, {"staleness", 2}},
                                   {{"name", "dc-asgd"}, {"lambda", 0.5}},
                                   {{"name", "dc-asgd"}, {"adaptive", true}},
                                   {{"name", "easgd"}, {"period", 2}}};
  for (const auto& a : algos) {
    CAPTURE(a.dump());
    const json cfg = alg_config(a);
    const auto base = run_ok(cfg);
    const auto strag = run_ok(cfg, {kStraggler});
    CHECK(rel_diff(strag.params, base.params) > 1e-4);
    CHECK(strag.summary["samples"] == base.summary["samples"]);  // same sample budget
  }
}

// ---------------------------------------------------------------------------- SSP, DC-ASGD
TEST_CASE("invariant 5: SSP with s=0 equals SSGD step for step, DC-ASGD with lambda=0 equals ASGD, DC-ASGD with N=1 is SGD") {
  const auto bsp = run_ok(alg_config(ssgd(0.0)));
  const auto ssp0 = run_ok(alg_config({{"name", "ssp"}, {"staleness", 0}}), {kStraggler});
  CHECK(rel_diff(ssp0.params, bsp.params) < 1e-5);  // per-gradient updates: another summation order
  CHECK(ssp0.summary["updates"].get<int>() == 4 * 32);
  const auto ssp3 = run_ok(alg_config({{"name", "ssp"}, {"staleness", 3}}), {kStraggler});
  CHECK(rel_diff(ssp3.params, bsp.params) > 1e-4);

  json asgd = {{"name", "asgd"}, {"lr", 0.05}};
  const auto a = run_ok(alg_config(asgd), {kStraggler});
  CHECK(run_ok(alg_config({{"name", "dc-asgd"}, {"lambda", 0.0}}), {kStraggler}).params_npy == a.params_npy);
  CHECK(rel_diff(run_ok(alg_config({{"name", "dc-asgd"}, {"lambda", 2.0}}), {kStraggler}).params, a.params) > 1e-5);

  json one = alg_config(ssgd(0.0), 1);
  one["training"]["samples"] = 512;
  const auto sgd = run_ok(one);
  for (json dc : {json{{"name", "dc-asgd"}, {"lambda", 2.0}}, json{{"name", "dc-asgd"}, {"adaptive", true}}}) {
    one["algorithm"] = dc;
    CHECK(run_ok(one).params_npy == sgd.params_npy);
  }
}

TEST_CASE("SSP: no worker starts clock c before every worker has finished clock c - s - 1") {
  // A 4x straggler: with s = 1 the fast workers wait for it every other clock, so the run takes
  // about the straggler's time; with s = 1000 they never wait and finish their clocks early.
  json cfg = alg_config({{"name", "ssp"}, {"staleness", 1}});
  const auto bounded = run_ok(cfg, {kStraggler});
  cfg["algorithm"]["staleness"] = 1000;
  const auto unbounded = run_ok(cfg, {kStraggler});
  const auto& fast_b = bounded.summary["per_worker"][0];
  const auto& fast_u = unbounded.summary["per_worker"][0];
  CHECK(fast_b["comm_wait_s"].get<double>() > 32 * 3 * kTc * 0.9);  // waited ~3 T_c per clock
  CHECK(fast_u["comm_wait_s"].get<double>() < 32 * kTc * 0.2);
  CHECK(sim_time(bounded) == dtsim_test::Rel(sim_time(unbounded)).epsilon(0.05));  // the straggler's pace
}

// ---------------------------------------------------------------------------- EASGD
TEST_CASE("invariant 10: the synchronous EASGD elastic step conserves sum_i x_i + centre") {
  ChildRun r;
  const auto obs = run_observed(alg_config({{"name", "easgd"}, {"sync", true}, {"period", 4}, {"lr", 0.1}}), &r);
  const auto before = by_step(obs, "easgd.x.before"), after = by_step(obs, "easgd.x.after");
  const auto cb = by_step(obs, "easgd.centre.before"), ca = by_step(obs, "easgd.centre.after");
  REQUIRE(before.size() == 8);  // 32 steps, an exchange every 4
  REQUIRE(ca.size() == 8);
  double moved = 0;
  for (const auto& [round, xs] : before) {
    REQUIRE(xs.size() == 4);
    REQUIRE(after.at(round).size() == 4);
    std::vector<float> lhs = cb.at(round).at(-1), rhs = ca.at(round).at(-1);
    for (int i = 0; i < 4; ++i)
      for (size_t j = 0; j < lhs.size(); ++j) {
        lhs[j] += xs.at(i)[j];
        rhs[j] += after.at(round).at(i)[j];
        moved = std::max(moved, double(std::fabs(xs.at(i)[j] - after.at(round).at(i)[j])));
      }
    CHECK(max_rel(rhs, lhs) < 1e-5);
  }
  CHECK(moved > 1e-3);  // the elastic step did move the workers
  // The centre is the global model.
  CHECK(max_rel(r.params, ca.rbegin()->second.at(-1)) == 0.0);
}

// ---------------------------------------------------------------------------- traffic
TEST_CASE("invariant 16+17: traffic - SSGD-PS, OD-SGD, Pipe-SGD(PS) move 2N|W| per step, SSD-SGD |W| up every step and |W| down every k steps") {
  const double N = 4, T = 32, S = kS;
  for (json a : {ssgd(), json{{"name", "od-sgd"}, {"warmup_steps", 4}}, json{{"name", "pipe-sgd"}, {"comm", "ps"}},
                 json{{"name", "ssp"}}, json{{"name", "dc-asgd"}}}) {
    CAPTURE(a.dump());
    CHECK(bytes(run_ok(alg_config(a))) == 2 * N * S * T);
  }
  for (int k : {1, 3, 5}) {
    CAPTURE(k);
    const int Tw = 4;
    const auto r = run_ok(alg_config({{"name", "ssd-sgd"}, {"warmup_steps", Tw}, {"pull_every", k}, {"lr", 0.05}}));
    const double pulls = Tw + (T - Tw - (int(T) - Tw) % k) / k;  // warm-up steps + every k-th step after
    CHECK(bytes(r) == N * S * T + N * S * pulls);
  }
  // Sync EASGD: x_i up and the centre down per exchange (every `period` steps).
  const auto e = run_ok(alg_config({{"name", "easgd"}, {"sync", true}, {"period", 3}}));
  CHECK(bytes(e) == 2 * N * S * std::ceil(T / 3));
}

// ---------------------------------------------------------------------------- timing
TEST_CASE("invariant 20: with free communication every PS algorithm's step time is T_c plus update cost") {
  const std::vector<json> algos = {ssgd(),
                                   {{"name", "asgd"}},
                                   {{"name", "ssp"}},
                                   {{"name", "dc-asgd"}},
                                   {{"name", "easgd"}},
                                   {{"name", "easgd"}, {"sync", true}},
                                   {{"name", "pipe-sgd"}, {"comm", "ps"}},
                                   {{"name", "od-sgd"}, {"warmup_steps", 4}},
                                   {{"name", "ssd-sgd"}, {"warmup_steps", 4}}};
  for (const auto& a : algos) {
    CAPTURE(a.dump());
    json cfg = alg_config(a);
    cfg["compute"]["mode"] = "timing-only";
    const auto r = run_ok(cfg, kFreeNet);
    const double T = 32;
    // Update costs are ~1e-8 s per step against T_c = 10 ms.
    CHECK(sim_time(r) == dtsim_test::Rel(T * kTc).epsilon(1e-4));
    CHECK(sim_time(r) >= T * kTc);
  }
}

TEST_CASE("timing: OD-SGD and Pipe-SGD hide push + update + pull behind the next compute (exact closed form)") {
  const int N = 4, T = 32, Tw = 4;
  const double phase = ps_phase(N), ssgd_step = kTc + phase + server_update(N) + phase;
  json cfg = alg_config({{"name", "od-sgd"}, {"warmup_steps", Tw}});
  cfg["compute"]["mode"] = "timing-only";
  // Warm-up steps are SSGD steps; then each step is T_c + the local update; the last push's
  // reply comes one push + server update + pull later.
  const double od = Tw * ssgd_step + (T - Tw) * (kTc + worker_update()) + phase + server_update(N) + phase;
  CHECK(sim_time(run_ok(cfg)) == dtsim_test::Rel(od).epsilon(1e-9));
  cfg["algorithm"] = {{"name", "pipe-sgd"}, {"comm", "ps"}};
  const double pipe = T * kTc + phase + server_update(N) + phase;
  CHECK(sim_time(run_ok(cfg)) == dtsim_test::Rel(pipe).epsilon(1e-9));
  cfg["algorithm"] = {{"name", "pipe-sgd"}, {"comm", "allreduce"}};
  cfg["platform"]["servers"]["count"] = 0;
  // All-reduce form: the ring (< T_c) hides behind the next compute; the last one drains.
  const double pipe_ar = T * kTc + (T - 1) * worker_update() + ring(N) + worker_update();
  CHECK(sim_time(run_ok(cfg)) == dtsim_test::Rel(pipe_ar).epsilon(1e-9));
}

TEST_CASE("invariant 22: one 4x straggler - BSP steps take 4 T_c, ASGD throughput is sum 1/T_i, OD/SSD-SGD stay within a step of it") {
  const double T = 32, s = 4;
  auto timed = [&](json a) {
    json cfg = alg_config(a);
    cfg["compute"]["mode"] = "timing-only";
    return run_ok(cfg, [&] {
      auto v = kFreeNet;
      v.push_back(kStraggler);
      return v;
    }());
  };
  CHECK(sim_time(timed(ssgd())) == dtsim_test::Rel(T * s * kTc).epsilon(1e-4));
  // ASGD: 128 minibatches at a total rate of 3/T_c + 1/(4 T_c).
  const auto asgd = timed({{"name", "asgd"}});
  CHECK(sim_time(asgd) == dtsim_test::Rel(128 / (3 + 1 / s) * kTc).epsilon(0.03));
  const auto& pw = asgd.summary["per_worker"];
  CHECK(pw[0]["gradients"].get<double>() == dtsim_test::Rel(s * pw[2]["gradients"].get<double>()).epsilon(0.15));
  // The push of step t waits for the reply to step t-1, which needs the straggler's gradient.
  for (json a : {json{{"name", "od-sgd"}, {"warmup_steps", 4}}, json{{"name", "ssd-sgd"}, {"warmup_steps", 4}}}) {
    CAPTURE(a.dump());
    const double t = sim_time(timed(a));
    CHECK(t >= (T - 1) * s * kTc);
    CHECK(t <= (T + 1) * s * kTc);
  }
}

TEST_CASE("local optimizers: OD-SGD's dc-asgd-adaptive and SSD-SGD's GLU (reconstruction) change the trajectory at N=4") {
  json od = {{"name", "od-sgd"}, {"lr", 0.05}, {"warmup_steps", 4}, {"local_optimizer", "sgd"}, {"local_lr", 0.2}};
  const auto od_sgd = run_ok(alg_config(od));
  od["local_optimizer"] = "dc-asgd-adaptive";
  CHECK(rel_diff(run_ok(alg_config(od)).params, od_sgd.params) > 1e-5);
  json ssd = {{"name", "ssd-sgd"}, {"lr", 0.05}, {"momentum", 0.5}, {"warmup_steps", 4}, {"pull_every", 4},
              {"local_optimizer", "sgd"}, {"local_lr", 0.2}};
  const auto ssd_sgd = run_ok(alg_config(ssd));
  ssd["local_optimizer"] = "glu";
  const auto ssd_glu = run_ok(alg_config(ssd));
  CHECK(rel_diff(ssd_glu.params, ssd_sgd.params) > 1e-4);  // (convergence: test_alg_convergence.cpp)
}

}  // namespace test_alg_ps_cpp
