// Layers, Caffe style: the constructor infers the output shape (nothing is computed there);
// forward/backward take the backend and dispatch to forward_reference/forward_cpu and
// backward_reference/backward_cpu, the cpu variants defaulting to the reference ones, so a new
// layer starts with the reference loops only. Layers hold no activations: parameters, activations,
// gradients and running statistics are caller-owned buffers, batch-major ([n][size] row-major).
//
// Two call forms:
//   - forward(b, params, x, y, n) / backward(b, params, x, y, dy, dx, dparams, pd, n): the simple
//     form, for single-input layers without state (Linear, ReLU, Flatten, Conv2d, pooling);
//   - forward(b, FwdArgs) / backward(b, BwdArgs): the general form the models use. It adds a
//     second input (Add), the layer's non-trainable state (BatchNorm's running statistics) and the
//     training flag. Its per-backend hooks (fwd_reference/fwd_cpu, bwd_reference/bwd_cpu) default
//     to the simple form, so a simple layer only implements that. A backend (e.g. cuda) adds a
//     dispatch case plus hooks of both forms, defaulting like the cpu ones.
//
// Contract: backward(x, y, ...) follows forward(x) of the same batch on the same layer with no
// other forward of that layer in between. The cpu kernels keep per-call data from forward to
// backward (BatchNorm batch statistics, max-pool indices, reordered inputs); models honour this.
//
// The cpu backend may keep 4-D activations in oneDNN's channel-blocked layouts (nChw8c,
// nChw16c: channels zero-padded to the block). A layer states which input layouts its cpu path
// accepts and which output layout it then produces; the model fixes one layout per tensor at
// construction (set_cpu_layouts) and inserts Reorder layers where a consumer accepts only plain
// NCHW. The reference backend always uses plain NCHW.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/dataset.hpp"
#include "engine/model.hpp"
#include "engine/ref_kernels.hpp"

namespace dtsim::engine {

// How a layer's output buffer relates to its input buffer.
enum class InPlace {
  No,     // separate output buffer
  Alias,  // output *is* the input (same memory, same layout): forward/backward do nothing
  Write,  // may overwrite its (first) input with its output (and dy with dx) when the model allows it
};

// Activation layouts of the cpu backend: plain NCHW, or nChw8c / nChw16c (channel blocks of 8 /
// 16 innermost, channels zero-padded to a multiple of the block).
enum class Layout : uint8_t { Plain = 1, Block8 = 8, Block16 = 16 };
const char* layout_name(Layout l);
// Floats one sample occupies in a layout (channels padded to the block for blocked layouts).
size_t layout_size(const SampleShape& s, Layout l);
// Offset of element (c, y, x) within one sample.
size_t layout_offset(const SampleShape& s, Layout l, int c, int y, int x);
// Whether two layouts of a shape are the same bytes (e.g. any layout when H = W = 1 and the
// channels fill whole blocks).
bool same_memory(const SampleShape& s, Layout a, Layout b);
// Converts n samples between layouts (plain loops; the padding of a blocked output is zeroed).
void convert_layout(const SampleShape& s, Layout from, const float* x, Layout to, float* y, size_t n);

class CpuKernel;  // a cpu (oneDNN) kernel's cached primitives and scratch, per batch size

struct FwdArgs {
  const float* params = nullptr;
  const float* x = nullptr;
  const float* x2 = nullptr;  // second input (num_inputs() == 2)
  float* y = nullptr;
  float* state = nullptr;  // num_state() floats; training forwards update it (may be null: no update)
  bool training = true;    // BatchNorm: batch statistics (true) or running statistics (false)
  size_t n = 0;
};

struct BwdArgs {
  const float* params = nullptr;
  const float* x = nullptr;
  const float* x2 = nullptr;
  const float* y = nullptr;
  const float* dy = nullptr;
  float* dx = nullptr;       // written when propagate_down
  float* dx2 = nullptr;      // written when propagate_down2
  float* dparams = nullptr;  // num_params() floats, overwritten
  const float* state = nullptr;
  bool propagate_down = true;
  bool propagate_down2 = true;
  bool training = true;
  size_t n = 0;
};

class Layer {
 public:
  Layer(std::string name, SampleShape in);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual std::string type() const = 0;
  const std::string& name() const { return name_; }
  const SampleShape& in_shape() const { return in_; }
  const SampleShape& out_shape() const { return out_; }
  size_t in_size() const { return in_.size(); }
  size_t out_size() const { return out_.size(); }
  virtual int num_inputs() const { return 1; }

