// dtsim sweep — a study: a grid of experiments, each run as its own `dtsim run` process.
//
//   dtsim sweep STUDY.json [--jobs N] [--out DIR] [--set KEY=VALUE]... [--plot] [--dry-run] [--quiet]
//
// STUDY.json:
//   {"name": "scaling",                       optional (default: the file's stem)
//    "base": "experiment.json" | {...},        the experiment every cell starts from
//    "vary": {"algorithm.name": ["ssgd", "asgd"], "platform.workers.count": [1, 2, 4, 8]},
//    "zip": [["a.b", "c.d"]],                  optional: keys of `vary` that advance together
//    "repeat": 3,                              optional: seeds seed, seed+1, ... per cell
//    "out": "results/scaling",                 optional (default results/<name>)
//    "plot": {"target_accuracy": 0.8, "baseline": "ssgd", "regime": ["k1", "k2"]},  optional
//    "description": "..."}                     optional, free text
//
// The whole study is validated before anything runs: every run's config goes through the same
// loader as `dtsim run` with its overrides, and an invalid one is an InputError naming the cell.
// Each run gets its own directory <out>/runs/<cell>, named from the varied values. A run whose
// summary.json exists and whose config.resolved.json equals this study's config for it is
// skipped (a sweep is resumable). results.csv (one row per run) is written atomically at the end,
// also after SIGINT/SIGTERM (running children are killed; exit 128 + signal).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "common/units.hpp"
#include "sim/config.hpp"
#include "tools/dtsim/signals.hpp"

namespace fs = std::filesystem;

namespace dtsim::sweep {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "Usage: dtsim sweep STUDY.json [--jobs N] [--out DIR] [--set KEY=VALUE]... [--plot] [--dry-run] [--quiet]\n"
    "\n"
    "Runs a study: the grid of experiments given by STUDY.json's \"vary\" (dotted config keys -> lists of\n"
    "values), \"zip\" (keys that advance together) and \"repeat\" (seeds seed, seed+1, ...), each as its own\n"
    "`dtsim run` process, in parallel. Every run is validated first (exit 2 names the invalid cell).\n"
    "Runs already complete with the same config are skipped, so an interrupted sweep resumes.\n"
    "Writes DIR/results.csv (one row per run: the varied keys, status, run_dir, error and every scalar\n"
    "of summary.json) and DIR/runs/<cell>/ for each run. Exit 1 if any run failed.\n"
    "\n"
    "Options:\n"
    "  --jobs N           runs at the same time (default: the number of cores)\n"
    "  --out DIR          output directory (default: the study's \"out\", else results/<name>)\n"
    "  --set KEY=VALUE    override the base experiment for every run (before the varied keys)\n"
    "  --plot             then draw the plots with tools/plot.py into DIR/plots/\n"
    "  --dry-run          validate and list the runs; run nothing\n"
    "  --quiet            print only errors and the final line\n"
    "  -h, --help         this help\n"
    "Documentation: docs/sweeps.md, docs/plots.md.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\nRun 'dtsim sweep --help' for usage.\n", msg.c_str());
  std::exit(2);
}

// ------------------------------------------------------------------ the study
struct Axis {
  std::vector<std::string> keys;          // one key, or a zip group
  std::vector<std::vector<json>> values;  // values[i][k]: the i-th point of key k
};

struct Run {
  std::vector<std::pair<std::string, json>> assign;  // varied key -> value (vary order)
  std::optional<uint64_t> seed;                      // set when repeat > 1
  std::string name;                                  // directory name
  std::vector<std::string> sets;                     // --set arguments for `dtsim run`
  std::string resolved;                              // config.resolved.json the run must produce
  std::string dir;                                   // <out>/runs/<name>
  std::string label() const {
    std::string s;
    for (const auto& [k, v] : assign) s += (s.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    if (seed) s += (s.empty() ? "" : ", ") + std::string("seed=") + std::to_string(*seed);
    return s;
  }
};

struct Study {
  std::string file, dir, name, out;
  std::string base_file;  // what the children run (absolute)
  json base_doc;          // set for an inline base: written to base_file before running
  std::vector<std::string> keys;  // varied keys, in the study's order
  std::vector<Axis> axes;
  int64_t repeat = 1;
  std::vector<std::string> plot_args;
  std::vector<Run> runs;
};

json parse_text(const std::string& text, const std::string& file) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    std::string what = e.what();
    const auto colon = what.find(": ", what.find("parse error"));
    throw InputError(file, "", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                                   (colon == std::string::npos ? what : what.substr(colon + 2)));
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    throw InputError(file, "", "invalid JSON: " + json_error_detail(e));
  }
}

