// What is checked about a loaded experiment before anything is simulated (docs/config.md,
// "Warnings and refusals"):
//   config_warnings — degenerate-but-legal settings (a warm-up longer than the run, a period that
//                     leaves one round, a target accuracy that is never evaluated, ...), one line
//                     each, "<file>: <json.path>: <reason>". The loader stores them in
//                     Experiment::warnings; `dtsim run` and `dtsim validate` print them on stderr
//                     and summary.json lists them.
//   preflight       — the refusals `dtsim run` makes before simulating (the memory estimate,
//                     checkpointability, the dataset's contents), as InputError, so that
//                     `dtsim validate` refuses what `run` refuses.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/config.hpp"

namespace dtsim::algo {
class Algorithm;
}

namespace dtsim::sim {

// The algorithm `x` names, made from its section (algorithm.plugin loaded by the loader).
std::unique_ptr<algo::Algorithm> make_algorithm(const Experiment& x);

// Steps of a synchronous run: ⌈training.samples / (workers × batch_size)⌉.
int64_t sync_steps(const Experiment& x);

// Whether the run records a timeline: output.trace true, or "auto" and the estimated events
// (steps × workers × (3 + 4·max(1, shards)), plus 2 per worker step under layer-wise timing) within
// output.trace_max_events, as sim/runtime.cpp decides it. `shards` is the
// number of server shards the algorithm uses (0 for all-reduce algorithms).
bool trace_enabled(const Experiment& x, int shards);

// The experiment's warnings: the platform's (sim/platform_spec.hpp) and those of the training
// budget and the algorithm's parameters. Called by the loader (Experiment::warnings). Throws
// InputError instead where the run would be meaningless (synchronous EASGD whose period leaves
// only the exchange at step 0: the global model never moves).
std::vector<std::string> config_warnings(const Experiment& x);
// "warning: <w>\n" for each of Experiment::warnings: what `dtsim run` and `dtsim validate` print on
// stderr (run also with --quiet).
std::string warnings_text(const Experiment& x);
// What only the finished run shows, as config_warnings' lines (the CLI appends them to x.warnings
// before writing summary.json, and prints them): a completed run that committed no global update
// (its final model is the initial one: a plugin that never calls publish_global), checkpoints
// asked for and none written.
struct RunResult;
std::vector<std::string> result_warnings(const Experiment& x, const RunResult& r);
// " (2 warnings)" for validate's "<file>: valid" line; "" without warnings.
std::string warnings_count(const Experiment& x);

// compute.pool resolved (engine/compute_pool.hpp): "auto" is the cores this process may use
// (sched_getaffinity; DTSIM_CORES when set, which `dtsim sweep` sets to each run's share) divided by
// compute.threads; at most one thread per worker; 1 in timing-only mode, on the cuda device (one GPU
// stream) and for models with dropout (their masks come from a per-model call counter).
int resolve_pool(const Experiment& x);
// The cores this process may run on (its affinity mask).
int usable_cores();

struct PreflightOptions {
  // Also read the whole dataset (real compute only), as `run` does before simulating: a truncated
  // or corrupt file is refused here rather than by `run`. `dtsim validate` sets it.
  bool load_dataset = false;
};

// What a run will cost to simulate, estimated from its event count before it starts (docs/robustness.md,
// "How long a run takes"): the point-to-point transfers it simulates — per minibatch (or round of
// `algorithm.period` steps) 2 per shard piece for parameter-server algorithms, and per collective
// the algorithm's transfers (ring 2N(N-1), tree 2(N-1), recursive doubling
// p log2 p + 2(N-p) with p the largest power of two <= N; DDP buckets
// and Horovod fusions multiply the collectives) for all-reduce ones — times a cost per
// transfer that grows with the nodes SimGrid's solver and mailboxes handle (measured on the
// 2-core development VM: bench/README.md, "Speed at scale"), and the memory estimate of
// sim/runtime.hpp. Rough (within about 2x); the compute of real-mode runs is not included.
struct RunCost {
  double transfers = 0;
  double wall_s = 0;     // simulation alone (timing-only wall time)
  double memory_bytes = 0;
  bool real = false;     // real compute comes on top of wall_s
  std::string hint;      // how to make it cheaper, if there is a way (cost_text shows it for long runs)
};
RunCost estimate_cost(const Experiment& x);
// "~1.28 M transfers, ~30 s of simulation, ~330 MiB"
std::string cost_text(const RunCost& c);

// Throws InputError for what `run` would refuse before simulating: a checkpoint asked of an
// algorithm that cannot take one, a minibatch whose simulated time is not finite or over 1e15 s
// (check_step_times), a run whose memory estimate exceeds the available memory
// (sim/runtime.hpp: check_memory), and with load_dataset a dataset that cannot be read.
void preflight(const Experiment& x, const PreflightOptions& options = {});
// A minibatch of every worker group, slowed by the worst straggler, takes a finite simulated time
// of at most 1e15 s (extreme settings overflowed to inf inside SimGrid). InputError otherwise.
void check_step_times(const Experiment& x);

}  // namespace dtsim::sim
