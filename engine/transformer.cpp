// The transformer layers but attention (engine/attention.cpp): embedding, LayerNorm, GELU,
// per-position linear maps, the tied head and dropout. Reference paths run the templated loops
// of engine/transformer_ref.hpp; cpu paths use dnnl_sgemm (engine::gemm) for matrix products and
// vectorisable loops (engine/fastmath.hpp) for the rest.
#include "engine/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/fastmath.hpp"
#include "engine/transformer_ref.hpp"

namespace dtsim::engine {

namespace {

// N(0, std) from the run's seed, per (layer, tensor).
void init_normal(float* p, size_t count, double std, uint64_t seed, uint64_t layer, uint64_t which) {
  Rng r(seed, Stream::Init, {layer, which});
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(r.normal(0.0, std));
}

SampleShape seq_shape(size_t positions, size_t features) {
  return SampleShape{static_cast<int>(positions), static_cast<int>(features), 1};
}

void require_sequence(const std::string& name, SampleShape in) {
  if (in.w != 1 || in.c < 1 || in.h < 1)
    throw RuntimeError("layer '" + name + "': expects a sequence T x E x 1, got " + std::to_string(in.c) + "x" +
                       std::to_string(in.h) + "x" + std::to_string(in.w));
}

// dst[r][j] = bias[j] for every row.
void broadcast_rows(float* dst, const float* bias, size_t rows, size_t cols) {
  for (size_t r = 0; r < rows; ++r) std::memcpy(dst + r * cols, bias, cols * sizeof(float));
}

// out[j] = sum over rows of x[r][j], in row order (vectorised across j).
void column_sums(const float* x, float* out, size_t rows, size_t cols) {
  std::fill(out, out + cols, 0.0f);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    for (size_t j = 0; j < cols; ++j) out[j] += row[j];
  }
}

}  // namespace

// ---------------------------------------------------------------------------- Embedding

Embedding::Embedding(std::string name, SampleShape in, size_t vocab, size_t block_size, size_t embd)
    : Layer(std::move(name), in), vocab_(vocab), block_(block_size), embd_(embd) {
  if (in.h != 1 || in.w != 1)
    throw RuntimeError("embedding '" + this->name() + "': expects token ids T x 1 x 1, got " + std::to_string(in.c) +
                       "x" + std::to_string(in.h) + "x" + std::to_string(in.w));
  if (vocab < 1 || embd < 1 || block_size < static_cast<size_t>(in.c))
    throw RuntimeError("embedding '" + this->name() + "': needs vocab, width >= 1 and block size >= the sequence length " +
                       std::to_string(in.c));
  set_out_shape(seq_shape(static_cast<size_t>(in.c), embd));
}

void Embedding::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  out.push_back({name() + ".wte.weight", offset, vocab_ * embd_});
  out.push_back({name() + ".wpe.weight", offset + vocab_ * embd_, block_ * embd_});
}

void Embedding::init_params(float* params, uint64_t seed, uint64_t layer_index) const {
  init_normal(params, vocab_ * embd_, 0.02, seed, layer_index, 0);
  init_normal(params + vocab_ * embd_, block_ * embd_, 0.02, seed, layer_index, 1);
}

void Embedding::check_tokens(const float* tokens, size_t count) const {
  for (size_t i = 0; i < count; ++i) {
    const float t = tokens[i];
    if (!(t >= 0.0f) || t >= static_cast<float>(vocab_) || t != std::floor(t))
      throw RuntimeError("embedding '" + name() + "': token " + std::to_string(i) + " is " + std::to_string(t) +
                         ", not an id in [0, " + std::to_string(vocab_) + ")");
  }
}

void Embedding::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  check_tokens(x, n * in_size());
  ref::embedding_forward(x, p, p + vocab_ * embd_, y, n, in_size(), embd_);
}

void Embedding::backward_reference(const float*, const float* x, const float*, const float* dy, float*, float* dp,
                                   bool, size_t n) const {
  ref::embedding_backward(x, dy, dp, dp + vocab_ * embd_, n, in_size(), embd_, vocab_, block_);
}

