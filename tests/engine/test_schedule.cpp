// Learning-rate schedules against hand-computed values.
#include <doctest/doctest.h>

#include <string>

#include "common/error.hpp"
#include "engine/optim.hpp"
#include "engine/schedule.hpp"
#include "tests/rel.hpp"

namespace test_schedule_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {
LrSchedule make(const json& j) {
  ObjectReader r(j, JsonOrigin{"cfg.json", "algorithm.schedule"});
  LrSchedule s = LrSchedule::read(r);
  r.finish();
  return s;
}
std::string error_of(const json& j) {
  try {
    make(j);
  } catch (const InputError& e) {
    return e.path() + ": " + e.reason();
  }
  return "";
}
}  // namespace

TEST_CASE("constant schedule and the default") {
  CHECK(LrSchedule().lr(0.1, 37.5, 100) == 0.1);
  CHECK(LrSchedule().is_constant());
  const LrSchedule c = make({{"kind", "constant"}, {"warmup_epochs", 2}});
  CHECK_FALSE(c.is_constant());
  CHECK(c.lr(0.2, 1, 10) == dtsim_test::Rel(0.1));
  CHECK(c.lr(0.2, 3, 10) == 0.2);
}

TEST_CASE("step decay at given epochs with linear warm-up (He et al. / Goyal et al.)") {
  const LrSchedule s = make({{"kind", "step"}, {"milestones_epochs", {80, 120}}, {"gamma", 0.1}, {"warmup_epochs", 5}});
  CHECK(s.lr(0.1, 0, 160) == 0.0);
  CHECK(s.lr(0.1, 2.5, 160) == dtsim_test::Rel(0.05));
  CHECK(s.lr(0.1, 5, 160) == dtsim_test::Rel(0.1));
  CHECK(s.lr(0.1, 79.99, 160) == dtsim_test::Rel(0.1));
  CHECK(s.lr(0.1, 80, 160) == dtsim_test::Rel(0.01));
  CHECK(s.lr(0.1, 119, 160) == dtsim_test::Rel(0.01));
  CHECK(s.lr(0.1, 120, 160) == dtsim_test::Rel(0.001));
  CHECK(s.lr(0.1, 500, 160) == dtsim_test::Rel(0.001));
  // Goyal et al.: from the single-worker rate (factor 1/k, here k = 32) to k times it.
  const LrSchedule g = make({{"kind", "step"},
                             {"milestones_epochs", {30, 60, 80}},
                             {"warmup_epochs", 5},
                             {"warmup_start_factor", 1.0 / 32}});
  CHECK(g.lr(3.2, 0, 90) == dtsim_test::Rel(0.1));
  CHECK(g.lr(3.2, 2.5, 90) == dtsim_test::Rel(0.1 + (3.2 - 0.1) * 0.5));
  CHECK(g.lr(3.2, 30, 90) == dtsim_test::Rel(0.32));
  CHECK(g.lr(3.2, 85, 90) == dtsim_test::Rel(0.0032));
}

TEST_CASE("polynomial decay (after the warm-up)") {
  const LrSchedule p = make({{"kind", "poly"}, {"power", 2}});
  CHECK(p.lr(0.4, 0, 100) == dtsim_test::Rel(0.4));
  CHECK(p.lr(0.4, 50, 100) == dtsim_test::Rel(0.1));
  CHECK(p.lr(0.4, 75, 100) == dtsim_test::Rel(0.025));
  CHECK(p.lr(0.4, 100, 100) == dtsim_test::Rel(0.0));
  CHECK(p.lr(0.4, 150, 100) == dtsim_test::Rel(0.0));
  const LrSchedule w = make({{"kind", "poly"}, {"power", 2}, {"end_lr", 0.01}, {"warmup_epochs", 10}});
  CHECK(w.lr(0.4, 5, 100) == dtsim_test::Rel(0.2));                        // half-way through the warm-up
  CHECK(w.lr(0.4, 55, 100) == dtsim_test::Rel(0.01 + 0.39 * 0.25));        // p = 45/90
  const LrSchedule t = make({{"kind", "poly"}, {"total_epochs", 40}});       // its own horizon
  CHECK(t.lr(1.0, 10, 1000) == dtsim_test::Rel(0.75));
}

