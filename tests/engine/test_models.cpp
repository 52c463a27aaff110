// Named models: parameter counts pinned to published values, FLOPs, timing-only descriptors, the
// graph model's gradients (directional finite differences through residual connections and
// BatchNorm), reference vs cpu agreement, running statistics.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/graph.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "engine/ref_kernels.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_models_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

std::unique_ptr<Model> build(const json& spec, SampleShape in, int classes, Device d = Device::Reference) {
  ObjectReader r(spec, JsonOrigin{"test.json", "model"});
  auto m = make_model(r, in, classes, ComputeOptions{d, 1});
  r.finish();
  return m;
}

ModelInfo info(const json& spec, SampleShape in, int classes) {
  ObjectReader r(spec, JsonOrigin{"test.json", "model"});
  ModelInfo i = model_info(r, in, classes);
  r.finish();
  return i;
}

const SampleShape kCifar{3, 32, 32};
const SampleShape kMnist{1, 28, 28};

}  // namespace

TEST_CASE("parameter counts match the published models") {
  // He et al. 2016 / akamaster's CIFAR ResNets (option A): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M.
  CHECK(info({{"kind", "resnet20"}}, kCifar, 10).num_params == 269722);
  CHECK(info({{"kind", "resnet32"}}, kCifar, 10).num_params == 464154);
  CHECK(info({{"kind", "resnet44"}}, kCifar, 10).num_params == 658586);
  CHECK(info({{"kind", "resnet56"}}, kCifar, 10).num_params == 853018);
  CHECK(info({{"kind", "resnet110"}}, kCifar, 10).num_params == 1727962);
  // The anchor script's ResNet-8 (1x1-conv shortcuts): 78k.
  CHECK(info({{"kind", "resnet8"}}, kCifar, 10).num_params == 78042);
  // kuangliu/pytorch-cifar ResNet18 (11.17M) and VGG16 (14.73M).
  CHECK(info({{"kind", "resnet18"}}, kCifar, 10).num_params == 11173962);
  CHECK(info({{"kind", "vgg16"}}, kCifar, 10).num_params == 14728266);
  // LeNet-5 on 28x28 (anchor script): 61,706.
  CHECK(info({{"kind", "lenet5"}}, kMnist, 10).num_params == 61706);
  CHECK(info({{"kind", "lenet5"}}, kCifar, 10).num_params == 62006);  // 3 input channels, no padding
  // torchvision ImageNet models (timing-only descriptors).
  CHECK(info({{"kind", "resnet50"}}, kCifar, 10).num_params == 25557032);
  CHECK(info({{"kind", "resnet101"}}, kCifar, 10).num_params == 44549160);
  CHECK(info({{"kind", "vgg16-imagenet"}}, kCifar, 10).num_params == 138357544);
  CHECK(info({{"kind", "alexnet"}}, kCifar, 10).num_params == 61100840);
  // BatchNorm running statistics are state, not parameters.
  CHECK(info({{"kind", "resnet20"}}, kCifar, 10).num_state == 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64));
  CHECK(info({{"kind", "lenet5"}}, kMnist, 10).num_state == 0);
}

TEST_CASE("FLOPs per sample: exact for LeNet-5, torchvision's published MACs for the ImageNet models") {
  // LeNet-5, 28x28: MACs conv1 6*25*28*28 + conv2 16*6*25*10*10 + fc 400*120 + 120*84 + 84*10.
  const double lenet_macs = 6.0 * 25 * 28 * 28 + 16.0 * 6 * 25 * 10 * 10 + 400.0 * 120 + 120.0 * 84 + 84.0 * 10;
  CHECK(info({{"kind", "lenet5"}}, kMnist, 10).flops_per_sample == 3 * 2 * lenet_macs);
  CHECK(build({{"kind", "lenet5"}}, kMnist, 10)->flops_per_sample() == 3 * 2 * lenet_macs);
  // torchvision's model cards ("GFLOPS" there = GMACs of one forward pass at 224x224).
  auto gmacs = [](const char* kind) { return info({{"kind", kind}}, kCifar, 10).flops_per_sample / 6e9; };
  CHECK(gmacs("resnet50") == dtsim_test::Rel(4.09).epsilon(0.01));
  CHECK(gmacs("resnet101") == dtsim_test::Rel(7.80).epsilon(0.01));
  CHECK(gmacs("vgg16-imagenet") == dtsim_test::Rel(15.47).epsilon(0.01));
  CHECK(gmacs("alexnet") == dtsim_test::Rel(0.71).epsilon(0.015));
  // ResNet-20: 40.55M MACs (akamaster); ResNet-18 CIFAR 0.56 GMACs; VGG16 CIFAR 0.31 GMACs.
  CHECK(info({{"kind", "resnet20"}}, kCifar, 10).flops_per_sample / 6e6 == dtsim_test::Rel(40.55).epsilon(0.01));
  CHECK(info({{"kind", "resnet18"}}, kCifar, 10).flops_per_sample / 6e9 == dtsim_test::Rel(0.556).epsilon(0.01));
  CHECK(info({{"kind", "vgg16"}}, kCifar, 10).flops_per_sample / 6e9 == dtsim_test::Rel(0.313).epsilon(0.01));
}

