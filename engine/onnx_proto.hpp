// Reading ONNX protobuf messages safely (engine/onnx_import.cpp): tensor data, node attributes,
// printable names. Internal to the ONNX import; every problem throws InputError("", "", reason).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace dtsim::engine::onnx {

namespace pb = ::onnx;

// The batch dimension inside a shape value (Shape of an activation): symbolic, never a number.
constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();

[[noreturn]] void fail(const std::string& reason);
// A name as it may appear in a one-line message: printable ASCII, at most 80 characters.
std::string printable(const std::string& s);
std::string dims_str(const std::vector<int64_t>& dims);

// Dimensions of an initializer or constant (each in [0, 2^31), at most 2^31 elements in all).
std::vector<int64_t> tensor_dims(const pb::TensorProto& t, const std::string& what);
// Float32 contents (raw_data or float_data); external data is refused.
std::vector<float> float_values(const pb::TensorProto& t, const std::string& what);
// Integer contents of an INT64, INT32 or BOOL tensor (at most 64 values: shape arithmetic).
std::vector<int64_t> int_values(const pb::TensorProto& t, const std::string& what);
const char* type_name(int32_t onnx_data_type);

// Node attributes, type-checked: `what` labels the node in messages.
class Attrs {
 public:
  Attrs(const pb::NodeProto& n, std::string what);
  bool has(const std::string& name) const { return find(name) != nullptr; }
  int64_t i(const std::string& name, int64_t def) const;
  float f(const std::string& name, float def) const;
  std::string s(const std::string& name, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& name, std::vector<int64_t> def) const;
  const pb::TensorProto* t(const std::string& name) const;
  const pb::AttributeProto* find(const std::string& name) const;

 private:
  const pb::AttributeProto* typed(const std::string& name, pb::AttributeProto::AttributeType type) const;
  const pb::NodeProto& n_;
  std::string what_;
};

}  // namespace dtsim::engine::onnx
