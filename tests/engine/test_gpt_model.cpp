// The gpt model (engine/gpt.cpp) and the sequence machinery of GraphModel: nanoGPT's parameter
// count, tensor names and order, per-layer costs, weight tying, the per-position loss and
// evaluation, cpu == reference for the whole model, determinism, spec errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json_reader.hpp"
#include "engine/backend.hpp"
#include "engine/gpt.hpp"
#include "engine/model.hpp"
#include "helpers.hpp"
#include "tests/rel.hpp"

namespace test_gpt_model_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::engine;

namespace {

json gpt_spec(int n_layer, int n_head, int n_embd, int block = -1, double dropout = 0) {
  json s = {{"kind", "gpt"}, {"n_layer", n_layer}, {"n_head", n_head}, {"n_embd", n_embd}};
  if (block > 0) s["block_size"] = block;
  if (dropout > 0) s["dropout"] = dropout;
  return s;
}

std::unique_ptr<Model> make_gpt(const json& spec, int len, int vocab, Device d) {
  ObjectReader r(spec, JsonOrigin{"test.json", "model"});
  auto m = make_model(r, SampleShape{len, 1, 1}, vocab, ComputeOptions{d, 1});
  r.finish();
  return m;
}

// n sequences of `len` random tokens, targets the next token of a longer random stream.
Batch token_batch(size_t n, int len, int vocab, uint64_t key) {
  Rng r(31, Stream::Algorithm, {key});
  Batch b;
  b.shape = SampleShape{len, 1, 1};
  b.targets = static_cast<size_t>(len);
  for (size_t s = 0; s < n; ++s) {
    std::vector<int> stream(static_cast<size_t>(len) + 1);
    for (int& t : stream) t = static_cast<int>(r.below(static_cast<uint64_t>(vocab)));
    for (int t = 0; t < len; ++t) {
      b.x.push_back(static_cast<float>(stream[static_cast<size_t>(t)]));
      b.y.push_back(stream[static_cast<size_t>(t) + 1]);
    }
  }
  return b;
}

}  // namespace

