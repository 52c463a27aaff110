// SIGINT and SIGTERM without asynchronous signal handlers (docs/robustness.md, "Signals").
//
// Why not a handler: oneDNN 2.6's JIT sgemm kernels (Debian's libdnnl2) keep data below the stack
// pointer, beyond the 128-byte red zone. A signal delivered while one runs has its frame written
// there by the kernel and the kernel's data is clobbered: heap corruption and an abort (exit 134)
// seconds later. Measured: a loop of dnnl_sgemm(N, T, 16, 10, 256) interrupted by a timer signal
// every 37 us aborts within a second on one thread; with the handler on an alternate stack it runs
// clean (tests/cli/test_signals.cpp keeps the stress test).
//
// So main() blocks SIGINT and SIGTERM in every thread before any other thread exists, and one
// thread takes them synchronously with sigwait(): no code is ever interrupted. The first signal is
// recorded (stop_signal()) when a command asked for a graceful stop (arm_graceful_stop: `run`,
// `sweep`); otherwise, and for a second signal, the process dies of that signal at once, exactly
// as with the default disposition.
#pragma once
#include <atomic>
#include <chrono>

namespace dtsim::cli {

// Blocks SIGINT and SIGTERM in the calling thread (and every thread created after it) and starts
// the receiving thread. Call first thing in main().
void start_signal_thread();
// From now on the first SIGINT/SIGTERM is recorded instead of killing the process.
void arm_graceful_stop();
// The first signal received after arm_graceful_stop() (0: none): what RunHooks::interrupt reads.
const std::atomic<int>& stop_signal();
// Sleeps up to `d`, or less when a stop signal is recorded meanwhile (at once if one already was):
// whether one was. For loops that must act within milliseconds of the signal (the MPI sweep's rank
// 0: mpirun's SIGKILL can follow its SIGTERM by tens of milliseconds).
bool wait_for_stop(std::chrono::microseconds d);
// In a forked child before exec: unblock the signals again (a mask survives exec).
void unblock_stop_signals_in_child();

}  // namespace dtsim::cli
