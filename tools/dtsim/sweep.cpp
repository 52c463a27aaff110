// dtsim sweep — a study: a grid of experiments, each run as its own `dtsim run` process
// (docs/sweeps.md). The parts: tools/dtsim/sweep.hpp.
//
//   dtsim sweep STUDY.json [--jobs N] [--out DIR] [--set KEY=VALUE]... [--plot] [--dry-run] [--quiet]
//   mpirun -np R dtsim sweep STUDY.json [--jobs N] ...          the cells spread over R ranks
//   dtsim sweep STUDY.json --slurm [--partition P] [--time T] [--cpus-per-task C] [--max-parallel M]
//   dtsim sweep STUDY.json --cell I | --collect                  a Slurm array task; the results
//
// A run whose summary.json exists and whose config.resolved.json equals this study's config for
// it is skipped (a sweep is resumable). results.csv (one row per run) is written atomically at the
// end, also after SIGINT/SIGTERM (running children are killed; exit 128 + signal).
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "sim/preflight.hpp"
#include "tools/dtsim/cli.hpp"
#include "tools/dtsim/commands.hpp"
#include "tools/dtsim/signals.hpp"
#include "tools/dtsim/sweep.hpp"

namespace dtsim::sweep {
namespace {

using cli::UsageError;

constexpr const char* kSweepDescription =
    "Runs a study: the grid of experiments given by STUDY.json's \"vary\" (dotted config keys -> lists of\n"
    "values), \"zip\" (keys that advance together) and \"repeat\" (seeds seed, seed+1, ...), each as its own\n"
    "`dtsim run` process, in parallel. Every run is validated first (exit 2 names the invalid cell).\n"
    "Runs already complete with the same config are skipped, so an interrupted sweep resumes.\n"
    "Writes DIR/results.csv (one row per run: the varied keys, status, run_dir, error and every scalar\n"
    "of summary.json) and DIR/runs/<cell>/ for each run. Exit 1 if any run failed.\n";

constexpr const char* kFooter =
    "On a cluster (docs/sweeps.md, \"Running a study on a cluster\"): under mpirun (or srun) rank 0\n"
    "hands the cells out, largest first, and every other rank runs up to --jobs of them; with --slurm\n"
    "a job array runs one cell per task (--cell I) and --collect assembles results.csv and the plots.\n"
    "Documentation: docs/sweeps.md, docs/plots.md.";

struct Text {  // the options as given, checked after parsing
  std::string jobs, root_jobs, rank_timeout, cell;
};

// The local sweep: every cell as a child process here, --jobs at a time, in the study's order.
int local_sweep(const Options& o, Study& st) {
  const size_t n = st.runs.size();
  std::vector<Outcome> outcomes(n);
  size_t skipped = 0;
  for (size_t i = 0; i < n; ++i)
    if (already_done(st.runs[i])) {
      outcomes[i].state = Outcome::State::Skipped;
      ++skipped;
    }
  std::fputs(study_warnings_text(st).c_str(), stderr);  // degenerate settings, also with --quiet (as `dtsim run`)
  if (o.dry) {
    std::printf("%s: valid, %zu runs (%zu already complete) into %s/\n", o.study.c_str(), n, skipped, st.out.c_str());
    for (size_t i = 0; i < n; ++i)  // the index: --cell I, a Slurm array task
      std::printf("  %*zu  %s  %s%s\n", static_cast<int>(std::to_string(n - 1).size()), i, st.runs[i].name.c_str(),
                  st.runs[i].label().c_str(), outcomes[i].state == Outcome::State::Skipped ? "  (complete)" : "");
    return 0;
  }
  write_base(st);
  dtsim::cli::arm_graceful_stop();  // the first SIGINT/SIGTERM stops the sweep cleanly, a second kills it

  const long jobs = o.jobs;
  if (!o.quiet && skipped == n)
    std::fprintf(stderr, "sweep %s: all %zu runs already complete, in %s/\n", st.name.c_str(), n, st.out.c_str());
  else if (!o.quiet)
    std::fprintf(stderr, "sweep %s: %zu runs (%zu already complete), %ld at a time, into %s/\n", st.name.c_str(), n, skipped,
                 std::min<long>(jobs, static_cast<long>(n - skipped)), st.out.c_str());
  Progress progress(st, o.quiet, skipped, jobs);
  CellRunner runner(st);
  size_t next = 0, failed = 0;
  auto record = [&](std::vector<std::pair<size_t, Outcome>> ended) {
    for (auto& [cell, out] : ended) {
      failed += out.state == Outcome::State::Failed;
      outcomes[cell] = std::move(out);
      progress.report(cell, outcomes[cell]);
    }
  };
  while (true) {
    while (!stop_requested() && runner.running() < static_cast<size_t>(jobs) && next < n) {
      const size_t i = next++;
      if (outcomes[i].state != Outcome::State::Skipped) runner.start(i);
    }
    if (runner.running() == 0 || stop_requested()) break;
    progress.status(runner.running(), failed);
    record(runner.poll(50));  // a signal is seen within 50 ms
  }
  if (stop_requested()) {
    progress.clear();
    std::fprintf(stderr, "sweep: %s: stopping %zu running runs\n", stop_requested() == SIGINT ? "interrupted" : "terminated",
                 runner.running());
    record(runner.stop_all(3.0));
  }
  progress.clear();
  const std::string csv = write_results(st, outcomes);
  print_final_line(st, outcomes, csv);
  if (stop_requested()) return 128 + stop_requested();
  int rc = failed ? 1 : 0;
  if (o.plot && run_plots(st, o.quiet) != 0) rc = 1;
  return rc;
}

int run_sweep(Options o, const Text& t) {
  if (o.study.empty()) throw UsageError("sweep needs a STUDY.json");
  o.jobs = t.jobs.empty() ? std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))
                          : cli::to_int("--jobs", t.jobs, 1, 4096, "needs a whole number in");
  if (!t.root_jobs.empty()) o.root_jobs = cli::to_int("--root-jobs", t.root_jobs, 0, 4096, "needs a whole number in");
  if (!t.rank_timeout.empty()) o.rank_timeout_s = cli::to_positive_seconds("--rank-timeout", t.rank_timeout);
  if (!t.cell.empty()) o.cell = cli::to_int("--cell", t.cell, 0, 999999, "needs a cell index in");
  const bool slurm_opts = !o.partition.empty() || !o.time.empty() || !o.cpus_per_task.empty() || !o.max_parallel.empty();
  if (slurm_opts && !o.slurm) throw UsageError("--partition, --time, --cpus-per-task and --max-parallel go with --slurm");
  if (int(o.slurm) + int(o.cell.has_value()) + int(o.collect) + int(o.dry) > 1)
    throw UsageError("give at most one of --slurm, --cell, --collect and --dry-run");
  // Under mpirun every rank would write the script, run the cell or collect into the same files.
  if (o.slurm || o.cell || o.collect)
    if (auto rc = single_process_under_launcher(o.slurm ? "--slurm" : o.cell ? "--cell" : "--collect")) return *rc;
  if (o.slurm) return slurm_script(o);
  if (o.cell) return slurm_cell(o);
  if (o.collect) return slurm_collect(o);
  // Each run's share of the cores this sweep may use (compute.pool "auto", sim/preflight.hpp): the
  // runs it starts inherit it; a DTSIM_CORES of the user's own is kept.
  if (!std::getenv("DTSIM_CORES"))
    ::setenv("DTSIM_CORES", std::to_string(std::max(1L, sim::usable_cores() / std::max(1L, o.jobs))).c_str(), 1);
  if (auto rc = mpi_sweep(o)) return *rc;  // under mpirun with several ranks
  Study st = read_study(o.study, o.out, o.sets);
  return local_sweep(o, st);
}

}  // namespace
}  // namespace dtsim::sweep

