// The CUDA backend's host-side interface: plain C++ (no CUDA headers), included by engine/*.cpp
// in every build. Builds with the backend (DTSIM_HAVE_CUDA, CMake DTSIM_CUDA=AUTO|ON) implement it
// in engine/cuda/*.cpp|*.cu on top of cudart, cuBLAS, cuDNN 9 (legacy descriptor API) and own
// kernels; builds without it link engine/cuda/stub.cpp, where built() and available() are false
// and everything else throws RuntimeError("CUDA backend not built").
//
// One process, one device (device 0), one stream (the legacy default stream): every simulated
// worker computes on it in turn. All pointers below are device pointers unless a parameter name
// says host. Determinism (docs/gpu.md, "Determinism"): cuBLAS in CUBLAS_PEDANTIC_MATH on one stream, cuDNN
// algorithms from the v7 heuristics keeping the first CUDNN_DETERMINISTIC one, FMA math (no TF32),
// deterministic max pooling, and own kernels without float atomics (reductions over a fixed grid,
// combined in a fixed tree order). Same device model + same inputs => bitwise equal results.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/vec.hpp"

namespace dtsim::engine {
class Layer;
struct FwdArgs;
struct BwdArgs;
}  // namespace dtsim::engine

namespace dtsim::engine::cuda {

// Whether this binary was compiled with the CUDA backend.
bool built();
// built() and a CUDA device is usable (cudaGetDeviceCount > 0). Probed once; never throws.
bool available();
// Why available() is false (empty when it is true).
std::string unavailable_reason();
// E.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB), CUDA runtime 13000, cuDNN 91900".
// Throws RuntimeError when !available().
std::string device_description();
// Waits for all queued device work (for timing; results are synchronised by the copies already).
void synchronize();

// ---------------------------------------------------------------- memory
// Zero-initialised device buffer of n floats (cudaMalloc through a per-size cache, never
// managed memory). n == 0 -> nullptr.
float* alloc(size_t n);
void release(float* p) noexcept;
// Copies n floats between any two devices (host <-> device, device <-> device, host <-> host).
void copy(float* dst, Device dst_device, const float* src, Device src_device, size_t n);

// ---------------------------------------------------------------- vector ops (device views)
void fill(VecView dst, float value);
void scale(VecView y, float a);
void axpy(VecView y, float a, ConstVecView x);
void axpby(VecView y, float a, ConstVecView x, float b);
void sub(VecView out, ConstVecView a, ConstVecView b);
void add(VecView y, ConstVecView x);
double dot(ConstVecView a, ConstVecView b);  // double accumulation, fixed reduction tree
double sum_squares(ConstVecView a);
bool all_finite(ConstVecView a);

// torch.optim.SGD's update in float32 (same formula and rounding as engine::Sgd on the host):
//   g' = g + wd*w;  v = first ? g' : mu*v + g';  w -= lr * (nesterov ? g' + mu*v : v)
// With mu == 0 (v unused, may be null): w -= lr * g'.
void sgd_step(VecView w, ConstVecView g, float* v, float lr, float wd, float mu, bool nesterov, bool first);
// engine::AdamW's update in float with the host loop's roundings (engine/adamw.cpp), m and v the
// moments on the device: w *= decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g;
// w -= step_size m / (sqrt(v) / bc2_sqrt + eps). 1-b1 and 1-b2 come from the host (taken in double).
void adamw_step(VecView w, ConstVecView g, float* m, float* v, float decay, float b1, float one_minus_b1, float b2,
                float one_minus_b2, float step_size, float bc2_sqrt, float eps);

// ---------------------------------------------------------------- compute
// Row-major SGEMM with the semantics of engine::gemm (BLAS: C = alpha op(A) op(B) + beta C,
// beta == 0: C not read), through cuBLAS (column-major, so computed as C^T = op(B)^T op(A)^T).
void gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda,
          const float* b, size_t ldb, float beta, float* c, size_t ldc);

// engine::softmax_cross_entropy on the device: logits (device) [n][classes], labels in HOST
// memory (checked there: outside [0, classes) throws RuntimeError, as on the host), dlogits
// (device, may be null) = (softmax - onehot) / n. Per-sample terms are computed in double on the
// device, then summed on the host in sample order. Returns the summed loss; adds argmax hits
// (first maximum wins) to *correct when non-null.
double softmax_cross_entropy(const float* logits, const int32_t* host_labels, size_t n, size_t classes,
                             float* dlogits, size_t* correct);

// ---------------------------------------------------------------- layers (engine/cuda/layers.cpp)
// Layer::forward/backward with Backend::Cuda land here (all FwdArgs/BwdArgs pointers on the
// device): Linear (cuBLAS), ReLU, Add, SubsamplePad (own kernels), Conv2d, Pool2d, BatchNorm2d
// (cuDNN), Flatten (alias), and the transformer layers (transformer.cpp: embedding, LayerNorm,
// GELU, per-position linear, causal attention, tied head, dropout). Other layer types throw
// RuntimeError naming the layer.
void forward(const Layer& layer, const FwdArgs& a);
void backward(const Layer& layer, const BwdArgs& a);

// A grow-only device buffer for staging host data (a model's input batch).
class Staging {
 public:
  Staging() = default;
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  // Copies n host floats to the device; the pointer stays valid until the next upload.
  const float* upload(const float* host, size_t n);

 private:
  float* ptr_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace dtsim::engine::cuda