// A value as a short, filesystem-safe piece of a directory name.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex8(uint64_t h) {
  char b[17];
  std::snprintf(b, sizeof b, "%08llx", static_cast<unsigned long long>(h & 0xffffffffull));
  return b;
}

std::string safe(const std::string& raw, size_t max_len) {
  std::string s;
  for (char c : raw) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-') ? c : '_';
  // squeeze runs of '_' and trim them at both ends
  std::string t;
  for (char c : s)
    if (!(c == '_' && (t.empty() || t.back() == '_'))) t += c;
  while (!t.empty() && t.back() == '_') t.pop_back();
  if (t.empty()) t = "_";
  if (t[0] == '.' || t[0] == '-') t = "_" + t;
  if (t.size() > max_len) t = t.substr(0, max_len - 9) + "~" + hex8(fnv1a(raw));
  return t;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// How a value appears in a directory name: an object by its "name" or "kind" (e.g. a whole
// algorithm or model section), anything else by its text. Collisions get a hash (see read_study).
// With `settings`, also its other members, to tell apart two values of one key with the same
// name (e.g. ssgd and ssgd_comm-allreduce).
std::string name_text(const json& v, bool settings = false) {
  if (v.is_object())
    for (const char* k : {"name", "kind"})
      if (v.contains(k) && v[k].is_string()) {
        std::string s = v[k].get<std::string>();
        if (settings)
          for (auto it = v.begin(); it != v.end(); ++it)
            if (it.key() != k) s += "_" + it.key() + "-" + (it->is_primitive() ? value_text(*it) : hex8(fnv1a(it->dump())));
        return s;
      }
  return value_text(v);
}

// Column label of each varied key in directory names: its last two components (or all), made
// longer until no two keys share a label.
std::map<std::string, std::string> short_labels(const std::vector<std::string>& keys) {
  auto parts = [](const std::string& k) {
    std::vector<std::string> p;
    size_t s = 0;
    while (true) {
      const auto d = k.find('.', s);
      p.push_back(k.substr(s, d == std::string::npos ? std::string::npos : d - s));
      if (d == std::string::npos) break;
      s = d + 1;
    }
    return p;
  };
  auto suffix = [&](const std::string& k, size_t n) {
    auto p = parts(k);
    n = std::min(n, p.size());
    std::string s;
    for (size_t i = p.size() - n; i < p.size(); ++i) s += (s.empty() ? "" : ".") + p[i];
    return s;
  };
  std::map<std::string, size_t> len;
  for (const auto& k : keys) len[k] = 2;
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::string, std::vector<std::string>> by;
    for (const auto& k : keys) by[suffix(k, len[k])].push_back(k);
    for (auto& [lab, ks] : by)
      if (ks.size() > 1)
        for (const auto& k : ks)
          if (len[k] < parts(k).size()) { ++len[k]; changed = true; }
  }
  std::map<std::string, std::string> out;
  for (const auto& k : keys) out[k] = suffix(k, len[k]);
  return out;
}

void check_dotted(const std::string& key, const JsonOrigin& at) {
  if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
    at.fail("'" + key + "' is not a dotted config key (e.g. platform.workers.count)");
}

