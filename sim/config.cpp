#include "sim/config.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "algorithms/api.hpp"
#include "common/io.hpp"
#include "engine/model.hpp"

namespace dtsim::sim {

namespace fs = std::filesystem;

double PlatformSpec::slowdown(int worker) const {
  double f = 1;
  for (const auto& s : stragglers)
    if (std::find(s.workers.begin(), s.workers.end(), worker) != s.workers.end()) f *= s.slowdown;
  return f;
}

namespace {

// "line 3, column 7" from a byte offset.
std::string position(const std::string& text, size_t byte) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

json parse_json_file(const std::string& path) {
  const std::string text = io::read_file(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while ..."
    const auto colon = what.find(": ", what.find("parse error"));
    const std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
    throw InputError(path, "", "invalid JSON at " + position(text, e.byte == 0 ? 0 : e.byte - 1) + ": " + detail);
  }
}

LinkSpec read_link(ObjectReader r, const LinkSpec& def) {
  LinkSpec l;
  l.bandwidth = r.bandwidth("bandwidth", def.bandwidth);
  l.latency = r.duration("latency", def.latency);
  r.finish();
  return l;
}

HostGroupSpec read_group(ObjectReader r, bool is_server, PlatformSpec& p) {
  HostGroupSpec g;
  const int64_t count = is_server ? r.integer("count", 1) : r.integer("count");
  if (is_server ? count < 0 : count < 1)
    r.fail("count", is_server ? "must not be negative, got " + std::to_string(count)
                              : "must be at least 1, got " + std::to_string(count));
  if (count > 1000000) r.fail("count", "at most 1000000 hosts per group, got " + std::to_string(count));
  g.count = static_cast<int>(count);
  g.speed = r.speed("speed", 1e12);
  g.link = read_link(r.object("link"), LinkSpec{10e9 / 8, 10e-6});
  if (is_server) {
    p.update_flops_per_param = r.number("update_flops_per_param", 4.0);
    r.require_non_negative("update_flops_per_param", p.update_flops_per_param);
  }
  r.finish();
  return g;
}

PlatformSpec read_platform(ObjectReader r) {
  PlatformSpec p;
  p.file = r.origin().file;
  {
    auto net = r.object("network");
    p.network = net.choice("model", {"lv08", "exact"}, "lv08") == "exact" ? PlatformSpec::Network::Exact
                                                                        : PlatformSpec::Network::Lv08;
    net.finish();
  }
  {
    auto topo = r.object("topology");
    p.topology = topo.choice("kind", {"star"}, "star");
    if (topo.has("backbone")) p.backbone = read_link(topo.object("backbone"), LinkSpec{100e9 / 8, 1e-6});
    topo.finish();
  }
  p.workers = read_group(r.object("workers", true), false, p);
  p.servers = read_group(r.object("servers"), true, p);
  if (auto st = r.child("stragglers")) {
    const auto& [arr, origin] = *st;
    if (!arr->is_array()) origin.fail("expected a list of stragglers, got " + json_type_name(*arr));
    json resolved = json::array();
    for (size_t i = 0; i < arr->size(); ++i) {
      json res;
      ObjectReader s((*arr)[i], origin.index(i), &res);
      StragglerSpec spec;
      for (int64_t w : s.integer_list("workers")) {
        if (w < 0 || w >= p.workers.count)
          s.fail("workers", "worker index " + std::to_string(w) + " out of range [0, " +
                                std::to_string(p.workers.count - 1) + "]");
        spec.workers.push_back(static_cast<int>(w));
      }
      spec.slowdown = s.number("slowdown");
      s.require_positive("slowdown", spec.slowdown);
      s.finish();
      p.stragglers.push_back(spec);
      resolved.push_back(res);
    }
    r.set_resolved("stragglers", resolved);
  } else {
    r.set_resolved("stragglers", json::array());
  }
  r.finish();
  return p;
}

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// Finds "<dir>/<base>" or "<dir>/<base>.gz".
std::optional<std::string> find_idx(const std::string& dir, const std::string& base) {
  for (const std::string& cand : {dir + "/" + base + ".gz", dir + "/" + base})
    if (io::file_exists(cand)) return cand;
  return std::nullopt;
}

// Number of records in an IDX file, from its header only.
uint64_t idx_count(const std::string& file, const JsonOrigin& origin) {
  gzFile f = gzopen(file.c_str(), "rb");
  if (!f) origin.fail("cannot open " + file);
  unsigned char h[8];
  const int n = gzread(f, h, 8);
  gzclose(f);
  if (n != 8 || h[0] != 0 || h[1] != 0 || h[2] != 0x08) origin.fail(file + ": not an IDX ubyte file");
  return (uint64_t{h[4]} << 24) | (uint64_t{h[5]} << 16) | (uint64_t{h[6]} << 8) | uint64_t{h[7]};
}

DatasetSpec read_dataset(ObjectReader r, const std::string& base_dir) {
  DatasetSpec d;
  d.origin = r.origin();
  d.kind = r.choice("kind", {"fashion-mnist", "mnist", "synthetic"});
  if (d.kind == "synthetic") {
    const int64_t train = r.integer("train", 4096), test = r.integer("test", 1024);
    const int64_t features = r.integer("features", 64), classes = r.integer("classes", 10);
    if (train < 1) r.fail("train", "must be at least 1");
    if (test < 1) r.fail("test", "must be at least 1");
    if (features < 1 || features > 1000000) r.fail("features", "must be in [1, 1000000]");
    if (classes < 2 || classes > 100000) r.fail("classes", "must be in [2, 100000]");
    d.synthetic_train = static_cast<size_t>(train);
    d.synthetic_test = static_cast<size_t>(test);
    d.synthetic_features = static_cast<int>(features);
    d.synthetic_classes = static_cast<int>(classes);
  } else {
    auto path = d.kind == "fashion-mnist" ? r.string("path", kFashionDir) : r.string("path");
    d.path = io::resolve_relative(base_dir, path);
    r.set_resolved("path", d.path);
    std::error_code ec;
    if (!fs::is_directory(d.path, ec))
      r.fail("path", "dataset directory '" + d.path + "' does not exist" +
                         (d.kind == "fashion-mnist" ? " (install the Debian package dataset-fashion-mnist)" : ""));
    for (const char* base : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                             "t10k-labels-idx1-ubyte"})
      if (!find_idx(d.path, base)) r.fail("path", std::string("missing ") + base + "[.gz] in '" + d.path + "'");
  }
  r.finish();
  return d;
}

uint64_t train_size(const DatasetSpec& d) {
  if (d.kind == "synthetic") return d.synthetic_train;
  return idx_count(*find_idx(d.path, "train-labels-idx1-ubyte"), d.origin.child("path"));
}

TrainingSpec read_training(ObjectReader r, uint64_t train_n) {
  TrainingSpec t;
  t.train_size = train_n;
  const int64_t b = r.integer("batch_size", 32);
  if (b < 1 || b > 1000000) r.fail("batch_size", "must be in [1, 1000000], got " + std::to_string(b));
  t.batch_size = static_cast<int>(b);
  const bool has_epochs = r.has("epochs"), has_samples = r.has("samples");
  if (has_epochs && has_samples) r.fail("samples", "give either 'epochs' or 'samples', not both");
  if (has_samples) {
    const int64_t s = r.integer("samples");
    if (s < 1) r.fail("samples", "must be at least 1");
    t.samples = static_cast<uint64_t>(s);
  } else {
    const double e = r.number("epochs", 1.0);
    if (!(e > 0) || e > 1e6) r.fail("epochs", "must be in (0, 1e6]");
    t.samples = static_cast<uint64_t>(std::llround(e * static_cast<double>(train_n)));
    if (t.samples == 0) t.samples = 1;
  }
  r.set_resolved("samples", t.samples);
  const int64_t ev = r.integer("eval_every_samples", static_cast<int64_t>(std::max<uint64_t>(1, t.samples / 10)));
  if (ev < 0) r.fail("eval_every_samples", "must not be negative (0: evaluate only at the end)");
  t.eval_every_samples = static_cast<uint64_t>(ev);
  const int64_t sub = r.integer("eval_train_subset", 5000);
  if (sub < 0) r.fail("eval_train_subset", "must not be negative");
  t.eval_train_subset = static_cast<size_t>(sub);
  t.target_accuracy = r.number_list("target_accuracy", std::vector<double>{});
  for (size_t i = 0; i < t.target_accuracy.size(); ++i)
    if (!(t.target_accuracy[i] > 0 && t.target_accuracy[i] <= 1))
      r.origin().child("target_accuracy").index(i).fail("an accuracy must be in (0, 1]");
  if (auto m = r.opt_duration("max_time_s")) {
    if (!(*m > 0)) r.fail("max_time_s", "must be positive");
    t.max_time_s = *m;
  }
  r.finish();
  return t;
}

ComputeSpec read_compute(ObjectReader r) {
  ComputeSpec c;
  c.real = r.choice("mode", {"real", "timing-only"}, "real") == "real";
  {
    auto t = r.object("time");
    const std::string kind = t.choice("kind", {"flops", "fixed"}, "flops");
    if (kind == "fixed") {
      c.time = ComputeSpec::Time::Fixed;
      c.fixed_seconds = t.duration("seconds");
    } else {
      c.time = ComputeSpec::Time::Flops;
    }
    t.finish();
  }
  const std::string dev = r.choice("device", {"cpu", "reference", "cuda", "auto"}, "cpu");
  if (dev == "cuda") r.fail("device", "the cuda backend is not built into this binary");
  c.device = dev == "reference" ? engine::Device::Reference : engine::Device::Cpu;
  const int64_t th = r.integer("threads", 1);
  if (th < 1 || th > 1024) r.fail("threads", "must be in [1, 1024]");
  c.threads = static_cast<int>(th);
  r.finish();
  return c;
}

OutputSpec read_output(ObjectReader r, const std::string& name) {
  OutputSpec o;
  o.dir = r.string("dir", "results/" + name);
  if (auto t = r.child("trace")) {
    const json& v = *t->first;
    if (v.is_boolean()) o.trace = v.get<bool>() ? OutputSpec::Trace::On : OutputSpec::Trace::Off;
    else if (v.is_string() && v.get<std::string>() == "auto") o.trace = OutputSpec::Trace::Auto;
    else t->second.fail("expected true, false or \"auto\", got " + v.dump());
  } else {
    r.set_resolved("trace", "auto");
  }
  const int64_t me = r.integer("trace_max_events", 500000);
  if (me < 0) r.fail("trace_max_events", "must not be negative");
  o.trace_max_events = static_cast<uint64_t>(me);
  r.finish();
  return o;
}

std::string stem(const std::string& file) { return fs::path(file).stem().string(); }

}  // namespace

