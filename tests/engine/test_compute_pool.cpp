// The compute pool (engine/compute_pool.hpp): tasks run on background threads or on the awaiting
// thread, each exactly once, with their own model; replicas compute bitwise what the caller's model
// computes; exceptions reach the awaiting thread once; shutdown drops what has not started.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/compute_pool.hpp"
#include "engine/ops.hpp"
#include "helpers.hpp"

namespace test_compute_pool_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;
using namespace dtsim::engine::test;

const SampleShape kIn{1, 8, 8};

std::unique_ptr<Model> mlp() { return make_mlp({24}, kIn, 10, Device::Cpu); }

TEST_CASE("compute pool: every task runs once, on a replica or on the awaiting thread, and await returns after it") {
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    auto caller = mlp();
    ComputePool pool(threads, *caller, mlp);
    CHECK(pool.threads() == threads);
    std::vector<std::atomic<int>> runs(64);
    std::vector<const Model*> ran_on(64, nullptr);
    std::vector<ComputePool::Handle> h;
    for (size_t i = 0; i < runs.size(); ++i)
      h.push_back(pool.submit([&, i](Model& m) {
        ++runs[i];
        ran_on[i] = &m;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }));
    for (size_t i = 0; i < h.size(); ++i) {
      pool.await(h[i]);
      CHECK(runs[i] == 1);  // done when await returns
    }
    pool.drain();
    for (auto& r : runs) CHECK(r == 1);
    if (threads == 1)
      for (const Model* m : ran_on) CHECK(m == caller.get());  // at submit, with the caller's model
  }
}

TEST_CASE("compute pool: replicas compute bitwise the caller's gradients, whichever thread runs them") {
  auto caller = mlp();
  Vec params(caller->num_params());
  caller->init_params(params.view(), 3);
  constexpr size_t kTasks = 24;
  std::vector<Batch> batches;
  for (size_t i = 0; i < kTasks; ++i) batches.push_back(random_batch(16, kIn, 10, 100 + i));
  std::vector<Vec> serial, pooled;
  std::vector<float> serial_loss(kTasks), pooled_loss(kTasks);
  for (size_t i = 0; i < kTasks; ++i) {
    serial.emplace_back(caller->num_params());
    serial_loss[i] = caller->forward_backward(params.view(), batches[i], serial.back().view());
  }
  ComputePool pool(3, *caller, mlp);
  std::vector<ComputePool::Handle> h;
  for (size_t i = 0; i < kTasks; ++i) pooled.emplace_back(caller->num_params());
  for (size_t i = 0; i < kTasks; ++i)
    h.push_back(pool.submit([&, i](Model& m) { pooled_loss[i] = m.forward_backward(params.view(), batches[i], pooled[i].view()); }));
  for (auto& t : h) pool.await(t);
  for (size_t i = 0; i < kTasks; ++i) {
    CHECK(std::memcmp(&pooled_loss[i], &serial_loss[i], sizeof(float)) == 0);
    std::vector<float> a(serial[i].size()), b(serial[i].size());
    ops::to_host(serial[i].view(), a.data());
    ops::to_host(pooled[i].view(), b.data());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("compute pool: parallel_for covers the range once in contiguous parts, on several threads, and rethrows") {
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    auto caller = mlp();
    ComputePool pool(threads, *caller, mlp);
    for (size_t n : {size_t{0}, size_t{5}, size_t{99}, size_t{100}, size_t{1000}, size_t{100003}}) {
      CAPTURE(n);
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> parts = 0;
      pool.parallel_for(n, 100, [&](size_t lo, size_t hi) {
        CHECK(lo < hi);
        ++parts;
        for (size_t i = lo; i < hi; ++i) ++hits[i];
      });
      for (auto& h : hits) CHECK(h == 1);
      // At most one part per thread, and one part below twice the grain.
      CHECK(parts == static_cast<int>(std::min<size_t>(std::max<size_t>(n / 100, n ? 1 : 0), static_cast<size_t>(threads))));
    }
    // Parts run at once when there are threads: part 0 waits here until another part has started.
    if (threads > 1) {
      std::atomic<int> started = 0;
      pool.parallel_for(1000, 100, [&](size_t lo, size_t) {
        ++started;
        if (lo == 0)
          for (int i = 0; i < 2000 && started < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      });
      CHECK(started == threads);
    }
    // An exception in any part reaches the caller once every part has finished.
    std::atomic<int> finished = 0;
    CHECK_THROWS_AS(pool.parallel_for(1000, 100,
                                      [&](size_t lo, size_t) {
                                        if (lo == 0 && threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
                                        if (lo != 0 || threads == 1) throw std::runtime_error("part failed");
                                        ++finished;
                                      }),
                    std::runtime_error);
    if (threads > 1) CHECK(finished == 1);
  }
}

TEST_CASE("compute pool: a task's exception is rethrown by its await, once") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    auto caller = mlp();
    ComputePool pool(threads, *caller, mlp);
    auto bad = pool.submit([](Model&) { throw std::runtime_error("boom"); });
    auto good = pool.submit([](Model&) {});
    pool.drain();  // keeps the exception for the task's own await
    CHECK_THROWS_WITH_AS(pool.await(bad), "boom", std::runtime_error);
    CHECK_NOTHROW(pool.await(bad));
    CHECK_NOTHROW(pool.await(good));
  }
}

TEST_CASE("compute pool: shutdown lets running tasks finish and drops queued ones, and a dropped task's await runs it") {
  auto caller = mlp();
  ComputePool pool(2, *caller, mlp);
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> ran{0};
  auto first = pool.submit([&](Model&) {
    started = true;
    while (!release) std::this_thread::yield();
    ++ran;
  });
  while (!started) std::this_thread::yield();  // the one background thread is busy with it
  auto queued = pool.submit([&](Model&) { ++ran; });
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release = true;
  });
  pool.shutdown();  // waits for `first`
  t.join();
  CHECK(ran == 1);
  pool.await(queued);  // never started: runs here
  CHECK(ran == 2);
  pool.shutdown();  // idempotent
}

}  // namespace test_compute_pool_cpp
