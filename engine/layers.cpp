#include "engine/layers.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "common/rng.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/onednn_kernels.hpp"

namespace dtsim::engine {

// ----------------------------------------------------------------------------- layouts

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Plain: return "nchw";
    case Layout::Block8: return "nChw8c";
    case Layout::Block16: return "nChw16c";
  }
  return "?";
}

namespace {
size_t padded_channels(int c, Layout l) {
  const size_t b = static_cast<size_t>(l);
  return (static_cast<size_t>(c) + b - 1) / b * b;
}
}  // namespace

size_t layout_size(const SampleShape& s, Layout l) {
  return padded_channels(s.c, l) * static_cast<size_t>(s.h) * static_cast<size_t>(s.w);
}

size_t layout_offset(const SampleShape& s, Layout l, int c, int y, int x) {
  const size_t hw = static_cast<size_t>(s.h) * s.w, pos = static_cast<size_t>(y) * s.w + x;
  if (l == Layout::Plain) return static_cast<size_t>(c) * hw + pos;
  const size_t b = static_cast<size_t>(l);
  return (static_cast<size_t>(c) / b * hw + pos) * b + static_cast<size_t>(c) % b;
}

bool same_memory(const SampleShape& s, Layout a, Layout b) {
  if (a == b) return true;
  return s.h * s.w == 1 && padded_channels(s.c, a) == static_cast<size_t>(s.c) &&
         padded_channels(s.c, b) == static_cast<size_t>(s.c);
}

void convert_layout(const SampleShape& s, Layout from, const float* x, Layout to, float* y, size_t n) {
  const size_t in = layout_size(s, from), out = layout_size(s, to);
  if (same_memory(s, from, to)) {
    if (x != y) std::copy(x, x + n * in, y);
    return;
  }
  const size_t hw = static_cast<size_t>(s.h) * s.w;
  for (size_t i = 0; i < n; ++i) {
    const float* xs = x + i * in;
    float* ys = y + i * out;
    if (out > s.size()) std::fill(ys, ys + out, 0.0f);
    for (int c = 0; c < s.c; ++c) {
      const size_t fo = layout_offset(s, from, c, 0, 0), to_o = layout_offset(s, to, c, 0, 0);
      const size_t fs = from == Layout::Plain ? 1 : static_cast<size_t>(from);
      const size_t ts = to == Layout::Plain ? 1 : static_cast<size_t>(to);
      for (size_t p = 0; p < hw; ++p) ys[to_o + p * ts] = xs[fo + p * fs];
    }
  }
}

// ------------------------------------------------------------------------------- Layer

Layer::Layer(std::string name, SampleShape in) : name_(std::move(name)), in_(in), out_(in) {}
Layer::~Layer() = default;

void Layer::forward(Backend b, const float* params, const float* x, float* y, size_t n) const {
  FwdArgs a;
  a.params = params;
  a.x = x;
  a.y = y;
  a.n = n;
  forward(b, a);
}

void Layer::backward(Backend b, const float* params, const float* x, const float* y, const float* dy, float* dx,
                     float* dparams, bool propagate_down, size_t n) const {
  BwdArgs a;
  a.params = params;
  a.x = x;
  a.y = y;
  a.dy = dy;
  a.dx = dx;
  a.dparams = dparams;
  a.propagate_down = propagate_down;
  a.n = n;
  backward(b, a);
}

void Layer::forward(Backend b, const FwdArgs& a) const {
  if (num_inputs() == 2 && !a.x2)
    throw RuntimeError("layer '" + name() + "' has two inputs: call forward with FwdArgs.x2");
  switch (b) {
    case Backend::Reference: fwd_reference(a); return;
    case Backend::OneDnn: fwd_cpu(a); return;
    case Backend::Cuda: cuda::forward(*this, a); return;  // engine/cuda/layers.cpp
  }
}

void Layer::backward(Backend b, const BwdArgs& a) const {
  switch (b) {
    case Backend::Reference: bwd_reference(a); return;
    case Backend::OneDnn: bwd_cpu(a); return;
    case Backend::Cuda: cuda::backward(*this, a); return;
  }
}

