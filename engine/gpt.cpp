// The gpt model kind (engine/gpt.hpp): the graph of nanoGPT's model.py, layer by layer.
//
//   x = wte[idx] + wpe[pos]                       (transformer.wte, transformer.wpe; then dropout)
//   for each block h.i:
//     x = x + attn(ln_1(x))                        (CausalSelfAttention; resid dropout)
//     x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))  (4 E hidden; dropout)
//   logits = ln_f(x) wte^T                         (lm_head, tied)
#include "engine/gpt.hpp"

#include <cmath>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "engine/transformer.hpp"

namespace dtsim::engine {

size_t gpt_num_params(size_t n_layer, size_t n_embd, size_t vocab, size_t block_size) {
  const size_t e = n_embd;
  return vocab * e + block_size * e + n_layer * (12 * e * e + 13 * e) + 2 * e;
}

void build_gpt(ObjectReader& spec, Graph& g, const SampleShape& in, int vocab) {
  const int64_t n_layer = spec.integer("n_layer", 4);
  const int64_t n_head = spec.integer("n_head", 4);
  const int64_t n_embd = spec.integer("n_embd", 128);
  if (n_layer < 1 || n_layer > 1024) spec.fail("n_layer", "must be in [1, 1024], got " + std::to_string(n_layer));
  if (n_head < 1 || n_head > 4096) spec.fail("n_head", "must be in [1, 4096], got " + std::to_string(n_head));
  if (n_embd < 1 || n_embd > 65536) spec.fail("n_embd", "must be in [1, 65536], got " + std::to_string(n_embd));
  if (n_embd % n_head != 0)
    spec.fail("n_embd", std::to_string(n_embd) + " is not a multiple of n_head (" + std::to_string(n_head) + ")");
  if (in.h != 1 || in.w != 1)
    spec.fail("kind", "'gpt' reads token sequences (dataset.kind \"text\"), not " + std::to_string(in.c) + "x" +
                          std::to_string(in.h) + "x" + std::to_string(in.w) + " samples");
  const int64_t block = spec.integer("block_size", in.c);
  if (block < 1) spec.fail("block_size", "must be in [1, 1048576], got " + std::to_string(block));
  if (block < in.c)
    spec.fail("block_size", std::to_string(block) + " is shorter than the dataset's sequences (" +
                                std::to_string(in.c) + " tokens): the position embedding has one row per position");
  if (block > (int64_t{1} << 20)) spec.fail("block_size", "must be at most 1048576");
  const double dropout = spec.number("dropout", 0.0);
  if (!(dropout >= 0 && dropout < 1)) spec.fail("dropout", "must be in [0, 1)");
  const size_t e = static_cast<size_t>(n_embd);
  if (static_cast<double>(gpt_num_params(static_cast<size_t>(n_layer), e, static_cast<size_t>(vocab),
                                         static_cast<size_t>(block))) > 4e9)
    spec.fail("n_embd", "more than 4e9 parameters");

  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(n_layer));  // GPT-2's residual scaling
  try {
    auto emb_owned = std::make_unique<Embedding>("transformer", in, static_cast<size_t>(vocab),
                                                 static_cast<size_t>(block), e);
    const Embedding& emb = *emb_owned;
    int t = g.add(std::move(emb_owned), Graph::input());
    auto add = [&](std::unique_ptr<Layer> l) { return t = g.add(std::move(l), t); };
    if (dropout > 0) add(std::make_unique<Dropout>("transformer.drop", g.shape(t), dropout));
    for (int64_t i = 0; i < n_layer; ++i) {
      const std::string p = "transformer.h." + std::to_string(i);
      int x = t;
      add(std::make_unique<LayerNorm>(p + ".ln_1", g.shape(t)));
      add(std::make_unique<CausalSelfAttention>(p + ".attn", g.shape(t), static_cast<int>(n_head), dropout, 0.02,
                                                proj_std));
      if (dropout > 0) add(std::make_unique<Dropout>(p + ".attn.resid_dropout", g.shape(t), dropout));
      t = g.add(std::make_unique<Add>(p + ".add_1", g.shape(t)), t, x);
      x = t;
      add(std::make_unique<LayerNorm>(p + ".ln_2", g.shape(t)));
      add(std::make_unique<TokenLinear>(p + ".mlp.c_fc", g.shape(t), 4 * e, 0.02));
      add(std::make_unique<Gelu>(p + ".mlp.gelu", g.shape(t)));
      add(std::make_unique<TokenLinear>(p + ".mlp.c_proj", g.shape(t), e, proj_std));
      if (dropout > 0) add(std::make_unique<Dropout>(p + ".mlp.dropout", g.shape(t), dropout));
      t = g.add(std::make_unique<Add>(p + ".add_2", g.shape(t)), t, x);
    }
    add(std::make_unique<LayerNorm>("transformer.ln_f", g.shape(t)));
    add(std::make_unique<TiedHead>("lm_head", g.shape(t), emb));
    g.set_positions(in.c);
  } catch (const RuntimeError& err) {
    spec.fail("kind", std::string("cannot build 'gpt': ") + err.what());
  }
}

}  // namespace dtsim::engine
