// The layers of a GPT (engine/gpt.cpp), Caffe style like engine/layers.hpp: shape inference in
// the constructor, a reference path (engine/transformer_ref.hpp, plain loops, double sums) and a
// cpu path (dnnl_sgemm for every matrix product, vectorised element-wise loops, saved activations
// from forward to backward), and a cuda path (engine/cuda/transformer.cpp).
//
// Sequence tensors are position-major, T x E x 1 (SampleShape{T, E, 1}): row t of a sample holds
// position t's E features, so every per-position linear map over n samples is one GEMM with n*T
// rows, and a plain-layout buffer is exactly PyTorch's [B][T][E]. The model input is T x 1 x 1,
// one token id per position (as a float: ids < 2^24 are exact); the logits are T x V x 1.
//
// Parameter tensors are named as nanoGPT's state_dict (transformer.wte.weight, ...h.0.attn.c_attn.weight,
// ...). Initialisation is GPT-2's (nanoGPT's _init_weights): weights and embeddings N(0, 0.02),
// biases 0, LayerNorm 1 / 0, and the residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02 /
// sqrt(2 n_layer)).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/layers.hpp"

namespace dtsim::engine {

// Token + learned position embedding: y[t] = wte[token t] + wpe[t]. Input T x 1 x 1 (ids),
// output T x E x 1. Params wte [vocab][E], then wpe [block_size][E] (block_size >= T). No input
// gradient (the input is data). Token ids must be whole numbers in [0, vocab): anything else
// throws RuntimeError.
class Embedding final : public Layer {
 public:
  Embedding(std::string name, SampleShape in, size_t vocab, size_t block_size, size_t embd);
  std::string type() const override { return "embedding"; }
  size_t num_params() const override { return (vocab_ + block_) * embd_; }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double backward_input_flops() const override { return 0; }
  size_t vocab() const { return vocab_; }
  size_t block_size() const { return block_; }
  size_t embd() const { return embd_; }
  // Throws RuntimeError naming the first id that is not a whole number in [0, vocab).
  void check_tokens(const float* tokens, size_t count) const;

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  size_t vocab_, block_, embd_;
};

// LayerNorm over the features of each position (nn.LayerNorm(E), eps 1e-5, biased variance).
// Input T x E x 1 (or E x 1 x 1). Params weight [E] then bias [E].
class LayerNorm final : public Layer {
 public:
  LayerNorm(std::string name, SampleShape in, double eps = 1e-5);
  std::string type() const override { return "layernorm"; }
  size_t num_params() const override { return 2 * features(); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  size_t features() const { return static_cast<size_t>(in_shape().h == 1 ? in_shape().c : in_shape().h); }
  size_t rows() const { return in_size() / features(); }  // positions per sample
  double eps() const { return eps_; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  double eps_;
};

// GPT-2's GELU, tanh form (nn.GELU(approximate='tanh')), element-wise.
class Gelu final : public Layer {
 public:
  Gelu(std::string name, SampleShape in) : Layer(std::move(name), in) {}
  std::string type() const override { return "gelu"; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;
};

// A linear map applied at every position: T x In x 1 -> T x Out x 1 (nn.Linear on [B][T][In]).
// Params weight [Out][In] then bias [Out]; init N(0, init_std), bias 0.
class TokenLinear final : public Layer {
 public:
  TokenLinear(std::string name, SampleShape in, size_t out_features, double init_std = 0.02);
  std::string type() const override { return "token_linear"; }
  size_t in_features() const { return static_cast<size_t>(in_shape().h); }
  size_t out_features() const { return static_cast<size_t>(out_shape().h); }
  size_t positions() const { return static_cast<size_t>(in_shape().c); }
  size_t num_params() const override { return out_features() * in_features() + out_features(); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double forward_flops() const override {
    return 2.0 * static_cast<double>(positions() * in_features() * out_features());
  }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  double init_std_;
};

// Causal multi-head self-attention as one layer (nanoGPT's CausalSelfAttention): qkv = x Wa^T + ba
// (Wa [3E][E]); per head (d = E / heads), y_h = softmax(q k^T / sqrt(d), masked to u <= t) v; the
// heads concatenated, then out = y Wp^T + bp (Wp [E][E]). Params c_attn.weight, c_attn.bias,
// c_proj.weight, c_proj.bias. Attention dropout (probability `dropout`, training only) on the
// softmax output. FLOPs: the two projections plus the causal triangle of q k^T and p v
// (T(T+1)/2 products per head); their backward costs twice that triangle.
class CausalSelfAttention final : public Layer {
 public:
  CausalSelfAttention(std::string name, SampleShape in, int heads, double dropout = 0.0, double init_std = 0.02,
                      double proj_std = 0.02);
  ~CausalSelfAttention() override;
  std::string type() const override { return "attention"; }
  size_t positions() const { return static_cast<size_t>(in_shape().c); }
  size_t embd() const { return static_cast<size_t>(in_shape().h); }
  size_t heads() const { return heads_; }
  size_t head_dim() const { return embd() / heads_; }
  double dropout() const { return dropout_; }
  size_t num_params() const override { return 4 * embd() * embd() + 4 * embd(); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double forward_flops() const override { return projection_flops() + core_flops(); }
  double backward_input_flops() const override { return projection_flops() + 2 * core_flops(); }
  double backward_weight_flops() const override { return projection_flops(); }
  double projection_flops() const;  // qkv + output projection, per sample
  double core_flops() const;        // q k^T and p v over the causal triangle, per sample
  // Attention dropout's keep factors (mask / (1 - p)) of the last training forward:
  // [n][heads][T][T], empty without dropout. (Tests and the cuda path.)
  const std::vector<float>& dropout_keep() const { return keep_; }

 protected:
  void fwd_reference(const FwdArgs& a) const override;
  void bwd_reference(const BwdArgs& a) const override;
  void fwd_cpu(const FwdArgs& a) const override;
  void bwd_cpu(const BwdArgs& a) const override;
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;

 public:
  // Draws the attention dropout masks of a training forward of n samples into dropout_keep()
  // (no-op without dropout). Rng(seed, Algorithm, {0xD80, layer, call, ...}).
  void draw_dropout(size_t n) const;

 private:
  size_t heads_;
  double dropout_, init_std_, proj_std_;
  mutable uint64_t seed_ = 0, layer_index_ = 0, calls_ = 0;
  mutable std::vector<float> keep_;
};

// The output head tied to the token embedding (GPT-2's weight tying): logits = x wte^T, no bias.
// T x E x 1 -> T x vocab x 1. It owns no parameters: it reads, and adds its gradient to, the
// embedding's wte (Layer::tied_to).
class TiedHead final : public Layer {
 public:
  TiedHead(std::string name, SampleShape in, const Embedding& embedding);
  std::string type() const override { return "tied_head"; }
  const Layer* tied_to() const override { return &emb_; }
  size_t tied_offset() const override { return 0; }
  size_t tied_size() const override { return emb_.vocab() * emb_.embd(); }
  double forward_flops() const override {
    return 2.0 * static_cast<double>(in_shape().c) * static_cast<double>(emb_.vocab() * emb_.embd());
  }
  double backward_weight_flops() const override { return forward_flops(); }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  const Embedding& emb_;
};

// Inverted dropout (nn.Dropout): in training, y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p);
// in evaluation, y = x. Masks come from Rng(seed, Algorithm, {0xD80, layer, call}) where `seed` is
// the one init_params received and `call` counts this layer's training forwards: a run is
// reproducible, though a resumed one draws other masks. Backward uses the last forward's mask.
class Dropout final : public Layer {
 public:
  Dropout(std::string name, SampleShape in, double p);
  std::string type() const override { return "dropout"; }
  InPlace in_place() const override { return InPlace::Write; }
  bool backward_needs_input() const override { return false; }
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double p() const { return p_; }
  // Keep factors (mask / (1 - p)) of the last training forward: n * in_size() floats.
  const std::vector<float>& keep() const { return keep_; }

 protected:
  void fwd_reference(const FwdArgs& a) const override;
  void bwd_reference(const BwdArgs& a) const override;
  void fwd_cpu(const FwdArgs& a) const override { fwd_reference(a); }
  void bwd_cpu(const BwdArgs& a) const override { bwd_reference(a); }
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;

 public:
  void draw(size_t n) const;  // the next training forward's keep factors

 private:
  double p_;
  mutable uint64_t seed_ = 0, layer_index_ = 0, calls_ = 0;
  mutable std::vector<float> keep_;
};

}  // namespace dtsim::engine
