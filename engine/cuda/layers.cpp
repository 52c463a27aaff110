// The cuda backend of the layers (Layer::forward/backward with Backend::Cuda): cuBLAS for
// Linear, cuDNN 9's legacy descriptor API for Conv2d, Pool2d and BatchNorm2d, own kernels
// (kernels.cu) for the element-wise layers and for bias gradients.
//
// Determinism (docs/gpu.md, "Determinism"):
//   - convolution algorithms come from cudnnGetConvolution*Algorithm_v7 (heuristics, never the
//     timed cudnnFind*), keeping the first with status SUCCESS, determinism CUDNN_DETERMINISTIC and
//     no tensor-op math; the descriptor's math type is CUDNN_FMA_MATH (no TF32). The choice is
//     cached per geometry and batch size;
//   - max pooling uses CUDNN_POOLING_MAX_DETERMINISTIC;
//   - bias gradients use own fixed-order reductions (kernels.cu), never atomics.
// Descriptors are cached per (geometry, batch size) — not per layer object, so a new model whose
// layer happens to reuse a freed layer's address can never pick up stale descriptors. The only
// per-layer data is BatchNorm's saved batch statistics, written by forward and read by the
// backward that follows it (the Layer contract in engine/layers.hpp).
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "engine/cuda/common.hpp"
#include "engine/layers.hpp"

namespace dtsim::engine::cuda {

namespace {

constexpr float kOne = 1.0f;
constexpr float kZero = 0.0f;
// Algorithms needing more workspace than this are skipped (FFT variants can ask for GiBs).
constexpr size_t kMaxWorkspace = size_t{1} << 30;

[[noreturn]] void unsupported(const Layer& l, const std::string& why) {
  throw RuntimeError("layer '" + l.name() + "' (" + l.type() + "): " + why);
}

int to_int(size_t v, const Layer& l) {
  if (v > static_cast<size_t>(INT32_MAX)) unsupported(l, "batch too large for cuDNN");
  return static_cast<int>(v);
}

// ---------------------------------------------------------------- RAII descriptors
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { DTSIM_CUDA_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  void set(int n, int c, int h, int w) {
    DTSIM_CUDA_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
};
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { DTSIM_CUDA_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { DTSIM_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};
struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  PoolDesc() { DTSIM_CUDA_CHECK(cudnnCreatePoolingDescriptor(&d)); }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

// Parameters, their gradients and BatchNorm state sit at arbitrary float offsets in the model's flat
// buffers, while cuDNN kernels may assume 16-byte aligned operands (cudaMalloc gives 256). A
// misaligned operand is staged through an aligned buffer: copied in before, out after (rare: the
// zoo's layer sizes keep most offsets aligned; the copies are parameter-sized, not activation-sized).
class Aligned {
 public:
  // count floats at p, copied to an aligned buffer when p is misaligned and `in` is set.
  Aligned(const float* p, size_t count, bool in) : orig_(const_cast<float*>(p)), count_(count) {
    if (reinterpret_cast<uintptr_t>(p) % 16 == 0 || count == 0) {
      ptr_ = orig_;
      return;
    }
    tmp_ = Vec(count, Device::Cuda);
    ptr_ = tmp_.data();
    if (in) copy(ptr_, Device::Cuda, p, Device::Cuda, count);
  }
  float* get() const { return ptr_; }
  // Copies a staged result back to where it belongs.
  void write_back() {
    if (ptr_ != orig_) copy(orig_, Device::Cuda, ptr_, Device::Cuda, count_);
  }

 private:
  float* orig_;
  size_t count_;
  float* ptr_ = nullptr;
  Vec tmp_;
};

using GeomKey = std::tuple<size_t, int, int, int, int, int, int, int, int, int, int, int, int, int>;
GeomKey key_of(const ref::Geom& g, size_t n, int extra) {
  return {n, g.c, g.h, g.w, g.oc, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, extra};
}

// ---------------------------------------------------------------- convolution plans
struct ConvPlan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, data_ws = 0, filter_ws = 0;
};

bool tensor_op(cudnnMathType_t m) { return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION; }

// First heuristic result that succeeds, is deterministic, uses no tensor-op math and whose
// workspace (queried with the FMA descriptor) is available; else the listed fallback.
template <class Perf, class Algo, class WsFn>
Algo pick(const std::vector<Perf>& perf, int count, Algo fallback, WsFn workspace, size_t& ws, const Layer& l,
          const char* what) {
  for (int i = 0; i < count; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC || tensor_op(p.mathType)) continue;
    size_t bytes = 0;
    if (workspace(p.algo, bytes) != CUDNN_STATUS_SUCCESS || bytes > kMaxWorkspace) continue;
    ws = bytes;
    return p.algo;
  }
  size_t bytes = 0;
  if (workspace(fallback, bytes) != CUDNN_STATUS_SUCCESS)
    unsupported(l, std::string("no deterministic cuDNN ") + what + " algorithm for this shape");
  ws = bytes;
  return fallback;
}

ConvPlan& conv_plan(const Conv2d& layer, size_t n) {
  static auto* cache = new std::map<GeomKey, std::unique_ptr<ConvPlan>>();  // never destroyed
  const ref::Geom& g = layer.geom();
  auto& slot = (*cache)[key_of(g, n, 0)];
  if (slot) return *slot;
  auto plan = std::make_unique<ConvPlan>();
  cudnnHandle_t h = Context::get().dnn();
  const int N = to_int(n, layer);
  plan->x.set(N, g.c, g.h, g.w);
  DTSIM_CUDA_CHECK(cudnnSetFilter4dDescriptor(plan->w.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.oc, g.c, g.kh, g.kw));
  DTSIM_CUDA_CHECK(cudnnSetConvolution2dDescriptor(plan->conv.d, g.ph, g.pw, g.sh, g.sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                                   CUDNN_DATA_FLOAT));
  DTSIM_CUDA_CHECK(cudnnSetConvolutionMathType(plan->conv.d, CUDNN_FMA_MATH));
  int on = 0, oc = 0, oh = 0, ow = 0;
  DTSIM_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv.d, plan->x.d, plan->w.d, &on, &oc, &oh, &ow));
  if (on != N || oc != g.oc || oh != g.oh || ow != g.ow)
    unsupported(layer, "cuDNN output shape " + std::to_string(oc) + "x" + std::to_string(oh) + "x" +
                           std::to_string(ow) + " differs from the layer's");
  plan->y.set(N, g.oc, g.oh, g.ow);

