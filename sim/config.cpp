#include "sim/config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <set>

#include "algorithms/api.hpp"
#include "algorithms/clip.hpp"
#include "algorithms/plugin_loader.hpp"
#include "common/io.hpp"
#include "sim/dataset_config.hpp"
#include "sim/failures.hpp"
#include "sim/shipped.hpp"
#include "sim/preflight.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/dataset.hpp"
#include "engine/devices.hpp"
#include "engine/profile.hpp"
#include "engine/profile_model.hpp"
#include "engine/text.hpp"
#include "engine/model.hpp"

namespace dtsim::sim {

namespace fs = std::filesystem;

namespace {

json parse_json_file(const std::string& path) { return parse_json_document(io::read_file(path), path); }

// A host speed: a flop rate (1e12, "10Tf") or a device of the catalog (traces/devices.json,
// engine/devices.hpp): "v100" = its peak fp32 rate x its efficiency factor.
double speed_or_device(ObjectReader& r, const std::string& key, double def, std::string* device = nullptr) {
  if (r.has(key) && r.raw().at(key).is_string()) {
    const std::string v = r.raw().at(key).get<std::string>();
    const bool numeric = !v.empty() && (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '.' || v[0] == '+');
    if (!numeric) {
      r.accept(key);
      if (const engine::DeviceSpec* d = engine::find_device(v)) {
        r.set_resolved(key, v);
        if (device) *device = d->name;
        return d->speed();
      }
      std::string lowered = v, list;
      std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string reason = "unknown device '" + v + "'";
      if (auto near = nearest_key(lowered, engine::device_names())) reason += " (did you mean '" + *near + "'?)";
      for (const auto& n : engine::device_names()) list += (list.empty() ? "" : ", ") + n;
      r.fail(key, reason + "; devices (traces/devices.json): " + list + "; or a flop rate such as \"10Tf\"");
    }
  }
  return r.speed(key, def);
}

// One group of hosts: count, speed and NIC. (Platform readers: sim/platform_spec.cpp.)
HostGroupSpec read_one_group(ObjectReader& r, bool is_server, const HostGroupSpec& def) {
  HostGroupSpec g;
  const int64_t count = is_server ? r.integer("count", 1) : r.integer("count");
  if (is_server ? count < 0 : count < 1)
    r.fail("count", is_server ? "must not be negative, got " + std::to_string(count)
                              : "must be at least 1, got " + std::to_string(count));
  if (count > 1000000) r.fail("count", "at most 1000000 hosts per group, got " + std::to_string(count));
  g.count = static_cast<int>(count);
  g.speed = speed_or_device(r, "speed", def.speed, &g.device);
  g.link = read_link(r.object("link"), def.link);
  if (!is_server) {  // layer-wise timing (docs/timing.md)
    g.memory_bandwidth = r.bandwidth("memory_bandwidth", def.memory_bandwidth);
    r.require_positive("memory_bandwidth", g.memory_bandwidth);
    g.overlap_slowdown = r.number("overlap_slowdown", def.overlap_slowdown);
    r.require_non_negative("overlap_slowdown", g.overlap_slowdown);
  }
  return g;
}

HostGroupSpec read_group(ObjectReader r, bool is_server, PlatformSpec& p) {
  // Workers: 1 Tflop/s and a 10 Gb/s, 10 us NIC unless given. Servers: the workers' speed and NIC
  // (group 0's when heterogeneous), key by key (docs/platforms.md).
  HostGroupSpec def;
  def.speed = is_server ? p.workers.speed : 1e12;
  def.link = is_server ? p.workers.link : LinkSpec{10e9 / 8, 10e-6};
  HostGroupSpec g;
  if (!is_server) p.group_identical = r.choice("grouping", {"none", "identical"}, "none") == "identical";
  if (!is_server && r.has("groups")) {
    // Heterogeneous workers: {"groups": [{"count": 4, "speed": ..., "link": ...}, ...]}, ranks in
    // group order; a top-level "link" is every group's default NIC.
    for (const char* k : {"count", "speed"})
      if (r.has(k)) r.fail(k, "give either 'groups' or a single group's 'count'/'speed', not both");
    HostGroupSpec base = def;
    base.link = read_link(r.object("link"), def.link);
    base.memory_bandwidth = r.bandwidth("memory_bandwidth", def.memory_bandwidth);
    base.overlap_slowdown = r.number("overlap_slowdown", def.overlap_slowdown);
    auto c = r.child("groups");
    if (!c->first->is_array() || c->first->empty())
      c->second.fail(c->first->is_array() ? std::string("expected a non-empty list of worker groups, got an empty list")
                                          : "expected a non-empty list of worker groups, got " + json_type_name(*c->first));
    json resolved = json::array();
    int64_t total = 0;
    for (size_t i = 0; i < c->first->size(); ++i) {
      json res;
      ObjectReader gr((*c->first)[i], c->second.index(i), &res);
      HostGroupSpec one = read_one_group(gr, false, base);
      gr.finish();
      total += one.count;
      if (total > 1000000) gr.fail("count", "at most 1000000 workers in all, got " + std::to_string(total));
      p.worker_groups.push_back(one);
      resolved.push_back(res);
    }
    r.set_resolved("groups", resolved);
    g = p.worker_groups.front();
    g.count = static_cast<int>(total);
  } else {
    g = read_one_group(r, is_server, def);
    if (!is_server) p.worker_groups = {g};
  }
  if (is_server) {
    p.update_flops_per_param = r.number("update_flops_per_param", 4.0);
    r.require_non_negative("update_flops_per_param", p.update_flops_per_param);
    const std::string placement = r.choice("placement", {"dedicated", "colocated"}, "dedicated");
    p.placement = placement == "colocated" ? PlatformSpec::Placement::Colocated : PlatformSpec::Placement::Dedicated;
    if (p.placement == PlatformSpec::Placement::Colocated)
      for (const char* k : {"speed", "link"})
        if (r.raw().contains(k))
          r.fail(k, "not used with placement 'colocated': shard k runs on worker-<floor(k*N/K)> and uses its CPU and NIC");
    const json* link = r.raw().contains("link") ? &r.raw().at("link") : nullptr;
    if (!r.raw().contains("speed")) p.servers_inherited.push_back("speed");
    if (!link || !link->contains("bandwidth")) p.servers_inherited.push_back("NIC bandwidth");
    if (!link || !link->contains("latency")) p.servers_inherited.push_back("NIC latency");
  }
  r.finish();
  return g;
}

PlatformSpec read_platform(ObjectReader r, const std::string& base_dir) {
  PlatformSpec p;
  p.file = r.origin().file;
  {
    auto net = r.object("network");
    p.network = net.choice("model", {"lv08", "exact"}, "lv08") == "exact" ? PlatformSpec::Network::Exact
                                                                        : PlatformSpec::Network::Lv08;
    p.loopback_bandwidth = net.bandwidth("loopback_bandwidth", 100e9);
    net.finish();
  }
  p.workers = read_group(r.object("workers", true), false, p);
  p.servers = read_group(r.object("servers"), true, p);
  p.base_dir = base_dir;  // relative trace paths resolve against the platform file's directory
  read_topology(r.object("topology"), p);
  read_collective(r, p);
  read_stragglers(r, p);
  read_failures(r, p);
  check_platform(r, p);
  r.finish();
  return p;
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
  // The resolved config must load again as it is (dtsim run --resume, reruns): keep only the
  // budget in samples, which is what "epochs" (given, or its default of 1) resolved to.
  if (!has_samples)
    if (json* res = r.resolved()) res->erase("epochs");
  const int64_t ev = r.integer("eval_every_samples", static_cast<int64_t>(std::max<uint64_t>(1, t.samples / 10)));
  if (ev < 0) r.fail("eval_every_samples", "must not be negative (0: evaluate only at the end)");
  t.eval_every_samples = static_cast<uint64_t>(ev);
  const int64_t sub = r.integer("eval_train_subset", 5000);
  if (sub < 0) r.fail("eval_train_subset", "must not be negative");
  t.eval_train_subset = static_cast<size_t>(sub);
  t.target_loss = r.number_list("target_loss", std::vector<double>{});
  for (size_t i = 0; i < t.target_loss.size(); ++i)
    if (!(t.target_loss[i] > 0) || !std::isfinite(t.target_loss[i]))
      r.origin().child("target_loss").index(i).fail("a loss target must be a positive number");
  t.target_accuracy = r.number_list("target_accuracy", std::vector<double>{});
  for (size_t i = 0; i < t.target_accuracy.size(); ++i)
    if (!(t.target_accuracy[i] > 0 && t.target_accuracy[i] <= 1))
      r.origin().child("target_accuracy").index(i).fail("an accuracy must be in (0, 1]");
  if (auto m = r.opt_duration("max_time_s")) {
    if (!(*m > 0)) r.fail("max_time_s", "must be positive");
    t.max_time_s = *m;
  }
  const int64_t ck = r.integer("checkpoint_every_samples", 0);
  if (ck < 0) r.fail("checkpoint_every_samples", "must not be negative (0: no checkpoints)");
  t.checkpoint_every_samples = static_cast<uint64_t>(ck);
  r.finish();
  return t;
}

ComputeSpec read_compute(ObjectReader r, const std::string& base_dir) {
  ComputeSpec c;
  c.real = r.choice("mode", {"real", "timing-only"}, "real") == "real";
  {
    auto t = r.object("time");
    const std::string kind = t.choice("kind", {"flops", "fixed", "profile"}, "flops");
    if (kind == "fixed") {
      c.time = ComputeSpec::Time::Fixed;
      c.fixed_seconds = t.duration("seconds");
    } else if (kind == "profile" && !t.has("file")) {  // the model's own times ("kind": "profile" models):
      c.time = ComputeSpec::Time::Profile;               // filled in by load_experiment_json
    } else if (kind == "profile") {  // measured by `dtsim profile` (engine/profile.hpp)
      c.time = ComputeSpec::Time::Profile;
      c.profile_file = io::resolve_relative(base_dir, t.string("file"));
      t.set_resolved("file", c.profile_file);
      if (std::error_code ec; std::filesystem::is_directory(c.profile_file, ec))
        t.fail("file", "'" + c.profile_file + "' is a directory, not a compute profile");
      if (!io::file_exists(c.profile_file))
        t.fail("file", "compute profile '" + c.profile_file + "' does not exist (write one with `dtsim profile`)");
      try {
        const engine::ComputeProfile prof = engine::read_compute_profile(c.profile_file);
        c.profile_compute_s = prof.forward_s + prof.backward_s;
        c.profile_batch = prof.batch;
        c.profile_model_kind = prof.model_kind;
        c.profile_model = prof.model;
        c.profile_input = prof.input;
        c.profile_classes = prof.classes;
        c.profile_layers = prof.layers;
      } catch (const InputError& e) {
        t.fail("file", e.what());
      }
    } else {
      c.time = ComputeSpec::Time::Flops;
    }
    t.finish();
  }
  const std::string dev = r.choice("device", {"cpu", "reference", "cuda", "auto"}, "cpu");
  // cuda: the one GPU all simulated workers share (engine/cuda); auto: cuda when this binary has
  // the backend and a device is usable, else cpu.
  if (dev == "cuda" && !engine::cuda::built())
    r.fail("device", "this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
  if (dev == "cuda" && !engine::cuda::available())
    r.fail("device", "no usable CUDA device (" + engine::cuda::unavailable_reason() + ")");
  if (dev == "cuda" || (dev == "auto" && engine::cuda::available())) c.device = engine::Device::Cuda;
  else c.device = dev == "reference" ? engine::Device::Reference : engine::Device::Cpu;
  const int64_t th = r.integer("threads", 1);
  if (th < 1 || th > 1024) r.fail("threads", "must be in [1, 1024]");
  c.threads = static_cast<int>(th);
  // Simulated workers' gradients computed at once (engine/compute_pool.hpp): "auto" (0) or >= 1.
  if (auto p = r.child("pool")) {
    const json& v = *p->first;
    if (v.is_string() && v.get<std::string>() == "auto") c.pool = 0;
    else if (v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= 1024) c.pool = static_cast<int>(v.get<int64_t>());
    else p->second.fail("expected \"auto\" or an integer in [1, 1024], got " + v.dump());
  } else {
    r.set_resolved("pool", "auto");
  }
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
  } catch (const json::exception& e) {  // valid syntax, impossible value (1e999)
    throw InputError("--set", key, "invalid value '" + text + "': " + json_error_detail(e));
  }
  if (value.is_structured())
    if (auto dup = duplicate_key(text)) throw InputError("--set", key + (dup->front() == '[' ? "" : ".") + *dup, kDuplicateKey);
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

std::string checkpointable_list() {
  std::string names;
  for (const auto& a : algo::registry()) {
    json empty = json::object();
    ObjectReader r(empty, {"", "algorithm"});
    try {
      if (a.make(r)->checkpointable()) names += (names.empty() ? "" : ", ") + a.name;
    } catch (const std::exception&) {  // an algorithm without defaults for every key: not listed
    }
  }
  return "checkpointable algorithms: " + (names.empty() ? std::string("none") : names);
}

std::string not_checkpointable_reason(const std::string& name, const algo::Algorithm& algorithm) {
  const std::string why = algorithm.checkpoint_refusal();
  if (!why.empty()) return "algorithm '" + name + "' cannot checkpoint with these settings: " + why;
  return "algorithm '" + name + "' does not support checkpoint and resume (" + checkpointable_list() + ")";
}

// algorithm.overlap (docs/timing.md): how a step's communication is scheduled against its
// compute. The default follows the algorithm's per-step traffic (Algorithm::layer_comm): ddp for
// an all-reduce of gradients, per-tensor for pushes to servers, none where it does not apply.
OverlapSpec read_overlap(ObjectReader& ar, algo::Algorithm::LayerComm comm, const std::string& name,
                         std::vector<std::string>& warnings) {
  using C = algo::Algorithm::LayerComm;
  const bool allreduce = comm == C::AllReduce, ps = comm == C::SyncServer || comm == C::AsyncServer;
  const std::string def = allreduce ? "ddp" : ps ? "per-tensor" : "none";
  const bool given = ar.has("overlap");
  ObjectReader r = ar.object("overlap");
  const std::string kind = r.choice("kind", {"none", "ddp", "horovod", "per-tensor"}, def);
  OverlapSpec o;
  o.given = given;
  if (kind == "ddp") {
    o.kind = OverlapSpec::Kind::Ddp;
    o.bucket_cap_mb = r.number("bucket_cap_mb", o.bucket_cap_mb);
    r.require_positive("bucket_cap_mb", o.bucket_cap_mb);
    o.first_bucket_mb = r.number("first_bucket_mb", o.first_bucket_mb);
    r.require_positive("first_bucket_mb", o.first_bucket_mb);
  } else if (kind == "horovod") {
    o.kind = OverlapSpec::Kind::Horovod;
    o.fusion_mb = r.number("fusion_mb", o.fusion_mb);
    r.require_non_negative("fusion_mb", o.fusion_mb);
    o.cycle_ms = r.number("cycle_ms", o.cycle_ms);
    r.require_positive("cycle_ms", o.cycle_ms);
  } else if (kind == "per-tensor") {
    o.kind = OverlapSpec::Kind::PerTensor;
    o.priority = r.boolean("priority", o.priority);
    const int64_t split = r.integer("split_elements", static_cast<int64_t>(o.split_elements));
    if (split < 1) r.fail("split_elements", "must be at least 1, got " + std::to_string(split));
    o.split_elements = static_cast<uint64_t>(split);
  }
  r.finish();
  if (o.layerwise() && comm == C::None) {
    if (given)
      warnings.push_back("algorithm.overlap: '" + name + "' schedules its own exchanges (models between rounds, or values "
                         "computed after the step" + (algo::plugin_of(name).empty() ? ": docs/algorithms/" + name + ".md" : "") +
                         "): overlap \"" + kind + "\" has no effect; it runs as \"none\"");
    o.kind = OverlapSpec::Kind::None;
    r.set_resolved("kind", "none");
  }
  if (allreduce && o.kind == OverlapSpec::Kind::PerTensor)
    r.fail("kind", "'per-tensor' is a parameter-server scheme and '" + name + "' all-reduces its gradients: use ddp, horovod or none");
  if (ps && (o.kind == OverlapSpec::Kind::Ddp || o.kind == OverlapSpec::Kind::Horovod))
    r.fail("kind", "'" + kind + "' schedules all-reduces and '" + name + "' pushes to parameter servers: use per-tensor or none");
  return o;
}

Experiment load_experiment_json(json doc, const std::string& file, const std::string& base_dir,
                                const std::vector<std::string>& overrides, bool resolved) {
  Experiment x;
  x.file = file;
  std::vector<std::string> overlap_warnings;  // "algorithm.overlap: <reason>" (read_overlap)
  // Runs that need whole-vector exchanges are timed with "none": exit 2 when another kind was
  // asked for (at `path`), a warning when "none" replaces the algorithm's default.
  auto whole_vectors_only = [&](const std::string& path, const std::string& why) {
    if (!x.overlap.layerwise()) return;
    const std::string kind = x.overlap.name();
    if (x.overlap.given)
      throw InputError(file, path, why + ", which overlap \"" + kind + "\" does not keep: set algorithm.overlap {\"kind\": \"none\"}");
    overlap_warnings.push_back("algorithm.overlap: " + why + ", which the default \"" + kind +
                               "\" does not keep: this run uses \"none\"");
    x.overlap = OverlapSpec{};
    x.resolved["algorithm"]["overlap"] = json{{"kind", "none"}};
    x.algorithm_spec = x.resolved["algorithm"];
  };
  if (!doc.is_object()) throw InputError(file, "", "expected a JSON object at the top level, got " + json_type_name(doc));
  // A whole platform given by --set (a file, or an object; a sweep's "vary": {"platform": [...]})
  // replaces the experiment's first; dotted platform.* keys then apply on top of it.
  std::vector<std::string> rest;
  bool platform_set = false;
  for (const auto& o : overrides) {
    if (o.starts_with("platform=")) {
      apply_override(doc, o);
      platform_set = true;
    } else {
      rest.push_back(o);
    }
  }
  // Inline the platform first, so that --set can reach into it.
  std::string platform_file = file;
  std::string platform_path = "platform";
  if (doc.contains("platform") && doc["platform"].is_string()) {
    const std::string given = doc["platform"].get<std::string>();
    platform_file = io::resolve_relative(base_dir, given);
    if (platform_set && !io::file_exists(platform_file) && io::file_exists(given))
      platform_file = given;  // --set: a path from the current directory also
    if (!io::file_exists(platform_file)) {  // else one of dtsim's shipped platforms, by name (sim/shipped.hpp)
      std::string shipped = find_shipped(given);
      if (shipped.empty()) shipped = find_shipped("platforms/" + given);
      if (shipped.empty()) {
        std::error_code ec;
        const bool dir = std::filesystem::is_directory(platform_file, ec) || (platform_set && std::filesystem::is_directory(given, ec));
        throw InputError(platform_set ? "--set" : file, "platform",
                         dir ? "'" + given + "' is a directory, not a platform file"
                             : "platform file '" + platform_file + "' does not exist (nor is '" + given +
                                   "' one of dtsim's shipped platforms/)");
      }
      platform_file = shipped;
    }
    doc["platform"] = parse_json_file(platform_file);
    platform_path = "";
  }
  for (const auto& o : rest) apply_override(doc, o);

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
    x.platform = read_platform(std::move(pr), platform_path.empty() ? io::dirname(platform_file) : base_dir);
    // "bandwidth": 10 is 10 bytes/s: warn (a resolved config holds every quantity as a plain number).
    if (!resolved) plain_unit_warnings(doc["platform"], {platform_file, platform_path}, x.platform.warnings);
  }
  {  // a text dataset's sequence length defaults to the model's block_size (engine/text.hpp)
    int64_t model_block = 0;
    if (doc.contains("model") && doc["model"].is_object() && doc["model"].contains("block_size") &&
        doc["model"]["block_size"].is_number_integer())
      model_block = doc["model"]["block_size"].get<int64_t>();
    x.dataset = read_dataset(r.object("dataset", true), base_dir, model_block);
  }
  const auto [shape, classes] = dataset_shape(x.dataset);
  bool model_timing_only = false;
  size_t model_params = 0;
  std::vector<engine::LayerCost> model_layers;  // the layers layer-wise timing uses (ModelInfo::layers)
  // A profiled model's file (engine/profile_model.hpp) resolves against the config's directory.
  if (doc.contains("model") && engine::is_profile_spec(doc["model"]) && doc["model"].contains("path") &&
      doc["model"]["path"].is_string())
    doc["model"]["path"] = io::resolve_relative(base_dir, doc["model"]["path"].get<std::string>());
  {
    auto mr = r.object("model", true);
    // Language models and text go together (a classifier reads one label per sample). A classifier
    // given text is said before it is built for 1-channel "images" of one token (lenet5's "kernel 5x5
    // larger than the padded input 1x1"), when its kind is written (a profile's is in its file).
    auto text_needs_gpt = [&](const std::string& kind) {
      if (x.dataset.kind == "text" && kind != "gpt") throw InputError(file, "model.kind", "a text dataset needs a sequence model: \"gpt\"");
    };
    if (const json& m = doc["model"]; m.is_object() && m.contains("kind") && m["kind"].is_string() && !engine::is_profile_spec(m))
      text_needs_gpt(m["kind"].get<std::string>());
    const engine::ModelInfo model = engine::model_info(mr, shape, classes);  // validates; no buffers
    mr.finish();
    text_needs_gpt(model.kind);
    if (model.kind == "gpt" && x.dataset.kind != "text")
      throw InputError(file, "dataset.kind", "model 'gpt' reads token sequences: dataset.kind \"text\"");
    model_timing_only = model.timing_only;
    model_params = model.num_params;
    model_layers = model.layers;
    if (x.platform.servers.count > 0 && static_cast<size_t>(x.platform.servers.count) > model.num_params)
      throw InputError(platform_file, platform_path.empty() ? "servers.count" : "platform.servers.count",
                       "more server shards than model parameters (" + std::to_string(model.num_params) + ")");
    x.model = res["model"];
  }
  std::unique_ptr<algo::Algorithm> algorithm;  // kept for the checkpoint check below
  {
    auto ar = r.object("algorithm", true);
    // algorithm.plugin: a shared object with more algorithms (docs/plugins.md), relative to the
    // config. The resolved config names the plugin of a plugin algorithm however it was loaded
    // (also `--plugin`), so --resume and a sweep's runs load it again.
    if (const auto plugin = ar.opt_string("plugin")) {
      const std::string path = io::resolve_relative(base_dir, *plugin);
      ar.set_resolved("plugin", path);
      algo::load_plugin(path, file, "algorithm.plugin");
    }
    x.algorithm = ar.string("name");
    if (const std::string p = algo::plugin_of(x.algorithm); !p.empty()) ar.set_resolved("plugin", p);
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
    x.clip_grad_norm = algo::read_clip_grad_norm(ar);  // common to every algorithm (runtime applies it)
    algorithm = info->make(ar);  // validates its keys and fills the defaults
    algo::refuse_fixed_on_failure(ar, *info, *algorithm);  // algorithms/registry.cpp
    x.overlap = read_overlap(ar, algorithm->layer_comm(), x.algorithm, overlap_warnings);
    ar.finish();
    if (algorithm->needs_servers() && x.platform.servers.count < 1)
      throw InputError(platform_file, platform_path.empty() ? "servers.count" : "platform.servers.count",
                       "algorithm '" + x.algorithm + "' needs at least one parameter server");
    check_failures(x.platform, algorithm->on_failure(), x.algorithm, platform_path.empty() ? "" : "platform.");  // sim/failures.cpp
    x.algorithm_spec = res["algorithm"];
    // An algorithm that splits the model into `fragments` (Streaming DiLoCo) needs a parameter in
    // each: an empty fragment's exchange has nothing to average.
    if (const json& f = x.algorithm_spec.value("fragments", json());
        f.is_number_integer() && f.get<int64_t>() > static_cast<int64_t>(model_params))
      throw InputError(file, "algorithm.fragments",
                       "more fragments than model parameters (" + std::to_string(model_params) + ")");
    if (!x.platform.failures.empty()) whole_vectors_only("algorithm.overlap.kind", "platform.failures need whole-vector exchanges");
  }
  x.training = read_training(r.object("training"), train_size(x.dataset));
  // Text: the training-loss subset defaults to as many sequences as validation uses (5000
  // sequences of a language model would take longer to evaluate than many training steps).
  if (x.dataset.kind == "text" &&
      !(doc.contains("training") && doc["training"].is_object() && doc["training"].contains("eval_train_subset"))) {
    x.training.eval_train_subset = x.dataset.text_val_sequences > 0 ? x.dataset.text_val_sequences : 256;
    res["training"]["eval_train_subset"] = x.training.eval_train_subset;
  }
  if (x.training.checkpoint_every_samples > 0) {  // docs/robustness.md, "Checkpoint and resume"
    if (!algorithm->checkpointable())
      throw InputError(file, "training.checkpoint_every_samples", not_checkpointable_reason(x.algorithm, *algorithm));
    if (!x.platform.failures.empty())
      throw InputError(file, "training.checkpoint_every_samples", "checkpoints are not supported together with platform.failures");
    // A cut is taken between whole-vector exchanges (docs/robustness.md); layer-wise exchanges
    // in flight at a cut are not saved.
    whole_vectors_only("training.checkpoint_every_samples", "checkpoints cut between whole-vector exchanges");
  }
  x.compute = read_compute(r.object("compute"), base_dir);
  // ---- profiled models ("model": {"kind": "profile"}, engine/profile_model.hpp, docs/profiles.md):
  // their layer times are reported at the training batch, and compute.time.kind "profile" without
  // a file takes the model's own measured step (interpolated at the batch).
  if (engine::is_profile_spec(x.model)) {
    if (!doc["model"].contains("batch")) x.model["batch"] = res["model"]["batch"] = x.training.batch_size;
    const engine::ModelProfile prof = engine::read_model_profile(x.model.value("path", std::string()));
    if (x.compute.time == ComputeSpec::Time::Profile && x.compute.profile_file.empty()) {
      x.compute.profile_compute_s = prof.step_seconds(x.training.batch_size);
      x.compute.profile_batch = x.training.batch_size;
      x.compute.profile_model_kind = "profile";
    }
    if (x.compute.time == ComputeSpec::Time::Flops && !(prof.flops_per_sample() > 0))
      throw InputError(file, "compute.time.kind", "the model profile '" + prof.file +
                                                      "' records no FLOPs: use \"profile\" (its measured times) or \"fixed\"");
  } else if (x.compute.time == ComputeSpec::Time::Profile && x.compute.profile_file.empty()) {
    throw InputError(file, "compute.time.file", "missing required key (only a model of kind \"profile\" carries its own times)");
  }
  if (x.compute.time == ComputeSpec::Time::Profile && x.compute.profile_model_kind != x.model.value("kind", ""))
    throw InputError(file, "compute.time.file", "the profile '" + x.compute.profile_file + "' was measured for model '" +
                                                    x.compute.profile_model_kind + "', the config's model is '" +
                                                    x.model.value("kind", std::string()) + "'");
  if (x.compute.time == ComputeSpec::Time::Profile && !x.compute.profile_layers.empty()) {
    try {  // per-layer times must be the model's layers (the profile may be of other options)
      engine::check_profile_layers(x.compute.profile_layers, model_layers, x.compute.profile_model_kind,
                                   x.compute.profile_file);
    } catch (const InputError& e) {
      throw InputError(file, "compute.time.file", e.what());
    }
  }
  if (model_timing_only && x.compute.real)  // resnet50, vgg16-imagenet, ...: no compute path
    throw InputError(file, "model.kind", "'" + x.model.value("kind", std::string()) +
                                             "' is a timing-only descriptor: set compute.mode to \"timing-only\"");
  x.output = read_output(r.object("output"), x.name);
  r.finish();
  x.warnings = config_warnings(x);  // sim/preflight.cpp
  for (const auto& w : overlap_warnings) x.warnings.push_back(file + ": " + w);
  return x;
}

Experiment load_resolved_experiment(const std::string& file) {
  return load_experiment_json(parse_json_file(file), file, "", {}, /*resolved=*/true);
}

Experiment load_experiment(const std::string& file, const std::vector<std::string>& overrides) {
  return load_experiment_json(parse_json_file(file), file, io::dirname(file), overrides);
}

}  // namespace dtsim::sim