void apply_override(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("--set", assignment, "expected KEY=VALUE with a dotted KEY, e.g. platform.workers.count=16");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;  // not JSON: a plain string
  }
  json* cur = &doc;
  size_t start = 0;
  std::string walked;
  while (true) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw InputError("--set", key, "empty component in dotted key");
    walked += (walked.empty() ? "" : ".") + part;
    if (!cur->is_object()) throw InputError("--set", walked, "cannot set a key inside " + json_type_name(*cur));
    if (dot == std::string::npos) {
      (*cur)[part] = value;
      // Two spellings of one setting: overriding one replaces the other.
      static const std::vector<std::pair<std::string, std::string>> exclusive = {
          {"training.samples", "epochs"}, {"training.epochs", "samples"}};
      for (const auto& [k, other] : exclusive)
        if (key == k) cur->erase(other);
      return;
    }
    cur = &(*cur)[part];
    if (cur->is_null()) *cur = json::object();
    start = dot + 1;
  }
}

std::pair<engine::SampleShape, int> dataset_shape(const DatasetSpec& d) {
  if (d.kind == "synthetic") return {engine::SampleShape{d.synthetic_features, 1, 1}, d.synthetic_classes};
  return {engine::SampleShape{1, 28, 28}, 10};
}

engine::Dataset load_dataset(const DatasetSpec& d, uint64_t seed) {
  if (d.kind == "synthetic")
    return engine::make_synthetic(d.synthetic_train, d.synthetic_test, d.synthetic_features, d.synthetic_classes, seed);
  try {
    return engine::load_mnist_dir(d.kind, d.path);
  } catch (const InputError& e) {
    d.origin.child("path").fail(e.what());
  }
}