void Embedding::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  check_tokens(x, n * in_size());
  const size_t len = in_size(), e = embd_;
  const float* wpe = p + vocab_ * e;
  for (size_t s = 0; s < n; ++s)
    for (size_t t = 0; t < len; ++t) {
      const float* a = p + static_cast<size_t>(x[s * len + t]) * e;
      const float* b = wpe + t * e;
      float* row = y + (s * len + t) * e;
      for (size_t j = 0; j < e; ++j) row[j] = a[j] + b[j];
    }
}

void Embedding::backward_cpu(const float*, const float* x, const float*, const float* dy, float*, float* dp, bool,
                             size_t n) const {
  // Scatter-add in (sample, position) order: a fixed order, whatever the threads.
  const size_t len = in_size(), e = embd_;
  float* dwte = dp;
  float* dwpe = dp + vocab_ * e;
  std::fill(dp, dp + num_params(), 0.0f);
  for (size_t s = 0; s < n; ++s)
    for (size_t t = 0; t < len; ++t) {
      const float* g = dy + (s * len + t) * e;
      float* a = dwte + static_cast<size_t>(x[s * len + t]) * e;
      float* b = dwpe + t * e;
      for (size_t j = 0; j < e; ++j) {
        a[j] += g[j];
        b[j] += g[j];
      }
    }
}

// ---------------------------------------------------------------------------- LayerNorm

LayerNorm::LayerNorm(std::string name, SampleShape in, double eps) : Layer(std::move(name), in), eps_(eps) {
  if (in.w != 1) require_sequence(this->name(), in);
  if (!(eps > 0)) throw RuntimeError("layernorm '" + this->name() + "': eps must be positive");
}

void LayerNorm::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  out.push_back({name() + ".weight", offset, features()});
  out.push_back({name() + ".bias", offset + features(), features()});
}

void LayerNorm::init_params(float* params, uint64_t, uint64_t) const {
  std::fill(params, params + features(), 1.0f);
  std::fill(params + features(), params + 2 * features(), 0.0f);
}

void LayerNorm::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  ref::layernorm_forward(x, p, p + features(), y, n * rows(), features(), eps_);
}

void LayerNorm::backward_reference(const float* p, const float* x, const float*, const float* dy, float* dx,
                                   float* dp, bool propagate_down, size_t n) const {
  ref::layernorm_backward(x, p, dy, propagate_down ? dx : nullptr, dp, dp + features(), n * rows(), features(), eps_);
}

namespace {
// Mean and 1/sqrt(biased variance + eps) of one row (two passes, vectorised sums).
void row_stats(const float* x, size_t e, float eps, float& mean, float& rstd) {
  mean = fast::sum(x, e) / static_cast<float>(e);
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t j = 0;
  for (; j + 8 <= e; j += 8)
    for (size_t k = 0; k < 8; ++k) acc[k] += (x[j + k] - mean) * (x[j + k] - mean);
  float var = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; j < e; ++j) var += (x[j] - mean) * (x[j] - mean);
  rstd = 1.0f / std::sqrt(var / static_cast<float>(e) + eps);
}
}  // namespace

void LayerNorm::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  const size_t e = features(), rows_total = n * rows();
  const float* w = p;
  const float* b = p + e;
  const float eps = static_cast<float>(eps_);
  for (size_t r = 0; r < rows_total; ++r) {
    const float* xr = x + r * e;
    float* yr = y + r * e;
    float mean, rstd;
    row_stats(xr, e, eps, mean, rstd);
    for (size_t j = 0; j < e; ++j) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
  }
}

void LayerNorm::backward_cpu(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                             bool propagate_down, size_t n) const {
  const size_t e = features(), rows_total = n * rows();
  const float* w = p;
  float* dw = dp;
  float* db = dp + e;
  const float eps = static_cast<float>(eps_);
  std::fill(dp, dp + 2 * e, 0.0f);
  thread_local std::vector<float> xhat, g;
  xhat.resize(e);
  g.resize(e);
  for (size_t r = 0; r < rows_total; ++r) {
    const float* xr = x + r * e;
    const float* dyr = dy + r * e;
    float mean, rstd;
    row_stats(xr, e, eps, mean, rstd);
    for (size_t j = 0; j < e; ++j) {
      xhat[j] = (xr[j] - mean) * rstd;
      g[j] = dyr[j] * w[j];
      dw[j] += dyr[j] * xhat[j];
      db[j] += dyr[j];
    }
    if (!propagate_down) continue;
    const float m1 = fast::sum(g.data(), e) / static_cast<float>(e);
    const float m2 = fast::dot(g.data(), xhat.data(), e) / static_cast<float>(e);
    float* dxr = dx + r * e;
    for (size_t j = 0; j < e; ++j) dxr[j] = rstd * (g[j] - m1 - xhat[j] * m2);
  }
}

