// The ONNX importer's internals (engine/onnx.hpp is the interface): one pass over the nodes in the
// file's (topological) order. Each ONNX value name maps to a Value: an activation (a graph
// tensor, with its ONNX rank 4 = N x C x H x W or 2 = N x F), an initializer, a shape value
// computed at import (integers, the batch kept symbolic as kBatch), or a zero-padded activation
// waiting for the Conv / AveragePool that absorbs the padding.
//   onnx_import.cpp  the pass, the graph's input and output, value lookup, dispatch by op type
//   onnx_layers.cpp  operators that become layers (Conv, Gemm, MatMul + Add, pooling, BatchNorm)
//   onnx_shapes.cpp  shape values, Reshape, Pad, Constant
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/graph.hpp"
#include "engine/onnx.hpp"
#include "engine/onnx_proto.hpp"

namespace dtsim::engine::onnx {

struct Value {
  enum class Kind { Act, Init, Ints, Other, Padded } kind = Kind::Act;
  int tensor = -1;  // Act, Padded
  int rank = 4;     // Act, Padded
  const pb::TensorProto* init = nullptr;  // Init
  std::vector<int64_t> ints;              // Ints
  bool scalar = false;                    // Ints: rank 0
  bool zero = false;                      // Other: a float constant 0 (a Pad value)
  int pad[4] = {0, 0, 0, 0};              // Padded: top, left, bottom, right
};

// "node 'NAME' (OpType)" (index i when unnamed), for messages.
std::string node_label(const pb::NodeProto& n, int i);
// Refuses an operator dtsim does not translate: names it and lists what is supported.
[[noreturn]] void unsupported(const std::string& where, const std::string& op);

class Importer {
 public:
  Importer(const pb::GraphProto& g, SampleShape in, int classes) : g_(g), in_(in), classes_(classes) {}
  Imported run();

 private:
  // ---- onnx_import.cpp: the graph's input and output, values, dispatch
  void bind_input();
  void finish();
  void visit(const pb::NodeProto& n);
  void define(const std::string& name, const Value& v);
  const Value& value(const std::string& name, const std::string& what) const;
  bool has_input(const pb::NodeProto& n, int i) const { return i < n.input_size() && !n.input(i).empty(); }
  const Value& in(const pb::NodeProto& n, int i) const;
  // An activation input (rank 4 when `rank4`).
  const Value& act(const pb::NodeProto& n, int i, bool rank4) const;
  // Integer shape values of an input: computed at import, or an integer initializer.
  std::vector<int64_t> ints(const pb::NodeProto& n, int i) const;
  // Outputs `from`.. of n (indices, running statistics, a mask) must be read by nobody.
  void out_unused(const pb::NodeProto& n, int from, const std::string& what) const;
  Value ints_value(std::vector<int64_t> v, bool scalar) const;
  // A parameter or state tensor: a float32 initializer of exactly `dims` (a bias may also be
  // [1, n]), used by no other layer.
  std::vector<float> take(const pb::NodeProto& n, int i, const std::vector<int64_t>& dims, const char* role);
  std::vector<int64_t> init_dims(const pb::NodeProto& n, int i, const char* role) const;
  // A layer's name: "<module>" for a weight named "<module>.weight" (PyTorch's), else the node's.
  std::string name_for(const pb::NodeProto& n, const std::string& weight = "") const;
  int add(std::unique_ptr<Layer> l, int x, int x2 = -1);
  // A layer constructor's shape errors as refusals naming the node.
  template <class F>
  std::unique_ptr<Layer> make(F&& f) const {
    try {
      return f();
    } catch (const RuntimeError& e) {
      fail(where_ + ": " + e.what());
    }
  }
  SampleShape shape(const Value& v) const { return graph_->shape(v.tensor); }
  // [batch, features] of an activation: a Flatten layer unless already C x 1 x 1.
  Value flat(const Value& v, const std::string& name);
  static Value act_value(int tensor, int rank) {
    Value v;
    v.tensor = tensor;
    v.rank = rank;
    return v;
  }
  static void append(std::vector<float>& to, const std::vector<float>& v) { to.insert(to.end(), v.begin(), v.end()); }

  // ---- onnx_layers.cpp
  static int geom(int64_t v, int lo, const std::string& what);
  std::vector<int64_t> pair(const Attrs& a, const char* key, int64_t def) const;
  // pads [top, left, bottom, right] plus a pending Pad, after auto_pad.
  std::vector<int64_t> pads(const Attrs& a, const Value& x, int kh, int kw, int sh, int sw) const;
  void no_dilation(const Attrs& a) const;
  void conv(const pb::NodeProto& n, const Attrs& a);
  void linear(const Value& x, std::vector<float> weight, bool transposed, int64_t out, std::vector<float> bias,
              const std::string& output, const std::string& name);
  void gemm(const pb::NodeProto& n, const Attrs& a);
  // MatMul by a weight [in][out] whose only reader is an Add of a bias: one Linear layer.
  void matmul(const pb::NodeProto& n);
  void pool(const pb::NodeProto& n, const Attrs& a, Pool2d::Kind kind);
  void global_pool(const pb::NodeProto& n, Pool2d::Kind kind);
  void batchnorm(const pb::NodeProto& n, const Attrs& a);

  // ---- onnx_shapes.cpp
  // Reshape to [batch, features] (a flatten) or to the shape it already has.
  void reshape(const pb::NodeProto& n, const Attrs& a);
  void pad(const pb::NodeProto& n, const Attrs& a);
  void constant(const pb::NodeProto& n, const Attrs& a);
  void shape_of(const pb::NodeProto& n, const Attrs& a);
  void gather(const pb::NodeProto& n, const Attrs& a);
  void unsqueeze_squeeze(const pb::NodeProto& n, const Attrs& a, bool unsqueeze);
  void concat(const pb::NodeProto& n, const Attrs& a);

  const pb::GraphProto& g_;
  SampleShape in_;
  int classes_;
  std::unique_ptr<Graph> graph_;
  std::map<std::string, Value> values_;
  std::map<std::string, const pb::TensorProto*> inits_;
  std::map<std::string, std::vector<int>> consumers_;  // node indices reading a value (-1: a graph output)
  std::set<const pb::TensorProto*> taken_;             // initializers already a layer's parameter or state
  std::set<int> fused_;                                // nodes already translated (the Add of MatMul + Add)
  std::map<int, int> flattened_;                       // graph tensor -> its Flatten
  std::vector<float> params_, state_;
  int64_t export_batch_ = 0;
  int index_ = 0;
  std::string where_;
};

}  // namespace dtsim::engine::onnx
