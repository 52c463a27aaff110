// dtsim sweep's parts (docs/sweeps.md):
//   sweep_study.cpp    STUDY.json -> the list of runs (cells), each validated
//   sweep_cells.cpp    running cells as child `dtsim run` processes; which are already complete
//   sweep_results.cpp  results.csv and the plots
//   sweep.cpp          the command: options, the local sweep, --dry-run
//   sweep_mpi.cpp      the same study over MPI ranks (mpirun), when built with MPI
//   sweep_slurm.cpp    --slurm (a job array script), --cell I, --collect
#pragma once
#include <sys/types.h>

#include <chrono>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json_reader.hpp"

namespace dtsim::sweep {

// ------------------------------------------------------------------ the study
struct Axis {
  std::vector<std::string> keys;          // one key, or a zip group
  std::vector<std::vector<json>> values;  // values[i][k]: the i-th point of key k
};

// One cell of the study: one `dtsim run`.
struct Run {
  std::vector<std::pair<std::string, json>> assign;  // varied key -> value (vary order)
  std::optional<uint64_t> seed;                      // set when repeat > 1
  std::string name;                                  // directory name
  std::vector<std::string> sets;                     // --set arguments for `dtsim run`
  // config.resolved.json the run must produce, by its size and FNV-1a hash (already_done), not its
  // text: a study of 10^6 runs kept ~4 GB of them.
  uint64_t resolved_hash = 0;
  size_t resolved_size = 0;
  // Its resolved config's values (flattened: "platform.workers.count") that are not the first run's,
  // nullopt where it lacks a key the first run has: the input of results.csv's config.* columns.
  std::vector<std::pair<std::string, std::optional<std::string>>> config_diff;
  std::string dir;                                   // <out>/runs/<name>
  double cost = 0;  // expected cost, for scheduling largest first: sample budget x workers
  std::vector<std::string> warnings;  // its config's, "<file>: <json.path>: <reason>" (the study's file for an inline base)
  std::string label() const;  // "algorithm.name=ssgd, seed=2"
};

struct Study {
  std::string file, dir, name, out;
  std::string base_file;          // what the children run (absolute)
  json base_doc;                  // set for an inline base: written to base_file before running
  std::vector<std::string> keys;  // varied keys, in the study's order
  std::vector<Axis> axes;
  int64_t repeat = 1;
  std::vector<std::string> plot_args;
  std::vector<Run> runs;
  std::map<std::string, std::string> config0;  // the first run's resolved config, flattened (Run::config_diff)
  std::vector<std::string> config_extra;       // keys the first run lacks, in the order runs first have them
};

// A resolved config's values by dotted key; a list is one value (compact JSON), a string as is.
std::map<std::string, std::string> flatten_config(const json& resolved);

// Reads and validates STUDY.json: every run's config goes through `dtsim run`'s loader with its
// overrides (InputError naming the study and the run otherwise). `out_override`: --out.
Study read_study(const std::string& file, const std::string& out_override, const std::vector<std::string>& base_sets);
// Writes the inline base (if any) to base_file, where the children read it.
void write_base(const Study& st);
// The runs' warnings, each distinct one once: "warning: <text>", followed by " (runs I, J of N)"
// (their --cell indices) unless every run has it; "" when none has a warning.
std::string study_warnings_text(const Study& st);
// How many distinct warnings study_warnings_text prints.
size_t study_warnings_count(const Study& st);

// ------------------------------------------------------------------ running cells
// The first SIGINT/SIGTERM (tools/dtsim/signals.hpp), 0 while none came.
int stop_requested();

struct Outcome {
  enum class State { NotRun, Skipped, Done, Failed, Interrupted } state = State::NotRun;
  std::string error;    // one line, for results.csv
  double wall_s = 0;
  std::string summary;  // summary.json's text (Done, Skipped), when known; else read from the run directory
};

// A cell is complete when its summary.json has a final status (completed, time_limit, diverged)
// and its config.resolved.json is the one this study would run.
bool already_done(const Run& run);
// A cell that ran and did not complete leaves <run dir>/sweep_cell.json ({"state": "failed" or
// "interrupted", "error", "wall_s"}; written by CellRunner for every way of running a sweep), so
// that `--collect` records it as the sweep that ran it did. Removed when the cell starts again.
inline constexpr const char* kCellFile = "sweep_cell.json";
// The last n non-empty lines of a log file (progress lines overwritten with \r: the last shown).
std::vector<std::string> tail_lines(const std::string& file, size_t n);

// Runs cells as child `dtsim run` processes (their own process groups, killed with this process),
// each with its log in <run dir>/dtsim.log.
class CellRunner {
 public:
  explicit CellRunner(const Study& st) : st_(st) {}
  void start(size_t cell);
  size_t running() const { return running_.size(); }
  std::vector<size_t> running_cells() const;
  // The cells that ended since the last call (waits at most `wait_ms` for one), with their outcome.
  std::vector<std::pair<size_t, Outcome>> poll(int wait_ms);
  // Stops every running cell (SIGTERM, SIGKILL after `grace_s`); their outcomes: Interrupted.
  std::vector<std::pair<size_t, Outcome>> stop_all(double grace_s);

