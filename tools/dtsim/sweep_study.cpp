// dtsim sweep: STUDY.json -> the list of runs (docs/sweeps.md, "The study file").
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
// Each run gets its own directory <out>/runs/<cell>, named from the varied values.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "sim/config.hpp"
#include "tools/dtsim/commands.hpp"
#include "tools/dtsim/sweep.hpp"

namespace fs = std::filesystem;

namespace dtsim::sweep {
namespace {

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

std::string Run::label() const {
  std::string s;
  for (const auto& [k, v] : assign) s += (s.empty() ? "" : ", ") + k + "=" + value_text(v);
  if (seed) s += (s.empty() ? "" : ", ") + std::string("seed=") + std::to_string(*seed);
  return s;
}

namespace {

// A value as a short, filesystem-safe piece of a directory name.
uint64_t fnv1a(const std::string& s) { return dtsim::fnv1a(std::string_view(s)); }  // common/hash.hpp

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

// A value's piece of a directory name. A value with nothing printable in it ([], {}, "", "!?")
// would leave "key-" (safe() trims the '_' it becomes): "empty", or a hash of the value.
std::string value_part(const std::string& text, const json& v) {
  const std::string s = safe(text, 40);
  if (std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c); })) return s;
  const bool empty = v.is_string() ? v.get_ref<const std::string&>().empty() : (v.is_array() || v.is_object()) && v.empty();
  return empty ? "empty" : "h" + hex8(fnv1a(v.dump()));
}

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
  if (key.find('=') != std::string::npos)
    at.fail("'" + key + "' is not a dotted config key: the values go in the list, not after '='");
}

// Relative paths in an experiment document made absolute against `dir`: every key that names a
// file (sim/config.cpp): the platform, an inline platform's straggler traces, the dataset, an
// ONNX model, an algorithm plugin, a compute profile.
void absolutize_paths(json& doc, const std::string& dir) {
  auto absolutize = [&](json& v) {
    if (v.is_string()) v = fs::absolute(io::resolve_relative(dir, v.get<std::string>())).lexically_normal().string();
  };
  auto at = [&](std::initializer_list<const char*> path) -> json* {
    json* v = &doc;
    for (const char* k : path) {
      if (!v->is_object() || !v->contains(k)) return nullptr;
      v = &(*v)[k];
    }
    return v;
  };
  // A platform that is no file next to the study is a shipped platform's name ("star-10g-8.json",
  // sim/shipped.hpp): left as written, the run's loader finds it (made absolute, it could not).
  if (json* v = at({"platform"}); v && v->is_string() && io::file_exists(io::resolve_relative(dir, v->get<std::string>())))
    absolutize(*v);
  if (json* v = at({"platform", "stragglers"}); v && v->is_array())
    for (auto& e : *v)
      if (e.is_object() && e.contains("trace")) absolutize(e["trace"]);
  for (auto path : {std::initializer_list<const char*>{"dataset", "path"}, {"model", "path"}, {"algorithm", "plugin"},
                    {"compute", "time", "file"}})
    if (json* v = at(path)) absolutize(*v);
}

// A varied value of an inline base's study, its relative paths made absolute against `dir` as the
// base's own are (the children run the base from the output directory).
json absolutize_value(const std::string& key, const json& value, const std::string& dir) {
  json doc = json::object();
  sim::apply_override(doc, key + "=" + value.dump());  // the value at its dotted key, as a run gets it
  absolutize_paths(doc, dir);
  std::string pointer;  // RFC 6901: '~' and '/' inside a key escaped, '.' between keys
  for (const char c : key) pointer += c == '~' ? "~0" : c == '/' ? "~1" : c == '.' ? "/" : std::string(1, c);
  return doc.at(json::json_pointer("/" + pointer));
}

}  // namespace