#if !DTSIM_HAVE_ONNX
// Built with -DDTSIM_ONNX=OFF (bench/run_gpu.sh: the GPU image has no libonnx): the kind is
// refused at model.kind, not a link error or a crash.
TEST_CASE("without ONNX import, model kind onnx is an InputError at model.kind naming the build option") {
  const json spec = {{"kind", "onnx"}, {"path", "net.onnx"}};
  ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
  try {
    (void)model_info(r, kCifar, 10);
    FAIL("built an onnx model without ONNX import");
  } catch (const InputError& e) {
    CHECK(e.path() == "model.kind");
    CHECK(std::string(e.what()).find("-DDTSIM_ONNX=OFF") != std::string::npos);
  }
}
#endif

TEST_CASE("timing-only descriptors: model_info works, make_model refuses with an InputError at model.kind") {
  const ModelInfo i = info({{"kind", "resnet50"}}, kCifar, 10);
  CHECK(i.timing_only);
  CHECK(i.kind == "resnet50");
  REQUIRE(!i.param_tensors.empty());
  CHECK(i.param_tensors.front().name == "conv1.weight");
  CHECK(i.param_tensors.front().size == 64 * 3 * 7 * 7);
  CHECK(i.param_tensors.back().name == "fc.bias");
  CHECK(i.param_tensors.back().size == 1000);
  size_t off = 0;
  for (const auto& t : i.param_tensors) {
    CHECK(t.offset == off);
    off += t.size;
  }
  CHECK(off == i.num_params);
  // Options: the input and class count of the descriptor.
  const ModelInfo small = info({{"kind", "resnet50"}, {"classes", 10}, {"input", {3, 64, 64}}}, kCifar, 10);
  CHECK(small.num_params == 25557032 - 2048 * 990 - 990);
  CHECK(small.flops_per_sample < i.flops_per_sample / 10);
  for (const char* k : {"resnet50", "resnet101", "vgg16-imagenet", "alexnet"}) {
    const json spec = {{"kind", k}};
    ObjectReader r(spec, JsonOrigin{"cfg.json", "model"});
    try {
      make_model(r, kCifar, 10, ComputeOptions{});
      FAIL("built a timing-only descriptor");
    } catch (const InputError& e) {
      CHECK(e.file() == "cfg.json");
      CHECK(e.path() == "model.kind");
      CHECK(std::string(e.what()).find("timing-only") != std::string::npos);
    }
  }
  // Real models are not timing-only; bad options and impossible inputs are InputErrors.
  CHECK_FALSE(info({{"kind", "resnet20"}}, kCifar, 10).timing_only);
  CHECK_THROWS_AS(info({{"kind", "resnet20"}, {"shortcut", "C"}}, kCifar, 10), InputError);
  CHECK_THROWS_AS(info({{"kind", "resnet50"}, {"input", {3, 224}}}, kCifar, 10), InputError);
  CHECK_THROWS_AS(info({{"kind", "vgg16"}}, SampleShape{3, 16, 16}, 10), InputError);  // 5 pools: 16 -> 0
  CHECK_THROWS_AS(info({{"kind", "lenet5"}, {"padding", -1}}, kMnist, 10), InputError);
  CHECK_THROWS_AS(info({{"kind", "resnet8"}, {"depth", 3}}, kCifar, 10), InputError);  // unknown key
  try {
    info({{"kind", "resnet21"}}, kCifar, 10);
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("did you mean 'resnet20'") != std::string::npos);
  }
}

