// The cuda backend of the transformer layers (engine/transformer.hpp), reached from
// cuda::forward/backward (layers.cpp) for the layer types it knows. cuBLAS (cuda::gemm, pedantic
// math) for every product — the projections over all n*T rows, attention per (sample, head) — and
// own kernels (transformer_kernels.cu) for the rest. Attention keeps qkv, the probabilities and
// the concatenated heads of a training forward for its backward, per layer (the Layer contract:
// backward follows the forward of the same batch). Dropout masks are drawn on the host by the
// layer (the same Rng stream as the host paths) and copied to the device.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "engine/cuda/common.hpp"
#include "engine/cuda/transformer_kernels.hpp"
#include "engine/layers.hpp"
#include "engine/transformer.hpp"

namespace dtsim::engine::cuda {

namespace {

// Grow-only device buffers of one layer.
struct Saved {
  Vec qkv, probs, dropped, heads, dheads, dqkv, scratch, keep;
  float* get(Vec& v, size_t n) {
    if (v.size() < n) v = Vec(n, Device::Cuda);
    return v.data();
  }
};
std::map<const Layer*, Saved>& saved() {
  static auto* m = new std::map<const Layer*, Saved>();  // never destroyed: device memory outlives exit order
  return *m;
}

// The host tokens of a batch (for the id check): n*len floats copied back.
void check_tokens(const Embedding& l, const float* dev_tokens, size_t count) {
  std::vector<float> host(count);
  copy(host.data(), Device::Cpu, dev_tokens, Device::Cuda, count);
  l.check_tokens(host.data(), count);
}

// ---- attention

struct AttnPtr {
  const float *wa, *ba, *wp, *bp;
};
AttnPtr attn_params(const float* p, size_t e) { return {p, p + 3 * e * e, p + 3 * e * e + 3 * e, p + 4 * e * e + 3 * e}; }

void attention_forward(const CausalSelfAttention& l, const FwdArgs& a) {
  const size_t len = l.positions(), e = l.embd(), d = l.head_dim(), H = l.heads(), n = a.n, rows = n * len,
               ld = 3 * e, tt = len * len;
  const AttnPtr p = attn_params(a.params, e);
  const bool drop = a.training && l.dropout() > 0;
  Saved& s = saved()[&l];
  float* qkv = s.get(s.qkv, rows * ld);
  float* heads = s.get(s.heads, rows * e);
  float* probs = s.get(s.probs, n * H * tt);
  float* dropped = nullptr;
  if (drop) {
    l.draw_dropout(n);
    const std::vector<float>& keep = l.dropout_keep();
    copy(s.get(s.keep, keep.size()), Device::Cuda, keep.data(), Device::Cpu, keep.size());
    dropped = s.get(s.dropped, n * H * tt);
  }
  kern::broadcast_rows(qkv, p.ba, rows, ld);
  gemm(false, true, rows, ld, e, 1.0f, a.x, e, p.wa, e, 1.0f, qkv, ld);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  for (size_t smp = 0; smp < n; ++smp)
    for (size_t h = 0; h < H; ++h) {
      const float* q = qkv + smp * len * ld + h * d;
      gemm(false, true, len, len, d, scale, q, ld, q + e, ld, 0.0f, probs + (smp * H + h) * tt, len);
    }
  tf::causal_softmax(probs, n * H, len);
  if (drop) tf::mul(dropped, probs, s.keep.data(), n * H * tt);
  const float* use = drop ? dropped : probs;
  for (size_t smp = 0; smp < n; ++smp)
    for (size_t h = 0; h < H; ++h) {
      const float* v = qkv + smp * len * ld + 2 * e + h * d;
      gemm(false, false, len, d, len, 1.0f, use + (smp * H + h) * tt, len, v, ld, 0.0f, heads + smp * len * e + h * d,
           e);
    }
  kern::broadcast_rows(a.y, p.bp, rows, e);
  gemm(false, true, rows, e, e, 1.0f, heads, e, p.wp, e, 1.0f, a.y, e);
}

void attention_backward(const CausalSelfAttention& l, const BwdArgs& a) {
  const size_t len = l.positions(), e = l.embd(), d = l.head_dim(), H = l.heads(), n = a.n, rows = n * len,
               ld = 3 * e, tt = len * len;
  const AttnPtr p = attn_params(a.params, e);
  float* gwa = a.dparams;
  float* gba = gwa + 3 * e * e;
  float* gwp = gba + 3 * e;
  float* gbp = gwp + e * e;
  const bool drop = a.training && l.dropout() > 0;
  Saved& s = saved()[&l];
  if (!a.training || s.qkv.size() < rows * ld || s.probs.size() < n * H * tt)
    throw RuntimeError("attention '" + l.name() + "': backward needs the training forward of the same batch");
  const float* qkv = s.qkv.data();
  const float* probs = s.probs.data();
  const float* use = drop ? s.dropped.data() : probs;
  float* dheads = s.get(s.dheads, rows * e);
  float* dqkv = s.get(s.dqkv, rows * ld);
  float* dp = s.get(s.scratch, n * H * tt);
  gemm(true, false, e, e, rows, 1.0f, a.dy, e, s.heads.data(), e, 0.0f, gwp, e);
  kern::column_sums(a.dy, gbp, rows, e);
  gemm(false, false, rows, e, e, 1.0f, a.dy, e, p.wp, e, 0.0f, dheads, e);
  for (size_t smp = 0; smp < n; ++smp)
    for (size_t h = 0; h < H; ++h) {
      const size_t off = smp * len * ld + h * d, m = (smp * H + h) * tt;
      const float* dh = dheads + smp * len * e + h * d;
      gemm(false, true, len, len, d, 1.0f, dh, e, qkv + off + 2 * e, ld, 0.0f, dp + m, len);
      gemm(true, false, len, d, len, 1.0f, use + m, len, dh, e, 0.0f, dqkv + off + 2 * e, ld);
    }
  if (drop) tf::mul(dp, dp, s.keep.data(), n * H * tt);
  tf::softmax_backward(probs, dp, n * H, len, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))));
  for (size_t smp = 0; smp < n; ++smp)
    for (size_t h = 0; h < H; ++h) {
      const size_t off = smp * len * ld + h * d, m = (smp * H + h) * tt;
      gemm(false, false, len, d, len, 1.0f, dp + m, len, qkv + off + e, ld, 0.0f, dqkv + off, ld);
      gemm(true, false, len, d, len, 1.0f, dp + m, len, qkv + off, ld, 0.0f, dqkv + off + e, ld);
    }
  gemm(true, false, ld, e, rows, 1.0f, dqkv, ld, a.x, e, 0.0f, gwa, e);
  kern::column_sums(dqkv, gba, rows, ld);
  if (a.propagate_down) gemm(false, false, rows, e, ld, 1.0f, dqkv, ld, p.wa, e, 0.0f, a.dx, e);
}

}  // namespace