Study read_study(const std::string& file, const std::string& out_override, const std::vector<std::string>& base_sets) {
  Study st;
  st.file = file;
  st.dir = io::dirname(file);
  const std::string text = io::read_file(file);
  json doc = parse_json_document(text, file);
  if (!doc.is_object()) throw InputError(file, "", "expected a JSON object (a study), got " + json_type_name(doc));
  if (!doc.contains("base") && !doc.contains("vary") &&
      (doc.contains("platform") || doc.contains("algorithm") || doc.contains("model")))
    throw InputError(file, "", "this is an experiment, not a study (it has no \"base\" and \"vary\"): run it with 'dtsim run " +
                                   file + "', or make it a study's \"base\" (docs/sweeps.md)");
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
    if (std::error_code ec; fs::is_directory(p, ec)) borigin.fail("'" + p + "' is a directory, not an experiment file");
    if (!io::file_exists(p)) borigin.fail("experiment file '" + p + "' does not exist");
    st.base_file = fs::absolute(p).lexically_normal().string();
  } else if (bv->is_object()) {
    st.base_doc = *bv;
    // Relative paths in an inline base are relative to the study file: made absolute, since the
    // children run a copy of it from the output directory (varied values too, below).
    absolutize_paths(st.base_doc, st.dir);
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
    for (size_t i = 0; i < list.size(); ++i)  // 2 and 2.0 are one value (as 0.1 and 1e-1 are)
      if (!seen.insert(list[i].is_number() ? json(list[i].get<double>()).dump() : list[i].dump()).second)
        at.index(i).fail("duplicate value " + list[i].dump());
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
  if (st.out.empty()) r.fail("out", "must not be empty (the output directory; default results/<name>)");
  if (!out_override.empty()) st.out = out_override;
  if (std::error_code ec; fs::exists(st.out, ec) && !fs::is_directory(st.out, ec)) {  // found before any run, not after
    if (!out_override.empty()) throw InputError("--out", "", "'" + st.out + "' is not a directory");
    r.fail("out", "'" + st.out + "' is not a directory");
  }

  // ---- plot options (passed to tools/plot.py; the target and the baseline are checked against
  // the runs below, before any of them runs, not by the plots after all of them)
  std::optional<std::pair<std::string, JsonOrigin>> plot_target, plot_baseline;
  {
    auto p = r.object("plot");
    if (auto t = p.opt_number("target_accuracy")) {
      if (!(*t > 0 && *t <= 1)) p.fail("target_accuracy", "an accuracy must be in (0, 1]");
      char b[32];
      std::snprintf(b, sizeof b, "%g", *t);
      st.plot_args.insert(st.plot_args.end(), {"--target", b});
      plot_target = {b, p.origin().child("target_accuracy")};
    }
    if (auto b = p.opt_string("baseline")) {
      st.plot_args.insert(st.plot_args.end(), {"--baseline", *b});
      plot_baseline = {*b, p.origin().child("baseline")};
    }
    if (auto g = p.child("regime")) {
      const auto& [gv, gat] = *g;
      if (!gv->is_array() || gv->size() != 2 || !(*gv)[0].is_string() || !(*gv)[1].is_string())
        gat.fail("expected two keys of \"vary\", e.g. [\"platform.workers.link.bandwidth\", \"platform.stragglers\"]");
      for (size_t i = 0; i < 2; ++i)
        if (!vv->contains((*gv)[i].get<std::string>())) gat.index(i).fail("not a key of \"vary\"");
      if ((*gv)[0] == (*gv)[1]) gat.index(1).fail("the same key as regime[0]: the map needs two different keys");
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
      for (const auto& kk : a.keys)
        pt.push_back(st.base_doc.is_null() ? (*vv)[kk][i] : absolutize_value(kk, (*vv)[kk][i], st.dir));
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
    for (const auto& v : (*vv)[k]) {  // named as written, also in the form the runs get (absolute paths)
      value_names[k][v.dump()] = name_text(v, count[name_text(v)] > 1);
      if (!st.base_doc.is_null()) value_names[k][absolutize_value(k, v, st.dir).dump()] = value_names[k][v.dump()];
    }
  }
  // --set KEY=VALUE applies to every run: before the varied keys, except a key inside a varied
  // object (--set algorithm.overlap.kind=none with "algorithm" varied), which goes after it (else
  // the cell's whole object would drop it). A key the study varies itself is a contradiction.
  std::vector<std::string> sets_before, sets_after;
  for (const auto& set : base_sets) {
    if (set.find('=') == std::string::npos || set.front() == '=')  // as `dtsim run` says it, not as a run's error
      throw InputError("--set", set, "expected KEY=VALUE with a dotted KEY, e.g. platform.workers.count=16");
    const std::string key = set.substr(0, set.find('='));
    bool inside = false;
    for (const auto& k : st.keys) {
      if (key == k)
        throw InputError(file, "vary." + k, "--set " + set + " sets a key this study varies: every run would get the same value (drop the --set, or change the study)");
      inside = inside || key.rfind(k + ".", 0) == 0;
    }
    (inside ? sets_after : sets_before).push_back(set);
  }
  std::vector<size_t> idx(st.axes.size(), 0);
  std::map<std::string, size_t> names;
  std::set<std::string> algorithms;  // of the runs, for plot.baseline
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
      run.sets = sets_before;
      // A key inside another varied key (algorithm.lr with algorithm) goes after it, whatever the
      // order written, or the outer value would replace it (as --set inside a varied object).
      std::vector<std::pair<std::string, json>> ordered = assign;
      std::stable_sort(ordered.begin(), ordered.end(), [](const auto& x, const auto& y) {
        return std::count(x.first.begin(), x.first.end(), '.') < std::count(y.first.begin(), y.first.end(), '.');
      });
      for (const auto& [k, v] : ordered) run.sets.push_back(k + "=" + v.dump());
      run.sets.insert(run.sets.end(), sets_after.begin(), sets_after.end());
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
      const sim::Experiment x = load(run.sets);
      const std::string resolved = x.resolved.dump(2) + "\n";  // as `dtsim run` writes it
      run.resolved_hash = dtsim::fnv1a(std::string_view(resolved));
      run.resolved_size = resolved.size();
      if (st.runs.empty()) {
        st.config0 = flatten_config(x.resolved);
      } else {
        const auto mine = flatten_config(x.resolved);
        for (const auto& [k, v] : st.config0)
          if (auto it = mine.find(k); it == mine.end()) run.config_diff.emplace_back(k, std::nullopt);
          else if (it->second != v) run.config_diff.emplace_back(k, it->second);
        for (const auto& [k, v] : mine)
          if (!st.config0.count(k)) {
            run.config_diff.emplace_back(k, v);
            if (std::find(st.config_extra.begin(), st.config_extra.end(), k) == st.config_extra.end()) st.config_extra.push_back(k);
          }
      }
      algorithms.insert(x.algorithm);
      if (plot_target) {
        bool has = false;
        for (double a : x.training.target_accuracy) {
          char b[32];
          std::snprintf(b, sizeof b, "%g", a);
          has = has || plot_target->first == b;
        }
        if (!has)
          plot_target->second.fail(plot_target->first + " is not among the training.target_accuracy of run " +
                                   std::to_string(st.runs.size() + 1) + " of " + std::to_string(total) + " (" + (assign.empty() ? "the base" : run.label()) +
                                   "): its time to accuracy is not measured");
      }
      for (std::string w : x.warnings) {  // an inline base's warnings name the study, as its errors do
        if (inline_base_file && w.rfind(*inline_base_file + ": ", 0) == 0)
          w = file + ": base." + w.substr(inline_base_file->size() + 2);
        run.warnings.push_back(std::move(w));
      }
      // What the cell will cost, to schedule the largest first (MPI): the simulated events and
      // the gradients computed grow with the sample budget, the events also with the workers.
      run.cost = static_cast<double>(x.training.samples) * std::max(1, x.platform.workers.count);
      std::string name;
      for (const auto& [k, v] : assign) name += (name.empty() ? "" : "_") + safe(labels.at(k), 40) + "-" + value_part(value_names[k][v.dump()], v);
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
  if (plot_baseline && !algorithms.count(plot_baseline->first.substr(0, plot_baseline->first.find(" (")))) {
    std::string have;
    for (const auto& a : algorithms) have += (have.empty() ? "" : ", ") + a;
    plot_baseline->second.fail("'" + plot_baseline->first + "' is not the algorithm of any run (the runs': " + have + ")");
  }
  // Distinct values that sanitise to the same name: tell them apart by a hash of the assignment.
  for (auto& run : st.runs) {
    if (names[run.name] > 1) run.name = safe(run.name, 190) + "~" + hex8(fnv1a(run.label()));
    run.dir = (fs::path(st.out) / "runs" / run.name).string();
  }
  return st;
}

void write_base(const Study& st) {
  if (!st.base_doc.is_null()) io::atomic_write(st.base_file, st.base_doc.dump(2) + "\n");
}

namespace {
// Each distinct warning with the indices of the runs that have it, in the order first met.
std::vector<std::pair<std::string, std::vector<size_t>>> distinct_warnings(const Study& st) {
  std::vector<std::pair<std::string, std::vector<size_t>>> out;
  for (size_t i = 0; i < st.runs.size(); ++i)
    for (const std::string& w : st.runs[i].warnings) {
      auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == w; });
      if (it == out.end()) it = out.insert(out.end(), {w, {}});
      if (it->second.empty() || it->second.back() != i) it->second.push_back(i);
    }
  return out;
}
}  // namespace