namespace {

// A double-precision oracle for a tiny residual net, written straight with the reference kernel
// templates (no Graph, no slots, no in-place, no accumulation machinery):
//   x(2x6x6) -> conv a (2->4, 3x3, p1) -> bn a -> relu
//     -> [conv b (4->8, 3x3, s2, p1) -> bn b] + [option-A shortcut 4->8, s2] -> relu       (r2)
//     -> [conv c (8->8, 3x3, p1) -> bn c] + r2 -> relu -> global avg pool -> fc (8->3)
// Parameter order = the engine graph's: conv a, bn a, conv b, bn b, conv c, bn c, fc.
struct TinyResNet {
  static constexpr size_t kConvA = 4 * 2 * 9, kConvB = 8 * 4 * 9, kConvC = 8 * 8 * 9;
  ref::Geom ga{2, 6, 6, 4, 6, 6, 3, 3, 1, 1, 1, 1}, gb{4, 6, 6, 8, 3, 3, 3, 3, 2, 2, 1, 1},
      gc{8, 3, 3, 8, 3, 3, 3, 3, 1, 1, 1, 1}, gs{4, 6, 6, 8, 3, 3, 1, 1, 2, 2, 0, 0};
  size_t n;
  static size_t num_params() { return kConvA + 8 + kConvB + 16 + kConvC + 16 + 8 * 3 + 3; }

  static Graph graph() {
    Graph g(SampleShape{2, 6, 6});
    int t = g.add(std::make_unique<Conv2d>("a", g.shape(0), 4, 3, 1, 1, false), 0);
    t = g.add(std::make_unique<BatchNorm2d>("bna", g.shape(t)), t);
    const int r1 = g.add(std::make_unique<ReLU>("r1", g.shape(t)), t);
    t = g.add(std::make_unique<Conv2d>("b", g.shape(r1), 8, 3, 2, 1, false), r1);
    const int bb = g.add(std::make_unique<BatchNorm2d>("bnb", g.shape(t)), t);
    const int sc = g.add(std::make_unique<SubsamplePad>("sc", g.shape(r1), 2, 8), r1);
    t = g.add(std::make_unique<Add>("add1", g.shape(bb)), bb, sc);
    const int r2 = g.add(std::make_unique<ReLU>("r2", g.shape(t)), t);
    t = g.add(std::make_unique<Conv2d>("c", g.shape(r2), 8, 3, 1, 1, false), r2);
    const int bc = g.add(std::make_unique<BatchNorm2d>("bnc", g.shape(t)), t);
    t = g.add(std::make_unique<Add>("add2", g.shape(bc)), bc, r2);
    t = g.add(std::make_unique<ReLU>("r3", g.shape(t)), t);
    t = g.add(global_avg_pool("gap", g.shape(t)), t);
    t = g.add(std::make_unique<Flatten>("flat", g.shape(t)), t);
    g.add(std::make_unique<Linear>("fc", g.shape(t), 3), t);
    return g;
  }

