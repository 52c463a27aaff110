// The cluster runtime: runs one experiment in one SimGrid simulation and returns what happened.
// One actor per worker and per server shard; the algorithm's straight-line functions run in them
// through the contexts of algorithms/api.hpp.
#pragma once
#include <atomic>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/config.hpp"
#include "algorithms/api.hpp"
#include "sim/checkpoint.hpp"
#include "sim/failures.hpp"
#include "sim/links.hpp"
#include "sim/trace.hpp"

namespace dtsim::sim {

struct MetricRow {
  double sim_time_s = 0;
  double wall_time_s = 0;
  uint64_t samples = 0;
  double epoch = 0;
  // NaN when not measured (timing-only mode).
  double train_loss = 0, test_loss = 0, test_accuracy = 0;
  // Communication not hidden behind compute so far, per worker and minibatch (docs/timing.md).
  double exposed_comm_s_per_step = 0;
};

struct WorkerSummary {
  std::string host;
  uint64_t gradients = 0;
  uint64_t samples = 0;
  double compute_s = 0;    // simulated time spent computing
  double comm_wait_s = 0;  // simulated time blocked on communication
  // Simulated time of the worker's run (to its return) not spent computing its minibatches or its
  // local updates: communication not hidden behind compute, waits for others included (docs/timing.md).
  double exposed_comm_s = 0;
};

struct Progress {
  uint64_t samples = 0, budget = 0;
  double sim_time_s = 0;
  double accuracy = -1;  // last measured test accuracy, -1 if none yet
};

struct RunHooks {
  std::function<void(const Progress&)> progress;  // called often; throttle on the caller's side
  // Set by another thread (the CLI's signal thread, tools/dtsim/signals.hpp) to the signal's
  // number: the run stops at its next event with status "interrupted" (docs/robustness.md).
  const std::atomic<int>* interrupt = nullptr;
  // Wall-clock limit in seconds (0: none): the run stops at its next event with status "wall_limit".
  double max_wall_s = 0;
  // Tests only: run this algorithm instead of the registry's `algorithm.name`.
  std::function<std::unique_ptr<algo::Algorithm>()> make_algorithm;
  // Tests only: receives every Node::observe(what, step, v) of the algorithm; `node` is the
  // worker rank, or -(k+1) for server shard k.
  std::function<void(int node, const std::string& what, int64_t step, engine::ConstVecView v)> observe;
  // Checkpoint and resume (docs/robustness.md): training.checkpoint_every_samples writes each
  // checkpoint to checkpoint_path (atomically; empty: not written) and passes it to on_checkpoint;
  // config_hash is stored in it. `resume` (read from resume_file) continues that run.
  std::string checkpoint_path;
  std::string config_hash;
  std::function<void(const Checkpoint&)> on_checkpoint;
  const Checkpoint* resume = nullptr;
  std::string resume_file;
  // Tests and benchmarks only: every node posts and waits for all its sends itself, never through
  // helper actors (sim/send_pool.hpp); the outputs are the same either way.
  bool direct_sends = false;
  // Tests only: every short-lived job of a worker host (a compute chain, a per-tensor push, a
  // collective) runs on a new actor, as before sim/actor_pool.hpp; the outputs are the same.
  bool fresh_actors = false;
};

// Why a run ended before its sample budget (other than training.max_time_s).
struct StopInfo {
  std::string reason;      // interrupted | wall_limit | diverged
  std::string detail;      // e.g. "SIGTERM", "loss of worker 3 at its step 17 is nan"
  double sim_time_s = 0;   // simulated time at which it happened
  int64_t step = -1;       // diverged: the worker's step (minibatch counter), else -1
  int worker = -1;         // diverged: the worker whose loss was not finite (-1: the parameters)
  uint64_t updates = 0;    // global updates completed by then
};

struct RunResult {
  std::string status = "completed";  // completed | time_limit | interrupted | wall_limit | diverged
  std::optional<StopInfo> stop;      // set for interrupted | wall_limit | diverged
  double simulated_time_s = 0;
  double wall_time_s = 0;
  int compute_pool = 1;  // gradients computed at once (compute.pool resolved; 1 in timing-only mode)
  int simulated_workers = 0;  // workers SimGrid ran: all, or 1 with platform.workers.grouping (sim/grouping.hpp)
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
  std::vector<LinkRow> links;  // every link: bytes, busy time, utilisation (links.csv; sim/links.hpp)
  std::vector<FailureRecord> failures;  // platform.failures that happened (sim/failures.hpp)
  uint64_t samples_lost = 0;            // computed by workers that failed before sending them
  // on_failure "elastic" with platform.failures (sim/elastic.hpp): each change of the all-reduce group.
  std::optional<std::vector<ElasticRecord>> elastic;
  uint64_t checkpoints_written = 0;     // training.checkpoint_every_samples
  int64_t checkpoint_step = -1;         // the step of the last one (-1: none)
  int64_t resumed_from_step = -1;       // RunHooks::resume: the checkpoint's step
};

// Runs the experiment. Throws InputError (bad input found late, e.g. an unreadable dataset, or a
// run that cannot fit in memory, see check_memory) or RuntimeError (deadlock, an exception inside
// an actor). Interruption, the wall-clock limit and divergence end the run normally with the
// matching status (outputs can still be written).
RunResult run(const Experiment& x, const RunHooks& hooks = {});

// Memory a run needs, estimated before anything is allocated (docs/robustness.md).
struct MemoryEstimate {
  double model_bytes = 0;    // parameter copies: global + initial + per-worker buffers + shard snapshots
  double dataset_bytes = 0;  // features + labels in memory (real compute only)
  double trace_bytes = 0;    // timeline spans, when the trace is on
  double actor_bytes = 0;    // SimGrid hosts, actors and mailboxes
  double total() const { return model_bytes + dataset_bytes + trace_bytes + actor_bytes; }
  std::string breakdown() const;  // "12.3 GiB (models 11 GiB, dataset 1.2 GiB, ...)"
};
MemoryEstimate estimate_memory(const Experiment& x, size_t params, double buffers_per_worker, int shards,
                               bool trace_on);
// MemAvailable from /proc/meminfo in bytes (0 when unknown).
double available_memory_bytes();
// Throws InputError (platform.workers.count) when the estimate exceeds the available memory.
void check_memory(const Experiment& x, const MemoryEstimate& m, double available_bytes);

}  // namespace dtsim::sim