bool transformer_forward(const Layer& layer, const FwdArgs& a) {
  if (auto* l = dynamic_cast<const Embedding*>(&layer)) {
    const size_t len = l->in_size(), e = l->embd();
    check_tokens(*l, a.x, a.n * len);
    tf::embedding_forward(a.x, a.params, a.params + l->vocab() * e, a.y, a.n, len, e);
    return true;
  }
  if (auto* l = dynamic_cast<const LayerNorm*>(&layer)) {
    const size_t e = l->features();
    tf::layernorm_forward(a.x, a.params, a.params + e, a.y, a.n * l->rows(), e, static_cast<float>(l->eps()));
    return true;
  }
  if (dynamic_cast<const Gelu*>(&layer)) {
    tf::gelu_forward(a.x, a.y, a.n * layer.in_size());
    return true;
  }
  if (auto* l = dynamic_cast<const TokenLinear*>(&layer)) {
    const size_t in = l->in_features(), out = l->out_features(), rows = a.n * l->positions();
    kern::broadcast_rows(a.y, a.params + in * out, rows, out);
    gemm(false, true, rows, out, in, 1.0f, a.x, in, a.params, in, 1.0f, a.y, out);
    return true;
  }
  if (auto* l = dynamic_cast<const CausalSelfAttention*>(&layer)) {
    attention_forward(*l, a);
    return true;
  }
  if (auto* l = dynamic_cast<const TiedHead*>(&layer)) {
    const auto& emb = static_cast<const Embedding&>(*l->tied_to());
    const size_t e = emb.embd(), v = emb.vocab(), rows = a.n * static_cast<size_t>(l->in_shape().c);
    gemm(false, true, rows, v, e, 1.0f, a.x, e, a.params, e, 0.0f, a.y, v);
    return true;
  }
  if (auto* l = dynamic_cast<const Dropout*>(&layer)) {
    const size_t count = a.n * layer.in_size();
    if (!a.training || l->p() == 0) {
      if (a.x != a.y) copy(a.y, Device::Cuda, a.x, Device::Cuda, count);
      return true;
    }
    l->draw(a.n);
    Saved& s = saved()[l];
    float* keep = s.get(s.keep, count);
    copy(keep, Device::Cuda, l->keep().data(), Device::Cpu, count);
    tf::mul(a.y, a.x, keep, count);
    return true;
  }
  return false;
}