namespace {

// PyTorch's default weight/bias init for Linear and Conv2d: kaiming_uniform_(a=sqrt(5)) on the
// weight = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
void init_uniform(float* p, size_t count, double bound, uint64_t seed, uint64_t layer, uint64_t which) {
  Rng r(seed, Stream::Init, {layer, which});
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(r.uniform(-bound, bound));
}

ref::Geom pool_or_conv_geom(const std::string& name, SampleShape in, int oc, int kh, int kw, int sh, int sw, int ph,
                            int pw) {
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0)
    throw RuntimeError("layer '" + name + "': bad kernel/stride/padding");
  ref::Geom g;
  g.c = in.c;
  g.h = in.h;
  g.w = in.w;
  g.oc = oc;
  g.kh = kh;
  g.kw = kw;
  g.sh = sh;
  g.sw = sw;
  g.ph = ph;
  g.pw = pw;
  const int eh = in.h + 2 * ph - kh, ew = in.w + 2 * pw - kw;
  if (eh < 0 || ew < 0)
    throw RuntimeError("layer '" + name + "': kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                       " larger than the padded input " + std::to_string(in.h + 2 * ph) + "x" +
                       std::to_string(in.w + 2 * pw));
  g.oh = eh / sh + 1;
  g.ow = ew / sw + 1;
  return g;
}

}  // namespace

// ------------------------------------------------------------------------------ Linear

Linear::Linear(std::string name, SampleShape in, size_t out_features) : Layer(std::move(name), in) {
  if (out_features == 0 || out_features > (size_t{1} << 24))
    throw RuntimeError("linear layer '" + this->name() + "': bad output size " + std::to_string(out_features));
  if (in.size() == 0 || in.size() > (size_t{1} << 30) / out_features)
    throw RuntimeError("linear layer '" + this->name() + "': " + std::to_string(in.size()) + " x " +
                       std::to_string(out_features) + " weights is too large");
  set_out_shape(SampleShape{static_cast<int>(out_features), 1, 1});
}

void Linear::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  const size_t w = out_size() * in_size();
  out.push_back({name() + ".weight", offset, w});
  out.push_back({name() + ".bias", offset + w, out_size()});
}

void Linear::init_params(float* params, uint64_t seed, uint64_t layer_index) const {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_size()));
  const size_t w = out_size() * in_size();
  init_uniform(params, w, bound, seed, layer_index, 0);
  init_uniform(params + w, out_size(), bound, seed, layer_index, 1);
}

void Linear::forward_with(Backend b, const float* p, const float* x, float* y, size_t n) const {
  const size_t in = in_size(), out = out_size();
  const float* weight = p;
  const float* bias = p + out * in;
  for (size_t i = 0; i < n; ++i) std::copy(bias, bias + out, y + i * out);
  // y[n][out] += x[n][in] * W[out][in]^T
  gemm(b, false, true, n, out, in, 1.0f, x, in, weight, in, 1.0f, y, out);
}