Study read_study(const std::string& file, const std::string& out_override, const std::vector<std::string>& base_sets) {
  Study st;
  st.file = file;
  st.dir = io::dirname(file);
  const std::string text = io::read_file(file);
  json doc = parse_text(text, file);
  if (!doc.is_object()) throw InputError(file, "", "expected a JSON object (a study), got " + json_type_name(doc));
  // The order of "vary" as written (nlohmann::json sorts keys).
  std::vector<std::string> order;
  {
    auto od = nlohmann::ordered_json::parse(text);
    if (od.contains("vary") && od["vary"].is_object())
      for (auto it = od["vary"].begin(); it != od["vary"].end(); ++it) order.push_back(it.key());
  }

  ObjectReader r(doc, {file, ""});
  {  // unknown keys first: a typo of a required key gets "did you mean", not "missing"
    ObjectReader keys(doc, {file, ""});
    for (const char* k : {"name", "description", "base", "vary", "zip", "repeat", "out", "plot"}) keys.accept(k);
    keys.finish();
  }
  st.name = r.string("name", fs::path(file).stem().string());
  if (st.name.empty() || st.name.find('/') != std::string::npos || st.name == "." || st.name == "..")
    r.fail("name", "must be a non-empty file name (no '/')");
  r.opt_string("description");

  // ---- base
  auto base = r.child("base");
  if (!base) r.fail("base", "missing required key (an experiment file or an inline experiment)");
  const auto& [bv, borigin] = *base;
  std::optional<std::string> inline_base_file;
  if (bv->is_string()) {
    std::string p = io::resolve_relative(st.dir, bv->get<std::string>());
    if (!io::file_exists(p)) borigin.fail("experiment file '" + p + "' does not exist");
    st.base_file = fs::absolute(p).lexically_normal().string();
  } else if (bv->is_object()) {
    st.base_doc = *bv;
    // Relative paths in an inline base are relative to the study file: make them absolute, since
    // the children run a copy of it from the output directory.
    auto absolutize = [&](json& v) {
      if (v.is_string()) v = fs::absolute(io::resolve_relative(st.dir, v.get<std::string>())).lexically_normal().string();
    };
    if (st.base_doc.contains("platform")) absolutize(st.base_doc["platform"]);
    if (st.base_doc.contains("dataset") && st.base_doc["dataset"].is_object() && st.base_doc["dataset"].contains("path"))
      absolutize(st.base_doc["dataset"]["path"]);
    if (!st.base_doc.contains("name")) st.base_doc["name"] = st.name;
  } else {
    borigin.fail("expected an experiment file name or an inline experiment object, got " + json_type_name(*bv));
  }

  // ---- vary
  auto vary = r.child("vary");
  if (!vary) r.fail("vary", "missing required key (an object of dotted config keys -> lists of values)");
  const auto& [vv, vorigin] = *vary;
  if (!vv->is_object()) vorigin.fail("expected an object of dotted config keys -> lists of values, got " + json_type_name(*vv));
  if (vv->empty()) vorigin.fail("nothing to vary: give at least one dotted key with a list of values");
  if (order.size() != vv->size()) {  // duplicate keys in the text: fall back to sorted order
    order.clear();
    for (auto it = vv->begin(); it != vv->end(); ++it) order.push_back(it.key());
  }
  for (const auto& k : order) {
    const json& list = (*vv)[k];
    const JsonOrigin at = vorigin.child(k);
    check_dotted(k, at);
    if (!list.is_array()) at.fail("expected a list of values, got " + json_type_name(list));
    if (list.empty()) at.fail("empty list: give at least one value");
    std::set<std::string> seen;
    for (size_t i = 0; i < list.size(); ++i)
      if (!seen.insert(list[i].dump()).second) at.index(i).fail("duplicate value " + list[i].dump());
  }
  st.keys = order;

  // ---- zip
  std::vector<std::vector<std::string>> groups;
  if (auto z = r.child("zip")) {
    const auto& [zv, zorigin] = *z;
    if (!zv->is_array()) zorigin.fail("expected a list of key groups, e.g. [[\"a.b\", \"c.d\"]], got " + json_type_name(*zv));
    std::set<std::string> used;
    for (size_t g = 0; g < zv->size(); ++g) {
      const json& grp = (*zv)[g];
      const JsonOrigin gat = zorigin.index(g);
      if (!grp.is_array() || grp.size() < 2) gat.fail("expected a list of at least two keys of \"vary\"");
      std::vector<std::string> keys;
      for (size_t i = 0; i < grp.size(); ++i) {
        if (!grp[i].is_string()) gat.index(i).fail("expected a key of \"vary\", got " + json_type_name(grp[i]));
        const std::string k = grp[i].get<std::string>();
        if (!vv->contains(k)) {
          std::string reason = "'" + k + "' is not a key of \"vary\"";
          if (auto near = nearest_key(k, order)) reason += " (did you mean '" + *near + "'?)";
          gat.index(i).fail(reason);
        }
        if (!used.insert(k).second) gat.index(i).fail("'" + k + "' is already in a zip group");
        if ((*vv)[k].size() != (*vv)[keys.empty() ? k : keys[0]].size())
          gat.index(i).fail("'" + k + "' has " + std::to_string((*vv)[k].size()) + " values but '" + keys[0] + "' has " +
                            std::to_string((*vv)[keys[0]].size()) + ": zipped keys need lists of equal length");
        keys.push_back(k);
      }
      groups.push_back(keys);
    }
  }

  // ---- repeat
  st.repeat = r.integer("repeat", 1);
  if (st.repeat < 1 || st.repeat > 100000) r.fail("repeat", "must be in [1, 100000], got " + std::to_string(st.repeat));
  if (st.repeat > 1 && vv->contains("seed")) r.fail("repeat", "cannot repeat over seeds while \"vary\" sets \"seed\"");

  // ---- out
  st.out = r.string("out", "results/" + st.name);
  if (!out_override.empty()) st.out = out_override;

  // ---- plot options (passed to tools/plot.py)
  {
    auto p = r.object("plot");
    if (auto t = p.opt_number("target_accuracy")) {
      if (!(*t > 0 && *t <= 1)) p.fail("target_accuracy", "an accuracy must be in (0, 1]");
      char b[32];
      std::snprintf(b, sizeof b, "%g", *t);
      st.plot_args.insert(st.plot_args.end(), {"--target", b});
    }
    if (auto b = p.opt_string("baseline")) st.plot_args.insert(st.plot_args.end(), {"--baseline", *b});
    if (auto g = p.child("regime")) {
      const auto& [gv, gat] = *g;
      if (!gv->is_array() || gv->size() != 2 || !(*gv)[0].is_string() || !(*gv)[1].is_string())
        gat.fail("expected two keys of \"vary\", e.g. [\"platform.workers.link.bandwidth\", \"platform.stragglers\"]");
      for (size_t i = 0; i < 2; ++i)
        if (!vv->contains((*gv)[i].get<std::string>())) gat.index(i).fail("not a key of \"vary\"");
      st.plot_args.insert(st.plot_args.end(), {"--regime", (*gv)[0].get<std::string>(), (*gv)[1].get<std::string>()});
    }
    p.finish();
  }
  r.finish();

  // ---- axes: one per key, a zip group at the position of its first key
  std::set<std::string> placed;
  for (const auto& k : order) {
    if (placed.count(k)) continue;
    Axis a;
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& gr) { return std::count(gr.begin(), gr.end(), k); });
    a.keys = g == groups.end() ? std::vector<std::string>{k} : *g;
    for (const auto& kk : a.keys) placed.insert(kk);
    const size_t n = (*vv)[a.keys[0]].size();
    for (size_t i = 0; i < n; ++i) {
      std::vector<json> pt;
      for (const auto& kk : a.keys) pt.push_back((*vv)[kk][i]);
      a.values.push_back(pt);
    }
    st.axes.push_back(a);
  }
  size_t total = static_cast<size_t>(st.repeat);
  for (const auto& a : st.axes) {
    total *= a.values.size();
    if (total > 1000000) vorigin.fail("the grid has more than 1000000 runs");
  }

  if (st.base_file.empty()) st.base_file = fs::absolute(fs::path(st.out) / "base.json").lexically_normal().string();
  inline_base_file = st.base_doc.is_null() ? std::nullopt : std::optional<std::string>(st.base_file);

  // ---- the runs, first key slowest, repeats innermost; each validated
  const auto labels = short_labels(st.keys);
  std::map<std::string, std::map<std::string, std::string>> value_names;  // key -> value.dump() -> name
  for (const auto& k : order) {
    std::map<std::string, int> count;
    for (const auto& v : (*vv)[k]) count[name_text(v)]++;
    for (const auto& v : (*vv)[k]) value_names[k][v.dump()] = name_text(v, count[name_text(v)] > 1);
  }
  std::vector<size_t> idx(st.axes.size(), 0);
  std::map<std::string, size_t> names;
  for (size_t cell = 0; cell < total / static_cast<size_t>(st.repeat); ++cell) {
    std::vector<std::pair<std::string, json>> assign;
    for (size_t a = 0; a < st.axes.size(); ++a)
      for (size_t k = 0; k < st.axes[a].keys.size(); ++k) assign.emplace_back(st.axes[a].keys[k], st.axes[a].values[idx[a]][k]);
    std::sort(assign.begin(), assign.end(), [&](const auto& x, const auto& y) {
      return std::find(order.begin(), order.end(), x.first) < std::find(order.begin(), order.end(), y.first);
    });
    std::optional<uint64_t> base_seed;
    for (int64_t rep = 0; rep < st.repeat; ++rep) {
      Run run;
      run.assign = assign;
      run.sets = base_sets;
      for (const auto& [k, v] : assign) run.sets.push_back(k + "=" + v.dump());
      auto load = [&](const std::vector<std::string>& sets) {
        try {
          return st.base_doc.is_null() ? sim::load_experiment(st.base_file, sets)
                                       : sim::load_experiment_json(st.base_doc, st.base_file, io::dirname(st.base_file), sets);
        } catch (const InputError& e) {
          std::string inner = e.what();
          if (inline_base_file && e.file() == *inline_base_file)  // name the study, not the copy
            inner = InputError(file, "base" + (e.path().empty() ? "" : "." + e.path()), e.reason()).what();
          throw InputError(file, "", "run " + std::to_string(st.runs.size() + 1) + " of " + std::to_string(total) + " (" +
                                         (run.label().empty() ? "the base" : run.label()) + "): " + inner);
        }
      };
      if (st.repeat > 1) {
        if (!base_seed) base_seed = load(run.sets).seed;
        run.seed = *base_seed + static_cast<uint64_t>(rep);
        run.sets.push_back("seed=" + std::to_string(*run.seed));
      }
      run.resolved = load(run.sets).resolved.dump(2) + "\n";
      std::string name;
      for (const auto& [k, v] : assign) name += (name.empty() ? "" : "_") + safe(labels.at(k), 40) + "-" + safe(value_names[k][v.dump()], 40);
      if (run.seed) name += "_seed-" + std::to_string(*run.seed);
      name = safe(name, 200);
      run.name = name;
      names[name]++;
      st.runs.push_back(std::move(run));
    }
    for (size_t a = st.axes.size(); a-- > 0;) {  // odometer, last axis fastest
      if (++idx[a] < st.axes[a].values.size()) break;
      idx[a] = 0;
    }
  }
  // Distinct values that sanitise to the same name: tell them apart by a hash of the assignment.
  for (auto& run : st.runs) {
    if (names[run.name] > 1) run.name = safe(run.name, 190) + "~" + hex8(fnv1a(run.label()));
    run.dir = (fs::path(st.out) / "runs" / run.name).string();
  }
  return st;
}