  int max = 0, count = 0;
  DTSIM_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(static_cast<size_t>(std::max(max, 1)));
  DTSIM_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, plan->x.d, plan->w.d, plan->conv.d, plan->y.d, max,
                                                          &count, fwd.data()));
  plan->fwd = pick(
      fwd, count, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
      [&](cudnnConvolutionFwdAlgo_t a, size_t& b) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, plan->x.d, plan->w.d, plan->conv.d, plan->y.d, a, &b);
      },
      plan->fwd_ws, layer, "forward");

  DTSIM_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bd(static_cast<size_t>(std::max(max, 1)));
  DTSIM_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan->w.d, plan->y.d, plan->conv.d, plan->x.d, max,
                                                               &count, bd.data()));
  plan->bwd_data = pick(
      bd, count, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
      [&](cudnnConvolutionBwdDataAlgo_t a, size_t& b) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan->w.d, plan->y.d, plan->conv.d, plan->x.d, a, &b);
      },
      plan->data_ws, layer, "backward-data");

  DTSIM_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bf(static_cast<size_t>(std::max(max, 1)));
  DTSIM_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan->x.d, plan->y.d, plan->conv.d, plan->w.d,
                                                                 max, &count, bf.data()));
  plan->bwd_filter = pick(
      bf, count, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
      [&](cudnnConvolutionBwdFilterAlgo_t a, size_t& b) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan->x.d, plan->y.d, plan->conv.d, plan->w.d, a,
                                                              &b);
      },
      plan->filter_ws, layer, "backward-filter");
  slot = std::move(plan);
  return *slot;
}

void conv_forward(const Conv2d& l, const FwdArgs& a) {
  ConvPlan& p = conv_plan(l, a.n);
  Context& ctx = Context::get();
  void* ws = p.fwd_ws ? ctx.workspace(p.fwd_ws) : nullptr;
  const Aligned w(a.params, l.weight_size(), true);
  DTSIM_CUDA_CHECK(cudnnConvolutionForward(ctx.dnn(), &kOne, p.x.d, a.x, p.w.d, w.get(), p.conv.d, p.fwd, ws,
                                           p.fwd_ws, &kZero, p.y.d, a.y));
  const ref::Geom& g = l.geom();
  if (l.has_bias())
    kern::add_channel_bias(a.y, a.params + l.weight_size(), a.n, static_cast<size_t>(g.oc),
                           static_cast<size_t>(g.oh) * g.ow);
}