TEST_CASE("cosine annealing") {
  const LrSchedule c = make({{"kind", "cosine"}, {"min_lr", 0.001}});
  CHECK(c.lr(0.1, 0, 200) == dtsim_test::Rel(0.1));
  CHECK(c.lr(0.1, 50, 200) == dtsim_test::Rel(0.001 + 0.099 * 0.8535533905932737));
  CHECK(c.lr(0.1, 100, 200) == dtsim_test::Rel(0.0505));
  CHECK(c.lr(0.1, 200, 200) == dtsim_test::Rel(0.001));
  const LrSchedule w = make({{"kind", "cosine"}, {"warmup_epochs", 5}});
  CHECK(w.lr(0.1, 1, 105) == dtsim_test::Rel(0.02));
  CHECK(w.lr(0.1, 55, 105) == dtsim_test::Rel(0.05));
}

TEST_CASE("one-cycle (PyTorch OneCycleLR, cosine, two phases)") {
  const LrSchedule o = make({{"kind", "one-cycle"}});  // pct_start 0.3, div 25, final_div 1e4
  CHECK(o.lr(0.1, 0, 10) == dtsim_test::Rel(0.004));
  CHECK(o.lr(0.1, 1.5, 10) == dtsim_test::Rel(0.052));
  CHECK(o.lr(0.1, 3, 10) == dtsim_test::Rel(0.1));
  CHECK(o.lr(0.1, 6.5, 10) == dtsim_test::Rel(0.1 / 2 + 4e-7 / 2));
  CHECK(o.lr(0.1, 10, 10) == dtsim_test::Rel(4e-7));
  const LrSchedule q = make({{"kind", "one-cycle"}, {"pct_start", 0.5}, {"div_factor", 10}, {"final_div_factor", 100}});
  CHECK(q.lr(1.0, 2.5, 10) == dtsim_test::Rel(0.55));
  CHECK(q.lr(1.0, 10, 10) == dtsim_test::Rel(0.001));
}

TEST_CASE("schedule input errors name the key") {
  CHECK(error_of({{"kind", "cosin"}}).find("did you mean 'cosine'") != std::string::npos);
  CHECK(error_of({{"kind", "step"}}).find("algorithm.schedule.milestones_epochs") != std::string::npos);
  CHECK(error_of({{"kind", "step"}, {"milestones_epochs", {80, 40}}}) ==
        "algorithm.schedule.milestones_epochs[1]: milestones must be strictly increasing");
  CHECK(error_of({{"kind", "step"}, {"milestones_epochs", {10}}, {"gamma", 0}}).find("gamma") != std::string::npos);
  CHECK(error_of({{"kind", "one-cycle"}, {"warmup_epochs", 3}}).find("unknown key 'warmup_epochs'") != std::string::npos);
  CHECK(error_of({{"kind", "one-cycle"}, {"pct_start", 1.5}}).find("pct_start") != std::string::npos);
  CHECK(error_of({{"kind", "cosine"}, {"warmup_epochs", 5}, {"total_epochs", 4}}).find("total_epochs") !=
        std::string::npos);
  CHECK(error_of({{"kind", "step"}, {"milestones_epochs", {1}}, {"warmup_start_factor", 2}}).find("warmup_start_factor") !=
        std::string::npos);
}

TEST_CASE("Sgd carries a schedule: lr_at follows it, the default is the constant lr") {
  SgdConfig c;
  c.lr = 0.1;
  CHECK(Sgd(c, 1, Device::Cpu).lr_at(50, 100) == 0.1);
  c.schedule = make({{"kind", "cosine"}});
  CHECK(Sgd(c, 1, Device::Cpu).lr_at(50, 100) == dtsim_test::Rel(0.05));
}

}  // namespace test_schedule_cpp