// ------------------------------------------------------------------ running
// The first SIGINT/SIGTERM (tools/dtsim/signals.hpp), 0 while none came.
int stop_requested() { return dtsim::cli::stop_signal().load(); }

struct Outcome {
  enum class State { NotRun, Skipped, Done, Failed, Interrupted } state = State::NotRun;
  std::string error;  // one line, for results.csv
  double wall_s = 0;
};

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
    return io::read_file((d / "config.resolved.json").string()) == run.resolved;
  } catch (const std::exception&) {
    return false;
  }
}

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

// ------------------------------------------------------------------ results.csv
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos && (s.empty() || (s.front() != ' ' && s.back() != ' '))) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string scalar_text(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// Every scalar of summary.json; nested objects flattened with dots, lists left out.
void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object()) flatten(*it, key, out);
    else if (!it->is_array()) out.emplace_back(key, scalar_text(*it));
  }
}

// The resolved config's scalars that differ between the study's runs, as "config.<key>" columns:
// SI values whatever way they were set (e.g. the link bandwidth in B/s when the platform file is
// the varied key). Lists count as one value (compact JSON).
std::vector<std::map<std::string, std::string>> config_columns(const Study& st, std::vector<std::string>& cols) {
  std::vector<std::map<std::string, std::string>> per(st.runs.size());
  std::function<void(const json&, const std::string&, std::map<std::string, std::string>&)> walk =
      [&](const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
        for (auto it = j.begin(); it != j.end(); ++it) {
          const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
          if (it->is_object()) walk(*it, key, out);
          else out[key] = it->is_array() ? it->dump() : scalar_text(*it);
        }
      };
  std::vector<std::string> order;
  for (size_t i = 0; i < st.runs.size(); ++i) {
    walk(json::parse(st.runs[i].resolved), "", per[i]);
    for (const auto& [k, v] : per[i])
      if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
  }
  std::vector<std::map<std::string, std::string>> out(st.runs.size());
  for (const auto& k : order) {
    if (k == "name" || k.rfind("output.", 0) == 0) continue;
    bool differs = false;
    for (size_t i = 0; i < per.size() && !differs; ++i) {
      auto a = per[i].find(k), b = per[0].find(k);
      differs = (a == per[i].end()) != (b == per[0].end()) || (a != per[i].end() && a->second != b->second);
    }
    if (!differs) continue;
    cols.push_back("config." + k);
    for (size_t i = 0; i < per.size(); ++i)
      if (auto a = per[i].find(k); a != per[i].end()) out[i]["config." + k] = a->second;
  }
  return out;
}

