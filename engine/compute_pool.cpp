#include "engine/compute_pool.hpp"

#include "engine/parallel.hpp"

#include <algorithm>
#include <chrono>

namespace dtsim::engine {

namespace {

// How long an idle thread polls before it sleeps on a condition variable. The gaps a thread sees
// within a step (the simulation's events between one minibatch and the next, a server's mean) are
// tens to hundreds of microseconds, and waking a sleeping thread costs a futex call on each side
// and, on a virtual machine, an interprocessor interrupt. Polling only burns the core of a thread
// the run was given (compute.pool), at most this long per gap, and it yields the core every few
// microseconds to any other thread that is ready to run.
constexpr auto kSpin = std::chrono::microseconds(200);

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

template <class Pred>
bool spin_until(Pred ready) {
  const auto end = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= end) return ready();
    std::this_thread::yield();  // a busy machine (ctest -j, a sweep) gets the core back at once
  }
}

thread_local ComputePool* t_scope = nullptr;  // engine/parallel.hpp

}  // namespace

ParallelScope::ParallelScope(ComputePool* pool) : previous_(t_scope) { t_scope = pool; }
ParallelScope::~ParallelScope() { t_scope = previous_; }

void parallel_elementwise(size_t n, const std::function<void(size_t, size_t)>& f) {
  if (t_scope) t_scope->parallel_for(n, kParallelGrain, f);
  else if (n) f(0, n);
}

ComputePool::ComputePool(int threads, Model& caller, const std::function<std::unique_ptr<Model>()>& make_replica)
    : caller_(caller) {
  for (int i = 1; i < threads; ++i) replicas_.push_back(make_replica());
  for (size_t i = 0; i < replicas_.size(); ++i) threads_.emplace_back([this, i] { loop(i); });
}

ComputePool::~ComputePool() { shutdown(); }

void ComputePool::run(Ticket& t, Model& m) {
  ParallelScope none(nullptr);  // a task's own element-wise work stays on its thread
  try {
    t.task(m);
  } catch (...) {
    t.error = std::current_exception();
  }
  t.task = nullptr;  // what it captured is released by the thread that ran it
}

ComputePool::Handle ComputePool::submit(Task task) {
  auto h = std::make_shared<Ticket>();
  h->task = std::move(task);
  if (threads_.empty()) {
    h->state = Ticket::State::Running;
    run(*h, caller_);
    h->state = Ticket::State::Done;
    return h;
  }
  {
    std::lock_guard lock(mu_);
    queue_.push_back(h);
    queued_.store(queue_.size(), std::memory_order_release);
  }
  work_.notify_one();
  return h;
}

void ComputePool::run_here(std::unique_lock<std::mutex>& lock, const Handle& h) {
  take(h);
  lock.unlock();
  run(*h, caller_);
  lock.lock();
  h->state = Ticket::State::Done;
}

void ComputePool::await(const Handle& h) {
  if (!h) return;
  std::unique_lock lock(mu_);
  if (h->state == Ticket::State::Queued) run_here(lock, h);  // nobody started it: run it here
  // A background thread runs it: meanwhile this thread runs the oldest queued tasks (whoever runs
  // a task, its results are the same), then waits.
  while (h->state != Ticket::State::Done && !queue_.empty()) run_here(lock, Handle(queue_.front()));
  if (h->state != Ticket::State::Done) {  // a background thread runs it: poll a while, then sleep
    lock.unlock();
    spin_until([&] { return h->state.load(std::memory_order_acquire) == Ticket::State::Done; });
    lock.lock();
  }
  done_.wait(lock, [&] { return h->state == Ticket::State::Done; });
  if (h->error) std::rethrow_exception(std::exchange(h->error, nullptr));
}

bool ComputePool::done(const Handle& h) {
  if (!h) return true;
  std::lock_guard lock(mu_);
  return h->state == Ticket::State::Done;
}

void ComputePool::drain() {
  std::vector<Handle> all;
  {
    std::lock_guard lock(mu_);
    all.assign(queue_.begin(), queue_.end());
    all.insert(all.end(), running_.begin(), running_.end());
  }
  for (const Handle& h : all) {
    std::unique_lock lock(mu_);
    if (h->state == Ticket::State::Queued) run_here(lock, h);
    done_.wait(lock, [&] { return h->state == Ticket::State::Done; });
  }
}

void ComputePool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& f) {
  const size_t parts = std::min(static_cast<size_t>(threads()), n / std::max<size_t>(grain, 1));
  if (parts <= 1) {
    if (n) f(0, n);
    return;
  }
  auto bound = [&](size_t p) { return n * p / parts; };
  std::vector<Handle> others;
  for (size_t p = 1; p < parts; ++p)
    others.push_back(submit([&f, lo = bound(p), hi = bound(p + 1)](Model&) { f(lo, hi); }));
  std::exception_ptr error;
  try {
    f(0, bound(1));
  } catch (...) {
    error = std::current_exception();
  }
  for (const Handle& h : others) {  // every part is done before `f` goes out of scope
    try {
      await(h);
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void ComputePool::take(const Handle& h) {
  auto it = std::find(queue_.begin(), queue_.end(), h);
  if (it != queue_.end()) queue_.erase(it);  // (not there: dropped by shutdown)
  queued_.store(queue_.size(), std::memory_order_release);
  h->state = Ticket::State::Running;
}

void ComputePool::loop(size_t replica) {
  Model& m = *replicas_[replica];
  std::unique_lock lock(mu_);
  for (;;) {
    if (!stopping_ && queue_.empty()) {  // idle: poll a while before sleeping
      lock.unlock();
      spin_until([&] { return queued_.load(std::memory_order_acquire) > 0; });
      lock.lock();
    }
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Handle h = std::move(queue_.front());
    queue_.pop_front();
    queued_.store(queue_.size(), std::memory_order_release);
    h->state = Ticket::State::Running;
    running_.push_back(h);
    lock.unlock();
    run(*h, m);
    lock.lock();
    h->state = Ticket::State::Done;
    running_.erase(std::find(running_.begin(), running_.end(), h));
    done_.notify_all();
  }
}

void ComputePool::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    queue_.clear();
    queued_.store(0, std::memory_order_release);
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace dtsim::engine
