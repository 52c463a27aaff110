// dtsim sweep: running cells as child `dtsim run` processes, and which cells are already complete
// (docs/sweeps.md, "Resuming, failures, Ctrl-C").
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/units.hpp"
#include "tools/dtsim/signals.hpp"
#include "tools/dtsim/sweep.hpp"

namespace fs = std::filesystem;

namespace dtsim::sweep {
namespace {

using Clock = std::chrono::steady_clock;

pid_t launch(const Run& run, const std::string& base_file) {
  std::error_code ec;
  fs::create_directories(run.dir, ec);
  if (ec) throw RuntimeError("cannot create " + run.dir + ": " + ec.message());
  std::vector<std::string> args = {"dtsim", "run", base_file, "--out", run.dir};
  for (const auto& s : run.sets) args.insert(args.end(), {"--set", s});
  args.push_back("--quiet");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = (fs::path(run.dir) / "dtsim.log").string();
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeError("cannot write " + log + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    if (null_fd >= 0) ::close(null_fd);
    throw RuntimeError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    dtsim::cli::unblock_stop_signals_in_child();  // the run takes its own signals
    ::setpgid(0, 0);                      // a terminal's Ctrl-C reaches the sweep only
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);   // and a killed sweep takes its runs with it
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execv("/proc/self/exe", argv.data());
    const char* msg = "error: sweep: cannot execute /proc/self/exe\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, std::strlen(msg));
    ::_exit(127);
  }
  ::close(fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

}  // namespace

std::vector<std::string> tail_lines(const std::string& file, size_t n) {
  std::string text;
  try {
    text = io::read_file(file);
  } catch (const std::exception&) {
    return {};
  }
  std::vector<std::string> lines;
  size_t s = 0;
  while (s < text.size()) {
    size_t e = text.find('\n', s);
    if (e == std::string::npos) e = text.size();
    std::string l = text.substr(s, e - s);
    // a progress line overwritten with \r: keep what was last shown
    if (auto cr = l.rfind('\r'); cr != std::string::npos) l = l.substr(cr + 1);
    if (!l.empty()) lines.push_back(l);
    s = e + 1;
  }
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<long>(n));
  return lines;
}

// A run is complete when its summary.json has a final status (completed, time_limit, diverged:
// what the same config would give again) and its config is the one this study would run. An
// interrupted or wall-limited run (its outputs are complete but stop at a wall-clock-dependent
// point) runs again.
bool already_done(const Run& run) {
  const fs::path d(run.dir);
  if (!io::file_exists((d / "summary.json").string())) return false;
  try {
    const json summary = json::parse(io::read_file((d / "summary.json").string()));
    const std::string status = summary.value("status", "");
    if (status.empty() || status == "interrupted" || status == "wall_limit") return false;
    const std::string resolved = io::read_file((d / "config.resolved.json").string());
    return resolved.size() == run.resolved_size && dtsim::fnv1a(std::string_view(resolved)) == run.resolved_hash;
  } catch (const std::exception&) {
    return false;
  }
}

int stop_requested() { return dtsim::cli::stop_signal().load(); }

// ------------------------------------------------------------------ CellRunner
void CellRunner::start(size_t cell) {
  std::error_code ignored;
  fs::remove(fs::path(st_.runs[cell].dir) / kCellFile, ignored);  // an earlier attempt's record
  running_.push_back({launch(st_.runs[cell], st_.base_file), cell, Clock::now()});
}

std::vector<size_t> CellRunner::running_cells() const {
  std::vector<size_t> v;
  for (const auto& c : running_) v.push_back(c.cell);
  return v;
}

std::optional<std::pair<size_t, Outcome>> CellRunner::reap(pid_t pid, int status) {
  auto it = std::find_if(running_.begin(), running_.end(), [&](const Child& c) { return c.pid == pid; });
  if (it == running_.end()) return std::nullopt;
  Outcome o;
  o.wall_s = std::chrono::duration<double>(Clock::now() - it->start).count();
  const Run& run = st_.runs[it->cell];
  const std::string summary = (fs::path(run.dir) / "summary.json").string();
  // Done: exit 0, or a final status the same config gives again (already_done) whatever the exit
  // code: a run that diverged (exit 3), or one a signal reached after its last event (130/143
  // with "completed": docs/robustness.md), is what a rerun would skip.
  const bool ok = (WIFEXITED(status) && WEXITSTATUS(status) == 0 && io::file_exists(summary)) || already_done(run);
  if (ok) {
    o.state = Outcome::State::Done;
    try {
      o.summary = io::read_file(summary);
    } catch (const std::exception&) {
    }
  } else if (stopping_ || stop_requested()) {
    o.state = Outcome::State::Interrupted;
    o.error = "interrupted";
  } else {
    o.state = Outcome::State::Failed;
    std::string why = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                        : "killed by signal " + std::to_string(WTERMSIG(status));
    const auto tail = tail_lines((fs::path(run.dir) / "dtsim.log").string(), 1);
    if (!tail.empty()) why += ": " + tail.back();
    o.error = why;
  }
  if (o.state != Outcome::State::Done) {  // for --collect (kCellFile)
    try {
      io::atomic_write((fs::path(run.dir) / kCellFile).string(),
                       json{{"state", o.state == Outcome::State::Failed ? "failed" : "interrupted"}, {"error", o.error}, {"wall_s", o.wall_s}}
                               .dump(2) +
                           "\n");
    } catch (const std::exception&) {  // the run directory is gone: nothing to collect there
    }
  }
  const size_t cell = it->cell;
  running_.erase(it);
  return std::make_pair(cell, std::move(o));
}

std::vector<std::pair<size_t, Outcome>> CellRunner::poll(int wait_ms) {
  std::vector<std::pair<size_t, Outcome>> ended;
  for (const pid_t pid : [&] {
         std::vector<pid_t> p;
         for (const auto& c : running_) p.push_back(c.pid);
         return p;
       }()) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      if (auto r = reap(pid, status)) ended.push_back(std::move(*r));
  }
  if (ended.empty() && wait_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  return ended;
}

std::vector<std::pair<size_t, Outcome>> CellRunner::stop_all(double grace_s) {
  stopping_ = true;
  for (const auto& c : running_) ::kill(-c.pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::duration<double>(grace_s);
  std::vector<std::pair<size_t, Outcome>> ended;
  while (!running_.empty()) {
    for (auto& e : poll(20)) ended.push_back(std::move(e));
    if (Clock::now() > deadline)
      for (const auto& c : running_) ::kill(-c.pid, SIGKILL);
  }
  stopping_ = false;
  return ended;
}

// ------------------------------------------------------------------ Progress
Progress::Progress(const Study& st, bool quiet, size_t skipped, long jobs)
    : st_(st), quiet_(quiet), tty_(!quiet && ::isatty(STDERR_FILENO)), skipped_(skipped), jobs_(std::max(1L, jobs)) {}

void Progress::status(size_t running, size_t failed) {
  if (!tty_) return;
  const size_t n = st_.runs.size(), todo = n - skipped_;
  std::string eta = "?";
  if (finished_ > 0) {
    const size_t left = todo > finished_ ? todo - finished_ : 0;
    const double per = wall_sum_ / static_cast<double>(finished_);
    eta = units::format_duration(per * static_cast<double>(left) / static_cast<double>(jobs_));
  }
  std::fprintf(stderr, "\r\033[K  %zu/%zu runs done, %zu running, %zu failed, elapsed %s, ETA %s", finished_ + skipped_, n,
               running, failed, units::format_duration(std::chrono::duration<double>(Clock::now() - start_).count()).c_str(),
               eta.c_str());
  std::fflush(stderr);
}

void Progress::clear() {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

void Progress::report(size_t cell, const Outcome& o) {
  if (o.state == Outcome::State::Interrupted) return;
  ++finished_;
  wall_sum_ += o.wall_s;
  const Run& run = st_.runs[cell];
  if (quiet_ && o.state != Outcome::State::Failed) return;
  clear();
  char head[64];
  std::snprintf(head, sizeof head, "[%zu/%zu]", finished_ + skipped_, st_.runs.size());
  if (o.state == Outcome::State::Failed) {
    std::fprintf(stderr, "%s FAILED %s (%s): %s\n", head, run.name.c_str(), run.label().c_str(), o.error.c_str());
    for (const auto& l : tail_lines((fs::path(run.dir) / "dtsim.log").string(), 5)) std::fprintf(stderr, "    | %s\n", l.c_str());
  } else {
    const bool diverged = o.summary.find("\"status\": \"diverged\"") != std::string::npos;
    std::fprintf(stderr, "%s %s %s (%s)\n", head, diverged ? "diverged" : "done", run.name.c_str(),
                 units::format_duration(o.wall_s).c_str());
  }
}

}  // namespace dtsim::sweep
