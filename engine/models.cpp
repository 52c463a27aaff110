// The named architectures. Layer names follow the PyTorch reference implementations, so
// param_tensors() reads like their state_dict():
//   mlp             Flatten, (Linear + ReLU) per hidden width, Linear
//   lenet5          LeNet-5 as in bench/pytorch_anchor.py (ReLU, max pooling): conv 6@5x5 (padding
//                   2 on 28x28 inputs, else 0), pool, conv 16@5x5, pool, 120, 84, classes
//   resnet8..110    He et al. 2016 CIFAR ResNets, 6n+2 layers, 16/32/64 channels; option-A
//                   (subsample + zero-pad) shortcuts by default, option B (1x1 conv + BN) for resnet8,
//                   as in the anchor script
//   resnet18        the CIFAR variant (kuangliu/pytorch-cifar): 3x3 stem, no max pool, 4 stages of
//                   2 BasicBlocks (64..512), 1x1-conv shortcuts, global average pool
//   vgg16           the CIFAR variant (kuangliu/pytorch-cifar): 13 conv3x3+BN+ReLU, 5 max pools, one
//                   Linear(512, classes)
//   resnet50, resnet101, vgg16-imagenet, alexnet: torchvision's ImageNet models, timing-only
//   gpt             nanoGPT's GPT-2 over token sequences (engine/gpt.hpp)
//   onnx            a file exported by torch.onnx.export, translated layer by layer (engine/onnx.hpp)
#include "engine/models.hpp"

#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/gpt.hpp"
#include "engine/onnx.hpp"
#include "engine/profile_model.hpp"

