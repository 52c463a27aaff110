// Minibatch gradients of several simulated workers computed at once (compute.pool, docs/engine.md
// "Threads"). The simulation hands each worker's gradient to the pool when its compute starts in
// simulated time and awaits it when the compute's simulated span ends, so the gradients of workers
// whose computes overlap in simulated time run on different cores while SimGrid goes on.
//
// Executors: the thread that awaits (it runs a task that has not started yet itself, with the model
// it was given) and threads - 1 background threads, each with its own model replica (a Model keeps
// per-call activations, so one executor per model). A task is a pure function of what it captured
// and of the model it runs on; replicas compute bitwise what the caller's model computes, so
// results never depend on the number of threads or on which executor ran a task.
//
// With threads == 1 there are no background threads and submit() runs the task at once.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/model.hpp"

namespace dtsim::engine {

class ComputePool {
 public:
  using Task = std::function<void(Model&)>;
  struct Ticket {
    enum class State { Queued, Running, Done };
    std::atomic<State> state = State::Queued;  // written under mu_; read without it while spinning
    Task task;
    std::exception_ptr error;
  };
  using Handle = std::shared_ptr<Ticket>;

  // `caller` is the model the awaiting thread computes with; `make_replica` builds the others
  // (called threads - 1 times, here, before any thread starts).
  ComputePool(int threads, Model& caller, const std::function<std::unique_ptr<Model>()>& make_replica);
  ~ComputePool();  // shutdown()
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

  int threads() const { return static_cast<int>(replicas_.size()) + 1; }
  // Queues `task` (threads > 1) or runs it now (threads == 1; its exception is kept for await).
  Handle submit(Task task);
  // Returns once `h` has run: runs it here if no thread has started it. Rethrows its exception
  // (once; later awaits of the same ticket return normally).
  void await(const Handle& h);
  // Whether `h` has run (true for a null handle); never blocks.
  bool done(const Handle& h);
  // Awaits every task submitted so far (exceptions are kept for their own await).
  void drain();
  // Runs f(lo, hi) over [0, n) cut into up to threads() contiguous parts of at least `grain`
  // elements: the first part here, the others as tasks (run here too if no thread has started them
  // by then). Returns once every part is done, rethrowing the first part's exception. For
  // element-wise work (a server's mean, a model copy): the split never changes a result.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t lo, size_t hi)>& f);
  // Stops the background threads: running tasks finish, queued ones are dropped. Idempotent.
  void shutdown();

 private:
  void run(Ticket& t, Model& m);
  void loop(size_t replica);
  void take(const Handle& h);  // a queued ticket out of the queue, to run here (mu_ held)
  // Runs queued ticket `h` on this thread with the caller's model (`lock` holds mu_ before and after).
  void run_here(std::unique_lock<std::mutex>& lock, const Handle& h);

  Model& caller_;
  std::vector<std::unique_ptr<Model>> replicas_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_, done_;
  std::deque<Handle> queue_;
  std::atomic<size_t> queued_ = 0;  // queue_.size(), for the background threads' spin
  std::vector<Handle> running_;  // started by a background thread
  bool stopping_ = false;
};

}  // namespace dtsim::engine
