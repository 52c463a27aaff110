// Memory a run needs, estimated before anything is allocated, and the refusal of runs that cannot
// fit (docs/robustness.md, "Memory"). Declared in sim/runtime.hpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "sim/runtime.hpp"
#include "sim/trace.hpp"

namespace dtsim::sim {

namespace {
std::string gib(double b) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g GiB", b / (1024.0 * 1024.0 * 1024.0));
  return buf;
}
}  // namespace

std::string MemoryEstimate::breakdown() const {
  return gib(total()) + " (parameter copies " + gib(model_bytes) + ", dataset " + gib(dataset_bytes) + ", trace " +
         gib(trace_bytes) + ", simulated hosts and actors " + gib(actor_bytes) + ")";
}

MemoryEstimate estimate_memory(const Experiment& x, size_t params, double buffers_per_worker, int shards,
                               bool trace_on) {
  MemoryEstimate m;
  const double N = x.platform.workers.count, K = shards, P = static_cast<double>(params);
  if (x.compute.real) {
    // Every worker's own buffers, plus the global model, the initial parameters, and on the
    // servers one averaging buffer, the optimizer state and two snapshots in flight (all K shards
    // together are one model).
    m.model_bytes = 4.0 * P * (N * std::max(0.0, buffers_per_worker) + 2.0 + (K > 0 ? 4.0 : 0.0));
    const auto [shape, classes] = dataset_shape(x.dataset);
    (void)classes;
    const double train = static_cast<double>(x.training.train_size);
    // The test set of the IDX datasets is not known before reading it: MNIST's ratio (1/6).
    const double test = x.dataset.kind == "synthetic" ? static_cast<double>(x.dataset.synthetic_test) : train / 6.0;
    const double per_sample = 4.0 * static_cast<double>(shape.size()) + 4.0 +
                              (x.dataset.kind == "synthetic" ? 0.0 : static_cast<double>(shape.size()));  // + the raw bytes while decoding
    m.dataset_bytes = (train + test) * per_sample;
  }
  if (trace_on) {
    const double b = x.training.batch_size;
    const double steps = std::ceil(static_cast<double>(x.training.samples) / (N * b));
    m.trace_bytes = steps * N * (3.0 + 4.0 * std::max(1.0, K)) * (sizeof(Span) + 120.0);  // + its JSON text
  }
  m.actor_bytes = 20e3 * (N + x.platform.servers.count) + 64e6;  // ~17 KB per host+actor measured at 10k; + the process
  return m;
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024.0;
  return 0;
}

void check_memory(const Experiment& x, const MemoryEstimate& m, double available_bytes) {
  if (available_bytes <= 0 || m.total() <= available_bytes) return;
  const std::string need = "this run needs about " + m.breakdown() + " but only " + gib(available_bytes) +
                           " of memory is available (MemAvailable); ";
  // The key named is the one that holds the largest part.
  if (m.trace_bytes >= std::max({m.model_bytes, m.dataset_bytes, m.actor_bytes}))
    throw InputError(x.file, "output.trace",
                     need + "the trace is the largest part: set output.trace to \"auto\" or false, or simulate fewer samples");
  if (m.dataset_bytes >= std::max(m.model_bytes, m.actor_bytes))
    throw InputError(x.file, "dataset", need + "the dataset is the largest part: use a smaller dataset, or compute.mode \"timing-only\"");
  const bool own_file = !x.platform.file.empty() && x.platform.file != x.file;
  throw InputError(own_file ? x.platform.file : x.file, own_file ? "workers.count" : "platform.workers.count",
                   need + "use fewer workers, a smaller model, or compute.mode \"timing-only\"");
}

}  // namespace dtsim::sim