  virtual size_t num_params() const { return 0; }
  // Appends this layer's tensors, starting at `offset` in the flat parameter buffer.
  virtual void param_tensors(size_t /*offset*/, std::vector<ParamTensor>& /*out*/) const {}
  // PyTorch's default initialisation for the layer kind; `params` holds num_params() floats.
  virtual void init_params(float* /*params*/, uint64_t /*seed*/, uint64_t /*layer_index*/) const {}
  // Non-trainable state (BatchNorm running mean and variance), in the model's flat state buffer.
  virtual size_t num_state() const { return 0; }
  virtual void state_tensors(size_t /*offset*/, std::vector<ParamTensor>& /*out*/) const {}
  virtual void init_state(float* /*state*/) const {}
  // Forward FLOPs per sample (multiply-add = 2; matrix products only: convolutions, linear
  // layers, attention; element-wise work is not counted).
  virtual double forward_flops() const { return 0; }
  // Backward FLOPs per sample, split as layer-wise timing needs (LayerCost): the input-gradient
  // part and the weight-gradient part. Defaults: one forward each, the weight part only for a
  // layer with parameters (right for convolutions and linear layers).
  virtual double backward_input_flops() const { return forward_flops(); }
  virtual double backward_weight_flops() const { return num_params() > 0 ? forward_flops() : 0.0; }
  // Weight tying: a layer that computes with, and contributes gradients to, parameters owned by
  // an earlier layer of the same graph (GPT's output head reuses the token embedding). It owns no
  // parameters (num_params() == 0): the model passes it tied_size() floats of the owner's
  // parameters from tied_offset() on, and adds its gradient to the owner's after the backward
  // pass (the owner's backward overwrites its own dparams as usual).
  virtual const Layer* tied_to() const { return nullptr; }
  virtual size_t tied_offset() const { return 0; }
  virtual size_t tied_size() const { return 0; }
  virtual InPlace in_place() const { return InPlace::No; }
  // Whether backward reads the layer's output y (then a following in-place layer may not
  // overwrite it).
  virtual bool backward_needs_output() const { return false; }
  // Whether backward reads the input x (then a following in-place layer may not overwrite it).
  virtual bool backward_needs_input() const { return true; }

  // cpu activation layouts: which input layouts the cpu path accepts, and the output layout it
  // produces for an accepted one. Default: plain only.
  virtual bool cpu_accepts(Layout in) const { return in == Layout::Plain; }
  virtual Layout cpu_out_layout(Layout /*in*/) const { return Layout::Plain; }
  void set_cpu_layouts(Layout in, Layout out) {
    cpu_in_ = in;
    cpu_out_ = out;
  }
  Layout cpu_in() const { return cpu_in_; }
  Layout cpu_out() const { return cpu_out_; }