void conv_backward(const Conv2d& l, const BwdArgs& a) {
  ConvPlan& p = conv_plan(l, a.n);
  Context& ctx = Context::get();
  cudnnHandle_t h = ctx.dnn();
  const ref::Geom& g = l.geom();
  void* ws = p.filter_ws ? ctx.workspace(p.filter_ws) : nullptr;
  Aligned dw(a.dparams, l.weight_size(), false);
  DTSIM_CUDA_CHECK(cudnnConvolutionBackwardFilter(h, &kOne, p.x.d, a.x, p.y.d, a.dy, p.conv.d, p.bwd_filter, ws,
                                                  p.filter_ws, &kZero, p.w.d, dw.get()));
  dw.write_back();
  if (l.has_bias())
    kern::channel_sums(a.dy, a.dparams + l.weight_size(), a.n, static_cast<size_t>(g.oc),
                       static_cast<size_t>(g.oh) * g.ow);
  if (a.propagate_down) {
    ws = p.data_ws ? ctx.workspace(p.data_ws) : nullptr;
    const Aligned w(a.params, l.weight_size(), true);
    DTSIM_CUDA_CHECK(cudnnConvolutionBackwardData(h, &kOne, p.w.d, w.get(), p.y.d, a.dy, p.conv.d, p.bwd_data, ws,
                                                  p.data_ws, &kZero, p.x.d, a.dx));
  }
}

// ---------------------------------------------------------------- pooling
struct PoolPlan {
  TensorDesc x, y;
  PoolDesc pool;
};

PoolPlan& pool_plan(const Pool2d& layer, size_t n) {
  static auto* cache = new std::map<GeomKey, std::unique_ptr<PoolPlan>>();
  const ref::Geom& g = layer.geom();
  const bool max = layer.kind() == Pool2d::Kind::Max;
  auto& slot = (*cache)[key_of(g, n, max ? 1 : 2)];
  if (slot) return *slot;
  auto plan = std::make_unique<PoolPlan>();
  const int N = to_int(n, layer);
  plan->x.set(N, g.c, g.h, g.w);
  // PyTorch MaxPool2d (NaN propagates) / AvgPool2d(count_include_pad=True); max with the
  // deterministic backward.
  DTSIM_CUDA_CHECK(cudnnSetPooling2dDescriptor(
      plan->pool.d, max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
      CUDNN_PROPAGATE_NAN, g.kh, g.kw, g.ph, g.pw, g.sh, g.sw));
  int on = 0, oc = 0, oh = 0, ow = 0;
  DTSIM_CUDA_CHECK(cudnnGetPooling2dForwardOutputDim(plan->pool.d, plan->x.d, &on, &oc, &oh, &ow));
  if (on != N || oc != g.oc || oh != g.oh || ow != g.ow)
    unsupported(layer, "cuDNN pooling output " + std::to_string(oc) + "x" + std::to_string(oh) + "x" +
                           std::to_string(ow) + " differs from the layer's");
  plan->y.set(N, g.oc, g.oh, g.ow);
  slot = std::move(plan);
  return *slot;
}

void pool_forward(const Pool2d& l, const FwdArgs& a) {
  PoolPlan& p = pool_plan(l, a.n);
  DTSIM_CUDA_CHECK(cudnnPoolingForward(Context::get().dnn(), p.pool.d, &kOne, p.x.d, a.x, &kZero, p.y.d, a.y));
}

void pool_backward(const Pool2d& l, const BwdArgs& a) {
  if (!a.propagate_down) return;
  PoolPlan& p = pool_plan(l, a.n);
  // Average pooling does not read x's values (the model may have reused its buffer); max does.
  DTSIM_CUDA_CHECK(cudnnPoolingBackward(Context::get().dnn(), p.pool.d, &kOne, p.y.d, a.y, p.y.d, a.dy, p.x.d,
                                        a.x ? a.x : a.dx, &kZero, p.x.d, a.dx));
}

// ---------------------------------------------------------------- batch normalisation
struct BnPlan {
  TensorDesc x, bn;
};

