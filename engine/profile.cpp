#include "engine/profile.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/layer_timer.hpp"
#include "engine/ops.hpp"
#include "engine/optim.hpp"
#include "engine/runtime_info.hpp"

namespace dtsim::engine {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(v.begin());
        return v;
      }
    }
  return "unknown CPU";
}

std::string profile_num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The optional per-layer list: names, finite non-negative times adding up to the totals (1 %).
void read_layers(ObjectReader& r, ComputeProfile& p) {
  auto c = r.child("layers");
  if (!c) {
    if (r.has("layer_scale")) r.fail("layer_scale", "scales per-layer times: it needs \"layers\"");  // not "unknown key"
    return;
  }
  const auto& arr = c->first;  // not a structured binding: clang 14 (make fuzz) cannot capture one
  const auto& origin = c->second;
  if (!arr->is_array()) origin.fail("expected a list, got " + json_type_name(*arr));
  if (arr->empty()) origin.fail("needs at least one layer (or leave the key out)");
  double fwd = 0, bwd = 0;
  for (size_t i = 0; i < arr->size(); ++i) {
    ObjectReader l((*arr)[i], origin.index(i));
    LayerTime t;
    t.name = l.string("name");
    t.type = l.string("type", "");
    for (auto [key, dst] : {std::pair<const char*, double*>{"forward_s", &t.forward_s}, {"backward_s", &t.backward_s}}) {
      *dst = l.number(key);
      if (!(*dst >= 0) || !std::isfinite(*dst)) l.fail(key, "must be a finite, non-negative time in seconds, got " + profile_num(*dst));
    }
    l.finish();
    fwd += t.forward_s;
    bwd += t.backward_s;
    p.layers.push_back(std::move(t));
  }
  const auto check = [&](const char* key, double layers, double total) {
    if (std::abs(layers - total) > 0.01 * total)
      origin.fail("the layers' " + std::string(key) + " add up to " + profile_num(layers) + " s, the profile's " + key + " is " +
                  profile_num(total) + " s (they must agree within 1 %)");
  };
  check("forward_s", fwd, p.forward_s);
  check("backward_s", bwd, p.backward_s);
  if (auto s = r.child("layer_scale")) {
    ObjectReader ls(*s->first, s->second);
    for (auto [key, dst] : {std::pair<const char*, double*>{"forward", &p.layer_scale_forward},
                            {"backward", &p.layer_scale_backward}}) {
      *dst = ls.number(key);
      if (!(*dst > 0) || !std::isfinite(*dst)) ls.fail(key, "must be a finite, positive factor, got " + profile_num(*dst));
    }
    ls.finish();
  }
}

}  // namespace

double ComputeProfile::compute_seconds(int b) const {
  const double s = forward_s + backward_s;
  return b == batch ? s : s * static_cast<double>(b) / static_cast<double>(batch);
}

std::string default_profile_name(const ComputeProfile& p) {
  return p.model_kind + "-" + p.device + "-b" + std::to_string(p.batch) + ".json";
}

json to_json(const ComputeProfile& p) {
  json j{{"format", "dtsim-compute-profile/1"},
         {"model_kind", p.model_kind},
         {"model", p.model},
         {"input", {p.input.c, p.input.h, p.input.w}},
         {"classes", p.classes},
         {"batch", p.batch},
         {"device", p.device},
         {"device_name", p.device_name},
         {"threads", p.threads},
         {"isa", p.isa},
         {"forward_s", p.forward_s},
         {"backward_s", p.backward_s},
         {"update_s", p.update_s},
         {"step_s", p.step_s},
         {"steps", p.steps},
         {"warmup", p.warmup},
         {"clock", p.clock}};
  if (!p.layers.empty()) {
    json layers = json::array();
    for (const LayerTime& l : p.layers)
      layers.push_back({{"name", l.name}, {"type", l.type}, {"forward_s", l.forward_s}, {"backward_s", l.backward_s}});
    j["layers"] = std::move(layers);
    if (p.layer_scale_forward > 0 && p.layer_scale_backward > 0)
      j["layer_scale"] = {{"forward", p.layer_scale_forward}, {"backward", p.layer_scale_backward}};
  }
  return j;
}

