#include "tools/dtsim/signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/io.hpp"

namespace dtsim::cli {
namespace {

std::atomic<int> g_stop{0};
std::atomic<bool> g_graceful{false};
std::mutex g_wake_mutex;  // wait_for_stop's sleepers, woken by the receiving thread
std::condition_variable g_wake;

sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

// Dies of `sig` as the default disposition would (the exit status then says which signal).
[[noreturn]] void die_of(int sig) {
  io::end_writes_for_exit();  // a write in progress finishes first: no <file>.tmp.<pid> is left
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(sig);  // this thread has it unblocked: the process ends here
  for (;;) pause();
}

}  // namespace

void start_signal_thread() {
  const sigset_t set = stop_set();
  // A background job of a non-interactive shell starts with SIGINT ignored, and an ignored signal
  // is discarded before sigwait can see it: take both signals over (dtsim always handles them).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGINT, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      int none = 0;
      if (g_graceful.load() && g_stop.compare_exchange_strong(none, sig)) {  // the first: recorded
        { const std::lock_guard<std::mutex> lock(g_wake_mutex); }  // a sleeper between its check and its wait sees it
        g_wake.notify_all();
        continue;
      }
      die_of(sig);  // not armed, or the second signal: at once
    }
  }).detach();
}

void arm_graceful_stop() { g_graceful.store(true); }

const std::atomic<int>& stop_signal() { return g_stop; }

bool wait_for_stop(std::chrono::microseconds d) {
  std::unique_lock<std::mutex> lock(g_wake_mutex);
  return g_wake.wait_for(lock, d, [] { return g_stop.load() != 0; });
}

void unblock_stop_signals_in_child() {
  const sigset_t set = stop_set();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace dtsim::cli
