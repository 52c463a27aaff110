#include "engine/profile_model.hpp"

#include <cmath>
#include <string>

#include "common/error.hpp"
#include "common/io.hpp"

namespace dtsim::engine {

namespace {

constexpr const char* kFormat = "dtsim-model-profile/1";

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A JSON array at r.key (required), with its origin.
std::pair<const json*, JsonOrigin> array(ObjectReader& r, const std::string& key) {
  auto c = r.child(key);
  if (!c) r.fail(key, "missing required key");
  if (!c->first->is_array()) c->second.fail("expected a list, got " + json_type_name(*c->first));
  return *c;
}

// A list of finite, non-negative times, one per measured batch.
std::vector<double> times(ObjectReader& r, const std::string& key, size_t n) {
  const std::vector<double> v = r.number_list(key);
  if (v.size() != n)
    r.fail(key, "has " + std::to_string(v.size()) + " values for " + std::to_string(n) + " measured batch sizes");
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      r.origin().child(key).index(i).fail("must be a finite, non-negative time in seconds, got " + num(v[i]));
  return v;
}

double flops(ObjectReader& r, const std::string& key) {
  const double v = r.number(key, 0.0);
  if (!std::isfinite(v) || v < 0) r.fail(key, "must be a finite, non-negative FLOP count, got " + num(v));
  return v;
}

}  // namespace

double interpolate_batch(const std::vector<int>& batches, const std::vector<double>& values, int b) {
  const size_t n = batches.size();
  if (n == 0 || values.size() != n) throw RuntimeError("interpolate_batch: no measurements");
  const double x = b;
  if (n == 1 || b <= batches.front()) return values.front() * x / batches.front();
  for (size_t i = 1; i < n; ++i)
    if (b <= batches[i]) {
      const double x0 = batches[i - 1], x1 = batches[i];
      return values[i - 1] + (values[i] - values[i - 1]) * (x - x0) / (x1 - x0);
    }
  // Above the largest batch: along the last segment when it rises, else proportionally.
  const double x0 = batches[n - 2], x1 = batches[n - 1];
  const double slope = (values[n - 1] - values[n - 2]) / (x1 - x0);
  return slope > 0 ? values[n - 1] + slope * (x - x1) : values[n - 1] * x / x1;
}

double ModelProfile::layer_forward_s(size_t layer, int b) const {
  return interpolate_batch(batches, layers.at(layer).forward_s, b);
}
double ModelProfile::layer_backward_s(size_t layer, int b) const {
  return interpolate_batch(batches, layers.at(layer).backward_s, b);
}

double ModelProfile::step_seconds(int b) const {
  // Interpolating the sums equals summing the interpolations (linear in the values) except above
  // the largest batch, where each layer picks its own rule; sum the layers for consistency.
  double s = 0;
  for (size_t i = 0; i < layers.size(); ++i) s += layer_forward_s(i, b) + layer_backward_s(i, b);
  return s;
}

double ModelProfile::flops_per_sample() const {
  double f = 0;
  for (const ProfiledLayer& l : layers) f += l.forward_flops + l.backward_input_flops + l.backward_weight_flops;
  return f;
}

ModelProfile read_model_profile(const std::string& file) {
  ModelProfile p;
  p.file = file;
  json doc;
  {
    std::string text;
    try {
      text = io::read_file(file);
    } catch (const InputError& e) {
      throw InputError(file, "", "cannot read the model profile: " + e.reason());
    }
    doc = parse_json_document(text, file);  // line and column of bad syntax, a key given twice
  }
  ObjectReader r(doc, JsonOrigin{file, ""});
  const std::string format = r.string("format");
  if (format != kFormat)
    r.fail("format", "unsupported profile format '" + format + "' (expected " + kFormat +
                         ", written by tools/torch_profile.py)");
  p.name = r.string("name", "profile");
  p.source = r.string("source", "");
  p.framework = r.string("framework", "");
  p.device = r.string("device", "");
  p.device_name = r.string("device_name", "");
  p.threads = static_cast<int>(r.integer("threads", 0));
  p.input = r.integer_list("input", std::vector<int64_t>{});

  // Measured batch sizes: positive, strictly increasing.
  for (int64_t b : r.integer_list("batches")) {
    if (b < 1 || b > (int64_t{1} << 30)) r.fail("batches", "batch sizes must be in [1, 2^30], got " + std::to_string(b));
    if (!p.batches.empty() && b <= p.batches.back()) r.fail("batches", "batch sizes must be strictly increasing");
    p.batches.push_back(static_cast<int>(b));
  }
  if (p.batches.empty()) r.fail("batches", "needs at least one measured batch size");

  // Parameter tensors: elements = product of the shape; they add up to num_params.
  {
    auto [arr, origin] = array(r, "tensors");
    for (size_t i = 0; i < arr->size(); ++i) {
      ObjectReader t((*arr)[i], origin.index(i));
      ProfiledTensor pt;
      pt.name = t.string("name");
      if (pt.name.empty()) t.fail("name", "must not be empty");
      pt.shape = t.integer_list("shape");
      double prod = 1;
      for (int64_t d : pt.shape) {
        if (d < 0) t.fail("shape", "dimensions must not be negative");
        prod *= static_cast<double>(d);
      }
      const int64_t e = t.integer("elements");
      if (e < 0) t.fail("elements", "must not be negative");
      if (static_cast<double>(e) != prod)
        t.fail("elements", std::to_string(e) + " elements but the shape holds " + num(prod));
      pt.elements = static_cast<size_t>(e);
      t.finish();
      p.num_params += pt.elements;
      p.tensors.push_back(std::move(pt));
    }
  }
  const int64_t np = r.integer("num_params");
  if (np < 0 || static_cast<size_t>(np) != p.num_params)
    r.fail("num_params", std::to_string(np) + " but the tensors add up to " + std::to_string(p.num_params) + " elements");
  if (p.num_params == 0) r.fail("tensors", "the model has no parameters");

  // Layers: measured times per batch, tensor indices in range, each tensor owned exactly once.
  {
    std::vector<int> owner(p.tensors.size(), -1);
    auto [arr, origin] = array(r, "layers");
    if (arr->empty()) origin.fail("needs at least one layer");
    for (size_t i = 0; i < arr->size(); ++i) {
      ObjectReader l((*arr)[i], origin.index(i));
      ProfiledLayer pl;
      pl.name = l.string("name");
      pl.type = l.string("type", "");
      const std::vector<int64_t> idx = l.integer_list("tensors", std::vector<int64_t>{});
      for (size_t k = 0; k < idx.size(); ++k) {
        const JsonOrigin at = l.origin().child("tensors").index(k);
        if (idx[k] < 0 || static_cast<size_t>(idx[k]) >= p.tensors.size())
          at.fail("tensor index " + std::to_string(idx[k]) + " out of range (the profile has " +
                  std::to_string(p.tensors.size()) + " tensors)");
        int& o = owner[static_cast<size_t>(idx[k])];
        if (o >= 0)
          at.fail("tensor " + std::to_string(idx[k]) + " ('" + p.tensors[static_cast<size_t>(idx[k])].name +
                  "') already belongs to layers[" + std::to_string(o) + "]");
        o = static_cast<int>(i);
        pl.tensors.push_back(static_cast<size_t>(idx[k]));
      }
      pl.forward_flops = flops(l, "forward_flops");
      pl.backward_input_flops = flops(l, "backward_input_flops");
      pl.backward_weight_flops = flops(l, "backward_weight_flops");
      pl.forward_s = times(l, "forward_s", p.batches.size());
      pl.backward_s = times(l, "backward_s", p.batches.size());
      l.accept("calls");
      l.finish();
      p.layers.push_back(std::move(pl));
    }
    for (size_t t = 0; t < owner.size(); ++t)
      if (owner[t] < 0)
        origin.fail("tensor " + std::to_string(t) + " ('" + p.tensors[t].name + "') belongs to no layer");
  }
  double total = 0;
  for (size_t b = 0; b < p.batches.size(); ++b)
    for (const ProfiledLayer& l : p.layers) total += l.forward_s[b] + l.backward_s[b];
  if (!(total > 0)) r.fail("layers", "every measured time is 0");

  // Optional hook-free step totals: the layers' times must add up to them (torch_profile.py scales
  // them so; a 1 % slack absorbs rounding in hand-edited files).
  if (r.has("step")) {
    auto s = r.object("step");
    p.step_forward_s = times(s, "forward_s", p.batches.size());
    p.step_backward_s = times(s, "backward_s", p.batches.size());
    p.step_update_s = times(s, "update_s", p.batches.size());
    s.accept("step_s");
    s.finish();
    for (size_t b = 0; b < p.batches.size(); ++b) {
      double f = 0, bw = 0;
      for (const ProfiledLayer& l : p.layers) {
        f += l.forward_s[b];
        bw += l.backward_s[b];
      }
      const auto check = [&](const char* key, double layers, double step) {
        if (std::abs(layers - step) > 0.01 * step + 1e-9)
          s.origin().child(key).index(b).fail("the layers' " + std::string(key) + " add up to " + num(layers) +
                                              " s at batch " + std::to_string(p.batches[b]) + ", the step says " +
                                              num(step) + " s");
      };
      check("forward_s", f, p.step_forward_s[b]);
      check("backward_s", bw, p.step_backward_s[b]);
    }
  }
  for (const char* k : {"output", "input_dtype", "dtype", "hook_scale", "measurement"}) r.accept(k);
  r.finish();
  return p;
}

ModelInfo profile_model_info(ObjectReader& spec) {
  spec.choice("kind", {"profile"});
  const std::string path = spec.string("path");
  if (path.empty()) spec.fail("path", "must name a model profile (tools/torch_profile.py writes one)");
  if (const std::string why = io::not_a_file(path); !why.empty())
    spec.fail("path", "model profile '" + path + "' " + why + (why == "does not exist" ? " (write one with tools/torch_profile.py)" : ""));
  const ModelProfile p = read_model_profile(path);
  const int64_t b = spec.integer("batch", p.batches.front());
  if (b < 1 || b > (int64_t{1} << 30)) spec.fail("batch", "must be in [1, 2^30], got " + std::to_string(b));

  ModelInfo info;
  info.kind = "profile";
  info.timing_only = true;
  info.num_params = p.num_params;
  info.flops_per_sample = p.flops_per_sample();
  info.measured_batch = static_cast<int>(b);
  size_t off = 0;
  for (const ProfiledTensor& t : p.tensors) {
    info.param_tensors.push_back({t.name, off, t.elements});
    off += t.elements;
  }
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const ProfiledLayer& l = p.layers[i];
    LayerCost c;
    c.name = l.name;
    c.type = l.type;
    c.forward_flops = l.forward_flops;
    c.backward_input_flops = l.backward_input_flops;
    c.backward_weight_flops = l.backward_weight_flops;
    c.tensors = l.tensors;
    c.forward_s = p.layer_forward_s(i, info.measured_batch);
    c.backward_s = p.layer_backward_s(i, info.measured_batch);
    info.layers.push_back(std::move(c));
  }
  return info;
}

}  // namespace dtsim::engine