std::string results_csv(const Study& st, const std::vector<Outcome>& outcomes) {
  std::vector<std::string> cols = st.keys;
  if (st.repeat > 1) cols.push_back("seed");
  for (const char* c : {"status", "run_dir", "error"}) cols.push_back(c);
  const auto config = config_columns(st, cols);
  const size_t fixed = cols.size();
  std::vector<std::map<std::string, std::string>> rows;
  for (size_t i = 0; i < st.runs.size(); ++i) {
    const Run& run = st.runs[i];
    const Outcome& o = outcomes[i];
    std::map<std::string, std::string> row = config[i];
    for (const auto& [k, v] : run.assign) row[k] = value_text(v);
    if (run.seed) row["seed"] = std::to_string(*run.seed);
    row["run_dir"] = (fs::path("runs") / run.name).string();
    row["error"] = o.error;
    switch (o.state) {
      case Outcome::State::NotRun: row["status"] = "not_run"; break;
      case Outcome::State::Failed: row["status"] = "failed"; break;
      case Outcome::State::Interrupted: row["status"] = "interrupted"; break;
      default: break;
    }
    if (o.state == Outcome::State::Done || o.state == Outcome::State::Skipped) {
      std::vector<std::pair<std::string, std::string>> flat;
      try {
        flatten(json::parse(io::read_file((fs::path(run.dir) / "summary.json").string())), "", flat);
      } catch (const std::exception& e) {
        row["status"] = "failed";
        row["error"] = std::string("unreadable summary.json: ") + e.what();
      }
      for (const auto& [k, v] : flat) {
        if (row.count(k) && k != "status") continue;  // a varied key is already a column
        row[k] = v;
        if (std::find(cols.begin() + static_cast<long>(fixed), cols.end(), k) == cols.end() &&
            std::find(cols.begin(), cols.begin() + static_cast<long>(fixed), k) == cols.begin() + static_cast<long>(fixed))
          cols.push_back(k);
      }
    }
    rows.push_back(std::move(row));
  }
  std::string out;
  for (size_t c = 0; c < cols.size(); ++c) out += (c ? "," : "") + csv_field(cols[c]);
  out += "\n";
  for (const auto& row : rows) {
    for (size_t c = 0; c < cols.size(); ++c) {
      auto it = row.find(cols[c]);
      out += (c ? "," : "") + csv_field(it == row.end() ? "" : it->second);
    }
    out += "\n";
  }
  return out;
}