ComputeProfile read_compute_profile(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file, "", "cannot open the compute profile");
  std::stringstream ss;
  ss << in.rdbuf();
  const json doc = parse_json_document(ss.str(), file);  // line and column of bad syntax, a key given twice
  ObjectReader r(doc, JsonOrigin{file, ""});
  const std::string format = r.string("format");
  if (format != "dtsim-compute-profile/1")
    r.fail("format", "unsupported profile format '" + format + "' (expected dtsim-compute-profile/1)");
  ComputeProfile p;
  p.model_kind = r.string("model_kind");
  if (auto m = r.child("model")) p.model = *m->first;
  const std::vector<int64_t> in_dims = r.integer_list("input");
  if (in_dims.size() != 3 || in_dims[0] < 1 || in_dims[1] < 1 || in_dims[2] < 1) r.fail("input", "expected [C, H, W]");
  p.input = SampleShape{static_cast<int>(in_dims[0]), static_cast<int>(in_dims[1]), static_cast<int>(in_dims[2])};
  p.classes = static_cast<int>(r.integer("classes"));
  const int64_t b = r.integer("batch");
  if (b < 1) r.fail("batch", "must be at least 1");
  p.batch = static_cast<int>(b);
  p.device = r.string("device");
  p.device_name = r.string("device_name", "");
  p.threads = static_cast<int>(r.integer("threads", 1));
  p.isa = r.string("isa", "");
  for (auto [key, dst] : {std::pair<const char*, double*>{"forward_s", &p.forward_s}, {"backward_s", &p.backward_s},
                          {"update_s", &p.update_s}, {"step_s", &p.step_s}}) {
    *dst = r.number(key);
    if (!(*dst >= 0) || !std::isfinite(*dst)) r.fail(key, "must be a finite, non-negative time in seconds");
  }
  if (!(p.forward_s + p.backward_s > 0)) r.fail("forward_s", "forward_s + backward_s must be positive");
  const int64_t steps = r.integer("steps", 0), warmup = r.integer("warmup", 0);  // how it was measured (0: not said)
  if (steps < 0 || steps > 100000000) r.fail("steps", "must be in [0, 100000000], got " + std::to_string(steps));
  if (warmup < 0 || warmup > 100000000) r.fail("warmup", "must be in [0, 100000000], got " + std::to_string(warmup));
  p.steps = static_cast<int>(steps);
  p.warmup = static_cast<int>(warmup);
  p.clock = r.choice("clock", {"wall", "thread-cpu"}, "wall");
  read_layers(r, p);
  r.finish();
  return p;
}

void check_profile_layers(const std::vector<LayerTime>& layers, const std::vector<LayerCost>& model_layers,
                          const std::string& kind, const std::string& file) {
  if (layers.empty()) return;
  auto names = [&] {
    std::string s;
    for (size_t i = 0; i < model_layers.size() && i < 8; ++i) s += (i ? ", " : "") + model_layers[i].name;
    return s + (model_layers.size() > 8 ? ", ..." : "");
  };
  if (layers.size() != model_layers.size())
    throw InputError(file, "layers", "lists " + std::to_string(layers.size()) + " layers, the model '" + kind +
                                         "' has " + std::to_string(model_layers.size()) + " (" + names() +
                                         "): measure it again with `dtsim profile`");
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name != model_layers[i].name)
      throw InputError(file, "layers[" + std::to_string(i) + "].name",
                       "'" + layers[i].name + "', but the model's layer " + std::to_string(i) + " is '" +
                           model_layers[i].name + "' (the layers must be the model's, in execution order)");
}

