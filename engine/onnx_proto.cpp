#include "engine/onnx_proto.hpp"

#include <cstring>

#include "common/error.hpp"

namespace dtsim::engine::onnx {

namespace {
constexpr int64_t kMaxElements = int64_t{1} << 31;
constexpr size_t kMaxInts = 64;
}  // namespace

void fail(const std::string& reason) { throw InputError("", "", reason); }

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (out.size() >= 80) return out + "...";
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + (dims[i] == kBatch ? std::string("batch") : std::to_string(dims[i]));
  return s + "]";
}

const char* type_name(int32_t t) {
  switch (t) {
    case pb::TensorProto::FLOAT: return "float32";
    case pb::TensorProto::UINT8: return "uint8";
    case pb::TensorProto::INT8: return "int8";
    case pb::TensorProto::UINT16: return "uint16";
    case pb::TensorProto::INT16: return "int16";
    case pb::TensorProto::INT32: return "int32";
    case pb::TensorProto::INT64: return "int64";
    case pb::TensorProto::STRING: return "string";
    case pb::TensorProto::BOOL: return "bool";
    case pb::TensorProto::FLOAT16: return "float16";
    case pb::TensorProto::DOUBLE: return "float64";
    case pb::TensorProto::BFLOAT16: return "bfloat16";
    default: return "an unknown type";
  }
}

std::vector<int64_t> tensor_dims(const pb::TensorProto& t, const std::string& what) {
  std::vector<int64_t> dims;
  int64_t count = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d >= kMaxElements) fail(what + " has a dimension of " + std::to_string(d));
    dims.push_back(d);
    if (d != 0 && count > kMaxElements / d) fail(what + " has more than 2^31 elements");
    count *= d;
  }
  return dims;
}

namespace {

size_t count_of(const pb::TensorProto& t, const std::string& what) {
  size_t n = 1;
  for (int64_t d : tensor_dims(t, what)) n *= static_cast<size_t>(d);
  return n;
}

void check_local(const pb::TensorProto& t, const std::string& what) {
  if (t.data_location() == pb::TensorProto::EXTERNAL || t.external_data_size() > 0)
    fail(what + " keeps its data in an external file: export the model with its weights inside the .onnx file");
}

}  // namespace

std::vector<float> float_values(const pb::TensorProto& t, const std::string& what) {
  check_local(t, what);
  if (t.data_type() != pb::TensorProto::FLOAT)
    fail(what + " is " + type_name(t.data_type()) + "; dtsim's parameters are float32");
  const size_t n = count_of(t, what);
  std::vector<float> v;
  if (t.has_raw_data()) {
    if (t.raw_data().size() != n * sizeof(float))
      fail(what + " holds " + std::to_string(t.raw_data().size()) + " bytes for " + std::to_string(n) +
           " float32 values (truncated or malformed)");
    v.resize(n);
    if (n) std::memcpy(v.data(), t.raw_data().data(), n * sizeof(float));  // little-endian, as ONNX stores it
  } else {
    if (static_cast<size_t>(t.float_data_size()) != n)
      fail(what + " holds " + std::to_string(t.float_data_size()) + " values for " + std::to_string(n) +
           " (truncated or malformed)");
    v.assign(t.float_data().begin(), t.float_data().end());
  }
  return v;
}

std::vector<int64_t> int_values(const pb::TensorProto& t, const std::string& what) {
  check_local(t, what);
  const size_t n = count_of(t, what);
  if (n > kMaxInts) fail(what + " has " + std::to_string(n) + " values; shape values have at most 64");
  std::vector<int64_t> v(n);
  auto raw = [&](size_t width) {
    if (t.raw_data().size() != n * width)
      fail(what + " holds " + std::to_string(t.raw_data().size()) + " bytes for " + std::to_string(n) + " values");
  };
  switch (t.data_type()) {
    case pb::TensorProto::INT64:
      if (t.has_raw_data()) {
        raw(8);
        if (n) std::memcpy(v.data(), t.raw_data().data(), n * 8);
      } else {
        if (static_cast<size_t>(t.int64_data_size()) != n) fail(what + ": value count does not match its dims");
        v.assign(t.int64_data().begin(), t.int64_data().end());
      }
      break;
    case pb::TensorProto::INT32:
    case pb::TensorProto::BOOL:
      if (t.has_raw_data()) {
        const size_t w = t.data_type() == pb::TensorProto::BOOL ? 1 : 4;
        raw(w);
        for (size_t i = 0; i < n; ++i) {
          int32_t x = 0;
          if (w == 1) x = static_cast<unsigned char>(t.raw_data()[i]);
          else std::memcpy(&x, t.raw_data().data() + 4 * i, 4);
          v[i] = x;
        }
      } else {
        if (static_cast<size_t>(t.int32_data_size()) != n) fail(what + ": value count does not match its dims");
        v.assign(t.int32_data().begin(), t.int32_data().end());
      }
      break;
    default: fail(what + " is " + type_name(t.data_type()) + " where an integer shape value is expected");
  }
  return v;
}

// ----------------------------------------------------------------------------- Attrs

Attrs::Attrs(const pb::NodeProto& n, std::string what) : n_(n), what_(std::move(what)) {}

const pb::AttributeProto* Attrs::find(const std::string& name) const {
  for (const auto& a : n_.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

const pb::AttributeProto* Attrs::typed(const std::string& name, pb::AttributeProto::AttributeType type) const {
  const pb::AttributeProto* a = find(name);
  if (a && a->has_ref_attr_name()) fail(what_ + ": attribute '" + printable(name) + "' refers to a function attribute");
  if (a && a->type() != type && a->type() != pb::AttributeProto::UNDEFINED)
    fail(what_ + ": attribute '" + printable(name) + "' has the wrong type");
  return a;
}

int64_t Attrs::i(const std::string& name, int64_t def) const {
  const auto* a = typed(name, pb::AttributeProto::INT);
  return a ? a->i() : def;
}

float Attrs::f(const std::string& name, float def) const {
  const auto* a = typed(name, pb::AttributeProto::FLOAT);
  return a ? a->f() : def;
}

std::string Attrs::s(const std::string& name, const std::string& def) const {
  const auto* a = typed(name, pb::AttributeProto::STRING);
  return a ? a->s() : def;
}

std::vector<int64_t> Attrs::ints(const std::string& name, std::vector<int64_t> def) const {
  const auto* a = typed(name, pb::AttributeProto::INTS);
  if (!a) return def;
  if (a->ints_size() > static_cast<int>(kMaxInts))
    fail(what_ + ": attribute '" + printable(name) + "' has " + std::to_string(a->ints_size()) + " values");
  return {a->ints().begin(), a->ints().end()};
}

const pb::TensorProto* Attrs::t(const std::string& name) const {
  const auto* a = typed(name, pb::AttributeProto::TENSOR);
  return a ? &a->t() : nullptr;
}

}  // namespace dtsim::engine::onnx
