// Element-wise engine work cut across a compute pool's threads (engine/compute_pool.hpp). sim/ puts
// a run's pool in scope on its simulation thread (ParallelScope); the memory-bound passes there (a
// server's mean of N gradients, an optimizer step, a model copy, an all-reduce's weighted sum) then
// run in contiguous parts on the pool's idle threads. Tasks run with no pool in scope, so nothing
// nests. Only for work whose every element is computed independently of the others: the bits never
// depend on the cut, the number of threads or which thread ran a part (docs/engine.md, "Threads").
#pragma once
#include <cstddef>
#include <functional>

namespace dtsim::engine {

class ComputePool;

// Puts `pool` (or none) in scope on this thread until destroyed; scopes nest.
class ParallelScope {
 public:
  explicit ParallelScope(ComputePool* pool);
  ~ParallelScope();
  ParallelScope(const ParallelScope&) = delete;
  ParallelScope& operator=(const ParallelScope&) = delete;

 private:
  ComputePool* previous_;
};

// Below this many floats a pass stays on one thread: handing a part over costs more than it saves.
inline constexpr size_t kParallelGrain = size_t{1} << 16;

// f(lo, hi) over [0, n): ComputePool::parallel_for on the pool in scope, f(0, n) without one.
void parallel_elementwise(size_t n, const std::function<void(size_t lo, size_t hi)>& f);

}  // namespace dtsim::engine
