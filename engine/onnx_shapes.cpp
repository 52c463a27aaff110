// Shape values computed at import (Shape, Constant, Gather, Unsqueeze, Squeeze, Concat, Cast: the
// batch size stays symbolic), Reshape / Squeeze of activations, and Pad (engine/onnx_import.hpp).
#include <algorithm>

#include "engine/onnx_import.hpp"

namespace dtsim::engine::onnx {

// Reshape to [batch, features] (a flatten) or to the shape it already has.
void Importer::reshape(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = act(n, 0, false);
  std::vector<int64_t> t = ints(n, 1);
  const SampleShape s = shape(x);
  const std::vector<int64_t> cur = x.rank == 4 ? std::vector<int64_t>{kBatch, s.c, s.h, s.w}
                                               : std::vector<int64_t>{kBatch, static_cast<int64_t>(s.size())};
  const std::string shown = dims_str(t);
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] == 0 && a.i("allowzero", 0) == 0) t[i] = i < cur.size() ? cur[i] : 0;
  const int64_t per = static_cast<int64_t>(s.size());
  bool ok = !t.empty() && (t[0] == kBatch || (export_batch_ > 0 && t[0] == export_batch_) || t[0] == -1);
  int64_t rest = 1;
  int unknown = t.size() > 0 && t[0] == -1 ? 1 : 0;
  for (size_t i = 1; ok && i < t.size(); ++i) {
    if (t[i] == -1) ++unknown;
    else if (t[i] <= 0 || t[i] > per) ok = false;
    else if ((rest *= t[i]) > per) ok = false;
  }
  ok = ok && unknown <= 1 && (unknown == 1 && t[0] != -1 ? per % rest == 0 : rest == per);
  if (ok && t.size() == 2) return define(n.output(0), flat(x, name_for(n)));
  if (ok && t.size() == cur.size() && std::equal(t.begin() + 1, t.end(), cur.begin() + 1))
    return define(n.output(0), x);
  fail(where_ + ": Reshape of [batch, " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " + std::to_string(s.w) +
       "] to " + shown + " is not supported: dtsim supports flattening to [batch, features] or keeping the shape");
}

void Importer::pad(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = in(n, 0);
  if (x.kind != Value::Kind::Padded) act(n, 0, true);
  if (a.s("mode", "constant") != "constant") fail(where_ + ": only constant (zero) padding is supported");
  std::vector<int64_t> p = has_input(n, 1) ? ints(n, 1) : a.ints("pads", {});
  if (p.size() != 8) fail(where_ + ": pads has " + std::to_string(p.size()) + " values; expected 8 (N, C, H, W twice)");
  if (has_input(n, 2)) {
    const Value& c = in(n, 2);
    if (c.kind != Value::Kind::Init && c.kind != Value::Kind::Other && c.kind != Value::Kind::Ints)
      fail(where_ + ": the padding value must be a constant");
    bool zero = c.zero;
    if (c.kind == Value::Kind::Ints) zero = std::all_of(c.ints.begin(), c.ints.end(), [](int64_t v) { return v == 0; });
    if (c.kind == Value::Kind::Init) {
      const auto f = float_values(*c.init, where_ + ": padding value");
      zero = std::all_of(f.begin(), f.end(), [](float v) { return v == 0.0f; });
    }
    if (!zero) fail(where_ + ": only zero padding is supported");
  } else if (a.f("value", 0.0f) != 0.0f) {
    fail(where_ + ": only zero padding is supported");
  }
  if (p[0] || p[1] || p[4] || p[5]) fail(where_ + ": padding of the batch or channel dimension is not supported");
  Value r = x;
  r.kind = Value::Kind::Padded;
  const int64_t add_pad[4] = {p[2], p[3], p[6], p[7]};
  for (int k = 0; k < 4; ++k) r.pad[k] = geom(x.pad[k] + geom(add_pad[k], 0, where_ + ": padding"), 0, where_ + ": padding");
  define(n.output(0), r);
}