BnPlan& bn_plan(const BatchNorm2d& layer, size_t n) {
  static auto* cache = new std::map<std::tuple<size_t, int, int, int>, std::unique_ptr<BnPlan>>();
  const SampleShape& s = layer.in_shape();
  auto& slot = (*cache)[{n, s.c, s.h, s.w}];
  if (slot) return *slot;
  auto plan = std::make_unique<BnPlan>();
  plan->x.set(to_int(n, layer), s.c, s.h, s.w);
  DTSIM_CUDA_CHECK(cudnnDeriveBNTensorDescriptor(plan->bn.d, plan->x.d, CUDNN_BATCHNORM_SPATIAL));
  slot = std::move(plan);
  return *slot;
}

// Per-layer device buffers: saved batch mean and inverse std from the last training forward
// (read by the backward that follows), and throwaway running statistics for forwards without a
// state buffer.
struct BnSaved {
  Vec saved;    // mean[C], inv_std[C]
  Vec scratch;  // running mean[C], var[C] (discarded)
};
BnSaved& bn_saved(const BatchNorm2d& l) {
  static auto* saved = new std::unordered_map<const Layer*, BnSaved>();
  BnSaved& s = (*saved)[&l];
  const size_t c2 = 2 * static_cast<size_t>(l.in_shape().c);
  if (s.saved.size() != c2) {
    s.saved = Vec(c2, Device::Cuda);
    s.scratch = Vec(c2, Device::Cuda);
  }
  return s;
}

void bn_forward(const BatchNorm2d& l, const FwdArgs& a) {
  BnPlan& p = bn_plan(l, a.n);
  cudnnHandle_t h = Context::get().dnn();
  const size_t c = static_cast<size_t>(l.in_shape().c);
  const Aligned params(a.params, 2 * c, true);  // gamma [C], beta [C]
  const float* gamma = params.get();
  const float* beta = gamma + c;
  if (!a.training) {
    if (!a.state) unsupported(l, "evaluation needs the running statistics (no state buffer given)");
    const Aligned state(a.state, 2 * c, true);
    DTSIM_CUDA_CHECK(cudnnBatchNormalizationForwardInference(h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, p.x.d, a.x,
                                                             p.x.d, a.y, p.bn.d, gamma, beta, state.get(),
                                                             state.get() + c, l.eps()));
    return;
  }
  BnSaved& s = bn_saved(l);
  Aligned state(a.state ? a.state : s.scratch.data(), 2 * c, true);
  float* running = state.get();
  // cuDNN: running = (1 - factor) running + factor batch, the variance unbiased (PyTorch's rule).
  DTSIM_CUDA_CHECK(cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, p.x.d, a.x, p.x.d,
                                                          a.y, p.bn.d, gamma, beta, l.momentum(), running,
                                                          running + c, l.eps(), s.saved.data(),
                                                          s.saved.data() + c));
  state.write_back();
}

void bn_backward(const BatchNorm2d& l, const BwdArgs& a) {
  const size_t c = static_cast<size_t>(l.in_shape().c);
  if (!a.training) {  // fixed statistics: own kernels
    if (!a.state) unsupported(l, "eval-mode backward needs the running statistics (no state buffer given)");
    const SampleShape& s = l.in_shape();
    kern::bn_backward_eval(a.x, a.dy, a.n, c, static_cast<size_t>(s.h) * s.w, a.params, a.state, a.state + c,
                           static_cast<float>(l.eps()), a.propagate_down ? a.dx : nullptr, a.dparams,
                           a.dparams + c);
    return;
  }
  BnPlan& p = bn_plan(l, a.n);
  Context& ctx = Context::get();
  BnSaved& s = bn_saved(l);
  // cuDNN always writes dx: without propagate_down it goes to the workspace.
  float* dx = a.propagate_down ? a.dx : static_cast<float*>(ctx.workspace(a.n * l.in_size() * sizeof(float)));
  const Aligned gamma(a.params, c, true);
  Aligned dparams(a.dparams, 2 * c, false);
  DTSIM_CUDA_CHECK(cudnnBatchNormalizationBackward(ctx.dnn(), CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero,
                                                   p.x.d, a.x, p.x.d, a.dy, p.x.d, dx, p.bn.d, gamma.get(),
                                                   dparams.get(), dparams.get() + c, l.eps(), s.saved.data(),
                                                   s.saved.data() + c));
  dparams.write_back();
}

