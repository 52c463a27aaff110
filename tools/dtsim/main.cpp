// dtsim — the command-line front-end (CLI11: tools/dtsim/cli.hpp).
//   dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet] [--max-wall-s S]
//   dtsim run --resume DIR [--out DIR2] [--quiet] [--max-wall-s S]
//   dtsim validate CONFIG.json|STUDY.json [--set KEY=VALUE]... [--route HOST,HOST]...
//   dtsim algorithms [NAME]
//   dtsim sweep ... (tools/dtsim/sweep.cpp), dtsim profile ... (tools/dtsim/profile.cpp)
//   dtsim --help | --version
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input, 3 diverged (NaN/Inf),
// 4 stopped by --max-wall-s, 128+N stopped by signal N (130 SIGINT, 143 SIGTERM); docs/robustness.md.
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <new>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "algorithms/api.hpp"
#include "algorithms/plugin_loader.hpp"
#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "common/units.hpp"
#include "sim/config.hpp"
#include "sim/outputs.hpp"
#include "sim/platform.hpp"
#include "sim/preflight.hpp"
#include "sim/runtime.hpp"
#include "tools/dtsim/cli.hpp"
#include "tools/dtsim/commands.hpp"
#include "tools/dtsim/signals.hpp"

namespace {

using namespace dtsim;
using cli::UsageError;

constexpr const char* kDescription =
    "dtsim " DTSIM_VERSION " — a discrete-event cluster simulator for distributed deep-learning training.\n";

constexpr const char* kUsage =
    "dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet] [--max-wall-s S]\n"
    "dtsim run --resume DIR [--out DIR2] [--quiet] [--max-wall-s S]\n"
    "dtsim validate CONFIG.json|STUDY.json [--set KEY=VALUE]... [--route HOST,HOST]...\n"
    "dtsim sweep STUDY.json [--jobs N] [--out DIR] [--set KEY=VALUE]... [--plot] [--dry-run] [--quiet]\n"
    "            [--slurm|--cell I|--collect]   (mpirun -np R dtsim sweep ...: docs/sweeps.md)\n"
    "dtsim profile MODEL --input C,H,W --batch B [--classes N] [--device D] [--threads T] [--steps S]\n"
    "              [--warmup W] [--clock wall|thread-cpu] [--out FILE]   (a gpt: --input T,1,1 --classes V)\n"
    "dtsim algorithms [NAME] [--plugin FILE]...   (run and validate take --plugin FILE too: docs/plugins.md)\n"
    "dtsim COMMAND --help | dtsim --help | dtsim --version";

constexpr const char* kFooter =
    "Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input, 3 diverged,\n"
    "4 wall-clock limit, 130/143 interrupted by SIGINT/SIGTERM (outputs written, docs/robustness.md).\n"
    "Documentation: README.md and docs/ (docs/config.md for every config key, docs/sweeps.md for studies).";

constexpr const char* kRunDescription =
    "Runs one experiment: SimGrid simulates the cluster, every worker computes real gradients\n"
    "(or none with compute.mode=timing-only). Results go to DIR (default: results/<name>/):\n"
    "summary.json, metrics.csv, links.csv, trace.json, final_params.npy, config.resolved.json.\n";

constexpr const char* kRunFooter =
    "SIGINT/SIGTERM stop the run at its next simulated event: outputs are written with\n"
    "status \"interrupted\" and the exit code is 130/143 (a second signal kills at once). A NaN/Inf\n"
    "loss or parameter stops it with status \"diverged\" and exit code 3.";

constexpr const char* kValidateDescription =
    "Loads and checks the config, its platform, model, dataset and algorithm; runs nothing. Exit 0 if\n"
    "valid, 2 otherwise. Prints a summary of the platform (hosts per role, bisection bandwidth,\n"
    "stragglers, failures); --route worker-0,server-0 also prints the links and latency of the route\n"
    "between two hosts (docs/platforms.md). A sweep's STUDY.json (an object with \"base\") is checked\n"
    "like `dtsim sweep --dry-run`: every run's config.\n";

struct Args {
  std::string config, out, resume, max_wall;
  std::vector<std::string> sets, routes_text;
  bool quiet = false;
  double max_wall_s = 0;  // 0: no wall-clock limit
  std::vector<std::pair<std::string, std::string>> routes;  // validate --route A,B
  std::string algorithm;  // algorithms NAME
  std::vector<std::string> plugins;  // --plugin FILE (docs/plugins.md)
};

// --set KEY=VALUE, which run and validate share.
void add_set(CLI::App& c, Args& a) {
  c.add_option("--set", a.sets,
               "override a config value by dotted path, e.g. --set platform.workers.count=16\n"
               "--set algorithm.name=asgd (VALUE is parsed as JSON when it parses, else a string)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
}

// --plugin FILE, which run, validate and algorithms share: an algorithm plugin (docs/plugins.md),
// loaded before anything looks up an algorithm.
void add_plugin(CLI::App& c, Args& a) {
  c.add_option("--plugin", a.plugins, "load an algorithm plugin (a shared object built against the\ninstalled SDK, docs/plugins.md); repeatable")
      ->type_name("FILE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
}

// Live progress on a terminal, at most 4 times a second (wall clock: display only).
class ProgressLine {
 public:
  explicit ProgressLine(bool on) : on_(on) {}
  void update(const sim::Progress& p) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac = p.budget ? std::min(1.0, static_cast<double>(p.samples) / static_cast<double>(p.budget)) : 0;
    char acc[32] = "-";
    if (p.accuracy >= 0) std::snprintf(acc, sizeof acc, "%.4f", p.accuracy);
    char eta[32] = "?";
    if (frac > 0.01) std::snprintf(eta, sizeof eta, "%.0f s", elapsed * (1 - frac) / frac);
    std::fprintf(stderr, "\r\033[K  %5.1f%%  samples %llu/%llu  sim %s  acc %s  ETA %s", 100 * frac,
                 static_cast<unsigned long long>(p.samples), static_cast<unsigned long long>(p.budget),
                 units::format_duration(p.sim_time_s).c_str(), acc, eta);
    std::fflush(stderr);
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r\033[K");
  }

 private:
  bool on_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

void print_table(const sim::Experiment& x, const sim::RunResult& r, const std::string& dir) {
  auto row = [](const char* k, const std::string& v) { std::printf("  %-28s %s\n", k, v.c_str()); };
  char buf[128];
  std::printf("\n%s: %s, %d workers, %d servers, %s\n", x.name.c_str(), x.algorithm.c_str(), x.platform.workers.count,
              x.platform.servers.count, r.status.c_str());
  row("simulated time", units::format_duration(r.simulated_time_s));
  row("wall time", units::format_duration(r.wall_time_s));
  std::snprintf(buf, sizeof buf, "%llu (%.2f epochs)", static_cast<unsigned long long>(r.samples),
                static_cast<double>(r.samples) / static_cast<double>(x.training.train_size));
  row("samples", buf);
  std::snprintf(buf, sizeof buf, "%.4g", r.simulated_time_s > 0 ? r.samples / r.simulated_time_s : 0.0);
  row("samples/s (simulated)", buf);
  if (x.compute.real && !r.metrics.empty()) {
    std::snprintf(buf, sizeof buf, "%.4f", r.metrics.back().test_accuracy);
    row("final test accuracy", buf);
    std::snprintf(buf, sizeof buf, "%.4f", r.metrics.back().test_loss);
    row("final test loss", buf);
    for (size_t i = 0; i < x.training.target_accuracy.size(); ++i) {
      std::snprintf(buf, sizeof buf, "time to %.3g accuracy", x.training.target_accuracy[i]);
      row(buf, r.time_to_accuracy[i] ? units::format_duration(*r.time_to_accuracy[i]) : "not reached");
    }
  }
  row("bytes on the wire", units::format_bytes(r.bytes_on_wire));
  row("results", dir + "/");
  std::fflush(stdout);
}

int cmd_run(const Args& a) {
  const bool resume = !a.resume.empty();
  if (resume && !a.config.empty())
    throw UsageError("run --resume DIR takes no CONFIG.json (it uses DIR/config.resolved.json), got '" + a.config + "'");
  if (resume && !a.sets.empty())
    throw UsageError("--set cannot be combined with --resume (the checkpoint belongs to DIR/config.resolved.json as it is)");
  if (!resume && a.config.empty()) throw UsageError("run needs a CONFIG.json");
  // A study is run by `dtsim sweep`: say so instead of "platform: missing required key".
  if (!resume && cli::is_study_file(a.config))
    throw InputError(a.config, "", "this is a study (it has \"base\" and \"vary\"), not an experiment: run it with 'dtsim sweep " +
                                       a.config + "'");
  // SIGINT/SIGTERM: the runtime stops at its next event and the outputs are still written; a
  // second signal kills at once, and the atomic writes leave no half-written file
  // (tools/dtsim/signals.hpp: received by a thread of their own, never by a handler).
  cli::arm_graceful_stop();
  // --resume DIR: DIR's resolved config and checkpoint, refused when they do not belong together.
  const std::string resolved_file = resume ? (std::filesystem::path(a.resume) / "config.resolved.json").string() : "";
  const std::string ckpt_file = resume ? (std::filesystem::path(a.resume) / "checkpoint.dtck").string() : "";
  if (resume && !io::file_exists(resolved_file))
    throw InputError(resolved_file, "", "missing: --resume needs the run directory of a run started with this version");
  sim::Experiment x = resume ? sim::load_resolved_experiment(resolved_file) : sim::load_experiment(a.config, a.sets);
  std::fputs(sim::warnings_text(x).c_str(), stderr);  // degenerate settings, also with --quiet (sim/preflight.hpp)
  std::optional<sim::Checkpoint> ck;
  if (resume) {
    ck = sim::read_checkpoint(ckpt_file);
    const std::string h = sim::config_hash(io::read_file(resolved_file));
    if (ck->config_hash != h)
      throw InputError(ckpt_file, "", "written for a different config (config hash " + ck->config_hash + ", " +
                                          resolved_file + " has " + h + "): refusing to resume");
    if (ck->warnings) x.warnings = *ck->warnings;  // summary.json reports those of the run as first started
  }
  const std::string dir = !a.out.empty() ? a.out : resume ? a.resume : x.output.dir;
  {  // a path that is a file, or cannot be made a directory, is bad input (exit 2), named
    auto refuse = [&](const std::string& why) {
      if (!a.out.empty()) throw InputError("--out", "", why);
      if (resume) throw InputError(a.resume, "", why);
      throw InputError(x.file, "output.dir", why);
    };
    std::error_code ec;
    if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
      refuse("'" + dir + "' is not a directory");
    std::filesystem::create_directories(dir, ec);
    if (ec) refuse("cannot create the directory '" + dir + "': " + ec.message());
  }
  // Remove the previous run's files first: a directory with an old summary.json must never pass
  // for the result of this run (nor an old checkpoint for one of its checkpoints).
  for (const char* f : {"summary.json", "metrics.csv", "links.csv", "trace.json", "final_params.npy", "config.resolved.json"})
    std::filesystem::remove(std::filesystem::path(dir) / f);
  if (!resume) std::filesystem::remove(std::filesystem::path(dir) / "checkpoint.dtck");
  // The resolved config is written first: `--resume DIR` needs it, and checkpoints carry its hash.
  const std::string resolved_text = x.resolved.dump(2) + "\n";
  io::atomic_write((std::filesystem::path(dir) / "config.resolved.json").string(), resolved_text);
  if (!a.quiet)
    spdlog::info("{}: {} on {} workers + {} servers, {} samples, model {} ({})", x.name, x.algorithm,
                 x.platform.workers.count, x.platform.servers.count, x.training.samples, x.model.value("kind", "?"),
                 x.compute.real ? "real compute" : "timing-only");
  // A run whose simulation alone will take a while says so before it starts (sim/preflight.hpp).
  if (!a.quiet)
    if (const sim::RunCost cost = sim::estimate_cost(x); cost.wall_s >= 10)
      spdlog::info("a large run, estimated: {} (dtsim validate prints this estimate)", sim::cost_text(cost));
  ProgressLine progress(!a.quiet && ::isatty(STDERR_FILENO));
  sim::RunHooks hooks;
  hooks.progress = [&](const sim::Progress& p) { progress.update(p); };
  hooks.interrupt = &cli::stop_signal();
  hooks.max_wall_s = a.max_wall_s;
  hooks.config_hash = sim::config_hash(resolved_text);
  if (x.training.checkpoint_every_samples > 0) hooks.checkpoint_path = (std::filesystem::path(dir) / "checkpoint.dtck").string();
  if (ck) {
    hooks.resume = &*ck;
    hooks.resume_file = ckpt_file;
    if (!a.quiet) spdlog::info("resuming {} from step {} ({} samples done, simulated time {:.6g} s)", a.resume, ck->step,
                               ck->samples_done, ck->metrics.empty() ? 0.0 : ck->metrics.back().sim_time_s);
  }
  sim::RunResult r = sim::run(x, hooks);
  progress.clear();
  for (std::string& w : sim::result_warnings(x, r)) {  // into summary.json's warnings too
    std::fprintf(stderr, "warning: %s\n", w.c_str());
    x.warnings.push_back(std::move(w));
  }
  sim::write_outputs(x, r, dir);
  if (!a.quiet) print_table(x, r, dir);
  if (r.stop) {
    const auto& st = *r.stop;
    std::fprintf(stderr, "%s: %s at simulated time %.9g s (%s); outputs in %s/\n",
                 st.reason == "diverged" ? "error" : "stopped", st.reason.c_str(), st.sim_time_s, st.detail.c_str(),
                 dir.c_str());
  }
  if (const int sig = cli::stop_signal().load()) return 128 + sig;  // also when it came after the last event
  if (r.status == "diverged") return 3;
  if (r.status == "wall_limit") return 4;
  return 0;
}

int cmd_validate(const Args& a) {
  if (a.config.empty()) throw UsageError("validate needs a CONFIG.json");
  if (cli::is_study_file(a.config)) {  // a sweep's STUDY.json
    if (!a.routes.empty()) throw UsageError("--route prints a route of an experiment's platform, not of a study's");
    // `dtsim sweep` takes no --plugin (its runs are `dtsim run` processes that read the config):
    // a study valid only with it could not be swept.
    if (!a.plugins.empty())
      throw UsageError("--plugin is for a config; a study names its plugin in its runs' configs (\"algorithm\": {\"plugin\": FILE}, docs/plugins.md)");
    return cli::validate_study(a.config, a.sets);
  }
  sim::Experiment x = sim::load_experiment(a.config, a.sets);
  sim::preflight(x, {.load_dataset = true});  // refuse what `run` refuses before simulating (sim/preflight.hpp)
  const std::string platform = sim::platform_summary(x.platform, a.routes);  // sim/platform.cpp
  std::fputs(sim::warnings_text(x).c_str(), stderr);
  std::printf("%s: valid%s\n", a.config.c_str(), sim::warnings_count(x).c_str());
  std::fputs(platform.c_str(), stdout);
  // a text dataset's vocabulary and sequence length: what `dtsim profile gpt --classes V --input T,1,1` needs
  const std::string text = x.dataset.kind != "text" ? ""
                           : " (vocabulary " + std::to_string(x.dataset.text_vocab) + ", sequences of " +
                                 std::to_string(x.dataset.text_block) + " tokens)";
  std::printf("  training    %s, batch %d, %llu samples, dataset %s%s\n", x.algorithm.c_str(), x.training.batch_size,
              static_cast<unsigned long long>(x.training.samples), x.dataset.kind.c_str(), text.c_str());
  std::printf("  estimate    %s (rough)\n", sim::cost_text(sim::estimate_cost(x)).c_str());
  return 0;
}

// Every algorithm with its hyper-parameters and defaults, or only NAME's.
int cmd_algorithms(const std::string& only) {
  std::vector<std::string> names;
  for (const auto& a : algo::registry()) names.push_back(a.name);
  if (!only.empty() && std::find(names.begin(), names.end(), only) == names.end()) {
    std::string msg = "unknown algorithm '" + only + "'";
    if (auto near = nearest_key(only, names)) msg += " (did you mean '" + *near + "'?)";
    throw UsageError(msg);
  }
  for (const auto& a : algo::registry()) {
    if (!only.empty() && a.name != only) continue;
    const std::string from = algo::plugin_of(a.name);  // "" for a built-in
    std::printf("%s%s\n  %s\n", a.name.c_str(), from.empty() ? "" : ("  (plugin " + from + ")").c_str(), a.summary.c_str());
    size_t kw = 0, dw = 0;  // column widths of this algorithm's keys and defaults
    for (const auto& p : a.params) kw = std::max(kw, p.key.size()), dw = std::max(dw, p.default_value.size());
    for (const auto& p : a.params)
      std::printf("    %-*s  %-*s  %s\n", static_cast<int>(kw), p.key.c_str(), static_cast<int>(dw), p.default_value.c_str(),
                  p.doc.c_str());
  }
  return 0;
}

// The command line: run, validate and algorithms here, sweep and profile in their own files.
struct Cli {
  CLI::App top{kDescription, "dtsim"};
  Args a;
  CLI::App *run = nullptr, *validate = nullptr, *algorithms = nullptr;
  cli::Command sweep, profile;
  bool version = false;

  Cli() {
    cli::set_usage(top, kUsage);
    top.footer(kFooter);
    top.set_help_flag("-h,--help", "this help (COMMAND --help: that command's)");
    top.add_flag("--version", version, "print the version");
    top.require_subcommand(0, 1);
    top.allow_extras();

    run = top.add_subcommand("run", kRunDescription);
    cli::set_usage(*run,
                   "dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet] [--max-wall-s S]\n"
                   "dtsim run --resume DIR [--out DIR2] [--quiet] [--max-wall-s S]",
                   "run one experiment");
    run->footer(kRunFooter);
    run->add_option("CONFIG.json", a.config, "the experiment (docs/config.md)")->type_name("");
    run->add_option("--out", a.out, "run directory (overrides output.dir)")->type_name("DIR");
    add_set(*run, a);
    add_plugin(*run, a);
    run->add_flag("-q,--quiet", a.quiet, "print only warnings and errors");
    run->add_option("--max-wall-s", a.max_wall, "stop after S wall-clock seconds: status \"wall_limit\", exit code 4")
        ->type_name("S");
    run->add_option("--resume", a.resume,
                    "continue the run of DIR from DIR/checkpoint.dtck (written with\n"
                    "training.checkpoint_every_samples) with DIR/config.resolved.json;\n"
                    "outputs go to DIR or --out DIR2 (docs/robustness.md)")
        ->type_name("DIR");

    validate = top.add_subcommand("validate", kValidateDescription);
    cli::set_usage(*validate, "dtsim validate CONFIG.json|STUDY.json [--set KEY=VALUE]... [--route HOST,HOST]...",
                   "check an experiment or a study; run nothing");
    validate->add_option("CONFIG.json", a.config, "an experiment or a study")->type_name("");
    add_set(*validate, a);
    add_plugin(*validate, a);
    validate->add_option("--route", a.routes_text, "print the route between two hosts, e.g. --route worker-0,server-0")
        ->type_name("HOST,HOST")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false);
    // Accepted so that a run's command line validates as it is; no effect here.
    validate->add_option("--out", a.out)->group("");
    validate->add_flag("-q,--quiet", a.quiet)->group("");

    algorithms = top.add_subcommand("algorithms",
                                    "Lists every algorithm with its hyper-parameters (algorithm.<key>), their defaults and\n"
                                    "meaning, or only NAME's. One page each: docs/algorithms/.\n");
    cli::set_usage(*algorithms, "dtsim algorithms [NAME] [--plugin FILE]...", "list the algorithms and their parameters (or NAME's)");
    algorithms->add_option("NAME", a.algorithm, "one algorithm, e.g. ssgd")->type_name("");
    add_plugin(*algorithms, a);

    sweep = cli::add_sweep_command(top);
    profile = cli::add_profile_command(top);
    for (CLI::App* c : {run, validate, algorithms, sweep.app, profile.app}) c->allow_extras();
  }

  // The option values that need checking beyond their syntax.
  void check_values() {
    if (!a.max_wall.empty()) a.max_wall_s = cli::to_positive_seconds("--max-wall-s", a.max_wall);
    for (const std::string& v : a.routes_text) {
      const auto comma = v.find(',');
      if (comma == std::string::npos || comma == 0 || comma + 1 == v.size())
        throw UsageError("--route needs two host names separated by a comma, e.g. --route worker-0,server-0");
      a.routes.emplace_back(v.substr(0, comma), v.substr(comma + 1));
    }
  }

  int dispatch() {
    for (CLI::App* c : {run, validate, algorithms, sweep.app, profile.app})
      if (c->parsed()) cli::refuse_leftovers(*c);
    if (version) {
      if (!top.get_subcommands().empty())
        throw UsageError("--version takes no command, got '" + top.get_subcommands().front()->get_name() + "'");
      if (!top.remaining().empty()) throw UsageError("--version takes no argument, got '" + top.remaining().front() + "'");
      std::puts("dtsim " DTSIM_VERSION);
      return 0;
    }
    if (top.get_subcommands().empty()) {
      const std::vector<std::string> rest = top.remaining();
      if (rest.empty()) throw UsageError("missing command");
      const std::string& c = rest.front();
      if (c.size() > 1 && c[0] == '-') cli::refuse_leftovers(top);  // an unknown option
      std::string msg = "unknown command '" + c + "'";
      if (auto near = nearest_key(c, {"run", "validate", "algorithms", "sweep", "profile"})) msg += " (did you mean '" + *near + "'?)";
      throw UsageError(msg);
    }
    cli::refuse_leftovers(top);
    check_values();
    for (const std::string& p : a.plugins) algo::load_plugin(p, "--plugin", "");  // algorithms/plugin_loader.hpp
    if (run->parsed()) return cmd_run(a);
    if (validate->parsed()) return cmd_validate(a);
    if (algorithms->parsed()) return cmd_algorithms(a.algorithm);
    if (sweep.app->parsed()) return sweep.run();
    return profile.run();
  }

  // The command whose --help the user should read after a usage error.
  std::string command() const {
    for (const CLI::App* c : {run, validate, algorithms, sweep.app, profile.app})
      if (c->parsed()) return "dtsim " + c->get_name();
    return "dtsim";
  }
};

}  // namespace

int main(int argc, char** argv) {
  dtsim::cli::start_signal_thread();  // before any other thread exists (tools/dtsim/signals.hpp)
  auto logger = spdlog::stderr_color_mt("dtsim");
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
  Cli cli;
  if (argc == 2 && !std::strcmp(argv[1], "help")) {
    std::fputs(cli.top.help().c_str(), stdout);
    return 0;
  }
  try {
    try {
      cli.top.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::fputs(cli.top.help().c_str(), stdout);  // the help of the command given, if any
      return 0;
    } catch (const CLI::ParseError& e) {
      throw UsageError(dtsim::cli::parse_error_message(e));
    }
    return cli.dispatch();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\nRun '%s --help' for usage.\n", e.what(), cli.command().c_str());
    return 2;
  } catch (const InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const RuntimeError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {  // not a defect of dtsim's: say what happened, not "internal"
    std::fprintf(stderr, "error: out of memory: an allocation was refused (the machine's memory, or a ulimit -v)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 1;
  }
}
