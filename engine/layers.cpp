#include "engine/layers.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "common/rng.hpp"

namespace dtsim::engine {

// ------------------------------------------------------------------------------- Layer

void Layer::forward(Backend b, const float* params, const float* x, float* y, size_t n) const {
  switch (b) {
    case Backend::Reference: forward_reference(params, x, y, n); return;
    case Backend::OneDnn: forward_cpu(params, x, y, n); return;
  }
}

void Layer::backward(Backend b, const float* params, const float* x, const float* y, const float* dy, float* dx,
                     float* dparams, bool propagate_down, size_t n) const {
  switch (b) {
    case Backend::Reference: backward_reference(params, x, y, dy, dx, dparams, propagate_down, n); return;
    case Backend::OneDnn: backward_cpu(params, x, y, dy, dx, dparams, propagate_down, n); return;
  }
}

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
  // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) on the weight, which is
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_size()));
  const size_t w = out_size() * in_size();
  Rng rw(seed, Stream::Init, {layer_index, 0});
  for (size_t i = 0; i < w; ++i) params[i] = static_cast<float>(rw.uniform(-bound, bound));
  Rng rb(seed, Stream::Init, {layer_index, 1});
  for (size_t i = 0; i < out_size(); ++i) params[w + i] = static_cast<float>(rb.uniform(-bound, bound));
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

void ReLU::forward_reference(const float*, const float* x, float* y, size_t n) const {
  const size_t total = n * out_size();
  // std::max(v, 0) keeps a NaN input a NaN (as torch.relu does), so divergence stays visible.
  for (size_t i = 0; i < total; ++i) y[i] = std::max(x[i], 0.0f);
}

void ReLU::backward_reference(const float*, const float*, const float* y, const float* dy, float* dx, float*,
                              bool propagate_down, size_t n) const {
  if (!propagate_down) return;
  const size_t total = n * out_size();
  for (size_t i = 0; i < total; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// ----------------------------------------------------------------------------- Flatten

Flatten::Flatten(std::string name, SampleShape in) : Layer(std::move(name), in) {
  set_out_shape(SampleShape{static_cast<int>(in.size()), 1, 1});
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