// ------------------------------------------------------------------ plot.py
std::optional<std::string> find_plot_script() {
  std::vector<fs::path> cands;
  if (const char* env = std::getenv("DTSIM_PLOT_SCRIPT")) cands.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (const char* rel : {"../tools/plot.py", "../../tools/plot.py", "tools/plot.py", "../share/dtsim/plot.py"})
      cands.push_back(exe.parent_path() / rel);
#ifdef DTSIM_SOURCE_DIR
  cands.emplace_back(fs::path(DTSIM_SOURCE_DIR) / "tools/plot.py");
#endif
  for (const auto& c : cands)
    if (fs::is_regular_file(c, ec)) return fs::absolute(c).lexically_normal().string();
  return std::nullopt;
}

int run_plots(const Study& st, bool quiet) {
  const auto script = find_plot_script();
  if (!script) {
    std::fprintf(stderr, "error: --plot: cannot find tools/plot.py (set DTSIM_PLOT_SCRIPT)\n");
    return 1;
  }
  const std::string python = io::file_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::vector<std::string> args = {python, *script, "all", (fs::path(st.out) / "results.csv").string(), "--out",
                                   (fs::path(st.out) / "plots").string()};
  args.insert(args.end(), st.plot_args.begin(), st.plot_args.end());
  if (quiet) args.push_back("--quiet");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw RuntimeError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dtsim::cli::unblock_stop_signals_in_child();
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "error: --plot: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  std::fprintf(stderr, "error: --plot: tools/plot.py failed (%s %d)\n", WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return 1;
}

}  // namespace
}  // namespace dtsim::sweep

