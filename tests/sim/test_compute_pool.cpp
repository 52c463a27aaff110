// Real-mode gradients on a thread pool (compute.pool, engine/compute_pool.hpp): a run computes the
// workers' minibatch gradients concurrently when their computes overlap in simulated time, and
// every output byte is the same as with one thread (wall-clock fields and the resolved pool size
// aside). An algorithm that changes its parameter buffer while its compute is in flight still gets
// the gradient of the parameters as they were when it started the compute (the runtime enforces it).
#include <cmath>
#include <string>
#include <vector>

#include "algorithms/api.hpp"
#include "engine/ops.hpp"
#include "engine/parallel.hpp"
#include "sim/preflight.hpp"
#include "tests/sim/helpers.hpp"

namespace dtsim::test {
namespace test_compute_pool_cpp {  // one namespace per test file: the test targets are unity builds
namespace {

// Every output of a run, with the fields that may differ between equal runs removed.
struct Outputs {
  json summary;
  std::string metrics, params, trace, links;
  bool operator==(const Outputs&) const = default;
};

Outputs outputs_of(const ChildRun& r) {
  json s = r.summary;
  CHECK(s["compute_pool"].is_number_integer());
  for (const char* k : {"wall_time_s", "wall_time_per_step_s", "compute_pool"}) s.erase(k);
  return {s, metrics_without_wall(r.metrics), r.params_npy, r.trace, r.links};
}

Outputs run_with_pool(json doc, int pool, const std::vector<std::string>& sets = {}) {
  doc["compute"]["pool"] = pool;
  const Experiment x = load(std::move(doc), sets);
  CHECK(sim::resolve_pool(x) == std::min(pool, x.platform.workers.count));
  const ChildRun r = run_forked(x);
  REQUIRE(r.exit_code == 0);
  REQUIRE(!r.params_npy.empty());
  CHECK(r.summary["compute_pool"] == std::min(pool, x.platform.workers.count));
  return outputs_of(r);
}

json with_trace(json j) {
  j["output"]["trace"] = true;
  j["training"]["eval_every_samples"] = 512;
  return j;
}

}  // namespace

TEST_CASE("compute pool: 1, 2 and 3 threads give the same outputs byte for byte (PS, all-reduce, asynchronous, local)") {
  struct Case {
    std::string name;
    json algorithm;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      {"ssgd per-tensor", {{"name", "ssgd"}, {"lr", 0.05}, {"overlap", {{"kind", "per-tensor"}}}}, {}},
      {"ssgd none", {{"name", "ssgd"}, {"lr", 0.05}, {"overlap", {{"kind", "none"}}}}, {}},
      {"ssgd ring ddp", {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "ddp"}}}}, {}},
      {"ssgd ring horovod", {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "horovod"}}}}, {}},
      {"asgd per-tensor, a straggler", {{"name", "asgd"}, {"lr", 0.05}, {"overlap", {{"kind", "per-tensor"}}}},
       {R"(platform.stragglers=[{"workers":[1],"slowdown":3}])"}},
      {"od-sgd per-tensor", {{"name", "od-sgd"}, {"overlap", {{"kind", "per-tensor"}}}}, {}},
      {"local-sgd", {{"name", "local-sgd"}, {"comm", "allreduce"}, {"period", 4}, {"lr", 0.05}}, {}},
      {"dasgd", {{"name", "dasgd"}, {"lr", 0.05}}, {}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    json doc = with_trace(small_config(4, 2));
    doc["algorithm"] = c.algorithm;
    const Outputs one = run_with_pool(doc, 1, c.sets);
    CHECK(run_with_pool(doc, 2, c.sets) == one);
    CHECK(run_with_pool(doc, 3, c.sets) == one);
  }
}