Experiment load_experiment_json(json doc, const std::string& file, const std::string& base_dir,
                                const std::vector<std::string>& overrides) {
  Experiment x;
  x.file = file;
  if (!doc.is_object()) throw InputError(file, "", "expected a JSON object at the top level, got " + json_type_name(doc));
  // Inline the platform first, so that --set can reach into it.
  std::string platform_file = file;
  std::string platform_path = "platform";
  if (doc.contains("platform") && doc["platform"].is_string()) {
    platform_file = io::resolve_relative(base_dir, doc["platform"].get<std::string>());
    if (!io::file_exists(platform_file))
      throw InputError(file, "platform", "platform file '" + platform_file + "' does not exist");
    doc["platform"] = parse_json_file(platform_file);
    platform_path = "";
  }
  for (const auto& o : overrides) apply_override(doc, o);

  json& res = x.resolved;
  ObjectReader r(doc, {file, ""}, &res);
  x.name = r.string("name", stem(file.empty() ? "experiment" : file));
  if (x.name.empty() || x.name.find('/') != std::string::npos || x.name == "." || x.name == "..")
    r.fail("name", "must be a non-empty file name (no '/')");
  const int64_t seed = r.integer("seed", 1);
  if (seed < 0) r.fail("seed", "must not be negative");
  x.seed = static_cast<uint64_t>(seed);

  {
    r.accept("platform");
    if (!doc.contains("platform")) r.fail("platform", "missing required key (a platform object or a path to one)");
    res["platform"] = json::object();
    ObjectReader pr(doc["platform"], {platform_file, platform_path}, &res["platform"]);
    x.platform = read_platform(std::move(pr));
  }
  x.dataset = read_dataset(r.object("dataset", true), base_dir);
  const auto [shape, classes] = dataset_shape(x.dataset);
  {
    auto mr = r.object("model", true);
    engine::ComputeOptions opts;
    auto model = engine::make_model(mr, shape, classes, opts);  // validates; cheap (no buffers)
    mr.finish();
    if (x.platform.servers.count > 0 && static_cast<size_t>(x.platform.servers.count) > model->num_params())
      throw InputError(platform_file, platform_path.empty() ? "servers.count" : "platform.servers.count",
                       "more server shards than model parameters (" + std::to_string(model->num_params()) + ")");
    x.model = res["model"];
  }
  {
    auto ar = r.object("algorithm", true);
    x.algorithm = ar.string("name");
    const auto* info = algo::find_algorithm(x.algorithm);
    if (!info) {
      std::vector<std::string> names;
      for (const auto& a : algo::registry()) names.push_back(a.name);
      std::string reason = "unknown algorithm '" + x.algorithm + "'";
      if (auto near = nearest_key(x.algorithm, names)) reason += " (did you mean '" + *near + "'?)";
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      ar.fail("name", reason + "; available: " + list);
    }
    auto algorithm = info->make(ar);  // validates its keys and fills the defaults
    ar.finish();
    if (algorithm->needs_servers() && x.platform.servers.count < 1)
      throw InputError(platform_file, platform_path.empty() ? "servers.count" : "platform.servers.count",
                       "algorithm '" + x.algorithm + "' needs at least one parameter server");
    x.algorithm_spec = res["algorithm"];
  }
  x.training = read_training(r.object("training"), train_size(x.dataset));
  x.compute = read_compute(r.object("compute"));
  x.output = read_output(r.object("output"), x.name);
  r.finish();
  return x;
}

Experiment load_experiment(const std::string& file, const std::vector<std::string>& overrides) {
  return load_experiment_json(parse_json_file(file), file, io::dirname(file), overrides);
}

}  // namespace dtsim::sim
