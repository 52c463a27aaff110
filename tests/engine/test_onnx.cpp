// ONNX models (engine/onnx.hpp): parity with PyTorch on two exported networks
// (tests/data/onnx/make_onnx.py wrote the .onnx files and the expected values; no torch needed
// here), init "seed" / "onnx", timing-only info, and every refusal: unsupported operators and
// attributes, malformed and truncated files, shapes that cannot be resolved, inputs and outputs
// that do not match the dataset. Refusal models are built here with ONNX's protobuf classes.
#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "engine/backend.hpp"
#include "engine/model.hpp"
#include "engine/onnx.hpp"
#include "tests/rel.hpp"

namespace test_onnx_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;
namespace pb = ::onnx;  // ONNX's protobuf classes (dtsim::engine::onnx is the importer)

namespace {

const std::string kData = std::string(DTSIM_SOURCE_DIR) + "/tests/data/onnx/";

json gold_of(const std::string& name) {
  std::ifstream in(kData + name + ".json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::unique_ptr<Model> onnx_model(const std::string& path, const std::string& init, SampleShape in, int classes,
                                  Device d, json* resolved = nullptr) {
  const json spec = {{"kind", "onnx"}, {"path", path}, {"init", init}};
  ObjectReader r(spec, JsonOrigin{kData + "exp.json", "model"}, resolved);
  auto m = make_model(r, in, classes, ComputeOptions{d, 1});
  r.finish();
  return m;
}

double rel_diff(const float* got, const std::vector<double>& want, size_t off, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[off + i]));
    scale = std::max(scale, std::abs(want[off + i]));
  }
  return scale > 0 ? err / scale : err;
}

// One training step of the exported network against PyTorch's float64 values, on every host backend.
void check_parity(const std::string& name) {
  const json gold = gold_of(name);
  const auto dims = gold.at("input").get<std::vector<int>>();
  const SampleShape shape{dims[0], dims[1], dims[2]};
  const int K = gold.at("classes").get<int>();
  const size_t n = gold.at("batch").get<size_t>();
  const auto grads = gold.at("grads").get<std::vector<double>>();
  const auto state = gold.at("state").get<std::vector<double>>();
  std::vector<Device> devices{Device::Reference};
  if (onednn_available()) devices.push_back(Device::Cpu);
  for (Device d : devices) {
    CAPTURE(std::string(device_name(d)));
    json resolved;
    auto m = onnx_model(name + ".onnx", "onnx", shape, K, d, &resolved);  // relative to the spec's file
    CHECK(resolved.at("path") == kData + name + ".onnx");
    REQUIRE(m->num_params() == gold.at("num_params").get<size_t>());
    REQUIRE(m->num_state() == state.size());
    Vec p(m->num_params()), g(m->num_params()), st(m->num_state());
    // init "onnx": the file's initializers, in graph order: the script's formula.
    m->init_params(p.view(), 99);
    size_t bad = 0;
    for (size_t i = 0; i < p.size(); ++i)
      bad += p.data()[i] != static_cast<float>(0.3 * std::sin(1.3 * double(i) + 0.5));
    CHECK(bad == 0);
    m->init_state(st.view());  // the file's running statistics (moved by the export's tracing run)
    const auto state0 = gold.at("state0").get<std::vector<double>>();
    bad = 0;
    for (size_t i = 0; i < st.size(); ++i) bad += st.data()[i] != static_cast<float>(state0[i]);
    CHECK(bad == 0);
    Batch b;
    b.shape = shape;
    b.x.resize(n * shape.size());
    for (size_t i = 0; i < b.x.size(); ++i)
      b.x[i] = static_cast<float>(std::sin(0.9 * double(i)) + 0.5 * std::cos(0.31 * double(i)));
    for (size_t i = 0; i < n; ++i) b.y.push_back(static_cast<int32_t>(i % static_cast<size_t>(K)));

    const float loss = m->forward_backward(p.view(), st.view(), b, g.view());
    CHECK(loss == dtsim_test::Rel(gold.at("loss").get<double>()).epsilon(1e-5));
    const double global = rel_diff(g.data(), grads, 0, grads.size());
    MESSAGE(name, " on ", std::string(device_name(d)), ": max |gradient - PyTorch| / max |gradient| = ", global);
    CHECK(global <= 1e-5);
    const auto names = gold.at("param_names").get<std::vector<std::string>>();
    const auto tensors = m->param_tensors();
    REQUIRE(tensors.size() == names.size());
    for (size_t t = 0; t < tensors.size(); ++t) {
      CAPTURE(tensors[t].name);
      // Named like the initializers where they follow "<module>.weight" (not the MatMul's w2/b2).
      if (names[t].find('.') != std::string::npos) CHECK(tensors[t].name == names[t]);
      double scale = 0;
      for (size_t i = 0; i < tensors[t].size; ++i) scale = std::max(scale, std::abs(grads[tensors[t].offset + i]));
      if (scale > 1e-9) CHECK(rel_diff(g.data() + tensors[t].offset, grads, tensors[t].offset, tensors[t].size) <= 1e-4);
    }
    CHECK(rel_diff(st.data(), state, 0, state.size()) <= 1e-5);
    Split split;
    split.x = b.x;
    split.y = b.y;
    CHECK(m->evaluate(p.view(), st.view(), split, 0, n).loss() ==
          dtsim_test::Rel(gold.at("eval_loss").get<double>()).epsilon(1e-5));
  }
}

