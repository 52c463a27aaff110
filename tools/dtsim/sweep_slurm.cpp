// dtsim sweep on Slurm (docs/sweeps.md, "Running a study on a cluster"):
//   --slurm     writes a job array script, one array task per run not yet complete, and prints the
//               sbatch command;
//   --cell I    what each array task runs: run I of the study, exactly as a local sweep runs it
//               (a child `dtsim run`, its log in runs/<run>/dtsim.log), skipped when complete;
//   --collect   results.csv (and with --plot the plots) from the run directories.
// A failed or interrupted cell leaves runs/<run>/sweep_cell.json with its error, so that
// --collect records it as a local sweep would.
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "common/units.hpp"
#include "tools/dtsim/cli.hpp"
#include "tools/dtsim/signals.hpp"
#include "tools/dtsim/sweep.hpp"

namespace fs = std::filesystem;

namespace dtsim::sweep {
namespace {

// A Slurm time limit as sbatch --time reads it: minutes, minutes:seconds, hours:minutes:seconds,
// days-hours, days-hours:minutes, days-hours:minutes:seconds, or unlimited/infinite.
bool slurm_time_ok(const std::string& t) {
  if (t == "UNLIMITED" || t == "unlimited" || t == "INFINITE" || t == "infinite") return true;
  static const std::regex form(R"(^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$)");
  return std::regex_match(t, form);
}

// A word for a POSIX shell: single-quoted unless it is plainly safe.
std::string sh_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=/.,:@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// This dtsim, by its absolute path (the tasks run it on the compute nodes).
std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("dtsim") : p.string();
}

// `dtsim sweep STUDY --out OUT --set ...`: the part every task and --collect share.
std::string sweep_command(const Options& o, const Study& st) {
  std::string cmd = sh_quote(self_exe()) + " sweep " + sh_quote(absolute(o.study)) + " --out " + sh_quote(absolute(st.out));
  for (const auto& s : o.sets) cmd += " --set " + sh_quote(s);
  return cmd;
}

// "0-3,7,9-12": Slurm's --array list of the given sorted indices.
std::string array_ranges(const std::vector<size_t>& idx) {
  std::string out;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && idx[j + 1] == idx[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(idx[i]) + (j > i ? "-" + std::to_string(idx[j]) : "");
    i = j + 1;
  }
  return out;
}

}  // namespace

int slurm_script(const Options& o) {
  Study st = read_study(o.study, o.out, o.sets);
  const size_t n = st.runs.size();
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i)
    if (!already_done(st.runs[i])) todo.push_back(i);
  const std::string collect = sweep_command(o, st) + " --collect --plot";
  if (todo.empty()) {
    std::printf("sweep %s: all %zu runs are complete; assemble the results with:\n  %s\n", st.name.c_str(), n, collect.c_str());
    return 0;
  }
  long parallel = 0;
  if (!o.max_parallel.empty()) parallel = cli::to_int("--max-parallel", o.max_parallel, 1, 1000000, "needs a whole number in");
  if (!o.cpus_per_task.empty()) cli::to_int("--cpus-per-task", o.cpus_per_task, 1, 100000, "needs a whole number in");
  // Each becomes one #SBATCH line: a line break would end sbatch's reading of the options (and put
  // a shell command in the script), and a time Slurm cannot read fails only at submission.
  if (o.partition.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.,-") != std::string::npos)
    throw cli::UsageError("--partition needs partition names (letters, digits, '_', '.', '-'; ',' between several), got '" +
                          printable_excerpt(o.partition) + "'");
  if (!o.time.empty() && !slurm_time_ok(o.time))
    throw cli::UsageError("--time needs a Slurm time limit (MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED), got '" +
                          printable_excerpt(o.time) + "'");
  write_base(st);  // an inline base: the tasks read it from the output directory
  const fs::path dir = fs::path(absolute(st.out)) / "slurm";
  fs::create_directories(dir / "logs");
  std::string s = "#!/bin/bash\n";
  s += "# dtsim sweep " + st.name + ": " + std::to_string(todo.size()) + " of " + std::to_string(n) +
       " runs, one array task each (written by `dtsim sweep --slurm`; docs/sweeps.md).\n";
  s += "# The array index is the run's index in `dtsim sweep " + o.study + " --dry-run`. Complete runs are\n";
  s += "# skipped by their task, so resubmitting this script (or a new --slurm) after a preemption\n";
  s += "# reruns only what is missing.\n";
  s += "#SBATCH --job-name=" + sh_quote("dtsim-" + st.name) + "\n";
  s += "#SBATCH --array=" + array_ranges(todo) + (parallel ? "%" + std::to_string(parallel) : "") + "\n";
  s += "#SBATCH --ntasks=1\n";
  s += "#SBATCH --output=" + (dir / "logs" / "%A_%a.log").string() + "\n";
  if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.time.empty()) s += "#SBATCH --time=" + o.time + "\n";
  if (!o.cpus_per_task.empty()) s += "#SBATCH --cpus-per-task=" + o.cpus_per_task + "\n";
  s += "\nexec " + sweep_command(o, st) + " --cell \"$SLURM_ARRAY_TASK_ID\"\n";
  const std::string file = (dir / (st.name + ".sbatch")).string();
  io::atomic_write(file, s);
  ::chmod(file.c_str(), 0755);
  std::fprintf(stderr, "sweep %s: %zu of %zu runs to do (%zu already complete), one Slurm array task each%s: %s\n",
               st.name.c_str(), todo.size(), n, n - todo.size(),
               parallel ? (", at most " + std::to_string(parallel) + " at a time").c_str() : "", file.c_str());
  if (todo.back() > 1000)
    std::fprintf(stderr, "note: array indices above 1000 need MaxArraySize > %zu in slurm.conf (default 1001)\n", todo.back());
  std::printf("sbatch %s\n", sh_quote(file).c_str());
  std::fprintf(stderr, "when the array is done (or at once: sbatch --dependency=afterany:JOBID --wrap '...'):\n  %s\n",
               collect.c_str());
  return 0;
}

