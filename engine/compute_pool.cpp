#include "engine/compute_pool.hpp"

#include <algorithm>

namespace dtsim::engine {

ComputePool::ComputePool(int threads, Model& caller, const std::function<std::unique_ptr<Model>()>& make_replica)
    : caller_(caller) {
  for (int i = 1; i < threads; ++i) replicas_.push_back(make_replica());
  for (size_t i = 0; i < replicas_.size(); ++i) threads_.emplace_back([this, i] { loop(i); });
}

ComputePool::~ComputePool() { shutdown(); }

void ComputePool::run(Ticket& t, Model& m) {
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

void ComputePool::take(const Handle& h) {
  auto it = std::find(queue_.begin(), queue_.end(), h);
  if (it != queue_.end()) queue_.erase(it);  // (not there: dropped by shutdown)
  h->state = Ticket::State::Running;
}

void ComputePool::loop(size_t replica) {
  Model& m = *replicas_[replica];
  std::unique_lock lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Handle h = std::move(queue_.front());
    queue_.pop_front();
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
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace dtsim::engine