void Linear::backward_with(Backend b, const float* p, const float* x, const float* dy, float* dx, float* dp,
                           bool propagate_down, size_t n) const {
  const size_t in = in_size(), out = out_size();
  float* dw = dp;
  float* db = dp + out * in;
  // dW[out][in] = dy[n][out]^T * x[n][in]
  gemm(b, true, false, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
  // db[out] = sum over samples of dy, in sample order
  std::fill(db, db + out, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const float* row = dy + i * out;
    for (size_t j = 0; j < out; ++j) db[j] += row[j];
  }
  // dx[n][in] = dy[n][out] * W[out][in]
  if (propagate_down) gemm(b, false, false, n, in, out, 1.0f, dy, out, p, in, 0.0f, dx, in);
}

void Linear::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  forward_with(Backend::Reference, p, x, y, n);
}
void Linear::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  forward_with(Backend::OneDnn, p, x, y, n);
}
void Linear::backward_reference(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                                bool propagate_down, size_t n) const {
  backward_with(Backend::Reference, p, x, dy, dx, dp, propagate_down, n);
}
void Linear::backward_cpu(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const {
  backward_with(Backend::OneDnn, p, x, dy, dx, dp, propagate_down, n);
}

// -------------------------------------------------------------------------------- ReLU

namespace {
// Branch-free and alias-aware: in place (x == y, dy == dx) the loops are written with one pointer,
// so GCC vectorises them instead of falling back to a scalar loop with a data-dependent branch.
void relu_fwd(const float* x, float* y, size_t total) {
  // std::max(v, 0) keeps a NaN input a NaN (as torch.relu does), so divergence stays visible.
  if (x == y) {
    for (size_t i = 0; i < total; ++i) y[i] = std::max(y[i], 0.0f);
  } else {
    for (size_t i = 0; i < total; ++i) y[i] = std::max(x[i], 0.0f);
  }
}
void relu_bwd(const float* __restrict y, const float* dy, float* dx, size_t total) {
  if (dx == dy) {
    for (size_t i = 0; i < total; ++i) dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
  } else {
    for (size_t i = 0; i < total; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  }
}
}  // namespace

void ReLU::forward_reference(const float*, const float* x, float* y, size_t n) const { relu_fwd(x, y, n * out_size()); }

void ReLU::backward_reference(const float*, const float*, const float* y, const float* dy, float* dx, float*,
                              bool propagate_down, size_t n) const {
  if (propagate_down) relu_bwd(y, dy, dx, n * out_size());
}

void ReLU::forward_cpu(const float*, const float* x, float* y, size_t n) const {
  relu_fwd(x, y, n * layout_size(in_shape(), cpu_in()));
}

void ReLU::backward_cpu(const float*, const float*, const float* y, const float* dy, float* dx, float*,
                        bool propagate_down, size_t n) const {
  if (propagate_down) relu_bwd(y, dy, dx, n * layout_size(in_shape(), cpu_in()));
}

// ----------------------------------------------------------------------------- Flatten

Flatten::Flatten(std::string name, SampleShape in) : Layer(std::move(name), in) {
  set_out_shape(SampleShape{static_cast<int>(in.size()), 1, 1});
}

// ------------------------------------------------------------------------------ Conv2d

Conv2d::Conv2d(std::string name, SampleShape in, int out_channels, int kernel, int stride, int padding, bool bias)
    : Layer(std::move(name), in), bias_(bias) {
  if (out_channels < 1 || out_channels > (1 << 16))
    throw RuntimeError("conv layer '" + this->name() + "': bad output channels " + std::to_string(out_channels));
  g_ = pool_or_conv_geom(this->name(), in, out_channels, kernel, kernel, stride, stride, padding, padding);
  if (weight_size() > (size_t{1} << 30))
    throw RuntimeError("conv layer '" + this->name() + "': too many weights");
  set_out_shape(SampleShape{g_.oc, g_.oh, g_.ow});
}

void Conv2d::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  out.push_back({name() + ".weight", offset, weight_size()});
  if (bias_) out.push_back({name() + ".bias", offset + weight_size(), static_cast<size_t>(g_.oc)});
}

void Conv2d::init_params(float* params, uint64_t seed, uint64_t layer_index) const {
  const double bound = 1.0 / std::sqrt(static_cast<double>(g_.c * g_.kh * g_.kw));
  init_uniform(params, weight_size(), bound, seed, layer_index, 0);
  if (bias_) init_uniform(params + weight_size(), static_cast<size_t>(g_.oc), bound, seed, layer_index, 1);
}

double Conv2d::forward_flops() const {
  return 2.0 * static_cast<double>(weight_size()) * static_cast<double>(g_.oh) * static_cast<double>(g_.ow);
}

Layout Conv2d::cpu_out_layout(Layout in) const {
  // oneDNN's avx2/avx512 convolutions compute in channel blocks of 8/16, with src and dst in the
  // same block size (mixed 8/16 falls back to slow paths). 16 where the output channels fill
  // 16-blocks on an avx512 machine and the input is not already in 8-blocks; else 8, padding the
  // channels to the block (LeNet's 6 -> 8: less waste than 16).
  if (!onednn_available() || g_.oc < 4) return Layout::Plain;
  const std::string isa = onednn::effective_isa();
  const bool avx512 = isa.rfind("avx512", 0) == 0;
  if (avx512 && g_.oc % 16 == 0 && in != Layout::Block8) return Layout::Block16;
  if (avx512 || isa.rfind("avx2", 0) == 0) return Layout::Block8;
  return Layout::Plain;
}

void Conv2d::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  ref::conv_forward(g_, p, bias_ ? p + weight_size() : nullptr, x, y, n);
}

