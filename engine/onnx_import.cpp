// ONNX graph -> engine Graph: the pass over the nodes, the graph's input and output, value
// lookup and the dispatch by op type (engine/onnx_import.hpp; engine/onnx.hpp lists what
// translates and how).
#include <onnx/checker.h>

#include <algorithm>
#include <climits>

#include "engine/onnx_import.hpp"

namespace dtsim::engine::onnx {

Imported Importer::run() {
  graph_ = std::make_unique<Graph>(in_);
  for (const auto& t : g_.initializer()) {
    if (t.name().empty()) fail("an initializer has no name");
    if (!inits_.emplace(t.name(), &t).second) fail("two initializers are named '" + printable(t.name()) + "'");
    Value v;
    v.kind = Value::Kind::Init;
    v.init = &t;
    values_[t.name()] = v;
  }
  for (int i = 0; i < g_.node_size(); ++i)
    for (const auto& name : g_.node(i).input())
      if (!name.empty()) consumers_[name].push_back(i);
  for (const auto& o : g_.output()) consumers_[o.name()].push_back(-1);
  bind_input();
  for (int i = 0; i < g_.node_size(); ++i) {
    index_ = i;
    const pb::NodeProto& n = g_.node(i);
    where_ = node_label(n, i);
    if (fused_.count(i)) continue;
    visit(n);
  }
  finish();
  // Nothing to train (a graph of Relu, pooling, Flatten only): every algorithm would exchange empty
  // vectors (a crash in the all-reduce runs, "more shards than parameters" on a server).
  if (graph_->num_params() == 0)
    fail("the graph has no trainable parameters (no Conv, Gemm, MatMul or BatchNormalization with initializers): nothing to train");
  return {std::move(graph_), std::move(params_), std::move(state_)};
}

void Importer::bind_input() {
  std::vector<const pb::ValueInfoProto*> feeds;
  for (const auto& i : g_.input())
    if (!inits_.count(i.name())) feeds.push_back(&i);
  if (feeds.size() != 1) {
    std::string names;
    for (const auto* f : feeds) names += (names.empty() ? "" : ", ") + ("'" + printable(f->name()) + "'");
    fail("the graph has " + std::to_string(feeds.size()) + " inputs besides its initializers" +
         (names.empty() ? "" : " (" + names + ")") + "; dtsim feeds exactly one: the samples");
  }
  const pb::ValueInfoProto& vi = *feeds[0];
  const std::string what = "input '" + printable(vi.name()) + "'";
  if (!vi.has_type() || !vi.type().has_tensor_type()) fail(what + " is not a tensor");
  const auto& tt = vi.type().tensor_type();
  if (tt.elem_type() != pb::TensorProto::FLOAT)
    fail(what + " is " + type_name(tt.elem_type()) + "; dtsim feeds float32 samples");
  if (!tt.has_shape())
    fail(what + " has no shape (its rank is unknown): a dynamic shape dtsim cannot resolve; export it as "
                "[batch, C, H, W] or [batch, features]");
  const auto& dims = tt.shape().dim();
  const int rank = dims.size();
  const std::vector<int64_t> want =
      rank == 4 ? std::vector<int64_t>{in_.c, in_.h, in_.w} : std::vector<int64_t>{static_cast<int64_t>(in_.size())};
  auto shown = [&] {
    std::string s = "[batch";
    for (int d = 1; d < rank; ++d)
      s += ", " + (dims[d].has_dim_value() ? std::to_string(dims[d].dim_value())
                                           : dims[d].has_dim_param() ? printable(dims[d].dim_param()) : "?");
    return s + "]";
  };
  const std::string data =
      std::to_string(in_.c) + " x " + std::to_string(in_.h) + " x " + std::to_string(in_.w);
  if (rank != 4 && rank != 2)
    fail(what + " has rank " + std::to_string(rank) + " " + shown() +
         "; dtsim feeds [batch, C, H, W] or [batch, features] (the dataset's samples are " + data + ")");
  // Symbolic or unknown sizes (but the batch) resolve to the dataset's; fixed ones must match it.
  for (int d = 1; d < rank; ++d)
    if (dims[d].has_dim_value() && dims[d].dim_value() != want[static_cast<size_t>(d - 1)])
      fail(what + " is " + shown() + " but the dataset's samples are " + data);
  if (dims[0].has_dim_value()) export_batch_ = dims[0].dim_value();
  Value v;
  v.tensor = Graph::input();
  v.rank = rank;
  if (rank == 2 && !(in_.h == 1 && in_.w == 1)) v = flat(v, "input.flatten");
  define(vi.name(), v);
}

void Importer::finish() {
  if (g_.output_size() != 1)
    fail("the graph has " + std::to_string(g_.output_size()) +
         " outputs; dtsim needs exactly one: the logits [batch, classes]");
  const std::string& name = g_.output(0).name();
  const Value& v = value(name, "output '" + printable(name) + "'");
  if (v.kind != Value::Kind::Act) fail("output '" + printable(name) + "' is not computed from the input");
  if (v.tensor == Graph::input()) fail("the graph computes nothing from its input");
  const SampleShape s = graph_->shape(v.tensor);
  if (s.size() != static_cast<size_t>(classes_))
    fail("output '" + printable(name) + "' has " + std::to_string(s.size()) + " values per sample; the dataset has " +
         std::to_string(classes_) + " classes");
  // Every tensor but the logits feeds a layer (no dead branches), and a Flatten (an alias) is
  // its input's only reader.
  std::vector<int> readers(static_cast<size_t>(graph_->last()) + 1, 0);
  for (const auto& nd : graph_->nodes()) {
    ++readers[static_cast<size_t>(nd.in)];
    if (nd.in2 >= 0) ++readers[static_cast<size_t>(nd.in2)];
  }
  if (v.tensor != graph_->last())
    fail("output '" + printable(name) + "' is not the last layer's result: layer '" +
         graph_->nodes().back().layer->name() + "' computes something after it that nothing uses");
  for (int t = 1; t < graph_->last(); ++t)
    if (readers[static_cast<size_t>(t)] == 0)
      fail("the result of layer '" + graph_->nodes()[static_cast<size_t>(t - 1)].layer->name() +
           "' is never used (dtsim trains one output)");
  for (const auto& nd : graph_->nodes())
    if (nd.layer->in_place() == InPlace::Alias && readers[static_cast<size_t>(nd.in)] != 1)
      fail("layer '" + nd.layer->name() + "' flattens a tensor that other layers also read: not supported");
}

void Importer::define(const std::string& name, const Value& v) {
  if (name.empty()) return;
  if (values_.count(name)) fail(where_ + ": value '" + printable(name) + "' is defined twice");
  values_[name] = v;
}

const Value& Importer::value(const std::string& name, const std::string& what) const {
  auto it = values_.find(name);
  if (it == values_.end())
    fail(what + " reads '" + printable(name) + "', which is neither the graph input, an initializer nor the output of an earlier node");
  return it->second;
}

const Value& Importer::in(const pb::NodeProto& n, int i) const {
  if (!has_input(n, i)) fail(where_ + ": input " + std::to_string(i) + " is missing");
  return value(n.input(i), where_);
}

// An activation input (rank 4 when `rank4`).
const Value& Importer::act(const pb::NodeProto& n, int i, bool rank4) const {
  const Value& v = in(n, i);
  if (v.kind == Value::Kind::Padded)
    fail(where_ + ": reads the output of a Pad; dtsim supports Pad (zeros) only before a Conv or an AveragePool");
  if (v.kind != Value::Kind::Act)
    fail(where_ + ": input " + std::to_string(i) + " ('" + printable(n.input(i)) +
         "') must be computed from the graph input, got a constant");
  if (rank4 && v.rank != 4)
    fail(where_ + ": input '" + printable(n.input(i)) + "' has rank " + std::to_string(v.rank) + "; expected [batch, C, H, W]");
  return v;
}

// Integer shape values of an input: computed at import, or an integer initializer.
std::vector<int64_t> Importer::ints(const pb::NodeProto& n, int i) const {
  const Value& v = in(n, i);
  if (v.kind == Value::Kind::Ints) return v.ints;
  if (v.kind == Value::Kind::Init) return int_values(*v.init, "initializer '" + printable(n.input(i)) + "'");
  fail(where_ + ": input '" + printable(n.input(i)) +
       "' is computed while the model runs: a dynamic shape dtsim cannot resolve at import");
}

void Importer::out_unused(const pb::NodeProto& n, int from, const std::string& what) const {
  for (int o = from; o < n.output_size(); ++o)
    if (!n.output(o).empty() && consumers_.count(n.output(o)))
      fail(where_ + ": its output " + std::to_string(o) + " (" + what + ") is read; dtsim computes only the first");
}

Value Importer::ints_value(std::vector<int64_t> v, bool scalar) const {
  if (v.size() > 64) fail(where_ + ": a shape value with more than 64 entries");
  Value r;
  r.kind = Value::Kind::Ints;
  r.ints = std::move(v);
  r.scalar = scalar;
  return r;
}

// A parameter or state tensor: a float32 initializer of exactly `dims` (a bias may also be
// [1, n]), used by no other layer.
std::vector<float> Importer::take(const pb::NodeProto& n, int i, const std::vector<int64_t>& dims, const char* role) {
  const Value& v = in(n, i);
  const std::string what = where_ + ": " + role + " '" + printable(n.input(i)) + "'";
  if (v.kind != Value::Kind::Init) fail(what + " must be an initializer (a trained tensor stored in the file)");
  if (!taken_.insert(v.init).second)
    fail(what + " is used by two layers: tied weights are not supported");
  std::vector<int64_t> got = tensor_dims(*v.init, what);
  if (dims.size() == 1 && got.size() == 2 && got[0] == 1) got.erase(got.begin());
  if (got != dims) fail(what + " is " + dims_str(got) + ", expected " + dims_str(dims));
  return float_values(*v.init, what);
}

std::vector<int64_t> Importer::init_dims(const pb::NodeProto& n, int i, const char* role) const {
  const Value& v = in(n, i);
  const std::string what = where_ + ": " + role + " '" + printable(n.input(i)) + "'";
  if (v.kind != Value::Kind::Init) fail(what + " must be an initializer (a trained tensor stored in the file)");
  return tensor_dims(*v.init, what);
}

std::string Importer::name_for(const pb::NodeProto& n, const std::string& weight) const {
  static const std::string suffix = ".weight";
  if (weight.size() > suffix.size() && weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0)
    return printable(weight.substr(0, weight.size() - suffix.size()));
  if (!n.name().empty()) return printable(n.name());
  return printable(n.op_type()) + "_" + std::to_string(index_);
}

int Importer::add(std::unique_ptr<Layer> l, int x, int x2) {
  try {
    return graph_->add(std::move(l), x, x2);
  } catch (const RuntimeError& e) {
    fail(where_ + ": " + e.what());
  }
}

// [batch, features] of an activation: a Flatten layer unless already C x 1 x 1.
Value Importer::flat(const Value& v, const std::string& name) {
  Value r = v;
  r.rank = 2;
  const SampleShape s = shape(v);
  if (s.h == 1 && s.w == 1) return r;
  auto it = flattened_.find(v.tensor);
  if (it != flattened_.end()) return r.tensor = it->second, r;
  r.tensor = add(std::make_unique<Flatten>(name, s), v.tensor);
  flattened_[v.tensor] = r.tensor;
  return r;
}

void Importer::visit(const pb::NodeProto& n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    fail(where_ + ": operators of domain '" + printable(n.domain()) + "' are not supported; supported: " + supported_ops());
  if (n.output_size() < 1 || n.output(0).empty()) fail(where_ + ": has no output");
  const Attrs a(n, where_);
  const std::string& op = n.op_type();
  if (op == "Conv") return conv(n, a);
  if (op == "Gemm") return gemm(n, a);
  if (op == "MatMul") return matmul(n);
  if (op == "BatchNormalization") return batchnorm(n, a);
  if (op == "MaxPool") return pool(n, a, Pool2d::Kind::Max);
  if (op == "AveragePool") return pool(n, a, Pool2d::Kind::Avg);
  if (op == "GlobalAveragePool") return global_pool(n, Pool2d::Kind::Avg);
  if (op == "GlobalMaxPool") return global_pool(n, Pool2d::Kind::Max);
  if (op == "Relu") {
    const Value& x = act(n, 0, false);
    return define(n.output(0), act_value(add(std::make_unique<ReLU>(name_for(n), shape(x)), x.tensor), x.rank));
  }
  if (op == "Add") {
    const Value& x = in(n, 0);
    const Value& y = in(n, 1);
    if (x.kind != Value::Kind::Act || y.kind != Value::Kind::Act)
      fail(where_ + ": an Add of a constant is supported only as the bias of a MatMul (MatMul + Add = a Linear layer)");
    const SampleShape sx = shape(x), sy = shape(y);
    if (x.rank != y.rank || sx.c != sy.c || sx.h != sy.h || sx.w != sy.w)
      fail(where_ + ": adds tensors of different shapes; broadcasting is not supported");
    return define(n.output(0), act_value(add(std::make_unique<Add>(name_for(n), sx), x.tensor, y.tensor), x.rank));
  }
  if (op == "Flatten") {
    const Value& x = act(n, 0, false);
    const int64_t axis = a.i("axis", 1);
    if (axis != 1 && axis != 1 - x.rank) fail(where_ + ": axis " + std::to_string(axis) + " is not supported (axis 1: [batch, features])");
    return define(n.output(0), flat(x, name_for(n)));
  }
  if (op == "Reshape") return reshape(n, a);
  if (op == "Identity" || op == "Dropout") {
    if (op == "Dropout") out_unused(n, 1, "the mask");
    const Value& x = in(n, 0);
    return define(n.output(0), x);
  }
  if (op == "Pad") return pad(n, a);
  if (op == "Constant") return constant(n, a);
  if (op == "Shape") return shape_of(n, a);
  if (op == "Gather") return gather(n, a);
  if (op == "Unsqueeze") return unsqueeze_squeeze(n, a, true);
  if (op == "Squeeze") return unsqueeze_squeeze(n, a, false);
  if (op == "Cast") {
    const Value& x = in(n, 0);
    if (x.kind != Value::Kind::Ints) fail(where_ + ": Cast is supported on shape values only");
    return define(n.output(0), x);
  }
  if (op == "Concat") return concat(n, a);
  unsupported(where_, op);
}

namespace {

// The operators visit() translates.
bool known_op(const pb::NodeProto& n) {
  static const std::set<std::string> ops = {
      "Conv",    "Gemm",     "MatMul",  "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
      "GlobalMaxPool", "Relu", "Add",   "Flatten", "Reshape", "Squeeze",  "Unsqueeze",  "Dropout",
      "Identity", "Pad",     "Shape",   "Constant", "Gather", "Concat",   "Cast"};
  return (n.domain().empty() || n.domain() == "ai.onnx") && ops.count(n.op_type());
}

}  // namespace

std::string node_label(const pb::NodeProto& n, int i) {
  return "node '" + (n.name().empty() ? "#" + std::to_string(i) : printable(n.name())) + "' (" + printable(n.op_type()) + ")";
}

void unsupported(const std::string& where, const std::string& op) {
  std::string hint;
  if (op == "Softmax" || op == "LogSoftmax")
    hint = " (dtsim applies softmax cross-entropy to the logits itself: export the network without its final " + op + ")";
  fail(where + ": operator '" + printable(op) + "' is not supported" + hint + "; supported: " + supported_ops());
}

std::string supported_ops() {
  return "Conv, Gemm, MatMul + Add, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, "
         "GlobalMaxPool, Add, Flatten, Reshape, Squeeze, Dropout, Identity, Pad (zeros, before Conv or AveragePool), "
         "and on shape values Shape, Constant, Gather, Unsqueeze, Concat, Cast";
}

Imported import_model(std::string_view bytes, const SampleShape& input, int classes) {
  if (bytes.empty()) fail("the file is empty");
  if (bytes.size() > static_cast<size_t>(INT_MAX)) fail("the file is larger than 2 GiB (protobuf's limit)");
  pb::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    fail("not an ONNX model: the protobuf does not parse (malformed or truncated file)");
  if (!model.has_graph()) fail("not an ONNX model: it has no graph");
  // Before the checker, whose message for this ("Field 'shape' of 'type' is required") says less.
  std::set<std::string> init_names;
  for (const auto& t : model.graph().initializer()) init_names.insert(t.name());
  for (const auto& i : model.graph().input())
    if (!init_names.count(i.name()) && i.type().has_tensor_type() && !i.type().tensor_type().has_shape())
      fail("input '" + printable(i.name()) + "' has no shape (its rank is unknown): a dynamic shape dtsim cannot "
           "resolve; export it as [batch, C, H, W] or [batch, features]");
  // Unsupported operators first: the message names what dtsim supports, and the checker is spared
  // operators it would only warn about on stderr (experimental ones).
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const pb::NodeProto& n = model.graph().node(i);
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      fail(node_label(n, i) + ": operators of domain '" + printable(n.domain()) + "' are not supported; supported: " +
           supported_ops());
    if (!known_op(n)) unsupported(node_label(n, i), n.op_type());
  }
  try {
    pb::checker::check_model(model);
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (const auto nl = why.find('\n'); nl != std::string::npos) why.resize(nl);
    fail("the ONNX checker refuses it: " + printable(why.substr(0, 300)));
  }
  bool default_domain = false;
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") default_domain = true;
  if (!default_domain) fail("the model imports no version of the default ONNX operator set");
  return Importer(model.graph(), input, classes).run();
}

}  // namespace dtsim::engine::onnx