  // Simple form: y = f(x) for n samples; dparams = d(loss)/d(params) (overwritten), and dx when
  // propagate_down (else dx may be null). x, y: the forward input and output; dy: d(loss)/dy.
  void forward(Backend b, const float* params, const float* x, float* y, size_t n) const;
  void backward(Backend b, const float* params, const float* x, const float* y, const float* dy, float* dx,
                float* dparams, bool propagate_down, size_t n) const;
  // General form.
  void forward(Backend b, const FwdArgs& a) const;
  void backward(Backend b, const BwdArgs& a) const;

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
  // General-form hooks; the defaults call the simple form.
  virtual void fwd_reference(const FwdArgs& a) const { forward_reference(a.params, a.x, a.y, a.n); }
  virtual void fwd_cpu(const FwdArgs& a) const { forward_cpu(a.params, a.x, a.y, a.n); }
  virtual void bwd_reference(const BwdArgs& a) const {
    backward_reference(a.params, a.x, a.y, a.dy, a.dx, a.dparams, a.propagate_down, a.n);
  }
  virtual void bwd_cpu(const BwdArgs& a) const {
    backward_cpu(a.params, a.x, a.y, a.dy, a.dx, a.dparams, a.propagate_down, a.n);
  }
  void set_out_shape(SampleShape s) { out_ = s; }
  // The cpu kernel cache of this layer (created by the cpu path on first use).
  std::unique_ptr<CpuKernel>& cpu_kernel() const { return cpu_kernel_; }