size_t study_warnings_count(const Study& st) { return distinct_warnings(st).size(); }

std::string study_warnings_text(const Study& st) {
  std::string s;
  for (const auto& [w, runs] : distinct_warnings(st)) {
    s += "warning: " + w;
    if (runs.size() < st.runs.size()) {
      s += runs.size() == 1 ? " (run " : " (runs ";
      for (size_t k = 0; k < runs.size() && k < 10; ++k) s += (k ? ", " : "") + std::to_string(runs[k]);
      if (runs.size() > 10) s += ", ... (" + std::to_string(runs.size()) + " runs)";
      s += " of " + std::to_string(st.runs.size()) + ")";
    }
    s += "\n";
  }
  return s;
}

}  // namespace dtsim::sweep

// `dtsim validate STUDY.json`: a study file (an object with "base") is validated like a sweep's
// --dry-run: every cell's experiment is loaded and checked, nothing runs. Exit 0 or InputError.
bool dtsim::cli::is_study_file(const std::string& file) {
  try {
    const nlohmann::json doc = nlohmann::json::parse(dtsim::io::read_file(file), nullptr, /*allow_exceptions=*/false);
    return doc.is_object() && doc.contains("base") && !doc.contains("algorithm");
  } catch (const std::exception&) {
    return false;  // unreadable: the experiment loader reports it
  }
}

int dtsim::cli::validate_study(const std::string& file, const std::vector<std::string>& sets) {
  using namespace dtsim::sweep;
  Study st = read_study(file, "", sets);
  std::fputs(study_warnings_text(st).c_str(), stderr);  // also what `dtsim sweep` prints as it starts
  const size_t w = study_warnings_count(st);
  std::printf("%s: valid study '%s', %zu runs (every run's config checked%s)\n", file.c_str(), st.name.c_str(), st.runs.size(),
              w == 0 ? "" : ("; " + std::to_string(w) + (w == 1 ? " warning" : " warnings")).c_str());
  for (size_t i = 0; i < st.keys.size(); ++i) std::printf("  vary       %s\n", st.keys[i].c_str());
  return 0;
}

