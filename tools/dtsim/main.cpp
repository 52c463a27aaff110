// dtsim — the command-line front-end.
//   dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet]
//   dtsim run --resume DIR [--out DIR2] [--quiet]
//   dtsim validate CONFIG.json [--set KEY=VALUE]...
//   dtsim algorithms
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
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "algorithms/api.hpp"
#include "common/error.hpp"
#include "common/io.hpp"
#include "common/units.hpp"
#include "sim/config.hpp"
#include "sim/outputs.hpp"
#include "sim/platform.hpp"
#include "sim/runtime.hpp"
#include "tools/dtsim/signals.hpp"

int cmd_sweep(int argc, char** argv);  // tools/dtsim/sweep.cpp
bool is_study_file(const std::string& file);
int validate_study(const std::string& file, const std::vector<std::string>& sets);
int cmd_profile(int argc, char** argv);  // tools/dtsim/profile.cpp

namespace {

using namespace dtsim;

constexpr const char* kUsage =
    "dtsim " DTSIM_VERSION " — a discrete-event cluster simulator for distributed deep-learning training\n"
    "\n"
    "Usage:\n"
    "  dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet]\n"
    "  dtsim run --resume DIR [--out DIR2]   continue a run from DIR/checkpoint.dtck\n"
    "  dtsim validate CONFIG.json|STUDY.json [--set KEY=VALUE]... [--route HOST,HOST]\n"
    "  dtsim algorithms          list the algorithms and their parameters\n"
    "  dtsim sweep STUDY.json [--jobs N] [--out DIR] [--plot]   run a study (a grid of runs); see --help\n"
    "  dtsim profile MODEL --input C,H,W --batch B [--device D] [--threads T] [--out FILE]\n"
    "                            measure a model's step times into a compute profile; see --help\n"
    "  dtsim --help | --version\n"
    "\n"
    "Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid input, 3 diverged,\n"
    "4 wall-clock limit, 130/143 interrupted by SIGINT/SIGTERM (outputs written, docs/robustness.md).\n"
    "Documentation: README.md and docs/ (docs/config.md for every config key).\n";

constexpr const char* kRunUsage =
    "Usage: dtsim run CONFIG.json [--out DIR] [--set KEY=VALUE]... [--quiet]\n"
    "       dtsim run --resume DIR [--out DIR2] [--quiet]\n"
    "\n"
    "Runs one experiment: SimGrid simulates the cluster, every worker computes real gradients\n"
    "(or none with compute.mode=timing-only). Results go to DIR (default: results/<name>/):\n"
    "summary.json, metrics.csv, links.csv, trace.json, final_params.npy, config.resolved.json.\n"
    "\n"
    "Options:\n"
    "  --out DIR          run directory (overrides output.dir)\n"
    "  --set KEY=VALUE    override a config value by dotted path, e.g.\n"
    "                     --set platform.workers.count=16 --set algorithm.name=asgd\n"
    "                     (VALUE is parsed as JSON when it parses, else taken as a string)\n"
    "  --quiet            print only errors\n"
    "  --max-wall-s S     stop after S wall-clock seconds: status \"wall_limit\", exit code 4\n"
    "  --resume DIR       continue the run of DIR from DIR/checkpoint.dtck (written with\n"
    "                     training.checkpoint_every_samples) with DIR/config.resolved.json;\n"
    "                     outputs go to DIR or --out DIR2 (docs/robustness.md)\n"
    "  -h, --help         this help\n"
    "\n"
    "SIGINT/SIGTERM stop the run at its next simulated event: outputs are written with\n"
    "status \"interrupted\" and the exit code is 130/143 (a second signal kills at once). A NaN/Inf\n"
    "loss or parameter stops it with status \"diverged\" and exit code 3.\n";

struct Args {
  std::string command, config, out, resume;
  std::vector<std::string> sets;
  bool quiet = false, help = false;
  double max_wall_s = 0;  // 0: no wall-clock limit
  std::vector<std::pair<std::string, std::string>> routes;  // validate --route A,B
};


[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\nRun 'dtsim --help' for usage.\n", msg.c_str());
  std::exit(2);
}

double parse_seconds(const std::string& opt, const std::string& v) {
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used == v.size() && d > 0 && std::isfinite(d)) return d;
  } catch (const std::exception&) {
  }
  usage_error(opt + " needs a positive number of seconds, got '" + v + "'");
}