// ---- hand-built ONNX models for the refusals
struct Net {
  pb::ModelProto m;
  Net(std::vector<int64_t> input = {-1, 1, 4, 4}) {
    m.set_ir_version(7);
    m.add_opset_import()->set_version(14);
    auto* g = m.mutable_graph();
    g->set_name("test");
    auto* in = g->add_input();
    in->set_name("x");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(pb::TensorProto::FLOAT);
    for (int64_t d : input) {
      auto* dim = tt->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("batch");
      else dim->set_dim_value(d);
    }
  }
  pb::NodeProto* node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                        const std::string& name = "") {
    auto* n = m.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? "/" + op : name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  void init(const std::string& name, std::vector<int64_t> dims, float v = 0.1f) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(pb::TensorProto::FLOAT);
    size_t count = 1;
    for (int64_t d : dims) t->add_dims(d), count *= static_cast<size_t>(d);
    for (size_t i = 0; i < count; ++i) t->add_float_data(v);
  }
  void init_ints(const std::string& name, std::vector<int64_t> v) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(pb::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
  }
  static void attr(pb::NodeProto* n, const std::string& key, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void attr(pb::NodeProto* n, const std::string& key, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(pb::AttributeProto::INT);
    a->set_i(v);
  }
  void output(const std::string& name, std::vector<int64_t> dims = {-1, 3}) {
    auto* o = m.mutable_graph()->add_output();
    o->set_name(name);
    auto* tt = o->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(pb::TensorProto::FLOAT);
    for (int64_t d : dims) {
      auto* dim = tt->mutable_shape()->add_dim();
      if (d < 0) dim->set_dim_param("batch");
      else dim->set_dim_value(d);
    }
  }
  // Flatten + Gemm to 3 classes from tensor `t` with `features` values.
  void head(const std::string& t, int64_t features) {
    node("Flatten", {t}, {"flat"});
    init("fc.weight", {3, features});
    init("fc.bias", {3});
    attr(node("Gemm", {"flat", "fc.weight", "fc.bias"}, {"logits"}), "transB", 1);
    output("logits");
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

// The reason an import gives (empty: it succeeded). Only InputError may come out.
std::string refusal(const std::string& bytes, SampleShape in = {1, 4, 4}, int classes = 3) {
  try {
    engine::onnx::import_model(bytes, in, classes);
    return "";
  } catch (const InputError& e) {
    CHECK(e.reason().find('\n') == std::string::npos);
    return e.reason();
  }
}

std::string read(const std::string& name) { return io::read_file(kData + name); }

}  // namespace

TEST_CASE("onnx: a small CNN exported by PyTorch trains like PyTorch, loss and gradients to 1e-5") {
  check_parity("small_cnn");
}

TEST_CASE("onnx: a ResNet-8-shaped network exported by PyTorch trains like PyTorch, loss and gradients to 1e-5") {
  check_parity("resnet8");
}

TEST_CASE("onnx: init seed re-initialises as dtsim's own layers, timing-only info matches the model") {
  const SampleShape shape{3, 16, 16};
  auto file = onnx_model(kData + "resnet8.onnx", "onnx", shape, 10, Device::Reference);
  auto seeded = onnx_model(kData + "resnet8.onnx", "seed", shape, 10, Device::Reference);
  Vec a(file->num_params()), b(seeded->num_params()), c(seeded->num_params());
  file->init_params(a.view(), 5);
  seeded->init_params(b.view(), 5);
  seeded->init_params(c.view(), 5);
  size_t same = 0, differ_cc = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a.data()[i] == b.data()[i], differ_cc += b.data()[i] != c.data()[i];
  CHECK(differ_cc == 0);              // deterministic from the seed
  CHECK(same < a.size() / 10);        // not the file's weights (BatchNorm gamma/beta may coincide)
  for (const ParamTensor& t : seeded->param_tensors()) {
    CAPTURE(t.name);
    if (t.name == "conv1.weight")  // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 27
      for (size_t i = 0; i < t.size; ++i) CHECK(std::abs(b.data()[t.offset + i]) <= 1.0 / std::sqrt(27.0));
    if (t.name == "bn1.weight")
      for (size_t i = 0; i < t.size; ++i) CHECK(b.data()[t.offset + i] == 1.0f);
  }
  json spec = {{"kind", "onnx"}, {"path", kData + "resnet8.onnx"}};
  ObjectReader r(spec, JsonOrigin{"", "model"});
  const ModelInfo info = model_info(r, shape, 10);
  CHECK(info.kind == "onnx");
  CHECK(info.num_params == file->num_params());
  CHECK(info.num_state == file->num_state());
  CHECK(info.flops_per_sample == dtsim_test::Rel(file->flops_per_sample()));
  CHECK(info.flops_per_sample > 0);
  CHECK(info.param_tensors.size() == file->param_tensors().size());
  size_t convs = 0;
  for (const LayerCost& l : info.layers) convs += l.type == "conv2d";
  CHECK(convs == 9);  // stem, 2 per block, 2 shortcuts
}

TEST_CASE("onnx: an unsupported operator names the file's node, its op type and what is supported") {
  Net n;
  n.node("Sigmoid", {"x"}, {"s"}, "/act/Sigmoid");
  n.head("s", 16);
  const std::string why = refusal(n.bytes());
  CHECK(why.find("node '/act/Sigmoid' (Sigmoid)") != std::string::npos);
  CHECK(why.find("not supported") != std::string::npos);
  CHECK(why.find("supported: Conv, Gemm") != std::string::npos);

  Net sm;  // a final Softmax: a hint
  sm.head("x", 16);
  sm.m.mutable_graph()->mutable_output(0)->set_name("p");
  sm.node("Softmax", {"logits"}, {"p"});
  CHECK(refusal(sm.bytes()).find("export the network without its final Softmax") != std::string::npos);

  Net dom;  // a custom domain
  dom.node("Relu", {"x"}, {"r"})->set_domain("com.example");
  dom.m.add_opset_import()->set_domain("com.example");
  dom.m.mutable_opset_import(1)->set_version(1);
  dom.head("r", 16);
  CHECK(refusal(dom.bytes()).find("domain 'com.example'") != std::string::npos);
}

TEST_CASE("onnx: unsupported attributes are refused with the reason") {
  auto conv_net = [](auto&& tweak) {
    Net n({-1, 2, 4, 4});
    n.init("c.weight", {2, 2, 3, 3});
    auto* c = n.node("Conv", {"x", "c.weight"}, {"y"}, "/c/Conv");
    Net::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
    tweak(n, c);
    n.head("y", 32);
    return refusal(n.bytes(), {2, 4, 4});
  };
  CHECK(conv_net([](Net&, pb::NodeProto*) {}) == "");
  CHECK(conv_net([](Net& n, pb::NodeProto* c) {  // depthwise: weight [2, 1, 3, 3], group 2
          Net::attr(c, "group", 2);
          n.m.mutable_graph()->mutable_initializer(0)->set_dims(1, 1);
          n.m.mutable_graph()->mutable_initializer(0)->mutable_float_data()->Truncate(18);
        }).find("group 2 is not supported") != std::string::npos);
  CHECK(conv_net([](Net&, pb::NodeProto* c) { Net::attr(c, "dilations", std::vector<int64_t>{2, 2}); })
            .find("dilation 2") != std::string::npos);
  CHECK(conv_net([](Net&, pb::NodeProto* c) { Net::attr(c, "strides", std::vector<int64_t>{1, 2}); })
            .find("square kernels, equal strides") != std::string::npos);

  Net avg;  // count_include_pad = 0 with padding
  auto* p = avg.node("AveragePool", {"x"}, {"y"});
  Net::attr(p, "kernel_shape", std::vector<int64_t>{3, 3});
  Net::attr(p, "pads", std::vector<int64_t>{1, 1, 1, 1});
  avg.head("y", 16);
  CHECK(refusal(avg.bytes()).find("count_include_pad = 0") != std::string::npos);

  Net pad;  // a Pad whose padding would overflow (found by review; fuzz_onnx's kind of input)
  auto* pd = pad.node("Pad", {"x", "pads"}, {"p"});
  (void)pd;
  pad.init_ints("pads", {0, 0, INT64_MAX, 1, 0, 0, 1, 1});
  auto* ap = pad.node("AveragePool", {"p"}, {"y"});
  Net::attr(ap, "kernel_shape", std::vector<int64_t>{3, 3});
  pad.head("y", 16);
  CHECK(refusal(pad.bytes()).find("padding 9223372036854775807 is outside [0, 1024]") != std::string::npos);

  Net gemm;  // a Gemm without bias
  gemm.node("Flatten", {"x"}, {"flat"});
  gemm.init("fc.weight", {3, 16});
  Net::attr(gemm.node("Gemm", {"flat", "fc.weight"}, {"logits"}), "transB", 1);
  gemm.output("logits");
  CHECK(refusal(gemm.bytes()).find("without a bias") != std::string::npos);
}

TEST_CASE("onnx: malformed, truncated and empty files are refused, never a crash") {
  CHECK(refusal("").find("empty") != std::string::npos);
  CHECK(refusal("this is not a protobuf at all \x01\x02\xff").find("does not parse") != std::string::npos);
  const std::string good = read("small_cnn.onnx");
  CHECK(refusal(good, {1, 12, 12}, 10) == "");
  // Every truncation point in the first 600 bytes and 40 spread over the rest: each one is an
  // InputError with a reason (refusal() lets nothing else through).
  size_t refused = 0, cuts = 0;
  for (size_t len = 0; len < good.size(); len += len < 600 ? 1 : good.size() / 40, ++cuts)
    refused += !refusal(good.substr(0, len), {1, 12, 12}, 10).empty();
  CHECK(refused == cuts);
  // Flipped bytes: refused or (rarely) still a valid model; never another failure.
  for (size_t i = 0; i < good.size(); i += 97) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    (void)refusal(bad, {1, 12, 12}, 10);
  }
}