void Conv2d::backward_reference(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                                bool propagate_down, size_t n) const {
  ref::conv_backward_weights(g_, x, dy, dp, bias_ ? dp + weight_size() : nullptr, n);
  if (propagate_down) ref::conv_backward_data(g_, p, dy, dx, n);
}

void Conv2d::forward_cpu(const float* p, const float* x, float* y, size_t n) const {
  onednn::conv_forward(cpu_kernel(), g_, bias_, cpu_in(), cpu_out(), p, bias_ ? p + weight_size() : nullptr, x, y, n);
}

void Conv2d::backward_cpu(const float* p, const float* x, const float*, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const {
  onednn::conv_backward(cpu_kernel(), g_, bias_, cpu_in(), cpu_out(), p, x, dy, propagate_down ? dx : nullptr, dp,
                        bias_ ? dp + weight_size() : nullptr, n);
}

// ------------------------------------------------------------------------------ Pool2d

Pool2d::Pool2d(std::string name, SampleShape in, Kind kind, int kernel_h, int kernel_w, int stride_h, int stride_w,
               int pad_h, int pad_w)
    : Layer(std::move(name), in), kind_(kind) {
  if (2 * pad_h > kernel_h || 2 * pad_w > kernel_w)
    throw RuntimeError("pooling layer '" + this->name() + "': padding must be at most half the kernel");
  g_ = pool_or_conv_geom(this->name(), in, in.c, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w);
  set_out_shape(SampleShape{g_.c, g_.oh, g_.ow});
}

std::unique_ptr<Pool2d> max_pool(std::string name, SampleShape in, int kernel, int stride, int pad) {
  return std::make_unique<Pool2d>(std::move(name), in, Pool2d::Kind::Max, kernel, kernel, stride, stride, pad, pad);
}
std::unique_ptr<Pool2d> avg_pool(std::string name, SampleShape in, int kernel, int stride, int pad) {
  return std::make_unique<Pool2d>(std::move(name), in, Pool2d::Kind::Avg, kernel, kernel, stride, stride, pad, pad);
}
std::unique_ptr<Pool2d> global_avg_pool(std::string name, SampleShape in) {
  return std::make_unique<Pool2d>(std::move(name), in, Pool2d::Kind::Avg, in.h, in.w, in.h, in.w, 0, 0);
}

void Pool2d::forward_reference(const float*, const float* x, float* y, size_t n) const {
  if (kind_ == Kind::Max) ref::maxpool_forward(g_, x, y, n);
  else ref::avgpool_forward(g_, x, y, n);
}

void Pool2d::backward_reference(const float*, const float* x, const float*, const float* dy, float* dx, float*,
                                bool propagate_down, size_t n) const {
  if (!propagate_down) return;
  if (kind_ == Kind::Max) ref::maxpool_backward(g_, x, dy, dx, n);
  else ref::avgpool_backward(g_, dy, dx, n);
}

void Pool2d::forward_cpu(const float*, const float* x, float* y, size_t n) const {
  onednn::pool_forward(cpu_kernel(), g_, kind_ == Kind::Max, cpu_in(), x, y, n);
}

void Pool2d::backward_cpu(const float*, const float*, const float*, const float* dy, float* dx, float*,
                          bool propagate_down, size_t n) const {
  if (propagate_down) onednn::pool_backward(cpu_kernel(), g_, kind_ == Kind::Max, cpu_in(), dy, dx, n);
}

// ------------------------------------------------------------------------- BatchNorm2d

BatchNorm2d::BatchNorm2d(std::string name, SampleShape in, double eps, double momentum)
    : Layer(std::move(name), in), eps_(eps), momentum_(momentum) {
  if (!(eps > 0)) throw RuntimeError("batchnorm layer '" + this->name() + "': eps must be positive");
  if (!(momentum >= 0 && momentum <= 1))
    throw RuntimeError("batchnorm layer '" + this->name() + "': momentum must be in [0, 1]");
}

void BatchNorm2d::param_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  const size_t c = static_cast<size_t>(in_shape().c);
  out.push_back({name() + ".weight", offset, c});
  out.push_back({name() + ".bias", offset + c, c});
}

