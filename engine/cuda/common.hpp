// Internal to engine/cuda: CUDA/cuBLAS/cuDNN headers, status checks, the process-wide context
// (device 0, the legacy default stream, one cuBLAS and one cuDNN handle, a shared workspace) and
// the kernel launchers of kernels.cu.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "engine/cuda/cuda.hpp"

namespace dtsim::engine::cuda {

// Throw RuntimeError("<what> failed at file:line: <status text>") on a failing status.
void check(cudaError_t st, const char* what, const char* file, int line);
void check(cublasStatus_t st, const char* what, const char* file, int line);
void check(cudnnStatus_t st, const char* what, const char* file, int line);
#define DTSIM_CUDA_CHECK(expr) ::dtsim::engine::cuda::check((expr), #expr, __FILE__, __LINE__)
// After a kernel launch: launch errors (bad configuration) surface here.
#define DTSIM_CUDA_LAUNCHED() DTSIM_CUDA_CHECK(cudaPeekAtLastError())

// cuBLAS, loaded with dlopen the first time it is needed (cublas_loader.cpp). Linking libcublas
// would make every dtsim process run its library constructors at start-up (about 0.5 s of CPU and
// 220 MB of memory, measured in DEVELOPERS.md, "CI"), GPU or not; cuDNN 9 loads its parts lazily
// already. The members are the cuBLAS entry points the context uses, with cuBLAS's own types.
struct Cublas {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSetAtomicsMode) set_atomics_mode;
  decltype(&cublasSetPointerMode_v2) set_pointer_mode;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};
// Loads cuBLAS on the first call; RuntimeError naming the library and dlerror() if it cannot.
const Cublas& cublas();

class Context {
 public:
  // The one context; created (device 0 selected, handles made) on first use. Throws
  // RuntimeError when no device is available.
  static Context& get();

  cudaStream_t stream() const { return nullptr; }  // legacy default stream: fully ordered
  cublasHandle_t blas() const { return blas_; }
  cudnnHandle_t dnn();  // created on first use (loads the cuDNN sub-libraries)
  // Device scratch of at least `bytes`, shared by all layers (grow-only; valid until the next call).
  void* workspace(size_t bytes);
  // Small scratch for reductions and the loss (grow-only, distinct from workspace()).
  void* scratch(size_t bytes);
  const cudaDeviceProp& props() const { return props_; }

 private:
  Context();
  cudaDeviceProp props_{};
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
};

// The transformer layers (engine/transformer.hpp) on the device (transformer.cpp): true when
// `layer` is one of them (and it ran), false for any other type.
bool transformer_forward(const Layer& layer, const FwdArgs& a);
bool transformer_backward(const Layer& layer, const BwdArgs& a);

// Launchers (kernels.cu). Sizes are element counts; all pointers are device pointers; all run on
// the context's stream.
namespace kern {
void fill(float* y, size_t n, float v);
void scale(float* y, size_t n, float a);
void axpy(float* y, size_t n, float a, const float* x);
void axpby(float* y, size_t n, float a, const float* x, float b);
void sub(float* out, size_t n, const float* a, const float* b);
void add(float* y, size_t n, const float* x);
void add3(float* out, size_t n, const float* a, const float* b);  // out = a + b
// Two-pass reductions over a fixed grid (kReduceBlocks x 256), tree-combined: deterministic.
double dot(const float* a, const float* b, size_t n);
double sum_squares(const float* a, size_t n);
bool all_finite(const float* a, size_t n);
void sgd(float* w, const float* g, float* v, size_t n, float lr, float wd, float mu, bool nesterov, bool first);
// y = x < 0 ? 0 : x (NaN stays NaN); dx = y > 0 ? dy : 0.
void relu_forward(const float* x, float* y, size_t n);
void relu_backward(const float* y, const float* dy, float* dx, size_t n);
// y[i][j] = bias[j] for i < rows, j < cols.
void broadcast_rows(float* y, const float* bias, size_t rows, size_t cols);
// out[j] = sum_i x[i][j] in ascending i (float accumulation, the reference's order).
void column_sums(const float* x, float* out, size_t rows, size_t cols);
// out[c] = sum over n, hw of x[n][c][hw] (NCHW; fixed per-channel tree order).
void channel_sums(const float* x, float* out, size_t n, size_t c, size_t hw);
// y[n][c][hw] += bias[c].
void add_channel_bias(float* y, const float* bias, size_t n, size_t c, size_t hw);
// BatchNorm backward in eval mode (fixed mean/var): dgamma, dbeta per channel (fixed-order
// reductions) and, when dx is non-null, dx = gamma / sqrt(var + eps) * dy.
void bn_backward_eval(const float* x, const float* dy, size_t n, size_t c, size_t hw, const float* gamma,
                      const float* mean, const float* var, float eps, float* dx, float* dgamma, float* dbeta);
// He et al.'s option-A shortcut (engine::ref::subsample_pad_forward/backward).
void subsample_pad_forward(const float* x, float* y, size_t n, int c, int h, int w, int oc, int oh, int ow, int sh,
                           int sw, int before);
void subsample_pad_backward(const float* dy, float* dx, size_t n, int c, int h, int w, int oc, int oh, int ow, int sh,
                            int sw, int before);
// Per sample i: loss[i] = log(sum exp(z - max)) - (z[label] - max) (double), hit[i] = argmax ==
// label (first maximum), dlogits (when non-null) = (softmax - onehot) * inv_n.
void softmax_xent(const float* logits, const int32_t* labels, size_t n, size_t classes, double inv_n,
                  float* dlogits, double* loss, int32_t* hit);
}  // namespace kern

}  // namespace dtsim::engine::cuda
