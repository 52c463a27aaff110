// The cpu backend's oneDNN kernels (implemented in onednn_kernels.cpp, the only file besides
// backend_onednn.cpp that includes oneDNN). No oneDNN types here. Each function takes the calling
// layer's kernel cache: primitives, reorders and scratch are created once per (batch size, layout)
// and reused, so steady-state steps allocate nothing. Weights are always PyTorch's plain OIHW in the
// flat parameter buffer; the kernels reorder them into the layouts each primitive wants (forward
// and backward-data may want different ones) and reorder weight gradients back.
//
// Builds without oneDNN link stubs that throw RuntimeError (the cpu backend then never calls them:
// host_backend(Device::Cpu) is the reference backend).
#pragma once
#include <cstddef>
#include <memory>

#include "engine/layers.hpp"

namespace dtsim::engine {

class CpuKernel {
 public:
  virtual ~CpuKernel() = default;
};

namespace onednn {

// Convolution (dst = conv(src, W) + b). x in layout `in`, y in layout `out`.
void conv_forward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool bias, Layout in, Layout out,
                  const float* w, const float* b, const float* x, float* y, size_t n);
// dW (+ db when bias) from x and dy; dx when non-null. Must follow conv_forward of the same x.
void conv_backward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool bias, Layout in, Layout out,
                   const float* w, const float* x, const float* dy, float* dx, float* dw, float* db, size_t n);

// Max / average (padding included) pooling in layout l. Max pooling keeps its indices from the
// last training forward for the backward.
void pool_forward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool max, Layout l, const float* x, float* y,
                  size_t n);
void pool_backward(std::unique_ptr<CpuKernel>& k, const ref::Geom& g, bool max, Layout l, const float* dy, float* dx,
                   size_t n);

// Batch normalisation over (n, h, w) per channel, in layout l. scale_shift = gamma [C] then beta [C]
// (the layer's parameters as they are). Training: normalises with the batch statistics and
// returns them (mean [C], biased variance [C], valid until the next call on this cache). Eval:
// normalises with `mean`/`var` and returns null.
struct BnStats {
  const float* mean = nullptr;
  const float* var = nullptr;
};
BnStats bn_forward(std::unique_ptr<CpuKernel>& k, const SampleShape& s, Layout l, float eps,
                   const float* scale_shift, const float* x, float* y, size_t n, bool training, const float* mean,
                   const float* var);
// dscale_shift (dgamma, dbeta) and dx when non-null. Training: with the statistics of the last
// training forward on this cache; eval: with `mean`/`var`.
void bn_backward(std::unique_ptr<CpuKernel>& k, const SampleShape& s, Layout l, float eps, const float* scale_shift,
                 const float* x, const float* dy, float* dx, float* dscale_shift, size_t n, bool training,
                 const float* mean, const float* var);

// "avx512_core", "avx2", ... (oneDNN's effective ISA); "none" without oneDNN.
const char* effective_isa();

}  // namespace onednn
}  // namespace dtsim::engine