void BatchNorm2d::init_params(float* params, uint64_t, uint64_t) const {
  const size_t c = static_cast<size_t>(in_shape().c);
  std::fill(params, params + c, 1.0f);
  std::fill(params + c, params + 2 * c, 0.0f);
}

void BatchNorm2d::state_tensors(size_t offset, std::vector<ParamTensor>& out) const {
  const size_t c = static_cast<size_t>(in_shape().c);
  out.push_back({name() + ".running_mean", offset, c});
  out.push_back({name() + ".running_var", offset + c, c});
}

void BatchNorm2d::init_state(float* state) const {
  const size_t c = static_cast<size_t>(in_shape().c);
  std::fill(state, state + c, 0.0f);
  std::fill(state + c, state + 2 * c, 1.0f);
}

void BatchNorm2d::update_state(float* state, const float* mean, const float* var, size_t count) const {
  // PyTorch: running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
  const size_t c = static_cast<size_t>(in_shape().c);
  const float m = static_cast<float>(momentum_), keep = static_cast<float>(1.0 - momentum_);
  const float unbias = count > 1 ? static_cast<float>(static_cast<double>(count) / static_cast<double>(count - 1))
                                 : 1.0f;
  for (size_t i = 0; i < c; ++i) {
    state[i] = keep * state[i] + m * mean[i];
    state[c + i] = keep * state[c + i] + m * (var[i] * unbias);
  }
}

namespace {
void require_state(const std::string& name, const float* state) {
  if (!state) throw RuntimeError("batchnorm layer '" + name + "': eval mode needs the running statistics (state)");
}
}  // namespace

void BatchNorm2d::forward_reference(const float* p, const float* x, float* y, size_t n) const {
  FwdArgs a;
  a.params = p;
  a.x = x;
  a.y = y;
  a.n = n;
  fwd_reference(a);
}