int slurm_cell(const Options& o) {
  Study st = read_study(o.study, o.out, o.sets);
  const size_t n = st.runs.size();
  if (*o.cell < 0 || static_cast<size_t>(*o.cell) >= n)
    throw cli::UsageError("--cell " + std::to_string(*o.cell) + " is not a run of " + o.study + " (it has runs 0 to " +
                          std::to_string(n - 1) + ")");
  const size_t i = static_cast<size_t>(*o.cell);
  const Run& run = st.runs[i];
  if (already_done(run)) {
    if (!o.quiet) std::fprintf(stderr, "sweep %s: run %zu (%s) already complete\n", st.name.c_str(), i, run.name.c_str());
    return 0;
  }
  // An inline base: written by --slurm; again only if missing or different (tasks start together).
  if (!st.base_doc.is_null()) {
    std::string have;
    try {
      have = io::read_file(st.base_file);
    } catch (const std::exception&) {
    }
    if (have != st.base_doc.dump(2) + "\n") write_base(st);
  }
  dtsim::cli::arm_graceful_stop();  // Slurm's SIGTERM (time limit, preemption): the run writes its outputs
  CellRunner runner(st);
  runner.start(i);
  std::vector<std::pair<size_t, Outcome>> ended;
  while (ended.empty() && !stop_requested()) ended = runner.poll(50);
  if (ended.empty()) ended = runner.stop_all(3.0);
  const Outcome& out = ended.front().second;
  if (out.state == Outcome::State::Failed)
    std::fprintf(stderr, "sweep %s: run %zu (%s) FAILED: %s\n", st.name.c_str(), i, run.label().c_str(), out.error.c_str());
  else if (!o.quiet)
    std::fprintf(stderr, "sweep %s: run %zu (%s) %s (%s)\n", st.name.c_str(), i, run.name.c_str(),
                 out.state == Outcome::State::Done ? "done" : "interrupted", units::format_duration(out.wall_s).c_str());
  if (stop_requested()) return 128 + stop_requested();
  return out.state == Outcome::State::Done ? 0 : 1;
}

int slurm_collect(const Options& o) {
  Study st = read_study(o.study, o.out, o.sets);
  // Neither run there nor submitted from there (a typo in --out): say so, rather than make the
  // directory and a results.csv of not_run rows.
  if (std::error_code ec; !fs::is_directory(fs::path(st.out) / "runs", ec) && !fs::is_directory(fs::path(st.out) / "slurm", ec))
    throw InputError(o.out.empty() ? o.study : "--out", o.out.empty() ? "out" : "",
                     "'" + st.out + "' holds neither runs/ nor slurm/: this study was not run or submitted there");
  std::vector<Outcome> outcomes(st.runs.size());
  size_t complete = 0, failed = 0, interrupted = 0;
  for (size_t i = 0; i < st.runs.size(); ++i) {
    const Run& run = st.runs[i];
    Outcome& out = outcomes[i];
    if (already_done(run)) {
      out.state = Outcome::State::Done;
      ++complete;
      continue;
    }
    try {  // a cell that ran and did not complete: its error, as the local sweep records it
      const json c = json::parse(io::read_file((fs::path(run.dir) / kCellFile).string()));
      out.state = c.value("state", "") == "failed" ? Outcome::State::Failed : Outcome::State::Interrupted;
      out.error = c.value("error", "");
      (out.state == Outcome::State::Failed ? failed : interrupted) += 1;
    } catch (const std::exception&) {
      // never ran (or is running now): not_run
    }
  }
  const std::string csv = write_results(st, outcomes);
  const size_t not_run = st.runs.size() - complete - failed - interrupted;
  std::fprintf(stderr, "sweep %s: %zu runs: %zu complete, %zu failed, %zu interrupted, %zu not run; results: %s\n",
               st.name.c_str(), st.runs.size(), complete, failed, interrupted, not_run, csv.c_str());
  int rc = complete == st.runs.size() ? 0 : 1;
  if (o.plot && run_plots(st, o.quiet) != 0) rc = 1;
  return rc;
}

}  // namespace dtsim::sweep
