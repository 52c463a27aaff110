// The cluster runtime: runs one experiment in one SimGrid simulation and returns what happened.
// One actor per worker and per server shard; the algorithm's straight-line functions run in them
// through the contexts of algorithms/api.hpp.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/config.hpp"
#include "algorithms/api.hpp"
#include "sim/trace.hpp"

namespace dtsim::sim {

struct MetricRow {
  double sim_time_s = 0;
  double wall_time_s = 0;
  uint64_t samples = 0;
  double epoch = 0;
  // NaN when not measured (timing-only mode).
  double train_loss = 0, test_loss = 0, test_accuracy = 0;
};

struct WorkerSummary {
  std::string host;
  uint64_t gradients = 0;
  uint64_t samples = 0;
  double compute_s = 0;    // simulated time spent computing
  double comm_wait_s = 0;  // simulated time blocked on communication
};

struct Progress {
  uint64_t samples = 0, budget = 0;
  double sim_time_s = 0;
  double accuracy = -1;  // last measured test accuracy, -1 if none yet
};

struct RunHooks {
  std::function<void(const Progress&)> progress;  // called often; throttle on the caller's side
  // Tests only: run this algorithm instead of the registry's `algorithm.name`.
  std::function<std::unique_ptr<algo::Algorithm>()> make_algorithm;
};

struct RunResult {
  std::string status = "completed";  // completed | time_limit
  double simulated_time_s = 0;
  double wall_time_s = 0;
  uint64_t samples = 0;    // samples whose gradients were computed
  uint64_t gradients = 0;  // minibatch gradients computed
  uint64_t updates = 0;    // global model updates
  double bytes_on_wire = 0;
  uint64_t messages = 0;
  size_t model_parameters = 0;
  double flops_per_sample = 0;
  std::string device;
  std::vector<MetricRow> metrics;  // one row per evaluation (the last one is the final model)
  std::vector<std::optional<double>> time_to_accuracy;  // per training.target_accuracy
  std::vector<WorkerSummary> per_worker;
  std::vector<float> final_params;  // empty in timing-only mode
  Tracer trace;
};

// Runs the experiment. Throws InputError (bad input found late, e.g. an unreadable dataset) or
// RuntimeError (deadlock, an exception inside an actor).
RunResult run(const Experiment& x, const RunHooks& hooks = {});

}  // namespace dtsim::sim
