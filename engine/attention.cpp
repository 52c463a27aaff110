// CausalSelfAttention (engine/transformer.hpp): nanoGPT's attention block as one layer.
//
// Reference path: qkv and the output projection by ref::rows_linear_*, the core by
// ref::attention_core_* (per sample, double sums); its backward recomputes the forward.
// Cpu path: every product is a dnnl_sgemm — the projections over all n*T rows at once, the core
// per (sample, head) — with a vectorised masked softmax between; a training forward keeps qkv, the
// probabilities and the concatenated heads for the backward (grow-only buffers: a steady-state
// step allocates nothing).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/fastmath.hpp"
#include "engine/onednn_kernels.hpp"  // CpuKernel: the layer's cache base (no oneDNN types)
#include "engine/transformer.hpp"
#include "engine/transformer_ref.hpp"

namespace dtsim::engine {

namespace {

struct AttnParams {  // pointers into the layer's parameters (or their gradients)
  float *wa, *ba, *wp, *bp;
  AttnParams(const float* p, size_t e)
      : wa(const_cast<float*>(p)), ba(wa + 3 * e * e), wp(ba + 3 * e), bp(wp + e * e) {}
};

// The cpu path's saved activations and scratch, per layer (its CpuKernel cache).
struct AttnBuffers final : CpuKernel {
  std::vector<float> qkv, probs, dropped, heads, dheads, dqkv, scratch;
};
AttnBuffers& buffers(std::unique_ptr<CpuKernel>& k) {
  if (!k) k = std::make_unique<AttnBuffers>();
  return static_cast<AttnBuffers&>(*k);
}

template <class V>
float* sized(V& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

CausalSelfAttention::CausalSelfAttention(std::string name, SampleShape in, int heads, double dropout, double init_std,
                                         double proj_std)
    : Layer(std::move(name), in),
      heads_(static_cast<size_t>(heads)),
      dropout_(dropout),
      init_std_(init_std),
      proj_std_(proj_std) {
  if (in.w != 1 || in.c < 1 || in.h < 1)
    throw RuntimeError("attention '" + this->name() + "': expects a sequence T x E x 1");
  if (heads < 1 || in.h % heads != 0)
    throw RuntimeError("attention '" + this->name() + "': width " + std::to_string(in.h) +
                       " is not a multiple of the head count " + std::to_string(heads));
  if (!(dropout >= 0 && dropout < 1)) throw RuntimeError("attention '" + this->name() + "': dropout must be in [0, 1)");
}

CausalSelfAttention::~CausalSelfAttention() = default;

void CausalSelfAttention::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  const size_t e = embd();
  out.push_back({name() + ".c_attn.weight", offset, 3 * e * e});
  out.push_back({name() + ".c_attn.bias", offset + 3 * e * e, 3 * e});
  out.push_back({name() + ".c_proj.weight", offset + 3 * e * e + 3 * e, e * e});
  out.push_back({name() + ".c_proj.bias", offset + 4 * e * e + 3 * e, e});
}

void CausalSelfAttention::init_params(float* params, uint64_t seed, uint64_t layer_index) const {
  const size_t e = embd();
  AttnParams p(params, e);
  Rng ra(seed, Stream::Init, {layer_index, 0});
  for (size_t i = 0; i < 3 * e * e; ++i) p.wa[i] = static_cast<float>(ra.normal(0.0, init_std_));
  std::fill(p.ba, p.ba + 3 * e, 0.0f);
  Rng rp(seed, Stream::Init, {layer_index, 2});
  for (size_t i = 0; i < e * e; ++i) p.wp[i] = static_cast<float>(rp.normal(0.0, proj_std_));
  std::fill(p.bp, p.bp + e, 0.0f);
  seed_ = seed;
  layer_index_ = layer_index;
  calls_ = 0;
}

double CausalSelfAttention::projection_flops() const {
  const double t = static_cast<double>(positions()), e = static_cast<double>(embd());
  return 2.0 * t * e * 3.0 * e + 2.0 * t * e * e;
}

double CausalSelfAttention::core_flops() const {
  // Per head: T(T+1)/2 (t, u) pairs, each a d-long dot product in q k^T and in p v.
  const double t = static_cast<double>(positions()), e = static_cast<double>(embd());
  return 2.0 * t * (t + 1.0) * e;
}

void CausalSelfAttention::draw_dropout(size_t n) const {
  if (dropout_ == 0) {
    keep_.clear();
    return;
  }
  const size_t tt = positions() * positions();
  keep_.resize(n * heads_ * tt);
  Rng r(seed_, Stream::Algorithm, {0xD80, layer_index_, calls_++});
  const float scale = static_cast<float>(1.0 / (1.0 - dropout_));
  for (float& k : keep_) k = r.uniform() < dropout_ ? 0.0f : scale;
}

// ------------------------------------------------------------------------- reference

void CausalSelfAttention::fwd_reference(const FwdArgs& a) const {
  const size_t len = positions(), e = embd(), n = a.n;
  const AttnParams p(a.params, e);
  const bool drop = a.training && dropout_ > 0;
  if (drop) draw_dropout(n);
  std::vector<float> qkv(n * len * 3 * e), heads(n * len * e);
  ref::rows_linear_forward<float>(a.x, p.wa, p.ba, qkv.data(), n * len, e, 3 * e);
  for (size_t s = 0; s < n; ++s)
    ref::attention_core_forward(qkv.data() + s * len * 3 * e, heads.data() + s * len * e, len, heads_, head_dim(),
                                drop ? keep_.data() + s * heads_ * len * len : nullptr);
  ref::rows_linear_forward<float>(heads.data(), p.wp, p.bp, a.y, n * len, e, e);
}

void CausalSelfAttention::bwd_reference(const BwdArgs& a) const {
  const size_t len = positions(), e = embd(), n = a.n;
  const AttnParams p(a.params, e);
  AttnParams g(a.dparams, e);
  const bool drop = a.training && dropout_ > 0;
  if (drop && keep_.size() != n * heads_ * len * len)
    throw RuntimeError("attention '" + name() + "': backward without its forward");
  std::vector<float> qkv(n * len * 3 * e), heads(n * len * e), dheads(n * len * e), dqkv(n * len * 3 * e);
  ref::rows_linear_forward<float>(a.x, p.wa, p.ba, qkv.data(), n * len, e, 3 * e);
  for (size_t s = 0; s < n; ++s)
    ref::attention_core_forward(qkv.data() + s * len * 3 * e, heads.data() + s * len * e, len, heads_, head_dim(),
                                drop ? keep_.data() + s * heads_ * len * len : nullptr);
  ref::rows_linear_backward<float>(heads.data(), p.wp, a.dy, dheads.data(), g.wp, g.bp, n * len, e, e);
  for (size_t s = 0; s < n; ++s)
    ref::attention_core_backward(qkv.data() + s * len * 3 * e, dheads.data() + s * len * e,
                                 dqkv.data() + s * len * 3 * e, len, heads_, head_dim(),
                                 drop ? keep_.data() + s * heads_ * len * len : nullptr);
  ref::rows_linear_backward<float>(a.x, p.wa, dqkv.data(), a.propagate_down ? a.dx : nullptr, g.wa, g.ba, n * len, e,
                                   3 * e);
}

void CausalSelfAttention::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  FwdArgs a;
  a.params = p;
  a.x = x;
  a.y = y;
  a.n = n;
  fwd_reference(a);
}

void CausalSelfAttention::backward_reference(const float* p, const float* x, const float* y, const float* dy,
                                             float* dx, float* dp, bool propagate_down, size_t n) const {
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

// ------------------------------------------------------------------------------- cpu

namespace {

// Row-wise causal softmax of a T x T score matrix in place: row t over u <= t, zeros after.
void causal_softmax(float* s, size_t len) {
  for (size_t t = 0; t < len; ++t) {
    float* row = s + t * len;
    float mx = row[0];
    for (size_t u = 1; u <= t; ++u) mx = std::max(mx, row[u]);
    for (size_t u = 0; u <= t; ++u) row[u] = fast::exp(row[u] - mx);
    const float inv = 1.0f / fast::sum(row, t + 1);
    for (size_t u = 0; u <= t; ++u) row[u] *= inv;
    std::fill(row + t + 1, row + len, 0.0f);
  }
}

}  // namespace

void CausalSelfAttention::fwd_cpu(const FwdArgs& a) const {
  const size_t len = positions(), e = embd(), d = head_dim(), n = a.n, rows = n * len, ld = 3 * e, tt = len * len;
  const AttnParams p(a.params, e);
  const bool drop = a.training && dropout_ > 0;
  if (drop) draw_dropout(n);
  AttnBuffers& b = buffers(cpu_kernel());
  float* qkv = sized(b.qkv, rows * ld);
  float* heads = sized(b.heads, rows * e);
  // In training, every (sample, head) keeps its probabilities for the backward; in evaluation
  // one T x T scratch serves them all.
  float* probs = a.training ? sized(b.probs, n * heads_ * tt) : sized(b.scratch, tt);
  float* dropped = drop ? sized(b.dropped, n * heads_ * tt) : nullptr;
  for (size_t r = 0; r < rows; ++r) std::memcpy(qkv + r * ld, p.ba, ld * sizeof(float));
  gemm(Backend::OneDnn, false, true, rows, ld, e, 1.0f, a.x, e, p.wa, e, 1.0f, qkv, ld);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  for (size_t s = 0; s < n; ++s)
    for (size_t h = 0; h < heads_; ++h) {
      const float* q = qkv + s * len * ld + h * d;
      const float* k = q + e;
      const float* v = q + 2 * e;
      float* pr = a.training ? probs + (s * heads_ + h) * tt : probs;
      gemm(Backend::OneDnn, false, true, len, len, d, scale, q, ld, k, ld, 0.0f, pr, len);  // q k^T / sqrt(d)
      causal_softmax(pr, len);
      const float* use = pr;
      if (drop) {
        float* dr = dropped + (s * heads_ + h) * tt;
        const float* keep = keep_.data() + (s * heads_ + h) * tt;
        for (size_t i = 0; i < tt; ++i) dr[i] = pr[i] * keep[i];
        use = dr;
      }
      gemm(Backend::OneDnn, false, false, len, d, len, 1.0f, use, len, v, ld, 0.0f, heads + s * len * e + h * d, e);
    }
  for (size_t r = 0; r < rows; ++r) std::memcpy(a.y + r * e, p.bp, e * sizeof(float));
  gemm(Backend::OneDnn, false, true, rows, e, e, 1.0f, heads, e, p.wp, e, 1.0f, a.y, e);
}

void CausalSelfAttention::bwd_cpu(const BwdArgs& a) const {
  const size_t len = positions(), e = embd(), d = head_dim(), n = a.n, rows = n * len, ld = 3 * e, tt = len * len;
  const AttnParams p(a.params, e);
  AttnParams g(a.dparams, e);
  const bool drop = a.training && dropout_ > 0;
  AttnBuffers& b = buffers(cpu_kernel());
  if (!a.training || b.qkv.size() < rows * ld || b.probs.size() < n * heads_ * tt ||
      (drop && keep_.size() != n * heads_ * tt))
    throw RuntimeError("attention '" + name() + "': backward needs the training forward of the same batch");
  const float* qkv = b.qkv.data();
  const float* heads = b.heads.data();
  float* dheads = sized(b.dheads, rows * e);
  float* dqkv = sized(b.dqkv, rows * ld);
  float* dp = sized(b.scratch, tt);
  // Output projection: dWp = dy^T heads, dbp = column sums of dy, dheads = dy Wp.
  gemm(Backend::OneDnn, true, false, e, e, rows, 1.0f, a.dy, e, heads, e, 0.0f, g.wp, e);
  std::fill(g.bp, g.bp + e, 0.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < e; ++j) g.bp[j] += a.dy[r * e + j];
  gemm(Backend::OneDnn, false, false, rows, e, e, 1.0f, a.dy, e, p.wp, e, 0.0f, dheads, e);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  for (size_t s = 0; s < n; ++s)
    for (size_t h = 0; h < heads_; ++h) {
      const size_t off = s * len * ld + h * d;
      const float* q = qkv + off;
      const float* k = q + e;
      const float* v = q + 2 * e;
      const float* pr = b.probs.data() + (s * heads_ + h) * tt;
      const float* used = drop ? b.dropped.data() + (s * heads_ + h) * tt : pr;
      const float* dh = dheads + s * len * e + h * d;
      gemm(Backend::OneDnn, false, true, len, len, d, 1.0f, dh, e, v, ld, 0.0f, dp, len);  // d(used) = dh v^T
      gemm(Backend::OneDnn, true, false, len, d, len, 1.0f, used, len, dh, e, 0.0f, dqkv + off + 2 * e, ld);  // dv
      if (drop) {
        const float* keep = keep_.data() + (s * heads_ + h) * tt;
        for (size_t i = 0; i < tt; ++i) dp[i] *= keep[i];
      }
      for (size_t t = 0; t < len; ++t) {  // softmax backward, scaled: ds = p (dp - <p, dp>) / sqrt(d)
        const float* pt = pr + t * len;
        float* dt = dp + t * len;
        const float dot = fast::dot(pt, dt, t + 1);
        for (size_t u = 0; u <= t; ++u) dt[u] = pt[u] * (dt[u] - dot) * scale;
        std::fill(dt + t + 1, dt + len, 0.0f);
      }
      gemm(Backend::OneDnn, false, false, len, d, len, 1.0f, dp, len, k, ld, 0.0f, dqkv + off, ld);         // dq = ds k
      gemm(Backend::OneDnn, true, false, len, d, len, 1.0f, dp, len, q, ld, 0.0f, dqkv + off + e, ld);      // dk = ds^T q
    }
  // Input projection: dWa = dqkv^T x, dba = column sums, dx = dqkv Wa.
  gemm(Backend::OneDnn, true, false, ld, e, rows, 1.0f, dqkv, ld, a.x, e, 0.0f, g.wa, e);
  std::fill(g.ba, g.ba + ld, 0.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < ld; ++j) g.ba[j] += dqkv[r * ld + j];
  if (a.propagate_down) gemm(Backend::OneDnn, false, false, rows, e, ld, 1.0f, dqkv, ld, p.wa, e, 0.0f, a.dx, e);
}

}  // namespace dtsim::engine