Args parse(int argc, char** argv) {
  Args a;
  if (argc < 2) usage_error("missing command");
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* opt) -> std::string {
      if (i + 1 >= argc) usage_error(std::string(opt) + " needs a value");
      return argv[++i];
    };
    if (s == "--help" || s == "-h") a.help = true;
    else if (s == "--quiet" || s == "-q") a.quiet = true;
    else if (s == "--out") a.out = value("--out");
    else if (s.rfind("--out=", 0) == 0) a.out = s.substr(6);
    else if (s == "--set") a.sets.push_back(value("--set"));
    else if (s == "--resume") a.resume = value("--resume");
    else if (s.rfind("--resume=", 0) == 0) a.resume = s.substr(9);
    else if (s == "--route" || s.rfind("--route=", 0) == 0) {
      const std::string v = s == "--route" ? value("--route") : s.substr(8);
      const auto comma = v.find(',');
      if (comma == std::string::npos || comma == 0 || comma + 1 == v.size())
        usage_error("--route needs two host names separated by a comma, e.g. --route worker-0,server-0");
      a.routes.emplace_back(v.substr(0, comma), v.substr(comma + 1));
    }
    else if (s == "--max-wall-s") a.max_wall_s = parse_seconds(s, value("--max-wall-s"));
    else if (s.rfind("--max-wall-s=", 0) == 0) a.max_wall_s = parse_seconds("--max-wall-s", s.substr(13));
    else if (s.rfind("--set=", 0) == 0) a.sets.push_back(s.substr(6));
    else if (!s.empty() && s[0] == '-') usage_error("unknown option '" + s + "'");
    else if (a.config.empty()) a.config = s;
    else usage_error("unexpected argument '" + s + "'");
  }
  return a;
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
  if (a.help) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  const bool resume = !a.resume.empty();
  if (resume && !a.config.empty())
    usage_error("run --resume DIR takes no CONFIG.json (it uses DIR/config.resolved.json), got '" + a.config + "'");
  if (resume && !a.sets.empty())
    usage_error("--set cannot be combined with --resume (the checkpoint belongs to DIR/config.resolved.json as it is)");
  if (!resume && a.config.empty()) usage_error("run needs a CONFIG.json");
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
  std::optional<sim::Checkpoint> ck;
  if (resume) {
    ck = sim::read_checkpoint(ckpt_file);
    const std::string h = sim::config_hash(io::read_file(resolved_file));
    if (ck->config_hash != h)
      throw InputError(ckpt_file, "", "written for a different config (config hash " + ck->config_hash + ", " +
                                          resolved_file + " has " + h + "): refusing to resume");
  }
  const std::string dir = !a.out.empty() ? a.out : resume ? a.resume : x.output.dir;
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
  if (a.help) {
    std::puts("Usage: dtsim validate CONFIG.json [--set KEY=VALUE]... [--route HOST,HOST]...\n\nLoads and checks the config, its platform, "
              "model, dataset and algorithm; runs nothing. Exit 0 if valid, 2 otherwise.\nPrints a summary of the platform "
              "(hosts per role, bisection bandwidth, stragglers, failures); --route worker-0,server-0\nalso prints the links "
              "and latency of the route between two hosts (docs/platforms.md).\nA sweep's STUDY.json (an object with \"base\") "
              "is checked like `dtsim sweep --dry-run`: every run's config.");
    return 0;
  }
  if (a.config.empty()) usage_error("validate needs a CONFIG.json");
  if (is_study_file(a.config)) return validate_study(a.config, a.sets);  // a sweep's STUDY.json
  sim::Experiment x = sim::load_experiment(a.config, a.sets);
  const std::string platform = sim::platform_summary(x.platform, a.routes);  // sim/platform.cpp
  std::printf("%s: valid\n", a.config.c_str());
  std::fputs(platform.c_str(), stdout);
  std::printf("  training   %s, batch %d, %llu samples, dataset %s\n", x.algorithm.c_str(), x.training.batch_size,
              static_cast<unsigned long long>(x.training.samples), x.dataset.kind.c_str());
  return 0;
}

int cmd_algorithms() {
  for (const auto& a : algo::registry()) {
    std::printf("%s\n  %s\n", a.name.c_str(), a.summary.c_str());
    size_t kw = 0, dw = 0;  // column widths of this algorithm's keys and defaults
    for (const auto& p : a.params) kw = std::max(kw, p.key.size()), dw = std::max(dw, p.default_value.size());
    for (const auto& p : a.params)
      std::printf("    %-*s  %-*s  %s\n", static_cast<int>(kw), p.key.c_str(), static_cast<int>(dw), p.default_value.c_str(),
                  p.doc.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dtsim::cli::start_signal_thread();  // before any other thread exists (tools/dtsim/signals.hpp)
  auto logger = spdlog::stderr_color_mt("dtsim");
  logger->set_pattern("[%^%l%$] %v");
  spdlog::set_default_logger(logger);
  if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc >= 2 && !std::strcmp(argv[1], "--version")) {
    std::puts("dtsim " DTSIM_VERSION);
    return 0;
  }
  try {
    if (argc >= 2 && !std::strcmp(argv[1], "sweep")) return cmd_sweep(argc, argv);
    if (argc >= 2 && !std::strcmp(argv[1], "profile")) return cmd_profile(argc, argv);
    const Args a = parse(argc, argv);
    if (a.command == "run") return cmd_run(a);
    if (a.command == "validate") return cmd_validate(a);
    if (a.command == "algorithms") return cmd_algorithms();
    std::string msg = "unknown command '" + a.command + "'";
    if (auto near = nearest_key(a.command, {"run", "validate", "algorithms", "sweep", "profile"})) msg += " (did you mean '" + *near + "'?)";
    usage_error(msg);
  } catch (const InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const RuntimeError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 1;
  }
}