namespace dtsim::engine {

namespace {

struct Kind {
  const char* name;
  bool timing_only;
};
const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k{{"mlp", false}, {"onnx", false},       {"lenet5", false},          {"resnet8", false},
                                   {"resnet20", false},  {"resnet32", false},        {"resnet44", false},
                                   {"resnet56", false},  {"resnet110", false},       {"resnet18", false},
                                   {"vgg16", false},     {"resnet50", true},         {"resnet101", true},
                                   {"vgg16-imagenet", true}, {"alexnet", true},
                                   {"gpt", false},
                                   {"profile", true}};  // measured by tools/torch_profile.py: engine/profile_model.hpp
  return k;
}

// A graph under construction with the shape bookkeeping of the builders.
struct Net {
  Graph& g;
  int t;  // the current tensor
  SampleShape shape() const { return g.shape(t); }
  int add(std::unique_ptr<Layer> l) { return t = g.add(std::move(l), t); }
  int conv(const std::string& name, int out, int k, int stride, int pad, bool bias) {
    return add(std::make_unique<Conv2d>(name, shape(), out, k, stride, pad, bias));
  }
  int bn(const std::string& name) { return add(std::make_unique<BatchNorm2d>(name, shape())); }
  int relu(const std::string& name) { return add(std::make_unique<ReLU>(name, shape())); }
  int maxpool(const std::string& name, int k, int s, int p = 0) { return add(max_pool(name, shape(), k, s, p)); }
  int linear(const std::string& name, int out) {
    return add(std::make_unique<Linear>(name, shape(), static_cast<size_t>(out)));
  }
  int flatten() { return add(std::make_unique<Flatten>("flatten", shape())); }
};

// Converts a shape error of a layer constructor into an InputError at the spec.
template <class F>
void building(ObjectReader& spec, const std::string& kind, const SampleShape& input, F&& f) {
  try {
    f();
  } catch (const RuntimeError& e) {
    spec.fail("kind", "cannot build '" + kind + "' for input " + std::to_string(input.c) + "x" +
                          std::to_string(input.h) + "x" + std::to_string(input.w) + ": " + e.what());
  }
}

void build_mlp(ObjectReader& spec, Graph& g, int classes) {
  // Flatten, then Linear+ReLU per hidden width, then Linear to the classes.
  const std::vector<int64_t> hidden = spec.integer_list("hidden", std::vector<int64_t>{256, 128});
  for (size_t i = 0; i < hidden.size(); ++i)
    if (hidden[i] < 1 || hidden[i] > (int64_t{1} << 20))
      spec.fail("hidden", "entry " + std::to_string(i) + " is " + std::to_string(hidden[i]) +
                              "; widths must be in 1..1048576");
  Net net{g, Graph::input()};
  net.flatten();
  for (size_t i = 0; i < hidden.size(); ++i) {
    const std::string idx = std::to_string(i + 1);
    if (net.shape().size() > (size_t{1} << 30) / static_cast<size_t>(hidden[i]))
      spec.fail("hidden", "layer fc" + idx + " would have " + std::to_string(net.shape().size()) + " x " +
                              std::to_string(hidden[i]) + " weights; at most 2^30 per layer");
    net.linear("fc" + idx, static_cast<int>(hidden[i]));
    net.relu("relu" + idx);
  }
  net.linear("fc" + std::to_string(hidden.size() + 1), classes);
}

void build_lenet5(ObjectReader& spec, Graph& g, const SampleShape& in, int classes) {
  const int64_t pad = spec.integer("padding", in.h == 28 && in.w == 28 ? 2 : 0);
  if (pad < 0 || pad > 16) spec.fail("padding", "must be in [0, 16], got " + std::to_string(pad));
  building(spec, "lenet5", in, [&] {
    Net net{g, Graph::input()};
    net.conv("conv1", 6, 5, 1, static_cast<int>(pad), true);
    net.relu("relu1");
    net.maxpool("pool1", 2, 2);
    net.conv("conv2", 16, 5, 1, 0, true);
    net.relu("relu2");
    net.maxpool("pool2", 2, 2);
    net.flatten();
    net.linear("fc1", 120);
    net.relu("relu3");
    net.linear("fc2", 84);
    net.relu("relu4");
    net.linear("fc3", classes);
  });
}

// BasicBlock (expansion 1): conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
void basic_block(Net& net, const std::string& p, int out, int stride, char shortcut) {
  const int x = net.t;
  const SampleShape xs = net.shape();
  net.conv(p + ".conv1", out, 3, stride, 1, false);
  net.bn(p + ".bn1");
  net.relu(p + ".relu1");
  net.conv(p + ".conv2", out, 3, 1, 1, false);
  const int main = net.bn(p + ".bn2");
  int sc = x;
  if (stride != 1 || xs.c != out) {
    if (shortcut == 'A') {
      sc = net.g.add(std::make_unique<SubsamplePad>(p + ".shortcut", xs, stride, out), x);
    } else {
      sc = net.g.add(std::make_unique<Conv2d>(p + ".shortcut.0", xs, out, 1, stride, 0, false), x);
      sc = net.g.add(std::make_unique<BatchNorm2d>(p + ".shortcut.1", net.g.shape(sc)), sc);
    }
  }
  net.t = net.g.add(std::make_unique<Add>(p + ".add", net.g.shape(main)), main, sc);
  net.relu(p + ".relu2");
}

// Bottleneck (expansion 4, torchvision v1.5: stride on the 3x3).
void bottleneck(Net& net, const std::string& p, int planes, int stride) {
  const int x = net.t;
  const SampleShape xs = net.shape();
  const int out = planes * 4;
  net.conv(p + ".conv1", planes, 1, 1, 0, false);
  net.bn(p + ".bn1");
  net.relu(p + ".relu1");
  net.conv(p + ".conv2", planes, 3, stride, 1, false);
  net.bn(p + ".bn2");
  net.relu(p + ".relu2");
  net.conv(p + ".conv3", out, 1, 1, 0, false);
  const int main = net.bn(p + ".bn3");
  int sc = x;
  if (stride != 1 || xs.c != out) {
    sc = net.g.add(std::make_unique<Conv2d>(p + ".downsample.0", xs, out, 1, stride, 0, false), x);
    sc = net.g.add(std::make_unique<BatchNorm2d>(p + ".downsample.1", net.g.shape(sc)), sc);
  }
  net.t = net.g.add(std::make_unique<Add>(p + ".add", net.g.shape(main)), main, sc);
  net.relu(p + ".relu3");
}

void head(Net& net, int classes) {
  net.add(global_avg_pool("avgpool", net.shape()));
  net.flatten();
  net.linear("fc", classes);
}

void build_resnet_cifar(ObjectReader& spec, Graph& g, const SampleShape& in, int classes, const std::string& kind,
                        int n) {
  const std::string sc = spec.choice("shortcut", {"A", "B"}, n == 1 ? "B" : "A");
  building(spec, kind, in, [&] {
    Net net{g, Graph::input()};
    net.conv("conv1", 16, 3, 1, 1, false);
    net.bn("bn1");
    net.relu("relu");
    const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; ++s)
      for (int b = 0; b < n; ++b)
        basic_block(net, "layer" + std::to_string(s + 1) + "." + std::to_string(b), widths[s], s > 0 && b == 0 ? 2 : 1,
                    sc[0]);
    head(net, classes);
  });
}