ComputeProfile measure_compute_profile(const json& spec, const JsonOrigin& origin, const SampleShape& input,
                                       int classes, int batch, const ComputeOptions& opts, int steps, int warmup,
                                       bool thread_cpu) {
  if (batch < 1) throw InputError("", "batch", "must be at least 1");
  if (thread_cpu && (opts.device == Device::Cuda || opts.threads != 1))
    throw InputError("", "clock", "thread CPU time measures one host thread: use it with a cpu/reference device and 1 thread");
  if (steps < 1 || warmup < 0) throw InputError("", "steps", "need at least one measured step");
  json resolved;
  ObjectReader r(spec, origin, &resolved);
  auto model = make_model(r, input, classes, opts);
  r.finish();
  const Device d = model->device();
  Vec w(model->num_params(), d), g(model->num_params(), d), st(model->num_state(), d);
  model->init_params(w.view(), 1);
  if (model->num_state()) model->init_state(st.view());
  Batch b;
  b.shape = input;
  b.targets = model->positions();  // a sequence model: one label per token, and token ids as input
  b.x.resize(static_cast<size_t>(batch) * input.size());
  b.y.resize(static_cast<size_t>(batch) * b.targets);
  Rng rng(1, Stream::Algorithm, {static_cast<uint64_t>(batch)});
  for (float& v : b.x)
    v = b.targets > 1 ? static_cast<float>(rng.below(static_cast<uint64_t>(classes))) : static_cast<float>(rng.normal());
  for (auto& y : b.y) y = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  Sgd opt(SgdConfig{0.01, 0.9, 5e-4, false}, w.size(), d);
  auto sync = [&] {
    if (d == Device::Cuda) cuda::synchronize();
  };
  auto step = [&] {
    model->forward_backward(w.view(), st.view(), b, g.view());
    opt.step(w.view(), g.view());
  };
  for (int i = 0; i < warmup; ++i) step();
  sync();
  auto now = [&] {
    return thread_cpu ? thread_cpu_seconds() : std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  };
  std::vector<double> fwd, bwd, upd, whole;
  model->enable_step_timing(true);
  for (int i = 0; i < steps; ++i) {
    model->forward_backward(w.view(), st.view(), b, g.view());
    const StepTimes t = model->last_step_times();
    fwd.push_back(thread_cpu ? t.forward_cpu_s : t.forward_s);
    bwd.push_back(thread_cpu ? t.backward_cpu_s : t.backward_s);
    sync();
    const double t0 = now();
    opt.step(w.view(), g.view());
    sync();
    upd.push_back(now() - t0);
  }
  model->enable_step_timing(false);
  for (int i = 0; i < steps; ++i) {
    sync();
    const double t0 = now();
    step();
    sync();
    whole.push_back(now() - t0);
  }
  // Layer by layer: the same steps with a LayerClock set (the model's layer list: model_info).
  json spec_again = spec;
  ObjectReader r2(spec_again, origin);
  const std::vector<LayerCost> layers = model_info(r2, input, classes).layers;
  LayerClock clock(layers.size(), thread_cpu);
  std::vector<std::vector<double>> lf(layers.size()), lb(layers.size());
  model->set_layer_timer(&clock);
  for (int i = 0; i < steps; ++i) {
    clock.clear();
    model->forward_backward(w.view(), st.view(), b, g.view());
    for (size_t l = 0; l < layers.size(); ++l) {
      lf[l].push_back(clock.forward()[l]);
      lb[l].push_back(clock.backward()[l]);
    }
    opt.step(w.view(), g.view());
  }
  model->set_layer_timer(nullptr);
  ComputeProfile p;
  p.model_kind = model->kind();
  p.model = resolved;
  p.input = input;
  p.classes = classes;
  p.batch = batch;
  p.device = device_name(d);
  const RuntimeInfo ri = runtime_info(d, opts.threads);
  p.threads = opts.threads;
  p.isa = ri.isa;
  if (d == Device::Cuda) p.device_name = cuda::device_description();
  else p.device_name = cpu_name() + (ri.backend == "onednn" ? " (oneDNN " + ri.isa + ")" : " (reference loops)");
  p.forward_s = median(fwd);
  p.backward_s = median(bwd);
  p.update_s = median(upd);
  p.step_s = median(whole);
  p.steps = steps;
  p.warmup = warmup;
  p.clock = thread_cpu ? "thread-cpu" : "wall";
  // Per-layer medians, each pass's scaled to add up to its hook-free median above.
  double sf = 0, sb = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    p.layers.push_back({layers[l].name, layers[l].type, median(lf[l]), median(lb[l])});
    sf += p.layers.back().forward_s;
    sb += p.layers.back().backward_s;
  }
  if (!(sf > 0) || !(sb > 0)) throw RuntimeError("profile: the per-layer times of '" + p.model_kind + "' add up to 0");
  p.layer_scale_forward = p.forward_s / sf;
  p.layer_scale_backward = p.backward_s / sb;
  for (LayerTime& l : p.layers) {
    l.forward_s *= p.layer_scale_forward;
    l.backward_s *= p.layer_scale_backward;
  }
  return p;
}

}  // namespace dtsim::engine
