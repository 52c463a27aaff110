// What the compute engine runs on, for run metadata (summary.json) and benchmarks.
#pragma once
#include <string>

#include "engine/vec.hpp"

namespace dtsim::engine {

struct RuntimeInfo {
  std::string backend;  // "onednn" | "reference" | "cuda"
  std::string isa;      // oneDNN's effective CPU ISA ("avx512_core", "avx2", ...), "none" without oneDNN
  int threads = 1;      // compute threads in effect (OpenMP, the only thread pool)
};

// For a model on `device` computing with `threads` threads (what make_model's ComputeOptions say).
RuntimeInfo runtime_info(Device device, int threads);
// The calling thread's current state: cpu backend, and the OpenMP thread count in effect now (the
// last set_compute_threads, e.g. by a model's forward_backward/evaluate).
RuntimeInfo runtime_info();

}  // namespace dtsim::engine