  // Mean cross-entropy; d(loss)/d(params) into grad when non-null.
  double loss(const std::vector<double>& p, const std::vector<double>& x, const std::vector<int32_t>& y,
              std::vector<double>* grad) const {
    using V = std::vector<double>;
    const double eps = 1e-5;
    const double* wa = p.data();
    const double* bna = wa + kConvA;
    const double* wb = bna + 8;
    const double* bnb = wb + kConvB;
    const double* wc = bnb + 16;
    const double* bnc = wc + kConvC;
    const double* fc = bnc + 16;
    auto bn_fwd = [&](int c, size_t hw, const V& in, const double* gb2, V& out) {
      V m(c), v(c);
      ref::bn_stats(c, hw, in.data(), n, m.data(), v.data());
      out.resize(in.size());
      ref::bn_apply(c, hw, in.data(), n, gb2, gb2 + c, m.data(), v.data(), eps, out.data());
    };
    auto relu = [](V v) {
      for (double& e : v) e = std::max(e, 0.0);
      return v;
    };
    V za(n * 144), ba, r1, zb(n * 72), bb, s(n * 72), a1(n * 72), r2, zc(n * 72), bc, a2(n * 72), r3, gp(n * 8),
        logits(n * 3);
    ref::conv_forward(ga, wa, static_cast<const double*>(nullptr), x.data(), za.data(), n);
    bn_fwd(4, 36, za, bna, ba);
    r1 = relu(ba);
    ref::conv_forward(gb, wb, static_cast<const double*>(nullptr), r1.data(), zb.data(), n);
    bn_fwd(8, 9, zb, bnb, bb);
    ref::subsample_pad_forward(gs, 2, r1.data(), s.data(), n);
    for (size_t i = 0; i < a1.size(); ++i) a1[i] = bb[i] + s[i];
    r2 = relu(a1);
    ref::conv_forward(gc, wc, static_cast<const double*>(nullptr), r2.data(), zc.data(), n);
    bn_fwd(8, 9, zc, bnc, bc);
    for (size_t i = 0; i < a2.size(); ++i) a2[i] = bc[i] + r2[i];
    r3 = relu(a2);
    const ref::Geom gg{8, 3, 3, 8, 1, 1, 3, 3, 3, 3, 0, 0};
    ref::avgpool_forward(gg, r3.data(), gp.data(), n);
    for (size_t i = 0; i < n; ++i)
      for (int o = 0; o < 3; ++o) {
        double z = fc[24 + o];
        for (int k = 0; k < 8; ++k) z += fc[o * 8 + k] * gp[i * 8 + k];
        logits[i * 3 + o] = z;
      }
    double total = 0;
    V dl(n * 3);
    for (size_t i = 0; i < n; ++i) {
      double m = std::max({logits[i * 3], logits[i * 3 + 1], logits[i * 3 + 2]}), sum = 0;
      for (int o = 0; o < 3; ++o) sum += std::exp(logits[i * 3 + o] - m);
      total += std::log(sum) + m - logits[i * 3 + y[i]];
      for (int o = 0; o < 3; ++o) dl[i * 3 + o] = (std::exp(logits[i * 3 + o] - m) / sum - (o == y[i])) / double(n);
    }
    if (!grad) return total / double(n);
    grad->assign(p.size(), 0.0);
    double* g = grad->data();
    double* gwa = g;
    double* gbna = gwa + kConvA;
    double* gwb = gbna + 8;
    double* gbnb = gwb + kConvB;
    double* gwc = gbnb + 16;
    double* gbnc = gwc + kConvC;
    double* gfc = gbnc + 16;
    V dgp(n * 8, 0.0);
    for (size_t i = 0; i < n; ++i)
      for (int o = 0; o < 3; ++o) {
        gfc[24 + o] += dl[i * 3 + o];
        for (int k = 0; k < 8; ++k) {
          gfc[o * 8 + k] += dl[i * 3 + o] * gp[i * 8 + k];
          dgp[i * 8 + k] += dl[i * 3 + o] * fc[o * 8 + k];
        }
      }
    V d3(n * 72), dzc(n * 72), dr2(n * 72), dzb(n * 72), dr1(n * 144), ds(n * 144), dza(n * 144), dx(x.size()), m(8),
        v(8);
    ref::avgpool_backward(gg, dgp.data(), d3.data(), n);
    for (size_t i = 0; i < d3.size(); ++i) d3[i] = r3[i] > 0 ? d3[i] : 0.0;  // d a2 = d bc = d r2 (identity)
    ref::bn_backward_train(8, 9, zc.data(), d3.data(), n, bnc, eps, dzc.data(), gbnc, gbnc + 8, m.data(), v.data());
    ref::conv_backward_weights(gc, r2.data(), dzc.data(), gwc, static_cast<double*>(nullptr), n);
    ref::conv_backward_data(gc, wc, dzc.data(), dr2.data(), n);
    for (size_t i = 0; i < dr2.size(); ++i) dr2[i] = r2[i] > 0 ? dr2[i] + d3[i] : 0.0;  // d a1
    ref::bn_backward_train(8, 9, zb.data(), dr2.data(), n, bnb, eps, dzb.data(), gbnb, gbnb + 8, m.data(), v.data());
    ref::conv_backward_weights(gb, r1.data(), dzb.data(), gwb, static_cast<double*>(nullptr), n);
    ref::conv_backward_data(gb, wb, dzb.data(), dr1.data(), n);
    ref::subsample_pad_backward(gs, 2, dr2.data(), ds.data(), n);
    for (size_t i = 0; i < dr1.size(); ++i) dr1[i] = r1[i] > 0 ? dr1[i] + ds[i] : 0.0;
    ref::bn_backward_train(4, 36, za.data(), dr1.data(), n, bna, eps, dza.data(), gbna, gbna + 4, m.data(), v.data());
    ref::conv_backward_weights(ga, x.data(), dza.data(), gwa, static_cast<double*>(nullptr), n);
    return total / double(n);
  }
};

}  // namespace

