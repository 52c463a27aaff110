// Checkpoint files (training.checkpoint_every_samples, `dtsim run --resume DIR`; docs/robustness.md,
// "Checkpoint and resume"). One file, <run dir>/checkpoint.dtck, written atomically:
//   "DTSIMCK1" | u64 little-endian header length | JSON header | float32 little-endian blobs
// The header holds the counters, metrics rows and every node's saved integers; each blob (the
// global model, every node's saved vectors) is referenced from it by {"offset", "count"} in floats
// from the start of the blob area.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dtsim::sim {

struct MetricRow;

// One node's state at its cut (a worker rank or a server shard).
struct NodeCheckpoint {
  double cut_time_s = 0;  // the simulated time of this node's cut
  std::map<std::string, std::vector<float>> blobs;  // algo::State::put
  std::map<std::string, int64_t> ints;              // algo::State::put_int
  // The runtime's own per-node counters.
  int64_t k = 0;          // minibatches started (the position in the worker's sample order)
  uint64_t pos = 0;       // samples of its stream consumed
  int64_t batch = 0;      // its batch size (set_batch_size)
  uint64_t ar_seq = 0;    // all-reduces started
  uint64_t gradients = 0, samples = 0;
  double compute_s = 0, comm_wait_s = 0;
  double work_s = 0;      // simulated time in local updates (exposed_comm_s)
  double sent_bytes = 0;  // bytes this node put on the wire
  uint64_t sent_messages = 0;
};

struct CheckpointRow {  // a metrics row (MetricRow's fields)
  double sim_time_s = 0, wall_time_s = 0;
  uint64_t samples = 0;
  double epoch = 0, train_loss = 0, test_loss = 0, test_accuracy = 0;
  double exposed_comm_s_per_step = 0;
};

struct Checkpoint {
  std::string config_hash;  // of config.resolved.json (config_hash())
  std::string algorithm;
  int64_t step = 0;         // the cut: the step every node restarts from
  uint64_t samples_done = 0, claimed = 0, gradients = 0, updates = 0, messages = 0, shard_commits = 0;
  double bytes_on_wire = 0;
  uint64_t next_eval = 0, last_eval_version = 0;
  uint64_t next_checkpoint = 0;  // asynchronous PS cuts: the next threshold in samples
  std::vector<CheckpointRow> metrics;
  std::vector<std::optional<double>> time_to_accuracy;
  // The warnings of the run as first started (summary.json's "warnings"): a resumed run reports
  // them, not those of its config.resolved.json (which names the run directory's file, and in
  // which a setting the first run replaced with a warning is already replaced). Absent from
  // checkpoints written before it was added.
  std::optional<std::vector<std::string>> warnings;
  std::vector<float> global;  // the global model (empty in timing-only mode)
  std::vector<NodeCheckpoint> workers, servers;
};

// FNV-1a 64 of `text`, as 16 hex digits.
std::string config_hash(const std::string& text);
// The file image / its parser. read_checkpoint throws InputError(path, "", reason) for a missing,
// truncated or corrupt file.
std::string checkpoint_bytes(const Checkpoint& c);
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path);
Checkpoint read_checkpoint(const std::string& path);

}  // namespace dtsim::sim