TEST_CASE("compute pool: a BatchNorm model with augmentation, evaluations and a checkpoint: the same outputs with 1 and 2 threads") {
  TempDir dir;
  write_cifar(dir.str(), 16);
  json doc = with_trace(small_config(4, 1));
  doc["model"] = {{"kind", "resnet8"}};
  doc["dataset"] = {{"kind", "cifar10"}, {"path", dir.str()}, {"augment", true}};
  doc["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "none"}}}};
  doc["training"]["samples"] = 160;
  doc["training"]["batch_size"] = 4;
  doc["training"]["eval_every_samples"] = 32;  // worker 0's BatchNorm statistics, read between computes
  doc["training"]["checkpoint_every_samples"] = 64;  // and saved at a cut
  const Outputs one = run_with_pool(doc, 1);
  CHECK(run_with_pool(doc, 2) == one);
  doc["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "ddp"}}}};
  doc["training"].erase("checkpoint_every_samples");
  CHECK(run_with_pool(doc, 2) == run_with_pool(doc, 1));
  doc["algorithm"] = {{"name", "asgd"}, {"lr", 0.05}, {"overlap", {{"kind", "per-tensor"}}}};
  CHECK(run_with_pool(doc, 2) == run_with_pool(doc, 1));
}

// The per-tensor synchronous server on 2 shards (each tensor aggregated where it lives, one update
// for the whole model), with replies that are models or acks: the same outputs with 1 and 2 threads.
TEST_CASE("compute pool: per-tensor synchronous servers on 2 shards give the same outputs with 1 and 2 threads (ssgd, ssd-sgd, pipe-sgd)") {
  json doc = with_trace(small_config(4, 2));
  for (const char* name : {"ssgd", "ssd-sgd", "pipe-sgd"}) {
    CAPTURE(name);
    doc["algorithm"] = {{"name", name}, {"overlap", {{"kind", "per-tensor"}}}};
    CHECK(run_with_pool(doc, 2) == run_with_pool(doc, 1));
  }
}

// Under per-tensor pushes to a server, DDP buckets and Horovod fusion cycles a gradient's math is
// awaited, and its loss checked, where the gradient is first read (a synchronous server's update,
// an asynchronous server's receipt of the whole range, the all-reduce's reduction at the first
// worker's wait for its result, or the algorithm's own wait on it: od-sgd), not where the forward
// ends (sim/layerwise.hpp, StepChain::math): a run that diverges stops at one point in simulated
// time whatever the number of threads.
TEST_CASE("compute pool: a diverging run under per-tensor pushes or DDP/Horovod all-reduces stops at the same point with 1 and 2 threads") {
  json doc = with_trace(small_config(4, 2));
  for (const std::string name : {"ssgd", "od-sgd", "asgd", "ssgd ring ddp", "ssgd ring horovod"}) {
    CAPTURE(name);
    doc["algorithm"] = {{"name", name}, {"overlap", {{"kind", "per-tensor"}}}};
    if (name.starts_with("ssgd ring")) {
      doc["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"overlap", {{"kind", name.substr(10)}}}, {"lr", 1e30}};
    } else if (name == "od-sgd") {  // the local step blows up: the worker's own wait reads it first
      doc["algorithm"]["warmup_steps"] = 1;
      doc["algorithm"]["local_lr"] = 1e30;
    } else {
      doc["algorithm"]["lr"] = 1e30;
    }
    std::vector<Outputs> outs;
    for (int pool : {1, 2}) {
      CAPTURE(pool);
      doc["compute"]["pool"] = pool;
      const ChildRun r = run_forked(load(doc));
      REQUIRE(r.exit_code == 0);  // a diverged run writes its outputs (the CLI exits 3)
      REQUIRE(r.summary["status"] == "diverged");
      CHECK(r.summary["stopped"]["detail"].get<std::string>().find("loss of worker") != std::string::npos);
      outs.push_back(outputs_of(r));
    }
    CHECK(outs[0] == outs[1]);
  }
}

// The element-wise passes on the simulation thread (a server's mean, optimizer step and model copy,
// an all-reduce's weighted sum) are cut across the pool's threads only above engine::kParallelGrain
// floats: a model of 300,000 parameters is cut in 2 or 3 parts even per shard of two.
TEST_CASE("compute pool: servers' means, optimizer steps, model copies and all-reduce sums cut across threads give the same bytes") {
  json base = small_config(4, 2);
  base["model"]["hidden"] = {4000};  // 64*4000 + 4000 + 4000*10 + 10 = 300,010 parameters
  base["dataset"]["train"] = 512;
  base["training"]["samples"] = 512;
  REQUIRE(300010 / 2 >= 2 * engine::kParallelGrain);
  const std::vector<std::pair<std::string, json>> cases = {
      {"ssgd per-tensor", {{"name", "ssgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"overlap", {{"kind", "per-tensor"}}}}},
      {"ssgd none, nesterov", {{"name", "ssgd"}, {"lr", 0.05}, {"momentum", 0.9}, {"nesterov", true}, {"overlap", {{"kind", "none"}}}}},
      {"ssgd ring ddp", {{"name", "ssgd"}, {"comm", "allreduce"}, {"lr", 0.05}, {"overlap", {{"kind", "ddp"}}}}},
      {"asgd", {{"name", "asgd"}, {"lr", 0.05}, {"overlap", {{"kind", "per-tensor"}}}}},
      {"local-sgd", {{"name", "local-sgd"}, {"comm", "allreduce"}, {"period", 2}, {"lr", 0.05}}},
      // the workers' delay-compensated local steps (engine/delay_comp.cpp), adaptive and plain
      {"od-sgd", {{"name", "od-sgd"}, {"warmup_steps", 1}, {"overlap", {{"kind", "per-tensor"}}}}},
      {"dc-asgd", {{"name", "dc-asgd"}, {"lr", 0.05}}},
      // the workers' inner AdamW steps (engine/adamw.cpp)
      {"diloco", {{"name", "diloco"}, {"period", 2}}},
      {"streaming-diloco", {{"name", "streaming-diloco"}, {"period", 2}}},
  };
  for (int shards : {1, 2}) {
    for (const auto& [name, algorithm] : cases) {
      CAPTURE(shards);
      CAPTURE(name);
      json doc = base;
      doc["platform"]["servers"]["count"] = shards;
      doc["algorithm"] = algorithm;
      const Outputs one = run_with_pool(doc, 1);
      CHECK(run_with_pool(doc, 2) == one);
      CHECK(run_with_pool(doc, 3) == one);
    }
  }
}

namespace {

// Starts a compute on its own buffer, then scribbles over the buffer before waiting for the
// gradient (restoring it afterwards): the gradient must be that of the parameters at the start.
class ScribbleWhileComputing final : public algo::Algorithm {
 public:
  explicit ScribbleWhileComputing(bool scribble) : scribble_(scribble) {}
  bool needs_servers() const override { return false; }
  void worker(algo::Worker& w) override {
    engine::Vec x = w.new_buffer(), saved = w.new_buffer();
    engine::ops::copy(x.view(), w.initial_params()->view());
    for (int64_t t = 0; t < w.sync_steps(); ++t) {
      algo::Future<algo::Gradient> f = w.compute_async(x.view());
      if (scribble_) {
        engine::ops::copy(saved.view(), x.view());
        engine::ops::fill(x.view(), 1e30f);
        w.work(1e6);  // simulated time passes with the buffer changed: other workers' computes run
      }
      const algo::Gradient& g = f.wait();
      if (scribble_) engine::ops::copy(x.view(), saved.view());
      else w.work(1e6);
      engine::ops::axpy(x.view(), -0.05f, g.buf->view());
      if (w.leads()) w.publish_global(x.view());
    }
  }

 private:
  bool scribble_;
};

// Runs `x` with Scribbler(false) and Scribbler(true): the scribbling must change no output.
template <class Scribbler>
void check_scribbling_changes_nothing(const Experiment& x) {
  sim::RunHooks clean, scribbling;
  clean.make_algorithm = [] { return std::make_unique<Scribbler>(false); };
  scribbling.make_algorithm = [] { return std::make_unique<Scribbler>(true); };
  const ChildRun a = run_forked(x, clean), b = run_forked(x, scribbling);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  REQUIRE(!a.params_npy.empty());
  CHECK(a.params_npy == b.params_npy);
  CHECK(a.summary["final_test_loss"] == b.summary["final_test_loss"]);
}

}  // namespace

TEST_CASE("compute pool: changing the parameter buffer while its compute is in flight does not change the gradient") {
  json doc = small_config(4, 1);
  for (int pool : {1, 2}) {
    CAPTURE(pool);
    doc["compute"]["pool"] = pool;
    check_scribbling_changes_nothing<ScribbleWhileComputing>(load(doc));
  }
}

namespace {

// Starts the all-reduce of its gradient (DDP buckets or Horovod fusion cycles, during the
// backward), then waits for the gradient and scribbles over it before waiting for the mean: the
// mean must still be that of the gradients as computed, whether the other workers' parts were all
// in at that wait (the reduction, left to its first reader, happens then) or not (a straggler: the
// all-reduce keeps a copy). RunState::release_contribution.
class ScribbleAfterContributing final : public algo::Algorithm {
 public:
  explicit ScribbleAfterContributing(bool scribble) : scribble_(scribble) {}
  bool needs_servers() const override { return false; }
  LayerComm layer_comm() const override { return LayerComm::AllReduce; }
  void worker(algo::Worker& w) override {
    engine::Vec x = w.new_buffer();
    engine::ops::copy(x.view(), w.initial_params()->view());
    for (int64_t t = 0; t < w.sync_steps(); ++t) {
      algo::Future<algo::Gradient> f = w.compute_async(x.view());
      auto mean = w.allreduce_async(f, algo::Reduce::Mean, w.batch_size());
      const algo::Gradient& g = f.wait();
      if (scribble_) engine::ops::fill(g.buf->view(), 1e30f);
      w.work(1e6);
      engine::ops::axpy(x.view(), -0.05f, mean.wait()->view());
      if (w.leads()) w.publish_global(x.view());
    }
  }

 private:
  bool scribble_;
};

}  // namespace

TEST_CASE("compute pool: writing to a gradient whose DDP or Horovod all-reduce is under way does not change its mean") {
  for (const std::string kind : {"ddp", "horovod"}) {
    for (const bool straggler : {false, true}) {
      for (int pool : {1, 2}) {
        CAPTURE(kind);
        CAPTURE(straggler);
        CAPTURE(pool);
        json doc = small_config(4, 1);
        doc["algorithm"] = {{"name", "ssgd"}, {"comm", "allreduce"}, {"overlap", {{"kind", kind}}}};
        doc["compute"]["pool"] = pool;
        if (straggler) doc["platform"]["stragglers"] = json::parse(R"([{"workers": [1], "slowdown": 3}])");
        check_scribbling_changes_nothing<ScribbleAfterContributing>(load(doc));
      }
    }
  }
}

TEST_CASE("compute pool: auto, the cores a run may use (DTSIM_CORES), at most one per worker, and 1 in timing-only mode") {
  json doc = small_config(4, 1);
  ::setenv("DTSIM_CORES", "3", 1);
  CHECK(sim::resolve_pool(load(doc)) == 3);
  ::setenv("DTSIM_CORES", "16", 1);
  CHECK(sim::resolve_pool(load(doc)) == 4);
  CHECK(sim::resolve_pool(load(doc, {"compute.threads=4"})) == 4);
  CHECK(sim::resolve_pool(load(doc, {"compute.threads=8"})) == 2);
  ::unsetenv("DTSIM_CORES");
  CHECK(sim::resolve_pool(load(doc, {"compute.pool=2"})) == 2);
  CHECK(sim::resolve_pool(load(doc, {"compute.pool=2", "compute.mode=timing-only"})) == 1);
  Experiment dropout = load(doc, {"compute.pool=2"}), cuda = dropout;
  dropout.model["dropout"] = 0.1;  // masks from a per-model counter: one gradient at a time
  cuda.compute.device = engine::Device::Cuda;
  CHECK(sim::resolve_pool(dropout) == 1);
  CHECK(sim::resolve_pool(cuda) == 1);
  CHECK_THROWS_WITH_AS(load(doc, {"compute.pool=0"}), doctest::Contains("compute.pool"), InputError);
  CHECK_THROWS_WITH_AS(load(doc, {"compute.pool=\"many\""}), doctest::Contains("\"auto\" or an integer"), InputError);
}

}  // namespace test_compute_pool_cpp
}  // namespace dtsim::test
