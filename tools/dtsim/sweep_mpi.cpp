// dtsim sweep over MPI (docs/sweeps.md, "Running a study on a cluster"):
//   mpirun -np R dtsim sweep STUDY.json [--jobs J] [--root-jobs K] [--rank-timeout S]
// Every rank reads and validates the study. Rank 0 schedules: it hands out the cells that are not
// yet complete, largest expected cost first (Run::cost), to whichever rank has a free slot; each
// other rank runs up to J cells at a time as child `dtsim run` processes, exactly as a local sweep
// (tools/dtsim/sweep_cells.cpp), and sends each outcome (with its summary.json) back. Rank 0 alone
// writes results.csv and draws the plots. The run directories are the local sweep's, so the output
// directory must be on a file system every rank sees.
//
// Failures: every rank sends a heartbeat each second; a rank silent for --rank-timeout seconds is
// dead and its cells go back to the queue (OpenMPI keeps the other ranks only with `mpirun
// --enable-recovery`; srun keeps them unless KillOnBadExit). SIGINT/SIGTERM to mpirun: Open MPI 4's
// mpirun sends SIGCONT to every rank, a second later SIGTERM, and SIGKILL as soon as one rank exits
// (or a second after the SIGTERM). So rank 0 wakes at once and writes results.csv; the ranks stop
// their runs, report them and say bye, then wait for rank 0's release before they exit; rank 0
// writes results.csv again with every run's final state (a run that completed meanwhile is
// complete, from its summary.json) and releases them. The sweep resumes like a local one. A rank
// stopped alone reports its cells as interrupted and rank 0 re-queues them.
//
// Messages are short strings (tags below); only rank 0 talks to the others. Nothing blocks on a
// rank that may be dead: sends are MPI_Isend, receives follow MPI_Iprobe.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "tools/dtsim/sweep.hpp"