// --------------------------------------------------------------------------------- GELU

void Gelu::forward_reference(const float*, const float* x, float* y, size_t n) const {
  ref::gelu_forward(x, y, n * in_size());
}

void Gelu::backward_reference(const float*, const float* x, const float*, const float* dy, float* dx, float*,
                              bool propagate_down, size_t n) const {
  if (propagate_down) ref::gelu_backward(x, dy, dx, n * in_size());
}

void Gelu::forward_cpu(const float*, const float* x, float* y, size_t n) const {
  const float c = static_cast<float>(ref::kGeluC), a = static_cast<float>(ref::kGeluA);
  const size_t count = n * in_size();
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + fast::tanh(c * (v + a * v * v * v)));
  }
}

void Gelu::backward_cpu(const float*, const float* x, const float*, const float* dy, float* dx, float*,
                        bool propagate_down, size_t n) const {
  if (!propagate_down) return;
  const float c = static_cast<float>(ref::kGeluC), a = static_cast<float>(ref::kGeluA);
  const size_t count = n * in_size();
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    const float th = fast::tanh(c * (v + a * v * v * v));
    dx[i] = dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * c * (1.0f + 3.0f * a * v * v));
  }
}

// -------------------------------------------------------------------------- TokenLinear

TokenLinear::TokenLinear(std::string name, SampleShape in, size_t out_features, double init_std)
    : Layer(std::move(name), in), init_std_(init_std) {
  require_sequence(this->name(), in);
  if (out_features < 1 || out_features > (size_t{1} << 20) || static_cast<size_t>(in.h) * out_features > (size_t{1} << 30))
    throw RuntimeError("token_linear '" + this->name() + "': bad output width " + std::to_string(out_features));
  set_out_shape(seq_shape(static_cast<size_t>(in.c), out_features));
}

void TokenLinear::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  const size_t w = out_features() * in_features();
  out.push_back({name() + ".weight", offset, w});
  out.push_back({name() + ".bias", offset + w, out_features()});
}

void TokenLinear::init_params(float* params, uint64_t seed, uint64_t layer_index) const {
  const size_t w = out_features() * in_features();
  init_normal(params, w, init_std_, seed, layer_index, 0);
  std::fill(params + w, params + w + out_features(), 0.0f);
}

void TokenLinear::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  const size_t in = in_features(), out = out_features();
  ref::rows_linear_forward(x, p, p + in * out, y, n * positions(), in, out);
}

void TokenLinear::backward_reference(const float* p, const float* x, const float*, const float* dy, float* dx,
                                     float* dp, bool propagate_down, size_t n) const {
  const size_t in = in_features(), out = out_features();
  ref::rows_linear_backward(x, p, dy, propagate_down ? dx : nullptr, dp, dp + in * out, n * positions(), in, out);
}

void TokenLinear::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  const size_t in = in_features(), out = out_features(), rows = n * positions();
  broadcast_rows(y, p + in * out, rows, out);
  gemm(Backend::OneDnn, false, true, rows, out, in, 1.0f, x, in, p, in, 1.0f, y, out);  // y += x W^T
}

void TokenLinear::backward_cpu(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                               bool propagate_down, size_t n) const {
  const size_t in = in_features(), out = out_features(), rows = n * positions();
  gemm(Backend::OneDnn, true, false, out, in, rows, 1.0f, dy, out, x, in, 0.0f, dp, in);  // dW = dy^T x
  column_sums(dy, dp + in * out, rows, out);
  if (propagate_down) gemm(Backend::OneDnn, false, false, rows, in, out, 1.0f, dy, out, p, in, 0.0f, dx, in);
}