bool transformer_backward(const Layer& layer, const BwdArgs& a) {
  if (auto* l = dynamic_cast<const Embedding*>(&layer)) {
    const size_t e = l->embd();
    tf::embedding_backward(a.x, a.dy, a.dparams, a.dparams + l->vocab() * e, a.n, l->in_size(), e, l->vocab(),
                           l->block_size());
    return true;
  }
  if (auto* l = dynamic_cast<const LayerNorm*>(&layer)) {
    const size_t e = l->features(), rows = a.n * l->rows();
    Saved& s = saved()[l];
    float* xhat_dy = s.get(s.scratch, rows * e);
    tf::layernorm_backward(a.x, a.params, a.dy, a.propagate_down ? a.dx : nullptr, xhat_dy, rows, e,
                           static_cast<float>(l->eps()));
    kern::column_sums(xhat_dy, a.dparams, rows, e);
    kern::column_sums(a.dy, a.dparams + e, rows, e);
    return true;
  }
  if (dynamic_cast<const Gelu*>(&layer)) {
    if (a.propagate_down) tf::gelu_backward(a.x, a.dy, a.dx, a.n * layer.in_size());
    return true;
  }
  if (auto* l = dynamic_cast<const TokenLinear*>(&layer)) {
    const size_t in = l->in_features(), out = l->out_features(), rows = a.n * l->positions();
    gemm(true, false, out, in, rows, 1.0f, a.dy, out, a.x, in, 0.0f, a.dparams, in);
    kern::column_sums(a.dy, a.dparams + in * out, rows, out);
    if (a.propagate_down) gemm(false, false, rows, in, out, 1.0f, a.dy, out, a.params, in, 0.0f, a.dx, in);
    return true;
  }
  if (auto* l = dynamic_cast<const CausalSelfAttention*>(&layer)) {
    attention_backward(*l, a);
    return true;
  }
  if (auto* l = dynamic_cast<const TiedHead*>(&layer)) {
    const auto& emb = static_cast<const Embedding&>(*l->tied_to());
    const size_t e = emb.embd(), v = emb.vocab(), rows = a.n * static_cast<size_t>(l->in_shape().c);
    gemm(true, false, v, e, rows, 1.0f, a.dy, v, a.x, e, 0.0f, a.dparams, e);
    if (a.propagate_down) gemm(false, false, rows, e, v, 1.0f, a.dy, v, a.params, e, 0.0f, a.dx, e);
    return true;
  }
  if (auto* l = dynamic_cast<const Dropout*>(&layer)) {
    if (!a.propagate_down) return true;
    const size_t count = a.n * layer.in_size();
    if (!a.training || l->p() == 0) {
      if (a.dx != a.dy) copy(a.dx, Device::Cuda, a.dy, Device::Cuda, count);
      return true;
    }
    Saved& s = saved()[l];
    if (s.keep.size() < count) throw RuntimeError("dropout '" + l->name() + "': backward without its forward");
    tf::mul(a.dx, a.dy, s.keep.data(), count);
    return true;
  }
  return false;
}

void adamw_step(VecView w, ConstVecView g, float* m, float* v, float decay, float b1, float one_minus_b1, float b2,
                float one_minus_b2, float step_size, float bc2_sqrt, float eps) {
  if (w.device != Device::Cuda || g.device != Device::Cuda)
    throw RuntimeError("adamw_step: weights and gradient must be cuda buffers");
  if (w.size != g.size) throw RuntimeError("adamw_step: sizes differ");
  tf::adamw(w.ptr, g.ptr, m, v, w.size, decay, b1, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps);
}

}  // namespace dtsim::engine::cuda