dtsim::cli::Command dtsim::cli::add_sweep_command(CLI::App& top) {
  using namespace dtsim::sweep;
  auto o = std::make_shared<Options>();
  auto t = std::make_shared<Text>();
  CLI::App* c = top.add_subcommand("sweep", kSweepDescription);
  set_usage(*c,
            "dtsim sweep STUDY.json [--jobs N] [--out DIR] [--set KEY=VALUE]... [--plot] [--dry-run] [--quiet]\n"
            "mpirun -np R dtsim sweep STUDY.json [--jobs N] [--root-jobs K] [--rank-timeout S] ...\n"
            "dtsim sweep STUDY.json --slurm [--partition P] [--time T] [--cpus-per-task C] [--max-parallel M]\n"
            "dtsim sweep STUDY.json --cell I | --collect [--plot]",
            "run a study (a grid of runs): here, over MPI, or as a Slurm job array");
  c->footer(kFooter);
  c->add_option("STUDY.json", o->study, "the study (docs/sweeps.md)")->type_name("");
  c->add_option("-j,--jobs", t->jobs, "runs at the same time (default: the number of cores); under MPI: per rank")
      ->type_name("N");
  c->add_option("--out", o->out, "output directory (default: the study's \"out\", else results/<name>)")->type_name("DIR");
  c->add_option("--set", o->sets, "override the base experiment for every run (before the varied keys)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
  c->add_flag("--plot", o->plot, "then draw the plots with tools/plot.py into DIR/plots/");
  c->add_flag("--dry-run", o->dry, "validate and list the runs; run nothing");
  c->add_flag("-q,--quiet", o->quiet, "print only errors and the final line");
  const std::string mpi = "MPI (mpirun/srun)", slurm = "Slurm job array";
  c->add_option("--root-jobs", t->root_jobs, "runs rank 0 also runs itself (default 0: it only schedules)")
      ->type_name("K")
      ->group(mpi);
  c->add_option("--rank-timeout", t->rank_timeout, "a rank not heard from for S seconds is dead: its runs are\n"
                                                   "re-queued to the others (default 60)")
      ->type_name("S")
      ->group(mpi);
  c->add_flag("--slurm", o->slurm, "write a job array script (one task per run not yet complete)\n"
                                   "into DIR/slurm/ and print the sbatch command")
      ->group(slurm);
  c->add_option("--partition", o->partition, "#SBATCH --partition")->type_name("P")->group(slurm);
  c->add_option("--time", o->time, "#SBATCH --time per task, e.g. 2:00:00")->type_name("T")->group(slurm);
  c->add_option("--cpus-per-task", o->cpus_per_task, "#SBATCH --cpus-per-task")
      ->type_name("C")
      ->group(slurm);
  c->add_option("--max-parallel", o->max_parallel, "at most M tasks at a time (--array=...%M)")->type_name("M")->group(slurm);
  c->add_option("--cell", t->cell, "run only run I (0-based, the order of --dry-run): a job array task")
      ->type_name("I")
      ->group(slurm);
  c->add_flag("--collect", o->collect, "assemble results.csv (and with --plot the plots) from the run\n"
                                       "directories; run nothing")
      ->group(slurm);
  return {c, [o, t] { return run_sweep(*o, *t); }};
}
