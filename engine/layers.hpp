// Layers, Caffe style: the constructor infers the output shape (nothing is computed there);
// forward/backward take the backend and dispatch to forward_reference/forward_cpu and
// backward_reference/backward_cpu, the cpu variants defaulting to the reference ones, so a new
// layer starts with the reference loops only. Layers are stateless: parameters, activations and
// gradients are caller-owned buffers, batch-major ([n][size] row-major).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/dataset.hpp"
#include "engine/model.hpp"

namespace dtsim::engine {

// How a layer's output buffer relates to its input buffer.
enum class InPlace {
  No,     // separate output buffer
  Alias,  // output *is* the input (same memory, same layout): forward/backward do nothing
  Write,  // may overwrite its input with its output (and dy with dx) when the model allows it
};

class Layer {
 public:
  Layer(std::string name, SampleShape in) : name_(std::move(name)), in_(in), out_(in) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual std::string type() const = 0;
  const std::string& name() const { return name_; }
  const SampleShape& in_shape() const { return in_; }
  const SampleShape& out_shape() const { return out_; }
  size_t in_size() const { return in_.size(); }
  size_t out_size() const { return out_.size(); }

  virtual size_t num_params() const { return 0; }
  // Appends this layer's tensors, starting at `offset` in the flat parameter buffer.
  virtual void param_tensors(size_t /*offset*/, std::vector<ParamTensor>& /*out*/) const {}
  // PyTorch's default initialisation for the layer kind; `params` holds num_params() floats.
  virtual void init_params(float* /*params*/, uint64_t /*seed*/, uint64_t /*layer_index*/) const {}
  // Forward FLOPs per sample (multiply-add = 2).
  virtual double forward_flops() const { return 0; }
  virtual InPlace in_place() const { return InPlace::No; }
  // Whether backward reads the layer's output y (then a following in-place layer may not
  // overwrite it).
  virtual bool backward_needs_output() const { return false; }

  // y = f(x) for n samples.
  void forward(Backend b, const float* params, const float* x, float* y, size_t n) const;
  // dparams = d(loss)/d(params) (overwritten), and dx when propagate_down (else dx may be null).
  // x, y: the forward input and output; dy: d(loss)/dy.
  void backward(Backend b, const float* params, const float* x, const float* y, const float* dy, float* dx,
                float* dparams, bool propagate_down, size_t n) const;

 protected:
  virtual void forward_reference(const float* params, const float* x, float* y, size_t n) const = 0;
  virtual void forward_cpu(const float* params, const float* x, float* y, size_t n) const {
    forward_reference(params, x, y, n);
  }
  virtual void backward_reference(const float* params, const float* x, const float* y, const float* dy, float* dx,
                                  float* dparams, bool propagate_down, size_t n) const = 0;
  virtual void backward_cpu(const float* params, const float* x, const float* y, const float* dy, float* dx,
                            float* dparams, bool propagate_down, size_t n) const {
    backward_reference(params, x, y, dy, dx, dparams, propagate_down, n);
  }
  void set_out_shape(SampleShape s) { out_ = s; }

 private:
  std::string name_;
  SampleShape in_, out_;
};

// y = x W^T + b, W [out][in] row-major (PyTorch's layout), params = W then b.
class Linear final : public Layer {
 public:
  Linear(std::string name, SampleShape in, size_t out_features);
  std::string type() const override { return "linear"; }
  size_t num_params() const override { return out_size() * in_size() + out_size(); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double forward_flops() const override { return 2.0 * static_cast<double>(in_size()) * static_cast<double>(out_size()); }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  void forward_with(Backend b, const float* p, const float* x, float* y, size_t n) const;
  void backward_with(Backend b, const float* p, const float* x, const float* dy, float* dx, float* dp,
                     bool propagate_down, size_t n) const;
};

// y = max(x, 0); backward: dx = dy where y > 0, else 0 (PyTorch's convention at 0).
class ReLU final : public Layer {
 public:
  ReLU(std::string name, SampleShape in) : Layer(std::move(name), in) {}
  std::string type() const override { return "relu"; }
  InPlace in_place() const override { return InPlace::Write; }
  bool backward_needs_output() const override { return true; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
};

// C x H x W -> (C*H*W) x 1 x 1. Row-major sample layout is already flat: an alias, no copy.
class Flatten final : public Layer {
 public:
  Flatten(std::string name, SampleShape in);
  std::string type() const override { return "flatten"; }
  InPlace in_place() const override { return InPlace::Alias; }

 protected:
  void forward_reference(const float*, const float*, float*, size_t) const override {}
  void backward_reference(const float*, const float*, const float*, const float*, float*, float*, bool,
                          size_t) const override {}
};

// Softmax + cross-entropy over `classes` logits per sample (numerically stable: log-sum-exp
// around the row maximum). Returns the summed loss (double) over n samples; counts argmax hits
// (first maximum wins) into *correct when non-null; when dlogits is non-null writes
// d(mean loss)/d(logits) = (softmax - onehot) / n. Labels outside [0, classes) throw RuntimeError.
double softmax_cross_entropy(const float* logits, const int32_t* labels, size_t n, size_t classes, float* dlogits,
                             size_t* correct);

}  // namespace dtsim::engine