TEST_CASE("gpt: parameter count equals nanoGPT's formula, tensors in its state_dict order") {
  // The default model on the built-in corpus's 73 characters.
  auto m = make_gpt(gpt_spec(4, 4, 128, 128), 128, 73, Device::Reference);
  CHECK(m->num_params() == gpt_num_params(4, 128, 73, 128));
  CHECK(m->num_params() == 819072);  // 73*128 + 128*128 + 4*(12*128^2 + 13*128) + 2*128
  CHECK(m->num_params() - 128 * 128 == 802688);  // nanoGPT's get_num_params() (no wpe)
  CHECK(m->num_state() == 0);
  const auto t = m->param_tensors();
  REQUIRE(t.size() == 2 + 4 * 12 + 2);
  CHECK(t[0].name == "transformer.wte.weight");
  CHECK(t[1].name == "transformer.wpe.weight");
  const std::vector<std::string> block{"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                       "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                       "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
  for (size_t i = 0; i < block.size(); ++i) CHECK(t[2 + 12 + i].name == "transformer.h.1." + block[i]);
  CHECK(t[t.size() - 2].name == "transformer.ln_f.weight");
  size_t off = 0;
  for (const auto& p : t) {  // contiguous, in order, covering the buffer
    CHECK(p.offset == off);
    off += p.size;
  }
  CHECK(off == m->num_params());
  // Other sizes, other vocabularies.
  for (auto [l, h, e, v, blk] : {std::tuple{1, 1, 8, 5, 16}, std::tuple{6, 6, 384, 65, 256}}) {
    auto g = make_gpt(gpt_spec(l, h, e, blk), 16, v, Device::Reference);
    CHECK(g->num_params() == gpt_num_params(static_cast<size_t>(l), static_cast<size_t>(e), static_cast<size_t>(v),
                                            static_cast<size_t>(blk)));
  }
  // nanoGPT's shakespeare-char size with biases (its config turns them off): 10.67M without wpe.
  CHECK(gpt_num_params(6, 384, 65, 256) - 256 * 384 == 10672512);
}

TEST_CASE("gpt: layer costs sum to the training FLOPs, the tied head owns no tensor but does weight work") {
  json spec = gpt_spec(2, 2, 16, 8);
  ObjectReader r(spec, JsonOrigin{"t.json", "model"});
  const ModelInfo info = model_info(r, SampleShape{8, 1, 1}, 11);
  auto m = make_gpt(spec, 8, 11, Device::Reference);
  CHECK(info.num_params == m->num_params());
  CHECK(info.flops_per_sample == m->flops_per_sample());
  double sum = 0;
  size_t tensors = 0;
  for (const LayerCost& c : info.layers) {
    sum += c.forward_flops + c.backward_input_flops + c.backward_weight_flops;
    tensors += c.tensors.size();
    if (c.type == "tied_head") {
      CHECK(c.tensors.empty());
      CHECK(c.backward_weight_flops == c.forward_flops);
      CHECK(c.forward_flops == 2.0 * 8 * 16 * 11);
    }
    if (c.type == "embedding") {
      CHECK(c.tensors == std::vector<size_t>{0, 1});
      CHECK(c.forward_flops == 0);
    }
    if (c.type == "attention") CHECK(c.backward_input_flops > c.backward_weight_flops);
  }
  CHECK(tensors == info.param_tensors.size());
  CHECK(sum == info.flops_per_sample);
  // 6 N per token for the matrices (N without embeddings and LayerNorms) plus attention.
  const double n_mat = 2 * (12.0 * 16 * 16) + 11.0 * 16;  // blocks' weights + the tied head
  const double attn = 2 * 3 * (2.0 * 8 * 9 * 16);        // 2 layers x (fwd + 2x bwd) of the causal core
  CHECK(info.flops_per_sample == dtsim_test::Rel(6.0 * n_mat * 8 + attn));
}

TEST_CASE("gpt: cpu == reference for the loss and every gradient, evaluation matches, runs are bitwise equal") {
  const int len = 8, vocab = 11;
  const json spec = gpt_spec(2, 2, 16);
  auto ref = make_gpt(spec, len, vocab, Device::Reference);
  Vec p(ref->num_params()), g_ref(ref->num_params());
  ref->init_params(p.view(), 5);
  const Batch b = token_batch(3, len, vocab, 1);
  const float loss_ref = ref->forward_backward(p.view(), b, g_ref.view());
  CHECK(loss_ref == dtsim_test::Rel(std::log(11.0)).epsilon(0.05));  // near-uniform at init
  Split split;
  split.x = b.x;
  split.y = b.y;
  split.targets = static_cast<size_t>(len);
  const EvalResult ev = ref->evaluate(p.view(), split, 0, 3);
  CHECK(ev.count == 3);
  CHECK(ev.per_sample == static_cast<size_t>(len));
  CHECK(ev.loss() == dtsim_test::Rel(loss_ref).epsilon(1e-6));
  CHECK(ev.accuracy() >= 0.0);
  CHECK(ev.accuracy() <= 1.0);
  CHECK(ev.correct <= 3 * static_cast<size_t>(len));
  if (!onednn_available()) return;
  auto cpu = make_gpt(spec, len, vocab, Device::Cpu);
  Vec g_cpu(cpu->num_params()), g_cpu2(cpu->num_params());
  const float loss_cpu = cpu->forward_backward(p.view(), b, g_cpu.view());
  CHECK(loss_cpu == dtsim_test::Rel(loss_ref).epsilon(1e-5));
  CHECK(test::max_rel_diff(g_cpu.data(), g_ref.data(), g_cpu.size()) <= 1e-4);
  for (const ParamTensor& t : cpu->param_tensors()) {
    CAPTURE(t.name);
    CHECK(test::max_rel_diff(g_cpu.data() + t.offset, g_ref.data() + t.offset, t.size) <= 5e-4);
  }
  CHECK(cpu->evaluate(p.view(), split, 0, 3).loss() == dtsim_test::Rel(ev.loss()).epsilon(1e-5));
  CHECK(cpu->forward_backward(p.view(), b, g_cpu2.view()) == loss_cpu);
  CHECK(std::equal(g_cpu.data(), g_cpu.data() + g_cpu.size(), g_cpu2.data()));
}

TEST_CASE("gpt: the tied embedding's gradient is the sum of its two uses (directional finite differences)") {
  // Along u = g / |g| restricted to one tensor, (L(p + h u) - L(p - h u)) / 2h = |g|: a large,
  // float-safe signal. Without the head's (or the embedding's) share of wte's gradient it fails.
  const int len = 4, vocab = 5;
  auto m = make_gpt(gpt_spec(1, 1, 8), len, vocab, Device::Reference);
  Vec p(m->num_params()), g(m->num_params()), scratch(m->num_params());
  m->init_params(p.view(), 3);
  const Batch b = token_batch(2, len, vocab, 2);
  m->forward_backward(p.view(), b, g.view());
  for (const ParamTensor& t : m->param_tensors()) {
    if (t.name != "transformer.wte.weight" && t.name != "transformer.wpe.weight") continue;
    CAPTURE(t.name);
    double norm = 0;
    for (size_t i = 0; i < t.size; ++i) norm += double(g.data()[t.offset + i]) * g.data()[t.offset + i];
    norm = std::sqrt(norm);
    REQUIRE(norm > 1e-4);
    const double h = 1e-2;
    auto loss_at = [&](double step) {
      Vec q = p.clone();
      for (size_t i = 0; i < t.size; ++i)
        q.data()[t.offset + i] += static_cast<float>(step * g.data()[t.offset + i] / norm);
      return static_cast<double>(m->forward_backward(q.view(), b, scratch.view()));
    };
    const double fd = (loss_at(h) - loss_at(-h)) / (2 * h);
    CHECK(fd == dtsim_test::Rel(norm).epsilon(0.01));
  }
}

TEST_CASE("gpt: spec errors name the key, a classifier batch is refused by a sequence model") {
  auto fails_at = [](const json& spec, SampleShape in, const std::string& path) {
    ObjectReader r(spec, JsonOrigin{"x.json", "model"});
    try {
      model_info(r, in, 20);
      r.finish();  // unknown keys (the config layer calls it after model_info)
      FAIL("no error");
    } catch (const InputError& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
  };
  fails_at(gpt_spec(2, 3, 16), SampleShape{8, 1, 1}, "model.n_embd");           // 16 % 3
  fails_at(gpt_spec(2, 2, 16, 4), SampleShape{8, 1, 1}, "model.block_size");    // shorter than T
  fails_at(gpt_spec(2, 2, 16), SampleShape{1, 28, 28}, "model.kind");           // images
  fails_at(gpt_spec(0, 2, 16), SampleShape{8, 1, 1}, "model.n_layer");
  fails_at(json{{"kind", "gpt"}, {"n_layers", 2}}, SampleShape{8, 1, 1}, "model.n_layers");  // typo: unknown key
  auto m = make_gpt(gpt_spec(1, 1, 8), 4, 5, Device::Reference);
  Vec p(m->num_params()), g(m->num_params());
  Batch b = token_batch(2, 4, 5, 3);
  b.targets = 1;  // as a classifier batch
  b.y.resize(2);
  CHECK_THROWS_AS(m->forward_backward(p.view(), b, g.view()), RuntimeError);
}

TEST_CASE("gpt: a block_size longer than the sequences adds position rows only") {
  auto a = make_gpt(gpt_spec(1, 2, 8, 16), 8, 7, Device::Reference);
  auto b = make_gpt(gpt_spec(1, 2, 8), 8, 7, Device::Reference);  // block_size defaults to T = 8
  CHECK(a->num_params() - b->num_params() == 8 * 8);
  CHECK(a->flops_per_sample() == b->flops_per_sample());
}

}  // namespace test_gpt_model_cpp