void Importer::constant(const pb::NodeProto& n, const Attrs& a) {
  Value v;
  if (const pb::TensorProto* t = a.t("value")) {
    const std::string what = where_ + ": value";
    const auto dims = tensor_dims(*t, what);
    if (t->data_type() == pb::TensorProto::INT64 || t->data_type() == pb::TensorProto::INT32 ||
        t->data_type() == pb::TensorProto::BOOL) {
      if (dims.size() > 1) fail(what + ": integer constants of rank > 1 are not supported");
      v = ints_value(int_values(*t, what), dims.empty());
    } else {
      v.kind = Value::Kind::Other;
      if (t->data_type() == pb::TensorProto::FLOAT && dims.empty()) {  // a float scalar: zero?
        const auto f = float_values(*t, what);
        v.zero = f.size() == 1 && f[0] == 0.0f;
      }
    }
  } else if (a.has("value_int")) {
    v = ints_value({a.i("value_int", 0)}, true);
  } else if (a.has("value_ints")) {
    v = ints_value(a.ints("value_ints", {}), false);
  } else if (a.has("value_float") || a.has("value_floats")) {
    v.kind = Value::Kind::Other;
    v.zero = a.has("value_float") && a.f("value_float", 1) == 0.0f;
  } else {
    fail(where_ + ": a Constant dtsim cannot read (sparse or string)");
  }
  define(n.output(0), v);
}

void Importer::shape_of(const pb::NodeProto& n, const Attrs& a) {
  const Value& x = act(n, 0, false);
  const SampleShape s = shape(x);
  std::vector<int64_t> d = x.rank == 4 ? std::vector<int64_t>{kBatch, s.c, s.h, s.w}
                                       : std::vector<int64_t>{kBatch, static_cast<int64_t>(s.size())};
  const int64_t r = static_cast<int64_t>(d.size());
  auto clampi = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
  const int64_t b = clampi(a.i("start", 0)), e = clampi(a.i("end", r));
  define(n.output(0), ints_value(b < e ? std::vector<int64_t>(d.begin() + b, d.begin() + e) : std::vector<int64_t>{}, false));
}

void Importer::gather(const pb::NodeProto& n, const Attrs& a) {
  const Value& data = in(n, 0);
  if (data.kind != Value::Kind::Ints || data.scalar) fail(where_ + ": Gather is supported on 1-D shape values only");
  if (a.i("axis", 0) != 0 && a.i("axis", 0) != -1) fail(where_ + ": axis must be 0");
  const Value& idx = in(n, 1);
  const std::vector<int64_t> ix = ints(n, 1);
  const bool scalar = idx.kind == Value::Kind::Ints ? idx.scalar : tensor_dims(*idx.init, where_).empty();
  std::vector<int64_t> out;
  const int64_t size = static_cast<int64_t>(data.ints.size());
  for (int64_t i : ix) {
    if (i < -size || i >= size) fail(where_ + ": index " + std::to_string(i) + " is out of range");
    out.push_back(data.ints[static_cast<size_t>(i < 0 ? i + size : i)]);
  }
  define(n.output(0), ints_value(out, scalar && out.size() == 1));
}

void Importer::unsqueeze_squeeze(const pb::NodeProto& n, const Attrs& a, bool unsqueeze) {
  const Value& x = in(n, 0);
  const std::vector<int64_t> axes = has_input(n, 1) ? ints(n, 1) : a.ints("axes", {});
  if (x.kind == Value::Kind::Ints) {
    const bool ok0 = axes.empty() || axes == std::vector<int64_t>{0} || (!unsqueeze && axes == std::vector<int64_t>{-1});
    if (unsqueeze ? !(x.scalar && ok0) : !(!x.scalar && x.ints.size() == 1 && ok0))
      fail(where_ + ": supported on a scalar / one-value shape value only");
    return define(n.output(0), ints_value(x.ints, !unsqueeze));
  }
  const Value& v = act(n, 0, false);
  const SampleShape s = shape(v);
  std::set<int64_t> ax;
  for (int64_t i : axes) ax.insert(i < 0 ? i + v.rank : i);
  if (!unsqueeze && v.rank == 4 && s.h == 1 && s.w == 1 && (ax.empty() || ax == std::set<int64_t>{2, 3}))
    return define(n.output(0), flat(v, name_for(n)));
  fail(where_ + ": on an activation dtsim supports only Squeeze of the 1 x 1 spatial dimensions to [batch, C]");
}

void Importer::concat(const pb::NodeProto& n, const Attrs& a) {
  if (a.i("axis", 0) != 0 && a.i("axis", 0) != -1) fail(where_ + ": axis must be 0");
  std::vector<int64_t> all;
  for (int i = 0; i < n.input_size(); ++i) {
    const Value& v = in(n, i);
    if (v.kind != Value::Kind::Ints && v.kind != Value::Kind::Init) fail(where_ + ": Concat is supported on shape values only");
    const auto part = ints(n, i);
    all.insert(all.end(), part.begin(), part.end());
    if (all.size() > 64) fail(where_ + ": a shape value with more than 64 entries");
  }
  define(n.output(0), ints_value(all, false));
}

}  // namespace dtsim::engine::onnx