 private:
  std::string name_;
  SampleShape in_, out_;
  Layout cpu_in_ = Layout::Plain, cpu_out_ = Layout::Plain;
  mutable std::unique_ptr<CpuKernel> cpu_kernel_;
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

// y = max(x, 0); backward: dx = dy where y > 0, else 0 (PyTorch's convention at 0). Element-wise:
// the same loop serves every layout (padding stays 0).
class ReLU final : public Layer {
 public:
  ReLU(std::string name, SampleShape in) : Layer(std::move(name), in) {}
  std::string type() const override { return "relu"; }
  InPlace in_place() const override { return InPlace::Write; }
  bool backward_needs_output() const override { return true; }
  bool backward_needs_input() const override { return false; }
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override { return in; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
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

// 2-D convolution (PyTorch Conv2d: zero padding, no dilation, no groups). Params: weight
// [out][in][k][k] then bias [out] unless bias == false.
class Conv2d final : public Layer {
 public:
  Conv2d(std::string name, SampleShape in, int out_channels, int kernel, int stride = 1, int padding = 0,
         bool bias = true);
  std::string type() const override { return "conv2d"; }
  size_t num_params() const override { return weight_size() + (bias_ ? static_cast<size_t>(g_.oc) : 0); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  double forward_flops() const override;
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override;
  const ref::Geom& geom() const { return g_; }
  bool has_bias() const { return bias_; }
  size_t weight_size() const { return static_cast<size_t>(g_.oc) * g_.c * g_.kh * g_.kw; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  ref::Geom g_;
  bool bias_;
};

// Max or average pooling (PyTorch MaxPool2d / AvgPool2d with count_include_pad, floor mode).
// Global average pooling is AvgPool with the kernel = the input's H x W (global_avg_pool()).
class Pool2d final : public Layer {
 public:
  enum class Kind { Max, Avg };
  Pool2d(std::string name, SampleShape in, Kind kind, int kernel_h, int kernel_w, int stride_h, int stride_w,
         int pad_h = 0, int pad_w = 0);
  std::string type() const override { return kind_ == Kind::Max ? "maxpool2d" : "avgpool2d"; }
  bool backward_needs_input() const override { return kind_ == Kind::Max; }
  // cuDNN's max-pooling backward finds each window's maximum by comparing x with y (engine/cuda/
  // layers.cpp), so a following in-place layer (an ONNX Add) must not overwrite y.
  bool backward_needs_output() const override { return kind_ == Kind::Max; }
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override { return in; }
  const ref::Geom& geom() const { return g_; }
  Kind kind() const { return kind_; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  Kind kind_;
  ref::Geom g_;
};
std::unique_ptr<Pool2d> max_pool(std::string name, SampleShape in, int kernel, int stride, int pad = 0);
std::unique_ptr<Pool2d> avg_pool(std::string name, SampleShape in, int kernel, int stride, int pad = 0);
std::unique_ptr<Pool2d> global_avg_pool(std::string name, SampleShape in);

// BatchNorm2d (PyTorch semantics): params gamma [C] then beta [C]; state running_mean [C] then
// running_var [C] (initialised 0 and 1). Training: normalises with the batch mean and biased
// variance and, when a state buffer is given, updates running = (1 - momentum) running +
// momentum * batch (unbiased variance). Eval: normalises with the running statistics.
class BatchNorm2d final : public Layer {
 public:
  BatchNorm2d(std::string name, SampleShape in, double eps = 1e-5, double momentum = 0.1);
  std::string type() const override { return "batchnorm2d"; }
  size_t num_params() const override { return 2 * static_cast<size_t>(in_shape().c); }
  void param_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_params(float* params, uint64_t seed, uint64_t layer_index) const override;
  size_t num_state() const override { return 2 * static_cast<size_t>(in_shape().c); }
  void state_tensors(size_t offset, std::vector<ParamTensor>& out) const override;
  void init_state(float* state) const override;
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override { return in; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

 protected:
  // The simple form runs in training mode without a state update.
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void fwd_reference(const FwdArgs& a) const override;
  void bwd_reference(const BwdArgs& a) const override;
  void fwd_cpu(const FwdArgs& a) const override;
  void bwd_cpu(const BwdArgs& a) const override;

 private:
  void update_state(float* state, const float* mean, const float* var, size_t count) const;
  double eps_, momentum_;
};

// y = x + x2 (the residual connection). Element-wise: every layout, in place over x.
class Add final : public Layer {
 public:
  Add(std::string name, SampleShape in) : Layer(std::move(name), in) {}
  std::string type() const override { return "add"; }
  int num_inputs() const override { return 2; }
  InPlace in_place() const override { return InPlace::Write; }
  bool backward_needs_input() const override { return false; }
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override { return in; }

 protected:
  void forward_reference(const float*, const float*, float*, size_t) const override;
  void backward_reference(const float*, const float*, const float*, const float*, float*, float*, bool,
                          size_t) const override;
  void fwd_reference(const FwdArgs& a) const override;
  void bwd_reference(const BwdArgs& a) const override;
  void fwd_cpu(const FwdArgs& a) const override;
  void bwd_cpu(const BwdArgs& a) const override;
};

// He et al.'s option-A shortcut: x[:, :, ::stride, ::stride] with zero channels added, `before`
// in front and the rest behind, up to out_channels (no parameters).
class SubsamplePad final : public Layer {
 public:
  SubsamplePad(std::string name, SampleShape in, int stride, int out_channels);
  std::string type() const override { return "subsample_pad"; }
  bool backward_needs_input() const override { return false; }
  bool cpu_accepts(Layout) const override { return true; }
  Layout cpu_out_layout(Layout in) const override { return in; }
  const ref::Geom& geom() const { return g_; }  // (for the cuda backend)
  int before() const { return before_; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  ref::Geom g_;
  int before_;
};

// Layout conversion inserted by the model on the cpu backend (identity on the reference one).
class Reorder final : public Layer {
 public:
  Reorder(std::string name, SampleShape in, Layout from, Layout to);
  std::string type() const override { return "reorder"; }
  bool backward_needs_input() const override { return false; }
  bool cpu_accepts(Layout in) const override { return in == from_; }
  Layout cpu_out_layout(Layout) const override { return to_; }

 protected:
  void forward_reference(const float* p, const float* x, float* y, size_t n) const override;
  void backward_reference(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                          bool propagate_down, size_t n) const override;
  void forward_cpu(const float* p, const float* x, float* y, size_t n) const override;
  void backward_cpu(const float* p, const float* x, const float* y, const float* dy, float* dx, float* dp,
                    bool propagate_down, size_t n) const override;

 private:
  Layout from_, to_;
};

// Softmax + cross-entropy over `classes` logits per sample (numerically stable: log-sum-exp
// around the row maximum). Returns the summed loss (double) over n samples; counts argmax hits
// (first maximum wins) into *correct when non-null; when dlogits is non-null writes
// d(mean loss)/d(logits) = (softmax - onehot) / n. Labels outside [0, classes) throw RuntimeError.
double softmax_cross_entropy(const float* logits, const int32_t* labels, size_t n, size_t classes, float* dlogits,
                             size_t* correct);

}  // namespace dtsim::engine