TEST_CASE("onnx: shapes that cannot be resolved, and inputs or outputs that do not match the dataset") {
  Net noshape;  // an input without a shape: its rank is unknown
  noshape.m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  noshape.head("x", 16);
  CHECK(refusal(noshape.bytes()).find("a dynamic shape dtsim cannot resolve") != std::string::npos);

  Net dyn;  // a Reshape whose shape is computed while the model runs
  dyn.node("Relu", {"x"}, {"r"});
  dyn.node("Reshape", {"x", "r"}, {"y"});
  dyn.head("y", 16);
  CHECK(refusal(dyn.bytes()).find("a dynamic shape dtsim cannot resolve at import") != std::string::npos);

  Net rs;  // a constant Reshape it cannot express
  rs.init_ints("shape", {-1, 4, 2, 2});
  rs.node("Reshape", {"x", "shape"}, {"y"});
  rs.head("y", 16);
  CHECK(refusal(rs.bytes()).find("Reshape of [batch, 1, 4, 4] to [-1, 4, 2, 2] is not supported") != std::string::npos);

  Net sym({-1, -1, 4, 4});  // a symbolic channel count resolves to the dataset's
  sym.head("x", 16);
  CHECK(refusal(sym.bytes()) == "");

  const std::string resnet = read("resnet8.onnx");
  CHECK(refusal(resnet, {1, 28, 28}, 10).find("input 'input' is [batch, 3, 16, 16] but the dataset's samples are 1 x 28 x 28") !=
        std::string::npos);
  CHECK(refusal(resnet, {3, 16, 16}, 100).find("has 10 values per sample; the dataset has 100 classes") !=
        std::string::npos);
  Net two;  // two graph inputs
  auto* in2 = two.m.mutable_graph()->add_input();
  *in2 = two.m.graph().input(0);
  in2->set_name("x2");
  two.head("x", 16);
  CHECK(refusal(two.bytes()).find("the graph has 2 inputs") != std::string::npos);
}