// ---------------------------------------------------------------- the rest

void linear_forward(const Linear& l, const FwdArgs& a) {
  const size_t in = l.in_size(), out = l.out_size();
  const Aligned weight(a.params, out * in, true);  // cuBLAS picks kernels by alignment too
  const float* bias = a.params + out * in;
  kern::broadcast_rows(a.y, bias, a.n, out);
  // y[n][out] += x[n][in] * W[out][in]^T
  gemm(false, true, a.n, out, in, 1.0f, a.x, in, weight.get(), in, 1.0f, a.y, out);
}

void linear_backward(const Linear& l, const BwdArgs& a) {
  const size_t in = l.in_size(), out = l.out_size();
  Aligned dw(a.dparams, out * in, false);
  float* db = a.dparams + out * in;
  gemm(true, false, out, in, a.n, 1.0f, a.dy, out, a.x, in, 0.0f, dw.get(), in);  // dW = dy^T x
  dw.write_back();
  kern::column_sums(a.dy, db, a.n, out);  // db = sum_i dy[i]
  if (a.propagate_down) {
    const Aligned weight(a.params, out * in, true);
    gemm(false, false, a.n, in, out, 1.0f, a.dy, out, weight.get(), in, 0.0f, a.dx, in);  // dx = dy W
  }
}

}  // namespace

void forward(const Layer& layer, const FwdArgs& a) {
  if (a.n == 0) return;
  const size_t total = a.n * layer.out_size();
  if (auto* l = dynamic_cast<const Conv2d*>(&layer)) return conv_forward(*l, a);
  if (auto* l = dynamic_cast<const BatchNorm2d*>(&layer)) return bn_forward(*l, a);
  if (dynamic_cast<const ReLU*>(&layer)) return kern::relu_forward(a.x, a.y, total);
  if (dynamic_cast<const Add*>(&layer)) return kern::add3(a.y, total, a.x, a.x2);
  if (auto* l = dynamic_cast<const Pool2d*>(&layer)) return pool_forward(*l, a);
  if (auto* l = dynamic_cast<const Linear*>(&layer)) return linear_forward(*l, a);
  if (auto* l = dynamic_cast<const SubsamplePad*>(&layer)) {
    const ref::Geom& g = l->geom();
    return kern::subsample_pad_forward(a.x, a.y, a.n, g.c, g.h, g.w, g.oc, g.oh, g.ow, g.sh, g.sw, l->before());
  }
  if (dynamic_cast<const Flatten*>(&layer)) return;  // an alias: nothing to do (as on the host)
  if (transformer_forward(layer, a)) return;         // transformer.cpp
  unsupported(layer, "no CUDA implementation");
}

void backward(const Layer& layer, const BwdArgs& a) {
  if (a.n == 0) return;
  const size_t total = a.n * layer.out_size();
  if (auto* l = dynamic_cast<const Conv2d*>(&layer)) return conv_backward(*l, a);
  if (auto* l = dynamic_cast<const BatchNorm2d*>(&layer)) return bn_backward(*l, a);
  if (dynamic_cast<const ReLU*>(&layer)) {
    if (a.propagate_down) kern::relu_backward(a.y, a.dy, a.dx, total);
    return;
  }
  if (dynamic_cast<const Add*>(&layer)) {  // both inputs get dy
    if (a.propagate_down && a.dx != a.dy) copy(a.dx, Device::Cuda, a.dy, Device::Cuda, total);
    if (a.propagate_down2 && a.dx2 != a.dy) copy(a.dx2, Device::Cuda, a.dy, Device::Cuda, total);
    return;
  }
  if (auto* l = dynamic_cast<const Pool2d*>(&layer)) return pool_backward(*l, a);
  if (auto* l = dynamic_cast<const Linear*>(&layer)) return linear_backward(*l, a);
  if (auto* l = dynamic_cast<const SubsamplePad*>(&layer)) {
    if (!a.propagate_down) return;
    const ref::Geom& g = l->geom();
    return kern::subsample_pad_backward(a.dy, a.dx, a.n, g.c, g.h, g.w, g.oc, g.oh, g.ow, g.sh, g.sw, l->before());
  }
  if (dynamic_cast<const Flatten*>(&layer)) return;
  if (transformer_backward(layer, a)) return;
  unsupported(layer, "no CUDA implementation");
}

}  // namespace dtsim::engine::cuda