// `dtsim validate STUDY.json`: a study file (an object with "base") is validated like a sweep's
// --dry-run: every cell's experiment is loaded and checked, nothing runs. Exit 0 or InputError.
bool is_study_file(const std::string& file) {
  try {
    const nlohmann::json doc = nlohmann::json::parse(dtsim::io::read_file(file), nullptr, /*allow_exceptions=*/false);
    return doc.is_object() && doc.contains("base") && !doc.contains("algorithm");
  } catch (const std::exception&) {
    return false;  // unreadable: the experiment loader reports it
  }
}

int validate_study(const std::string& file, const std::vector<std::string>& sets) {
  using namespace dtsim::sweep;
  Study st = read_study(file, "", sets);
  std::printf("%s: valid study '%s', %zu runs (every run's config checked)\n", file.c_str(), st.name.c_str(), st.runs.size());
  for (size_t i = 0; i < st.keys.size(); ++i) std::printf("  vary       %s\n", st.keys[i].c_str());
  return 0;
}

int cmd_sweep(int argc, char** argv) {
  using namespace dtsim;
  using namespace dtsim::sweep;
  std::string study_file, out;
  std::vector<std::string> sets;
  long jobs = ::sysconf(_SC_NPROCESSORS_ONLN);
  bool plot = false, dry = false, quiet = false;
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&](const char* opt) -> std::string {
      if (i + 1 >= argc) usage_error(std::string(opt) + " needs a value");
      return argv[++i];
    };
    auto parse_jobs = [&](const std::string& v) {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 4096) usage_error("--jobs needs a whole number in [1, 4096], got '" + v + "'");
      jobs = n;
    };
    if (s == "--help" || s == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (s == "--jobs" || s == "-j") parse_jobs(value("--jobs"));
    else if (s.rfind("--jobs=", 0) == 0) parse_jobs(s.substr(7));
    else if (s == "--out") out = value("--out");
    else if (s.rfind("--out=", 0) == 0) out = s.substr(6);
    else if (s == "--set") sets.push_back(value("--set"));
    else if (s.rfind("--set=", 0) == 0) sets.push_back(s.substr(6));
    else if (s == "--plot") plot = true;
    else if (s == "--dry-run") dry = true;
    else if (s == "--quiet" || s == "-q") quiet = true;
    else if (!s.empty() && s[0] == '-') usage_error("unknown option '" + s + "'");
    else if (study_file.empty()) study_file = s;
    else usage_error("unexpected argument '" + s + "'");
  }
  if (study_file.empty()) usage_error("sweep needs a STUDY.json");
  if (jobs < 1) jobs = 1;

  Study st = read_study(study_file, out, sets);
  const size_t n = st.runs.size();
  std::vector<Outcome> outcomes(n);
  size_t skipped = 0;
  for (size_t i = 0; i < n; ++i)
    if (already_done(st.runs[i])) {
      outcomes[i].state = Outcome::State::Skipped;
      ++skipped;
    }

  if (dry) {
    std::printf("%s: valid, %zu runs (%zu already complete) into %s/\n", study_file.c_str(), n, skipped, st.out.c_str());
    for (size_t i = 0; i < n; ++i)
      std::printf("  %s  %s%s\n", st.runs[i].name.c_str(), st.runs[i].label().c_str(),
                  outcomes[i].state == Outcome::State::Skipped ? "  (complete)" : "");
    return 0;
  }
  if (!st.base_doc.is_null()) io::atomic_write(st.base_file, st.base_doc.dump(2) + "\n");

  dtsim::cli::arm_graceful_stop();  // the first SIGINT/SIGTERM stops the sweep cleanly, a second kills it

  const bool tty = !quiet && ::isatty(STDERR_FILENO);
  if (!quiet)
    std::fprintf(stderr, "sweep %s: %zu runs (%zu already complete), %ld at a time, into %s/\n", st.name.c_str(), n, skipped,
                 std::min<long>(jobs, static_cast<long>(std::max<size_t>(1, n - skipped))), st.out.c_str());

  struct Child {
    pid_t pid;
    size_t run;
    Clock::time_point start;
  };
  std::vector<Child> running;
  size_t next = 0, finished = 0, failed = 0;
  double wall_sum = 0;
  const auto t_start = Clock::now();
  auto status_line = [&] {
    if (!tty) return;
    const size_t todo = n - skipped;
    std::string eta = "?";
    if (finished > 0) {
      const size_t left = todo - finished;
      const double per = wall_sum / static_cast<double>(finished);
      eta = units::format_duration(per * static_cast<double>(left) / static_cast<double>(jobs));
    }
    std::fprintf(stderr, "\r\033[K  %zu/%zu runs done, %zu running, %zu failed, elapsed %s, ETA %s", finished + skipped, n,
                 running.size(), failed,
                 units::format_duration(std::chrono::duration<double>(Clock::now() - t_start).count()).c_str(), eta.c_str());
    std::fflush(stderr);
  };
  auto clear_line = [&] {
    if (tty) std::fprintf(stderr, "\r\033[K");
  };
  auto report = [&](size_t i) {
    const Run& run = st.runs[i];
    const Outcome& o = outcomes[i];
    if (quiet && o.state != Outcome::State::Failed) return;
    clear_line();
    char head[64];
    std::snprintf(head, sizeof head, "[%zu/%zu]", finished + skipped, n);
    if (o.state == Outcome::State::Failed) {
      std::fprintf(stderr, "%s FAILED %s (%s): %s\n", head, run.name.c_str(), run.label().c_str(), o.error.c_str());
      for (const auto& l : tail_lines((fs::path(run.dir) / "dtsim.log").string(), 5)) std::fprintf(stderr, "    | %s\n", l.c_str());
    } else {
      std::fprintf(stderr, "%s done %s (%s)\n", head, run.name.c_str(), units::format_duration(o.wall_s).c_str());
    }
  };

  auto reap = [&](pid_t pid, int status) {
    auto it = std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == pid; });
    if (it == running.end()) return;
    Outcome& o = outcomes[it->run];
    o.wall_s = std::chrono::duration<double>(Clock::now() - it->start).count();
    const Run& run = st.runs[it->run];
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && io::file_exists((fs::path(run.dir) / "summary.json").string());
    if (ok) {
      o.state = Outcome::State::Done;
    } else if (stop_requested()) {
      o.state = Outcome::State::Interrupted;
      o.error = "interrupted";
    } else {
      o.state = Outcome::State::Failed;
      std::string why = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                          : "killed by signal " + std::to_string(WTERMSIG(status));
      const auto tail = tail_lines((fs::path(run.dir) / "dtsim.log").string(), 1);
      if (!tail.empty()) why += ": " + tail.back();
      o.error = why;
      ++failed;
    }
    const size_t idx = it->run;
    running.erase(it);
    if (o.state != Outcome::State::Interrupted) {
      ++finished;
      wall_sum += o.wall_s;
      report(idx);
    }
  };

  while (true) {
    while (!stop_requested() && running.size() < static_cast<size_t>(jobs) && next < n) {
      const size_t i = next++;
      if (outcomes[i].state == Outcome::State::Skipped) continue;
      running.push_back({launch(st.runs[i], st.base_file), i, Clock::now()});
    }
    if (running.empty() || stop_requested()) break;
    status_line();
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      reap(pid, status);
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a signal is seen within 50 ms
  }

  if (stop_requested()) {
    clear_line();
    std::fprintf(stderr, "sweep: %s: stopping %zu running runs\n", stop_requested() == SIGINT ? "interrupted" : "terminated",
                 running.size());
    for (const auto& c : running) ::kill(-c.pid, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    while (!running.empty()) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        reap(pid, status);
        continue;
      }
      if (Clock::now() > deadline)
        for (const auto& c : running) ::kill(-c.pid, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  clear_line();

  const std::string csv = (fs::path(st.out) / "results.csv").string();
  io::atomic_write(csv, results_csv(st, outcomes));
  size_t done = 0;
  for (const auto& o : outcomes) done += o.state == Outcome::State::Done;
  std::fprintf(stderr, "sweep %s: %zu runs: %zu ran, %zu already complete, %zu failed%s; results: %s\n", st.name.c_str(), n,
               done, skipped, failed, stop_requested() ? ", the rest not run (run the same command to resume)" : "", csv.c_str());
  if (stop_requested()) return 128 + stop_requested();
  int rc = failed ? 1 : 0;
  if (plot && run_plots(st, quiet) != 0) rc = 1;
  return rc;
}