TEST_CASE("onnx: graphs dtsim cannot train are refused: tied weights, dead branches, two outputs") {
  Net tied;
  tied.node("Flatten", {"x"}, {"flat"});
  tied.init("fc.weight", {16, 16});
  tied.init("fc.bias", {16});
  Net::attr(tied.node("Gemm", {"flat", "fc.weight", "fc.bias"}, {"h"}, "/a"), "transB", 1);
  Net::attr(tied.node("Gemm", {"h", "fc.weight", "fc.bias"}, {"h2"}, "/b"), "transB", 1);
  tied.init("out.weight", {3, 16});
  tied.init("out.bias", {3});
  Net::attr(tied.node("Gemm", {"h2", "out.weight", "out.bias"}, {"logits"}), "transB", 1);
  tied.output("logits");
  CHECK(refusal(tied.bytes()).find("tied weights") != std::string::npos);

  Net dead;
  dead.node("Relu", {"x"}, {"unused"}, "/dead/Relu");
  dead.head("x", 16);
  CHECK(refusal(dead.bytes()).find("'/dead/Relu' is never used") != std::string::npos);

  Net two;
  two.head("x", 16);
  two.output("flat");
  CHECK(refusal(two.bytes()).find("2 outputs") != std::string::npos);

  // Nothing to train: validate accepted it and the all-reduce runs crashed (SIGSEGV).
  Net none({-1, 3, 1, 1});
  none.node("Flatten", {"x"}, {"flat"});
  none.node("Relu", {"flat"}, {"logits"});
  none.output("logits");
  CHECK(refusal(none.bytes(), SampleShape{3, 1, 1}, 3).find("no trainable parameters") != std::string::npos);

  // A negative running variance: every evaluation was NaN, the run "completed".
  Net bn({-1, 2, 4, 4});
  bn.init("bn.weight", {2}, 1.0f);
  bn.init("bn.bias", {2}, 0.0f);
  bn.init("bn.running_mean", {2}, 0.0f);
  bn.init("bn.running_var", {2}, -1.0f);
  bn.node("BatchNormalization", {"x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, {"y"});
  bn.head("y", 32);
  CHECK(refusal(bn.bytes(), SampleShape{2, 4, 4}, 3).find("running variance 'bn.running_var'[0] is -1") != std::string::npos);
  bn.m.mutable_graph()->mutable_initializer(3)->set_float_data(0, 1.0f);
  bn.m.mutable_graph()->mutable_initializer(3)->set_float_data(1, 1.0f);
  CHECK(refusal(bn.bytes(), SampleShape{2, 4, 4}, 3) == "");
}

TEST_CASE("onnx: through the model spec, a bad path or file is an InputError at model.path") {
  auto fails = [](const json& spec) {
    ObjectReader r(spec, JsonOrigin{kData + "exp.json", "model"});
    try {
      model_info(r, SampleShape{1, 12, 12}, 10);
    } catch (const InputError& e) {
      CHECK(e.file() == kData + "exp.json");
      CHECK(e.path() == "model.path");
      return e.reason();
    }
    return std::string();
  };
  CHECK(fails({{"kind", "onnx"}, {"path", "missing.onnx"}}).find("cannot read ONNX model '" + kData + "missing.onnx'") !=
        std::string::npos);
  CHECK(fails({{"kind", "onnx"}, {"path", "make_onnx.py"}}).find(kData + "make_onnx.py: ") != std::string::npos);
  CHECK(fails({{"kind", "onnx"}, {"path", "small_cnn.onnx"}}).empty());
}

}  // namespace test_onnx_cpp