namespace dtsim::sweep {
namespace {

// The size and rank of the job this process was started in by an MPI launcher (mpirun, mpiexec,
// srun), from the environment; {0, 0} when there is none. Read before MPI_Init, so that a plain
// `dtsim sweep` never initialises MPI.
std::pair<int, int> launcher_size_rank() {
  auto get = [](const char* a, const char* b) -> int {
    for (const char* k : {a, b})
      if (k)
        if (const char* v = std::getenv(k)) return std::atoi(v);
    return -1;
  };
  int size = get("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
  int rank = get("OMPI_COMM_WORLD_RANK", "PMI_RANK");
  if (size < 0 && std::getenv("PMIX_RANK") && std::getenv("SLURM_STEP_NUM_TASKS")) {  // srun --mpi=pmix
    size = get("SLURM_STEP_NUM_TASKS", nullptr);
    rank = get("PMIX_RANK", nullptr);
  }
  if (size < 0) return {0, 0};
  return {size, rank < 0 ? 0 : rank};
}

}  // namespace

std::optional<int> single_process_under_launcher(const char* what) {
  const auto [size, rank] = launcher_size_rank();
  if (size <= 1) return std::nullopt;
  if (rank != 0) return 0;
  std::fprintf(stderr, "warning: %s runs in one process: rank 0 does it, ranks 1 to %d of the MPI launcher do nothing\n",
               what, size - 1);
  return std::nullopt;
}

}  // namespace dtsim::sweep

#ifndef DTSIM_HAVE_MPI

std::optional<int> dtsim::sweep::mpi_sweep(const Options& o) {
  const auto [size, rank] = launcher_size_rank();
  if (size <= 1) return std::nullopt;
  if (o.dry) return rank == 0 ? std::nullopt : std::optional<int>(0);
  if (rank == 0)
    std::fprintf(stderr,
                 "error: started by an MPI launcher with %d ranks, but this dtsim was built without MPI "
                 "(DTSIM_MPI=OFF, or no MPI found: install libopenmpi-dev and rebuild); every rank would run "
                 "every run: run it without mpirun\n",
                 size);
  return 2;
}

#else

#include <dlfcn.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "tools/dtsim/signals.hpp"

namespace dtsim::sweep {
namespace {

// MPI_Finalize, then this rank's exit code. Under AddressSanitizer (make test-sanitize) the rank
// exits here, without the exit-time leak check: Open MPI keeps allocations past MPI_Finalize, made
// in components it has unloaded (unnamed frames that no suppression can match). A rank only
// schedules; the runs it starts are `dtsim run` processes, checked in full.
int finalize(int rc) {
  MPI_Finalize();
#if defined(__SANITIZE_ADDRESS__)
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(rc);
#endif
  return rc;
}

using Clock = std::chrono::steady_clock;

enum Tag : int {
  kHello = 1,      // rank -> 0: "<jobs>", once at the start
  kHeartbeat = 2,  // both ways, every second
  kResult = 3,     // rank -> 0: {"cell", "state", "error", "wall_s", "summary"}
  kBye = 4,        // rank -> 0: its runs are stopped and reported (stopped by a signal or by kStop)
  kAssign = 5,     // 0 -> rank: "<cell>"
  kStop = 6,       // 0 -> rank: stop the running cells, report them, say bye (interrupted, or declared dead)
  kFinish = 7,     // 0 -> rank: leave ("lost": without MPI_Finalize); after every cell, or after a bye
};
constexpr double kHeartbeatS = 1.0;
// After a stop signal: how long a rank lets its runs stop (SIGTERM, then SIGKILL), and how long
// rank 0 collects the ranks' last reports. Both inside mpirun's second between SIGTERM and SIGKILL.
constexpr double kStopGraceS = 0.5;
constexpr double kCollectS = 0.8;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Sends that never block: each stays here until MPI says it is complete (a dead peer's, forever).
class Outbox {
 public:
  void send(int to, int tag, std::string text) {
    pending_.push_back({std::move(text), MPI_REQUEST_NULL});
    auto& p = pending_.back();
    MPI_Isend(p.text.data(), static_cast<int>(p.text.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD, &p.req);
    progress();
  }
  void progress() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      if (MPI_Test(&it->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done) it = pending_.erase(it);
      else ++it;
    }
  }
  // Gives the sends a little time to leave (a rank about to exit), then lets go of the rest.
  void flush(double seconds) {
    const auto t = Clock::now();
    while (!pending_.empty() && since(t) < seconds) {
      progress();
      usleep(1000);
    }
    for (auto& p : pending_) MPI_Request_free(&p.req);
    pending_.clear();
  }

 private:
  struct Pending {
    std::string text;
    MPI_Request req;
  };
  std::list<Pending> pending_;
};

struct Message {
  int from, tag;
  std::string text;
};

std::optional<Message> receive() {
  int flag = 0;
  MPI_Status st;
  if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS || !flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&st, MPI_CHAR, &count);
  Message m{st.MPI_SOURCE, st.MPI_TAG, std::string(static_cast<size_t>(std::max(0, count)), '\0')};
  MPI_Recv(m.text.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return m;
}

const char* state_name(Outcome::State s) {
  switch (s) {
    case Outcome::State::Done: return "done";
    case Outcome::State::Failed: return "failed";
    case Outcome::State::Interrupted: return "interrupted";
    default: return "not_run";
  }
}

std::string encode(size_t cell, const Outcome& o) {
  return json{{"cell", cell}, {"state", state_name(o.state)}, {"error", o.error}, {"wall_s", o.wall_s}, {"summary", o.summary}}
      .dump();
}

std::pair<size_t, Outcome> decode(const std::string& text) {
  const json j = json::parse(text);
  Outcome o;
  const std::string s = j.at("state").get<std::string>();
  o.state = s == "done" ? Outcome::State::Done : s == "failed" ? Outcome::State::Failed : Outcome::State::Interrupted;
  o.error = j.at("error").get<std::string>();
  o.wall_s = j.at("wall_s").get<double>();
  o.summary = j.at("summary").get<std::string>();
  return {j.at("cell").get<size_t>(), std::move(o)};
}

// ------------------------------------------------------------------ ranks 1..R-1
int worker(const Options& o, const Study& st) {
  Outbox out;
  CellRunner runner(st);
  out.send(0, kHello, std::to_string(o.jobs));
  auto beat = Clock::now(), heard = Clock::now();
  auto report = [&](std::vector<std::pair<size_t, Outcome>> ended) {
    for (auto& [cell, oc] : ended) out.send(0, kResult, encode(cell, oc));
  };
  // Stops and reports the runs, says bye, and waits for rank 0's release before exiting: under
  // mpirun this rank's exit brings SIGKILL to every rank, rank 0 included, which may still be
  // writing results.csv. Rank 0 may be gone: the wait is bounded, and there is no MPI_Finalize.
  auto leave = [&](int rc) {
    const auto t = Clock::now();
    report(runner.stop_all(kStopGraceS));
    out.send(0, kBye, "");
    while (since(t) < kCollectS + 0.1) {
      while (auto m = receive())
        if (m->tag == kFinish) {
          out.flush(0.1);
          std::_Exit(rc);
        }
      out.progress();
      usleep(2000);
    }
    out.flush(0.1);
    std::_Exit(rc);
  };
  while (true) {
    while (auto m = receive()) {
      heard = Clock::now();
      if (m->tag == kAssign) {
        runner.start(static_cast<size_t>(std::stoul(m->text)));
      } else if (m->tag == kStop) {
        leave(0);
      } else if (m->tag == kFinish) {
        out.flush(2.0);
        // MPI_Finalize waits for every rank, a lost one too (forever): rank 0 says when to skip it.
        if (m->text == "lost") std::_Exit(0);
        return finalize(0);
      }
    }
    report(runner.poll(20));
    if (stop_requested()) leave(128 + stop_requested());  // this rank alone, or all of them (mpirun's SIGTERM)
    if (since(beat) >= kHeartbeatS) {
      out.send(0, kHeartbeat, "");
      beat = Clock::now();
    }
    if (since(heard) > o.rank_timeout_s) {  // rank 0 is gone: nobody will collect these results
      std::fprintf(stderr, "error: sweep: rank 0 silent for %.0f s: stopping\n", since(heard));
      runner.stop_all(3.0);
      std::_Exit(1);
    }
    out.progress();
  }
}

// ------------------------------------------------------------------ rank 0
struct Rank {
  bool alive = false, gone = false;  // gone: dead, left or finished
  long jobs = 0;
  std::set<size_t> cells;  // assigned, not yet reported
  Clock::time_point heard;
};

int root(const Options& o, Study& st, int size) {
  const size_t n = st.runs.size();
  std::vector<Outcome> outcomes(n);
  size_t skipped = 0;
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    if (already_done(st.runs[i])) {
      outcomes[i].state = Outcome::State::Skipped;
      ++skipped;
    } else {
      todo.push_back(i);
    }
  }
  // Largest expected cost first; the study's order among equals.
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) { return st.runs[a].cost > st.runs[b].cost; });
  std::deque<size_t> queue(todo.begin(), todo.end());
  auto requeue = [&](size_t cell) {  // back in cost order
    auto at = std::find_if(queue.begin(), queue.end(), [&](size_t c) { return st.runs[c].cost < st.runs[cell].cost; });
    queue.insert(at, cell);
  };