void build_resnet18(ObjectReader& spec, Graph& g, const SampleShape& in, int classes) {
  building(spec, "resnet18", in, [&] {
    Net net{g, Graph::input()};
    net.conv("conv1", 64, 3, 1, 1, false);
    net.bn("bn1");
    net.relu("relu");
    const int widths[4] = {64, 128, 256, 512};
    for (int s = 0; s < 4; ++s)
      for (int b = 0; b < 2; ++b)
        basic_block(net, "layer" + std::to_string(s + 1) + "." + std::to_string(b), widths[s], s > 0 && b == 0 ? 2 : 1,
                    'B');
    head(net, classes);
  });
}

const int kM = -1;  // max pool in a VGG configuration
const std::vector<int> kVgg16{64, 64, kM, 128, 128, kM, 256, 256, 256, kM, 512, 512, 512, kM, 512, 512, 512, kM};

void vgg_features(Net& net, bool bn) {
  int i = 0, pool = 0;
  for (int v : kVgg16) {
    if (v == kM) {
      net.maxpool("pool" + std::to_string(++pool), 2, 2);
      continue;
    }
    const std::string idx = std::to_string(i++);
    net.conv("features.conv" + idx, v, 3, 1, 1, true);
    if (bn) net.bn("features.bn" + idx);
    net.relu("features.relu" + idx);
  }
}

void build_vgg16_cifar(ObjectReader& spec, Graph& g, const SampleShape& in, int classes) {
  const bool bn = spec.boolean("batch_norm", true);
  building(spec, "vgg16", in, [&] {
    Net net{g, Graph::input()};
    vgg_features(net, bn);
    net.flatten();
    net.linear("classifier", classes);
  });
}

// ---- timing-only (torchvision, ImageNet)

void build_resnet_imagenet(Net& net, const std::vector<int>& blocks, int classes) {
  net.conv("conv1", 64, 7, 2, 3, false);
  net.bn("bn1");
  net.relu("relu");
  net.maxpool("maxpool", 3, 2, 1);
  for (int s = 0; s < 4; ++s)
    for (int b = 0; b < blocks[static_cast<size_t>(s)]; ++b)
      bottleneck(net, "layer" + std::to_string(s + 1) + "." + std::to_string(b), 64 << s, s > 0 && b == 0 ? 2 : 1);
  head(net, classes);
}

void build_alexnet(Net& net, int classes) {
  net.conv("features.0", 64, 11, 4, 2, true);
  net.relu("features.1");
  net.maxpool("features.2", 3, 2);
  net.conv("features.3", 192, 5, 1, 2, true);
  net.relu("features.4");
  net.maxpool("features.5", 3, 2);
  net.conv("features.6", 384, 3, 1, 1, true);
  net.relu("features.7");
  net.conv("features.8", 256, 3, 1, 1, true);
  net.relu("features.9");
  net.conv("features.10", 256, 3, 1, 1, true);
  net.relu("features.11");
  net.maxpool("features.12", 3, 2);
  net.flatten();
  net.linear("classifier.1", 4096);
  net.relu("classifier.2");
  net.linear("classifier.4", 4096);
  net.relu("classifier.5");
  net.linear("classifier.6", classes);
}

void build_vgg16_imagenet(Net& net, int classes) {
  vgg_features(net, false);
  net.flatten();
  net.linear("classifier.0", 4096);
  net.relu("classifier.1");
  net.linear("classifier.3", 4096);
  net.relu("classifier.4");
  net.linear("classifier.6", classes);
}

}  // namespace

std::vector<std::pair<std::string, bool>> model_kinds_info() {
  std::vector<std::pair<std::string, bool>> out;
  for (const Kind& k : kinds()) out.emplace_back(k.name, k.timing_only);
  return out;
}