TEST_CASE("graph model: loss and gradients of a residual net match a double-precision oracle") {
  TinyResNet oracle;
  oracle.n = 5;
  const Batch b = test::random_batch(oracle.n, SampleShape{2, 6, 6}, 3, 31);
  const std::vector<double> x(b.x.begin(), b.x.end());
  for (Device d : {Device::Reference, Device::Cpu}) {
    CAPTURE(std::string(device_name(d)));
    auto m = make_graph_model("tiny", TinyResNet::graph(), 3, ComputeOptions{d, 1});
    REQUIRE(m->num_params() == TinyResNet::num_params());
    Vec p(m->num_params()), g(m->num_params()), st(m->num_state());
    m->init_params(p.view(), 5);
    m->init_state(st.view());
    const float loss = m->forward_backward(p.view(), st.view(), b, g.view());
    std::vector<double> pd(p.data(), p.data() + p.size()), want;
    const double want_loss = oracle.loss(pd, x, b.y, &want);
    CHECK(loss == dtsim_test::Rel(want_loss).epsilon(1e-5));
    std::vector<float> wf(want.begin(), want.end());
    CHECK(test::max_rel_diff(g.data(), wf.data(), wf.size()) <= 1e-4);
    if (d == Device::Reference) {
      // The oracle itself: central differences in double on a few coordinates of every tensor.
      const double h = 1e-6;
      for (size_t i = 0; i < pd.size(); i += 7) {
        const double keep = pd[i];
        pd[i] = keep + h;
        const double lp = oracle.loss(pd, x, b.y, nullptr);
        pd[i] = keep - h;
        const double lm = oracle.loss(pd, x, b.y, nullptr);
        pd[i] = keep;
        REQUIRE(std::abs((lp - lm) / (2 * h) - want[i]) <= 1e-6 * std::max(1.0, std::abs(want[i])));
      }
    }
  }
}

TEST_CASE("reference and cpu (oneDNN) agree on LeNet-5, ResNet-8/20 and a VGG-style stack") {
  if (!onednn_available()) {
    MESSAGE("oneDNN not built: the cpu backend is the reference one");
    return;
  }
  struct Case {
    json spec;
    SampleShape in;
    size_t n;
  };
  const std::vector<Case> cases{{{{"kind", "lenet5"}}, kMnist, 4},
                                {{{"kind", "lenet5"}}, kCifar, 3},
                                {{{"kind", "resnet8"}}, SampleShape{3, 16, 16}, 3},
                                {{{"kind", "resnet20"}}, SampleShape{3, 8, 8}, 2},
                                {{{"kind", "mlp"}, {"hidden", {32}}}, SampleShape{2, 5, 5}, 6}};
  for (const Case& c : cases) {
    CAPTURE(c.spec.dump());
    auto ref = build(c.spec, c.in, 10, Device::Reference);
    auto cpu = build(c.spec, c.in, 10, Device::Cpu);
    Vec p(ref->num_params()), g_ref(p.size()), g_cpu(p.size());
    Vec s_ref(ref->num_state()), s_cpu(ref->num_state());
    ref->init_params(p.view(), 4);
    ref->init_state(s_ref.view());
    cpu->init_state(s_cpu.view());
    const Batch b = test::random_batch(c.n, c.in, 10, 17);
    for (int step = 0; step < 2; ++step) {  // twice: cached primitives, updated running statistics
      const float l_ref = ref->forward_backward(p.view(), s_ref.view(), b, g_ref.view());
      const float l_cpu = cpu->forward_backward(p.view(), s_cpu.view(), b, g_cpu.view());
      CHECK(l_cpu == dtsim_test::Rel(l_ref).epsilon(1e-5));
      CHECK(test::max_rel_diff(g_cpu.data(), g_ref.data(), p.size()) <= 1e-4);
      if (s_ref.size()) CHECK(test::max_rel_diff(s_cpu.data(), s_ref.data(), s_ref.size()) <= 1e-5);
    }
    Split split;
    split.x = b.x;
    split.y = b.y;
    const EvalResult e_ref = ref->evaluate(p.view(), s_ref.view(), split, 0, c.n);
    const EvalResult e_cpu = cpu->evaluate(p.view(), s_cpu.view(), split, 0, c.n);
    CHECK(e_cpu.loss() == dtsim_test::Rel(e_ref.loss()).epsilon(1e-5));
    // Deterministic: the same call twice gives the same bits.
    Vec g2(p.size()), s2 = s_cpu.clone();
    Vec s1 = s_cpu.clone();
    cpu->forward_backward(p.view(), s1.view(), b, g_cpu.view());
    cpu->forward_backward(p.view(), s2.view(), b, g2.view());
    CHECK(std::equal(g2.data(), g2.data() + g2.size(), g_cpu.data()));
  }
}