  long root_jobs = o.root_jobs;
  std::fputs(study_warnings_text(st).c_str(), stderr);  // degenerate settings, also with --quiet (as `dtsim run`)
  if (!o.quiet)
    std::fprintf(stderr, "sweep %s: %zu runs (%zu already complete) over %d MPI ranks, %ld at a time per rank%s, into %s/\n",
                 st.name.c_str(), n, skipped, size, o.jobs,
                 root_jobs ? (", " + std::to_string(root_jobs) + " on rank 0").c_str() : " (rank 0 schedules)", st.out.c_str());
  std::vector<Rank> ranks(static_cast<size_t>(size));
  for (auto& r : ranks) r.heard = Clock::now();
  Outbox out;
  CellRunner runner(st);
  Progress progress(st, o.quiet, skipped, o.jobs * std::max(1, size - 1) + root_jobs);
  size_t failed = 0, requeued = 0;
  std::vector<int> dead;
  auto record = [&](size_t cell, Outcome oc) {
    failed += oc.state == Outcome::State::Failed;
    outcomes[cell] = std::move(oc);
    progress.report(cell, outcomes[cell]);
  };
  auto lose = [&](int r, const char* why) {  // a rank is gone: its cells go back to the queue
    Rank& k = ranks[static_cast<size_t>(r)];
    k.gone = true;
    for (size_t c : k.cells) {
      outcomes[c] = Outcome{};
      requeue(c);
      ++requeued;
    }
    if (!k.cells.empty() || std::string(why) != "left") {
      progress.clear();
      std::fprintf(stderr, "sweep: MPI rank %d %s; %zu of its runs re-queued\n", r, why, k.cells.size());
    }
    k.cells.clear();
    dead.push_back(r);
  };
  auto in_flight = [&] {
    size_t f = runner.running();
    for (const auto& k : ranks) f += k.gone ? 0 : k.cells.size();
    return f;
  };
  auto beat = Clock::now();