BuiltModel build_model(ObjectReader& spec, const SampleShape& input, int classes) {
  if (input.c < 1 || input.h < 1 || input.w < 1) throw RuntimeError("make_model: bad input shape");
  if (classes < 2) throw RuntimeError("make_model: need at least 2 classes, got " + std::to_string(classes));
  std::vector<std::string> names;
  for (const Kind& k : kinds()) names.push_back(k.name);
  // Unknown kinds: InputError at "<origin>.kind" with a nearest-name suggestion (nearest_key).
  BuiltModel b;
  b.kind = spec.choice("kind", names);
  for (const Kind& k : kinds())
    if (b.kind == k.name) b.timing_only = k.timing_only;
  b.classes = classes;

  SampleShape in = input;
  if (b.timing_only) {  // ImageNet models: their own input and class count
    const std::vector<int64_t> dims = spec.integer_list("input", std::vector<int64_t>{3, 224, 224});
    if (dims.size() != 3 || dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[0] > 4096 || dims[1] > 8192 ||
        dims[2] > 8192)
      spec.fail("input", "expected [C, H, W] with positive sizes (C <= 4096, H, W <= 8192)");
    in = SampleShape{static_cast<int>(dims[0]), static_cast<int>(dims[1]), static_cast<int>(dims[2])};
    const int64_t c = spec.integer("classes", 1000);
    if (c < 2 || c > 1000000) spec.fail("classes", "must be in [2, 1000000], got " + std::to_string(c));
    b.classes = static_cast<int>(c);
  }
  if (b.kind == "onnx") {  // the graph comes from the file (engine/onnx.hpp)
#if DTSIM_HAVE_ONNX
    onnx::build_onnx(spec, b, in, b.classes);
    return b;
#else
    spec.fail("kind", "this dtsim was built without ONNX import (-DDTSIM_ONNX=OFF; it needs Debian's libonnx-dev)");
#endif
  }
  b.graph = std::make_unique<Graph>(in);
  Graph& g = *b.graph;
  const int k = b.classes;
  if (b.kind == "mlp") build_mlp(spec, g, k);
  else if (b.kind == "lenet5") build_lenet5(spec, g, in, k);
  else if (b.kind == "resnet8") build_resnet_cifar(spec, g, in, k, b.kind, 1);
  else if (b.kind == "resnet20") build_resnet_cifar(spec, g, in, k, b.kind, 3);
  else if (b.kind == "resnet32") build_resnet_cifar(spec, g, in, k, b.kind, 5);
  else if (b.kind == "resnet44") build_resnet_cifar(spec, g, in, k, b.kind, 7);
  else if (b.kind == "resnet56") build_resnet_cifar(spec, g, in, k, b.kind, 9);
  else if (b.kind == "resnet110") build_resnet_cifar(spec, g, in, k, b.kind, 18);
  else if (b.kind == "resnet18") build_resnet18(spec, g, in, k);
  else if (b.kind == "vgg16") build_vgg16_cifar(spec, g, in, k);
  else if (b.kind == "gpt") build_gpt(spec, g, in, k);  // engine/gpt.cpp
  else {
    building(spec, b.kind, in, [&] {
      Net net{g, Graph::input()};
      if (b.kind == "resnet50") build_resnet_imagenet(net, {3, 4, 6, 3}, k);
      else if (b.kind == "resnet101") build_resnet_imagenet(net, {3, 4, 23, 3}, k);
      else if (b.kind == "alexnet") build_alexnet(net, k);
      else build_vgg16_imagenet(net, k);
    });
  }
  return b;
}

std::unique_ptr<Model> make_model(ObjectReader& spec, const SampleShape& input, int classes,
                                  const ComputeOptions& opts) {
  if (opts.threads < 1)
    throw InputError("", "compute.threads", "must be >= 1 (got " + std::to_string(opts.threads) + ")");
  compute_backend(opts.device);  // rejects devices this build (or machine) lacks before reading the spec
  if (is_profile_spec(spec.raw()))  // engine/profile_model.hpp: measured times only
    spec.fail("kind", "'profile' is a timing-only model (measured times, no compute path): use it with compute.mode "
                      "\"timing-only\"");
  BuiltModel b = build_model(spec, input, classes);
  if (b.timing_only)
    spec.fail("kind", "'" + b.kind +
                          "' is a timing-only descriptor (parameter count and FLOPs, no compute path): use it with "
                          "compute.mode \"timing-only\"");
  return make_graph_model(b.kind, std::move(*b.graph), b.classes, opts);
}

ModelInfo model_info(ObjectReader& spec, const SampleShape& input, int classes) {
  if (is_profile_spec(spec.raw())) return profile_model_info(spec);  // engine/profile_model.hpp
  BuiltModel b = build_model(spec, input, classes);
  ModelInfo info;
  info.kind = b.kind;
  info.num_params = b.graph->num_params();
  info.num_state = b.graph->num_state();
  info.flops_per_sample = b.graph->training_flops();
  info.param_tensors = b.graph->param_tensors();
  info.timing_only = b.timing_only;
  info.layers = b.graph->layer_costs();
  return info;
}

}  // namespace dtsim::engine