 private:
  struct Child {
    pid_t pid;
    size_t cell;
    std::chrono::steady_clock::time_point start;
  };
  std::optional<std::pair<size_t, Outcome>> reap(pid_t pid, int status);
  const Study& st_;
  std::vector<Child> running_;
  bool stopping_ = false;  // in stop_all: a cell that ends is Interrupted, not Failed
};

// The console side of a sweep: one line per finished cell, a status line on a terminal.
class Progress {
 public:
  Progress(const Study& st, bool quiet, size_t skipped, long jobs);
  void status(size_t running, size_t failed);
  void report(size_t cell, const Outcome& o);  // counts it as finished (Interrupted: not)
  void clear();
  size_t finished() const { return finished_; }

 private:
  const Study& st_;
  bool quiet_, tty_;
  size_t skipped_, finished_ = 0;
  long jobs_;
  double wall_sum_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// ------------------------------------------------------------------ results
// results.csv's text: one row per cell (docs/sweeps.md, "What it writes").
std::string results_csv(const Study& st, const std::vector<Outcome>& outcomes);
// Writes <out>/results.csv atomically; its path.
std::string write_results(const Study& st, const std::vector<Outcome>& outcomes);
// The final line: "sweep NAME: N runs: ...; results: FILE" (`note`: appended, e.g. re-queued cells).
void print_final_line(const Study& st, const std::vector<Outcome>& outcomes, const std::string& csv,
                      const std::string& note = "");
// tools/plot.py all on results.csv into <out>/plots; 0 or 1 (reported on stderr).
int run_plots(const Study& st, bool quiet);

// ------------------------------------------------------------------ MPI and Slurm
struct Options {
  std::string study, out;
  std::vector<std::string> sets;
  long jobs = 0;  // 0: the number of cores
  bool plot = false, dry = false, quiet = false;
  // MPI (sweep_mpi.cpp)
  long root_jobs = 0;         // cells rank 0 runs itself
  double rank_timeout_s = 60;  // a rank silent this long is dead
  // Slurm (sweep_slurm.cpp)
  bool slurm = false, collect = false;
  std::optional<long> cell;
  std::string partition, time, cpus_per_task, max_parallel;
};

// Under mpirun with more than one rank: runs the study across the ranks and returns the exit code;
// nullopt when this process is not an MPI job of several ranks (then the sweep is local).
std::optional<int> mpi_sweep(const Options& o);
// --slurm, --cell and --collect started by an MPI launcher with several ranks: 0 (do nothing) on
// every rank but rank 0, which warns once and goes on (nullopt); nullopt without a launcher.
std::optional<int> single_process_under_launcher(const char* what);
int slurm_script(const Options& o);
int slurm_cell(const Options& o);
int slurm_collect(const Options& o);

}  // namespace dtsim::sweep