  while (!stop_requested()) {
    while (auto m = receive()) {
      Rank& k = ranks[static_cast<size_t>(m->from)];
      if (k.gone) continue;  // declared dead: what it still says is ignored
      k.heard = Clock::now();
      if (m->tag == kHello) {
        k.alive = true;
        k.jobs = std::max(1L, std::atol(m->text.c_str()));
      } else if (m->tag == kResult) {
        auto [cell, oc] = decode(m->text);
        if (!k.cells.erase(cell)) continue;
        if (oc.state == Outcome::State::Interrupted) {  // that rank was stopped on its own
          requeue(cell);
          ++requeued;
        } else {
          record(cell, std::move(oc));
        }
      } else if (m->tag == kBye) {
        lose(m->from, "left");
        out.send(m->from, kFinish, "lost");  // its release
      }
    }
    for (int r = 1; r < size; ++r) {
      Rank& k = ranks[static_cast<size_t>(r)];
      if (!k.gone && since(k.heard) > o.rank_timeout_s) {
        out.send(r, kStop, "");  // in case it is only slow: it must not run these cells twice
        out.send(r, kFinish, "lost");
        lose(r, ("silent for " + std::to_string(static_cast<int>(since(k.heard))) + " s (dead)").c_str());
      }
    }
    // Every other rank gone: rank 0 runs the rest itself.
    if (root_jobs == 0 && !queue.empty() && std::all_of(ranks.begin() + 1, ranks.end(), [](const Rank& k) { return k.gone; })) {
      root_jobs = o.jobs;
      std::fprintf(stderr, "sweep: no MPI rank left; rank 0 runs the remaining %zu runs itself\n", queue.size());
    }
    for (int r = 1; r < size && !queue.empty(); ++r) {
      Rank& k = ranks[static_cast<size_t>(r)];
      while (k.alive && !k.gone && static_cast<long>(k.cells.size()) < k.jobs && !queue.empty()) {
        const size_t c = queue.front();
        queue.pop_front();
        k.cells.insert(c);
        out.send(r, kAssign, std::to_string(c));
      }
    }
    while (static_cast<long>(runner.running()) < root_jobs && !queue.empty()) {
      runner.start(queue.front());
      queue.pop_front();
    }
    for (auto& [cell, oc] : runner.poll(0)) record(cell, std::move(oc));
    if (queue.empty() && in_flight() == 0) break;
    if (since(beat) >= kHeartbeatS) {
      for (int r = 1; r < size; ++r)
        if (!ranks[static_cast<size_t>(r)].gone) out.send(r, kHeartbeat, "");
      beat = Clock::now();
    }
    progress.status(in_flight(), failed);
    out.progress();
    cli::wait_for_stop(std::chrono::milliseconds(20));  // a signal ends the wait at once
  }