TEST_CASE("BatchNorm state: per-buffer running statistics, eval mode, and the model's own default state") {
  const SampleShape in{3, 8, 8};
  auto m = build({{"kind", "resnet8"}}, in, 4, Device::Cpu);
  REQUIRE(m->num_state() > 0);
  const auto names = m->state_tensors();
  CHECK(names.front().name == "bn1.running_mean");
  CHECK(names[1].name == "bn1.running_var");
  Vec p(m->num_params()), g(p.size()), s1(m->num_state()), s2(m->num_state());
  m->init_params(p.view(), 1);
  m->init_state(s1.view());
  m->init_state(s2.view());
  CHECK(s1.data()[0] == 0.0f);
  CHECK(s1.data()[names[1].offset] == 1.0f);
  const Batch a = test::random_batch(6, in, 4, 1), b = test::random_batch(6, in, 4, 2);
  // Two workers' buffers evolve independently; the training loss does not depend on the state.
  const float la = m->forward_backward(p.view(), s1.view(), a, g.view());
  m->forward_backward(p.view(), s2.view(), b, g.view());
  CHECK_FALSE(std::equal(s1.data(), s1.data() + s1.size(), s2.data()));
  Vec s3(m->num_state());
  m->init_state(s3.view());
  ops::fill(s3.view(), 0.5f);
  CHECK(m->forward_backward(p.view(), s3.view(), a, g.view()) == la);
  // Eval mode reads the state: different running statistics, different loss.
  Split split;
  split.x = a.x;
  split.y = a.y;
  CHECK(m->evaluate(p.view(), s1.view(), split, 0, 6).loss() != m->evaluate(p.view(), s2.view(), split, 0, 6).loss());
  // The stateless overloads use (and update) the model's own buffer.
  Vec d0(m->num_state());
  ops::copy(d0.view(), m->default_state());
  m->forward_backward(p.view(), a, g.view());
  CHECK_FALSE(std::equal(d0.data(), d0.data() + d0.size(), m->default_state().ptr));
  CHECK(m->evaluate(p.view(), split, 0, 6).loss() == m->evaluate(p.view(), m->default_state(), split, 0, 6).loss());
  // Wrong state size.
  Vec bad(m->num_state() + 1);
  CHECK_THROWS_AS(m->forward_backward(p.view(), bad.view(), a, g.view()), RuntimeError);
}

TEST_CASE("Graph: shape checks, dangling outputs and two-input layers") {
  Graph g(SampleShape{2, 4, 4});
  CHECK_THROWS_AS(g.add(std::make_unique<ReLU>("r", SampleShape{3, 4, 4}), 0), RuntimeError);
  CHECK_THROWS_AS(g.add(std::make_unique<ReLU>("r", SampleShape{2, 4, 4}), 5), RuntimeError);
  const int a = g.add(std::make_unique<ReLU>("r", SampleShape{2, 4, 4}), 0);
  CHECK_THROWS_AS(g.add(std::make_unique<Add>("add", SampleShape{2, 4, 4}), a), RuntimeError);  // no second input
  const int b = g.add(std::make_unique<Conv2d>("c", SampleShape{2, 4, 4}, 2, 3, 1, 1), 0);
  const int s = g.add(std::make_unique<Add>("add", SampleShape{2, 4, 4}), b, a);
  const int f = g.add(std::make_unique<Flatten>("f", g.shape(s)), s);
  g.add(std::make_unique<Linear>("fc", g.shape(f), 3), f);
  auto m = make_graph_model("custom", std::move(g), 3, ComputeOptions{Device::Reference, 1});
  CHECK(m->num_params() == 2 * 2 * 9 + 2 + 32 * 3 + 3);
  Graph dangling(SampleShape{2, 1, 1});
  dangling.add(std::make_unique<ReLU>("r", SampleShape{2, 1, 1}), 0);
  dangling.add(std::make_unique<Linear>("fc", SampleShape{2, 1, 1}, 2), 0);
  CHECK_THROWS_AS(make_graph_model("d", std::move(dangling), 2, ComputeOptions{Device::Reference, 1}), RuntimeError);
}

}  // namespace test_models_cpp