void BatchNorm2d::backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx,
                                     float* dp, bool propagate_down, size_t n) const {
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

void BatchNorm2d::fwd_reference(const FwdArgs& a) const {
  const int c = in_shape().c;
  const size_t hw = static_cast<size_t>(in_shape().h) * in_shape().w;
  const float* gamma = a.params;
  const float* beta = a.params + c;
  const float eps = static_cast<float>(eps_);
  if (a.training) {
    thread_local std::vector<float> mean, var;
    mean.resize(static_cast<size_t>(c));
    var.resize(static_cast<size_t>(c));
    ref::bn_stats(c, hw, a.x, a.n, mean.data(), var.data());
    ref::bn_apply(c, hw, a.x, a.n, gamma, beta, mean.data(), var.data(), eps, a.y);
    if (a.state) update_state(a.state, mean.data(), var.data(), a.n * hw);
  } else {
    require_state(name(), a.state);
    ref::bn_apply(c, hw, a.x, a.n, gamma, beta, a.state, a.state + c, eps, a.y);
  }
}

void BatchNorm2d::bwd_reference(const BwdArgs& a) const {
  const int c = in_shape().c;
  const size_t hw = static_cast<size_t>(in_shape().h) * in_shape().w;
  const float eps = static_cast<float>(eps_);
  float* dx = a.propagate_down ? a.dx : nullptr;
  if (a.training) {
    thread_local std::vector<float> mean, var;
    mean.resize(static_cast<size_t>(c));
    var.resize(static_cast<size_t>(c));
    ref::bn_backward_train(c, hw, a.x, a.dy, a.n, a.params, eps, dx, a.dparams, a.dparams + c, mean.data(),
                           var.data());
  } else {
    require_state(name(), a.state);
    ref::bn_backward_eval(c, hw, a.x, a.dy, a.n, a.params, a.state, a.state + c, eps, dx, a.dparams, a.dparams + c);
  }
}

void BatchNorm2d::fwd_cpu(const FwdArgs& a) const {
  const int c = in_shape().c;
  if (!a.training) require_state(name(), a.state);
  const onednn::BnStats st =
      onednn::bn_forward(cpu_kernel(), in_shape(), cpu_in(), static_cast<float>(eps_), a.params, a.x, a.y, a.n,
                         a.training, a.training ? nullptr : a.state, a.training ? nullptr : a.state + c);
  if (a.training && a.state)
    update_state(a.state, st.mean, st.var, a.n * static_cast<size_t>(in_shape().h) * in_shape().w);
}

void BatchNorm2d::bwd_cpu(const BwdArgs& a) const {
  const int c = in_shape().c;
  if (!a.training) require_state(name(), a.state);
  onednn::bn_backward(cpu_kernel(), in_shape(), cpu_in(), static_cast<float>(eps_), a.params, a.x, a.dy,
                      a.propagate_down ? a.dx : nullptr, a.dparams, a.n, a.training,
                      a.training ? nullptr : a.state, a.training ? nullptr : a.state + c);
}

// --------------------------------------------------------------------------------- Add

void Add::forward_reference(const float*, const float*, float*, size_t) const {
  throw RuntimeError("add layer '" + name() + "' has two inputs: call forward with FwdArgs");
}
void Add::backward_reference(const float*, const float*, const float*, const float*, float*, float*, bool,
                             size_t) const {
  throw RuntimeError("add layer '" + name() + "' has two inputs: call backward with BwdArgs");
}

namespace {
void add_fwd(const FwdArgs& a, size_t count) {
  const float* x2 = a.x2;
  float* y = a.y;
  if (a.x == a.y) {  // in place: one written pointer, so the loop vectorises
    for (size_t i = 0; i < count; ++i) y[i] += x2[i];
  } else {
    const float* x = a.x;
    for (size_t i = 0; i < count; ++i) y[i] = x[i] + x2[i];
  }
}
void add_bwd(const BwdArgs& a, size_t count) {
  if (a.propagate_down && a.dx != a.dy) std::copy(a.dy, a.dy + count, a.dx);
  if (a.propagate_down2 && a.dx2 != a.dy) std::copy(a.dy, a.dy + count, a.dx2);
}
}  // namespace

void Add::fwd_reference(const FwdArgs& a) const { add_fwd(a, a.n * out_size()); }
void Add::bwd_reference(const BwdArgs& a) const { add_bwd(a, a.n * out_size()); }
// The cpu layout's (padded) size: the padding is 0 + 0.
void Add::fwd_cpu(const FwdArgs& a) const { add_fwd(a, a.n * layout_size(in_shape(), cpu_in())); }
void Add::bwd_cpu(const BwdArgs& a) const { add_bwd(a, a.n * layout_size(in_shape(), cpu_in())); }

// ------------------------------------------------------------------------ SubsamplePad

SubsamplePad::SubsamplePad(std::string name, SampleShape in, int stride, int out_channels)
    : Layer(std::move(name), in) {
  if (stride < 1 || out_channels < in.c)
    throw RuntimeError("subsample_pad layer '" + this->name() + "': bad stride or channels");
  g_ = pool_or_conv_geom(this->name(), in, out_channels, 1, 1, stride, stride, 0, 0);
  before_ = (out_channels - in.c) / 2;
  set_out_shape(SampleShape{g_.oc, g_.oh, g_.ow});
}

void SubsamplePad::forward_reference(const float*, const float* x, float* y, size_t n) const {
  ref::subsample_pad_forward(g_, before_, x, y, n);
}

void SubsamplePad::backward_reference(const float*, const float*, const float*, const float* dy, float* dx, float*,
                                      bool propagate_down, size_t n) const {
  if (propagate_down) ref::subsample_pad_backward(g_, before_, dy, dx, n);
}

void SubsamplePad::forward_cpu(const float*, const float* x, float* y, size_t n) const {
  const Layout li = cpu_in(), lo = cpu_out();
  const SampleShape si = in_shape(), so = out_shape();
  const size_t in = layout_size(si, li), out = layout_size(so, lo);
  std::fill(y, y + n * out, 0.0f);
  for (size_t s = 0; s < n; ++s)
    for (int c = 0; c < g_.c; ++c)
      for (int oy = 0; oy < g_.oh; ++oy)
        for (int ox = 0; ox < g_.ow; ++ox)
          y[s * out + layout_offset(so, lo, c + before_, oy, ox)] =
              x[s * in + layout_offset(si, li, c, oy * g_.sh, ox * g_.sw)];
}

void SubsamplePad::backward_cpu(const float*, const float*, const float*, const float* dy, float* dx, float*,
                                bool propagate_down, size_t n) const {
  if (!propagate_down) return;
  const Layout li = cpu_in(), lo = cpu_out();
  const SampleShape si = in_shape(), so = out_shape();
  const size_t in = layout_size(si, li), out = layout_size(so, lo);
  std::fill(dx, dx + n * in, 0.0f);
  for (size_t s = 0; s < n; ++s)
    for (int c = 0; c < g_.c; ++c)
      for (int oy = 0; oy < g_.oh; ++oy)
        for (int ox = 0; ox < g_.ow; ++ox)
          dx[s * in + layout_offset(si, li, c, oy * g_.sh, ox * g_.sw)] =
              dy[s * out + layout_offset(so, lo, c + before_, oy, ox)];
}

// ----------------------------------------------------------------------------- Reorder

Reorder::Reorder(std::string name, SampleShape in, Layout from, Layout to)
    : Layer(std::move(name), in), from_(from), to_(to) {}

void Reorder::forward_reference(const float*, const float* x, float* y, size_t n) const {
  if (x != y) std::copy(x, x + n * in_size(), y);
}
void Reorder::backward_reference(const float*, const float*, const float*, const float* dy, float* dx, float*,
                                 bool propagate_down, size_t n) const {
  if (propagate_down && dx != dy) std::copy(dy, dy + n * in_size(), dx);
}
void Reorder::forward_cpu(const float*, const float* x, float* y, size_t n) const {
  convert_layout(in_shape(), from_, x, to_, y, n);
}
void Reorder::backward_cpu(const float*, const float*, const float*, const float* dy, float* dx, float*,
                           bool propagate_down, size_t n) const {
  if (propagate_down) convert_layout(in_shape(), to_, dy, from_, dx, n);
}

// ------------------------------------------------------------------ softmax cross-entropy

double softmax_cross_entropy(const float* logits, const int32_t* labels, size_t n, size_t classes, float* dlogits,
                             size_t* correct) {
  double loss = 0;
  size_t hits = 0;
  const double inv_n = n ? 1.0 / static_cast<double>(n) : 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float* z = logits + i * classes;
    const int32_t label = labels[i];
    if (label < 0 || static_cast<size_t>(label) >= classes)
      throw RuntimeError("label " + std::to_string(label) + " of sample " + std::to_string(i) + " outside [0, " +
                         std::to_string(classes) + ")");
    size_t arg = 0;
    for (size_t j = 1; j < classes; ++j)
      if (z[j] > z[arg]) arg = j;
    hits += arg == static_cast<size_t>(label);
    const double m = z[arg];
    double s = 0;
    for (size_t j = 0; j < classes; ++j) s += std::exp(static_cast<double>(z[j]) - m);
    loss += std::log(s) - (static_cast<double>(z[label]) - m);
    if (dlogits) {
      float* d = dlogits + i * classes;
      for (size_t j = 0; j < classes; ++j) {
        const double pj = std::exp(static_cast<double>(z[j]) - m) / s;
        d[j] = static_cast<float>((pj - (j == static_cast<size_t>(label) ? 1.0 : 0.0)) * inv_n);
      }
    }
  }
  if (correct) *correct += hits;
  return loss;
}

}  // namespace dtsim::engine