  if (stop_requested()) {
    // mpirun's SIGKILL may come tens of milliseconds after its SIGTERM (header): results.csv at
    // once; then the ranks stop their runs, report them and say bye; then results.csv again, and
    // their release. A run not reported that is complete on disk (it ended while its rank
    // stopped) is complete: results.csv says what a resumed sweep will find.
    const auto t = Clock::now();
    progress.clear();
    std::vector<size_t> open = runner.running_cells();  // assigned or running, not reported
    for (const auto& k : ranks)
      if (!k.gone) open.insert(open.end(), k.cells.begin(), k.cells.end());
    auto settle = [&] {
      for (size_t c : open)
        if (outcomes[c].state != Outcome::State::Done && outcomes[c].state != Outcome::State::Failed)
          outcomes[c] = already_done(st.runs[c]) ? Outcome{Outcome::State::Done, "", 0, ""}
                                                 : Outcome{Outcome::State::Interrupted, "interrupted", 0, ""};
    };
    settle();
    std::string csv = write_results(st, outcomes);
    std::fprintf(stderr, "sweep: %s: stopping the runs of %d ranks\n", stop_requested() == SIGINT ? "interrupted" : "terminated",
                 size);
    std::vector<int> waiting;  // ranks whose bye has not come
    for (int r = 1; r < size; ++r)
      if (!ranks[static_cast<size_t>(r)].gone) {
        out.send(r, kStop, "");
        waiting.push_back(r);
      }
    for (auto& [cell, oc] : runner.stop_all(kStopGraceS))
      if (oc.state != Outcome::State::Interrupted) record(cell, std::move(oc));
    while (!waiting.empty() && since(t) < kCollectS) {
      while (auto m = receive()) {
        Rank& k = ranks[static_cast<size_t>(m->from)];
        if (k.gone) continue;
        if (m->tag == kResult) {
          auto [cell, oc] = decode(m->text);
          if (k.cells.erase(cell) && oc.state != Outcome::State::Interrupted) record(cell, std::move(oc));
        } else if (m->tag == kBye) {
          std::erase(waiting, m->from);
        }
      }
      out.progress();
      usleep(2000);
    }
    settle();
    csv = write_results(st, outcomes);
    for (int r = 1; r < size; ++r)
      if (!ranks[static_cast<size_t>(r)].gone) out.send(r, kFinish, "lost");
    print_final_line(st, outcomes, csv,
                     waiting.empty() ? "" : ", " + std::to_string(waiting.size()) + " MPI rank(s) did not report in time");
    out.flush(0.2);
    std::fflush(stderr);
    std::_Exit(128 + stop_requested());  // no MPI_Finalize: the other ranks are going away
  }
  progress.clear();
  for (int r = 1; r < size; ++r)
    if (!ranks[static_cast<size_t>(r)].gone) out.send(r, kFinish, dead.empty() ? "" : "lost");
  const std::string csv = write_results(st, outcomes);
  std::string note;
  if (!dead.empty()) {
    note = ", " + std::to_string(requeued) + " re-queued from " + std::to_string(dead.size()) + " lost MPI rank" +
           (dead.size() > 1 ? "s (" : " (");
    for (size_t i = 0; i < dead.size(); ++i) note += (i ? ", " : "") + std::to_string(dead[i]);
    note += ")";
  }
  print_final_line(st, outcomes, csv, note);
  out.flush(2.0);
  int rc = failed ? 1 : 0;
  if (o.plot && run_plots(st, o.quiet) != 0) rc = 1;
  if (!dead.empty()) {  // MPI_Finalize would wait for the lost ranks forever
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(rc);
  }
  return finalize(rc);
}

}  // namespace

std::optional<int> mpi_sweep(const Options& o) {
  const auto [launched, launched_rank] = launcher_size_rank();
  if (launched <= 1) return std::nullopt;  // no launcher, or one rank: the local sweep
  if (o.dry) return launched_rank == 0 ? std::nullopt : std::optional<int>(0);
  // libsimgrid.so defines the MPI functions too (SMPI): they must come from the real MPI library
  // (CMakeLists.txt links it first), or MPI_Init aborts with SimGrid's "use smpirun".
  Dl_info lib{};
  if (::dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &lib) && lib.dli_fname && std::strstr(lib.dli_fname, "simgrid")) {
    if (launched_rank == 0)
      std::fprintf(stderr, "error: sweep: MPI_Init resolves to %s (SimGrid's SMPI), not to the MPI library: link MPI before "
                           "SimGrid (CMakeLists.txt)\n", lib.dli_fname);
    return 1;
  }
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int size = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // Every rank validates the study (the same file on a shared file system). Rank 0 reports a bad
  // study; another rank reports only what rank 0 did not see (e.g. a file it cannot read).
  std::optional<Study> st;
  std::string error;
  try {
    st = read_study(o.study, o.out, o.sets);
  } catch (const InputError& e) {
    error = e.what();
  }
  int bad = error.empty() ? 0 : 1, any_bad = 0, root_bad = bad;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Bcast(&root_bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (any_bad) {
    if (bad && (rank == 0 || !root_bad))
      std::fprintf(stderr, "error: %s%s\n", rank == 0 ? "" : ("MPI rank " + std::to_string(rank) + ": ").c_str(), error.c_str());
    return finalize(2);
  }
  if (rank == 0) write_base(*st);
  MPI_Barrier(MPI_COMM_WORLD);  // the inline base exists before any rank runs a cell
  dtsim::cli::arm_graceful_stop();
  return rank == 0 ? root(o, *st, size) : worker(o, *st);
}

}  // namespace dtsim::sweep

#endif  // DTSIM_HAVE_MPI