// ----------------------------------------------------------------------------- TiedHead

TiedHead::TiedHead(std::string name, SampleShape in, const Embedding& embedding)
    : Layer(std::move(name), in), emb_(embedding) {
  require_sequence(this->name(), in);
  if (static_cast<size_t>(in.h) != embedding.embd())
    throw RuntimeError("tied_head '" + this->name() + "': input width " + std::to_string(in.h) +
                       " is not the embedding's " + std::to_string(embedding.embd()));
  set_out_shape(seq_shape(static_cast<size_t>(in.c), embedding.vocab()));
}

void TiedHead::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  ref::rows_linear_forward<float>(x, p, nullptr, y, n * static_cast<size_t>(in_shape().c), emb_.embd(), emb_.vocab());
}

void TiedHead::backward_reference(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                                  bool propagate_down, size_t n) const {
  ref::rows_linear_backward<float>(x, p, dy, propagate_down ? dx : nullptr, dp, nullptr,
                                   n * static_cast<size_t>(in_shape().c), emb_.embd(), emb_.vocab());
}

void TiedHead::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  const size_t e = emb_.embd(), v = emb_.vocab(), rows = n * static_cast<size_t>(in_shape().c);
  gemm(Backend::OneDnn, false, true, rows, v, e, 1.0f, x, e, p, e, 0.0f, y, v);  // logits = x wte^T
}

void TiedHead::backward_cpu(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                            bool propagate_down, size_t n) const {
  const size_t e = emb_.embd(), v = emb_.vocab(), rows = n * static_cast<size_t>(in_shape().c);
  gemm(Backend::OneDnn, true, false, v, e, rows, 1.0f, dy, v, x, e, 0.0f, dp, e);  // dwte = dlogits^T x
  if (propagate_down) gemm(Backend::OneDnn, false, false, rows, e, v, 1.0f, dy, v, p, e, 0.0f, dx, e);
}

// ------------------------------------------------------------------------------ Dropout

Dropout::Dropout(std::string name, SampleShape in, double p) : Layer(std::move(name), in), p_(p) {
  if (!(p >= 0 && p < 1)) throw RuntimeError("dropout '" + this->name() + "': p must be in [0, 1)");
}

void Dropout::init_params(float*, uint64_t seed, uint64_t layer_index) const {
  seed_ = seed;
  layer_index_ = layer_index;
  calls_ = 0;
}

void Dropout::draw(size_t n) const {
  const size_t count = n * in_size();
  keep_.resize(count);
  Rng r(seed_, Stream::Algorithm, {0xD80, layer_index_, calls_++});
  const float scale = static_cast<float>(1.0 / (1.0 - p_));
  for (size_t i = 0; i < count; ++i) keep_[i] = r.uniform() < p_ ? 0.0f : scale;
}

void Dropout::fwd_reference(const FwdArgs& a) const {
  const size_t count = a.n * in_size();
  if (!a.training || p_ == 0) {
    if (a.x != a.y) std::copy(a.x, a.x + count, a.y);
    return;
  }
  draw(a.n);
  for (size_t i = 0; i < count; ++i) a.y[i] = a.x[i] * keep_[i];
}

void Dropout::bwd_reference(const BwdArgs& a) const {
  if (!a.propagate_down) return;
  const size_t count = a.n * in_size();
  if (!a.training || p_ == 0) {
    if (a.dx != a.dy) std::copy(a.dy, a.dy + count, a.dx);
    return;
  }
  if (keep_.size() != count) throw RuntimeError("dropout '" + name() + "': backward without its forward");
  for (size_t i = 0; i < count; ++i) a.dx[i] = a.dy[i] * keep_[i];
}

void Dropout::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  FwdArgs a;
  a.params = p;
  a.x = x;
  a.y = y;
  a.n = n;
  fwd_reference(a);
}

void Dropout::backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                                 bool propagate_down, size_t n) const {
  BwdArgs a;
  a.params = p;
  a.x = x;
  a.y = y;
  a.dy = dy;
  a.dx = dx;
  a.dparams = dp;
  a.propagate_down = propagate_down;
  a.n = n;
  bwd_reference(a);
}

}  // namespace dtsim::engine
