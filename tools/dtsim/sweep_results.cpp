// dtsim sweep: results.csv (one row per cell) and the plots (docs/sweeps.md, "What it writes").
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "tools/dtsim/signals.hpp"
#include "tools/dtsim/sweep.hpp"

namespace fs = std::filesystem;

namespace dtsim::sweep {
namespace {

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

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
// the varied key). Lists count as one value (compact JSON). Columns: the first run's keys (sorted),
// then the keys it lacks in the order later runs have them; from each run's difference to the
// first (Run::config_diff), read_study's record.
std::vector<std::map<std::string, std::string>> config_columns(const Study& st, std::vector<std::string>& cols) {
  std::vector<std::map<std::string, std::string>> out(st.runs.size());
  std::set<std::string> differs;
  for (const Run& r : st.runs)
    for (const auto& [k, v] : r.config_diff) differs.insert(k);
  std::vector<std::string> order;
  for (const auto& [k, v] : st.config0) order.push_back(k);
  order.insert(order.end(), st.config_extra.begin(), st.config_extra.end());
  std::vector<std::string> shown;
  for (const auto& k : order)
    if (differs.count(k) && k != "name" && k.rfind("output.", 0) != 0) shown.push_back(k);
  for (const auto& k : shown) cols.push_back("config." + k);
  for (size_t i = 0; i < st.runs.size(); ++i) {
    std::map<std::string, std::optional<std::string>> diff(st.runs[i].config_diff.begin(), st.runs[i].config_diff.end());
    for (const auto& k : shown) {
      std::optional<std::string> v;
      if (auto d = diff.find(k); d != diff.end()) v = d->second;
      else if (auto b = st.config0.find(k); b != st.config0.end()) v = b->second;
      if (v) out[i]["config." + k] = *v;
    }
  }
  return out;
}

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

}  // namespace

std::map<std::string, std::string> flatten_config(const json& resolved) {
  std::map<std::string, std::string> out;
  std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& prefix) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
      if (it->is_object()) walk(*it, key);
      else out[key] = it->is_array() ? it->dump() : scalar_text(*it);
    }
  };
  walk(resolved, "");
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
        const std::string text =
            o.summary.empty() ? io::read_file((fs::path(run.dir) / "summary.json").string()) : o.summary;
        flatten(json::parse(text), "", flat);
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

std::string write_results(const Study& st, const std::vector<Outcome>& outcomes) {
  const std::string csv = (fs::path(st.out) / "results.csv").string();
  io::atomic_write(csv, results_csv(st, outcomes));
  return csv;
}

void print_final_line(const Study& st, const std::vector<Outcome>& outcomes, const std::string& csv, const std::string& note) {
  size_t done = 0, skipped = 0, failed = 0;
  for (const auto& o : outcomes) {
    done += o.state == Outcome::State::Done;
    skipped += o.state == Outcome::State::Skipped;
    failed += o.state == Outcome::State::Failed;
  }
  std::fprintf(stderr, "sweep %s: %zu runs: %zu ran, %zu already complete, %zu failed%s%s; results: %s\n", st.name.c_str(),
               outcomes.size(), done, skipped, failed, note.c_str(),
               stop_requested() ? ", the rest not run (run the same command to resume)" : "", csv.c_str());
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

}  // namespace dtsim::sweep
