// ONNX operators that become layers: Conv, Gemm, MatMul + Add, pooling, BatchNormalization
// (engine/onnx_import.hpp).
#include <algorithm>
#include <cmath>

#include "engine/onnx_import.hpp"

namespace dtsim::engine::onnx {

namespace {
constexpr int kMaxGeom = 1024;  // kernel, stride and padding bounds (well past any real network)
}  // namespace

int Importer::geom(int64_t v, int lo, const std::string& what) {
  if (v < lo || v > kMaxGeom) fail(what + " " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", 1024]");
  return static_cast<int>(v);
}

std::vector<int64_t> Importer::pair(const Attrs& a, const char* key, int64_t def) const {
  const auto v = a.ints(key, {def, def});
  if (v.size() != 2) fail(where_ + ": '" + key + "' has " + std::to_string(v.size()) + " values; dtsim supports 2-D (N x C x H x W)");
  return v;
}

// pads [top, left, bottom, right] plus a pending Pad, after auto_pad.
std::vector<int64_t> Importer::pads(const Attrs& a, const Value& x, int kh, int kw, int sh, int sw) const {
  std::vector<int64_t> p = a.ints("pads", {0, 0, 0, 0});
  if (p.size() != 4) fail(where_ + ": 'pads' has " + std::to_string(p.size()) + " values; expected 4");
  const std::string ap = a.s("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    if (sh != 1 || sw != 1 || kh % 2 == 0 || kw % 2 == 0)
      fail(where_ + ": auto_pad " + ap + " is supported with stride 1 and odd kernels only; export with explicit pads");
    p = {kh / 2, kw / 2, kh / 2, kw / 2};
  } else if (ap != "NOTSET" && ap != "VALID" && !ap.empty()) {
    fail(where_ + ": unknown auto_pad '" + printable(ap) + "'");
  }
  for (int k = 0; k < 4; ++k) p[static_cast<size_t>(k)] = geom(p[static_cast<size_t>(k)], 0, where_ + ": padding") + x.pad[k];
  return p;
}

void Importer::no_dilation(const Attrs& a) const {
  for (int64_t d : a.ints("dilations", {1, 1}))
    if (d != 1) fail(where_ + ": dilation " + std::to_string(d) + " is not supported (dilations must be 1)");
}

void Importer::conv(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = in(n, 0);
  if (x.kind != Value::Kind::Padded) act(n, 0, true);
  const SampleShape s = shape(x);
  const std::vector<int64_t> w = init_dims(n, 1, "weight");
  if (w.size() != 4) fail(where_ + ": weight is " + dims_str(w) + "; dtsim supports 2-D convolutions [out, in, kH, kW]");
  if (a.i("group", 1) != 1)
    fail(where_ + ": group " + std::to_string(a.i("group", 1)) + " is not supported (grouped and depthwise convolutions: groups must be 1)");
  if (w[1] != s.c) fail(where_ + ": weight has " + std::to_string(w[1]) + " input channels, the input has " + std::to_string(s.c));
  const auto k = a.ints("kernel_shape", {w[2], w[3]});
  if (k != std::vector<int64_t>{w[2], w[3]}) fail(where_ + ": kernel_shape " + dims_str(k) + " does not match the weight " + dims_str(w));
  const auto st = pair(a, "strides", 1);
  no_dilation(a);
  const int kh = geom(w[2], 1, where_ + ": kernel"), kw = geom(w[3], 1, where_ + ": kernel");
  const int sh = geom(st[0], 1, where_ + ": stride"), sw = geom(st[1], 1, where_ + ": stride");
  const auto p = pads(a, x, kh, kw, sh, sw);
  if (kh != kw || sh != sw || p[0] != p[1] || p[0] != p[2] || p[0] != p[3])
    fail(where_ + ": kernel " + std::to_string(kh) + "x" + std::to_string(kw) + ", strides " + dims_str(st) + ", pads " +
         dims_str(p) + ": dtsim's Conv2d takes square kernels, equal strides and the same padding on every side");
  const bool bias = has_input(n, 2);
  const std::string name = name_for(n, n.input(1));
  auto layer = make([&] {
    return std::make_unique<Conv2d>(name, s, static_cast<int>(w[0]), kh, sh, geom(p[0], 0, where_ + ": padding"), bias);
  });
  append(params_, take(n, 1, w, "weight"));
  if (bias) append(params_, take(n, 2, {w[0]}, "bias"));
  define(n.output(0), act_value(add(std::move(layer), x.tensor), 4));
}

void Importer::linear(const Value& x, std::vector<float> weight, bool transposed, int64_t out, std::vector<float> bias, const std::string& output, const std::string& name) {
  const size_t fin = shape(x).size();
  if (transposed) {  // [in][out] -> dtsim's [out][in]
    std::vector<float> t(weight.size());
    for (size_t i = 0; i < fin; ++i)
      for (size_t o = 0; o < static_cast<size_t>(out); ++o) t[o * fin + i] = weight[i * static_cast<size_t>(out) + o];
    weight.swap(t);
  }
  auto layer = make([&] { return std::make_unique<Linear>(name, shape(x), static_cast<size_t>(out)); });
  append(params_, weight);
  append(params_, bias);
  define(output, act_value(add(std::move(layer), x.tensor), 2));
}

void Importer::gemm(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = act(n, 0, false);
  if (x.rank != 2) fail(where_ + ": input A must be [batch, features]");
  if (a.i("transA", 0) != 0) fail(where_ + ": transA = 1 is not supported (the samples are rows of A)");
  if (a.f("alpha", 1.0f) != 1.0f || a.f("beta", 1.0f) != 1.0f)
    fail(where_ + ": alpha and beta must be 1 (a Linear layer)");
  const bool tb = a.i("transB", 0) != 0;
  const auto b = init_dims(n, 1, "weight");
  if (b.size() != 2) fail(where_ + ": weight is " + dims_str(b) + "; expected 2-D");
  const int64_t fin = tb ? b[1] : b[0], out = tb ? b[0] : b[1];
  if (fin != static_cast<int64_t>(shape(x).size()))
    fail(where_ + ": weight " + dims_str(b) + " takes " + std::to_string(fin) + " features, the input has " +
         std::to_string(shape(x).size()));
  if (!has_input(n, 2)) fail(where_ + ": a Gemm without a bias (C) is not supported (dtsim's Linear layer has one)");
  const std::string name = name_for(n, n.input(1));
  auto w = take(n, 1, b, "weight");
  linear(x, std::move(w), !tb, out, take(n, 2, {out}, "bias"), n.output(0), name);
}

// MatMul by a weight [in][out] whose only reader is an Add of a bias: one Linear layer.
void Importer::matmul(const pb::NodeProto& n) {
  const Value& x = act(n, 0, false);
  if (x.rank != 2) fail(where_ + ": input A must be [batch, features]");
  const auto b = init_dims(n, 1, "weight");
  if (b.size() != 2 || b[0] != static_cast<int64_t>(shape(x).size()))
    fail(where_ + ": weight is " + dims_str(b) + " for " + std::to_string(shape(x).size()) + " input features");
  const auto it = consumers_.find(n.output(0));
  const int j = it != consumers_.end() && it->second.size() == 1 ? it->second[0] : -1;
  const pb::NodeProto* add_node = j > index_ ? &g_.node(j) : nullptr;
  int bias = -1;
  if (add_node && add_node->op_type() == "Add" && add_node->domain().empty() && add_node->input_size() == 2 &&
      add_node->output_size() == 1) {
    bias = add_node->input(0) == n.output(0) ? 1 : 0;
    auto bv = values_.find(add_node->input(bias));
    if (add_node->input(1 - bias) != n.output(0) || bv == values_.end() || bv->second.kind != Value::Kind::Init) bias = -1;
  }
  if (bias < 0)
    fail(where_ + ": MatMul is supported when an Add of a bias [out] is its only reader (MatMul + Add = a Linear layer)");
  const std::string name = name_for(n, n.input(1));
  auto w = take(n, 1, b, "weight");
  fused_.insert(j);
  linear(x, std::move(w), true, b[1], take(*add_node, bias, {b[1]}, "bias"), add_node->output(0), name);
}

void Importer::pool(const pb::NodeProto& n, const Attrs& a, Pool2d::Kind kind) {
  const bool avg = kind == Pool2d::Kind::Avg;
  const Value& x = in(n, 0);
  if (!(avg && x.kind == Value::Kind::Padded)) act(n, 0, true);
  if (!a.has("kernel_shape")) fail(where_ + ": kernel_shape is missing");
  const auto k = pair(a, "kernel_shape", 1), st = pair(a, "strides", 1);
  no_dilation(a);
  if (!avg) out_unused(n, 1, "the indices");
  const int kh = geom(k[0], 1, where_ + ": kernel"), kw = geom(k[1], 1, where_ + ": kernel");
  const int sh = geom(st[0], 1, where_ + ": stride"), sw = geom(st[1], 1, where_ + ": stride");
  const auto own = a.ints("pads", {0, 0, 0, 0});
  const auto p = pads(a, x, kh, kw, sh, sw);
  if (avg && a.i("count_include_pad", 0) == 0 && std::any_of(own.begin(), own.end(), [](int64_t v) { return v != 0; }))
    fail(where_ + ": count_include_pad = 0 with padding is not supported (dtsim's average pooling counts the zero "
                  "padding, PyTorch's default)");
  if (p[0] != p[2] || p[1] != p[3])
    fail(where_ + ": pads " + dims_str(p) + ": the padding must be the same at the top and bottom, left and right");
  const SampleShape s = shape(x);
  if (a.i("ceil_mode", 0) != 0) {  // accepted where it changes nothing
    auto cut = [](int64_t size, int64_t kk, int64_t ss, int64_t pp) { return (size + 2 * pp - kk) % ss == 0; };
    if (!cut(s.h, kh, sh, p[0]) || !cut(s.w, kw, sw, p[1]))
      fail(where_ + ": ceil_mode = 1 is not supported here (dtsim pools in floor mode)");
  }
  auto layer = make([&] {
    return std::make_unique<Pool2d>(name_for(n), s, kind, kh, kw, sh, sw, static_cast<int>(p[0]), static_cast<int>(p[1]));
  });
  define(n.output(0), act_value(add(std::move(layer), x.tensor), 4));
}

void Importer::global_pool(const pb::NodeProto& n, Pool2d::Kind kind) {
  const Value& x = act(n, 0, true);
  const SampleShape s = shape(x);
  auto l = make([&] { return std::make_unique<Pool2d>(name_for(n), s, kind, s.h, s.w, s.h, s.w, 0, 0); });
  define(n.output(0), act_value(add(std::move(l), x.tensor), 4));
}

void Importer::batchnorm(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = act(n, 0, false);
  if (a.i("spatial", 1) != 1) fail(where_ + ": spatial = 0 is not supported");
  out_unused(n, 1, "the updated running statistics");
  const double eps = a.f("epsilon", 1e-5f), momentum = 1.0 - static_cast<double>(a.f("momentum", 0.9f));
  if (!(eps > 0) || !std::isfinite(eps)) fail(where_ + ": epsilon must be positive");
  if (!(momentum >= 0 && momentum <= 1)) fail(where_ + ": momentum must be in [0, 1]");
  const SampleShape s = shape(x);
  const std::string name = name_for(n, n.input_size() > 1 ? n.input(1) : "");
  auto layer = make([&] { return std::make_unique<BatchNorm2d>(name, s, eps, momentum); });
  const int64_t c = s.c;
  append(params_, take(n, 1, {c}, "scale"));
  append(params_, take(n, 2, {c}, "bias"));
  append(state_, take(n, 3, {c}, "running mean"));
  const std::vector<float> var = take(n, 4, {c}, "running variance");
  for (size_t k = 0; k < var.size(); ++k)  // evaluation divides by sqrt(var + eps): NaN for every sample
    if (!(var[k] >= 0) || !std::isfinite(var[k]))
      fail(where_ + ": running variance '" + printable(n.input(4)) + "'[" + std::to_string(k) + "] is " + std::to_string(var[k]) +
           ": a variance must be finite and >= 0");
  append(state_, var);
  define(n.output(0), act_value(add(std::move(layer), x.tensor), x.rank));
}
}  // namespace dtsim::engine::onnx
