// The CUDA backend's own kernels: element-wise vector ops, the SGD update, ReLU, bias handling,
// deterministic reductions and softmax cross-entropy.
//
// Determinism: no float atomics anywhere. Reductions run on a fixed grid (kReduceBlocks blocks of
// kThreads, whatever the device), each block combines its threads in a fixed shared-memory tree,
// a second one-block pass combines the block results the same way; warp-level reductions use xor
// butterflies (every lane ends with the same, order-fixed value). Element-wise float arithmetic
// uses explicitly rounded intrinsics (__fmul_rn/__fadd_rn) so that nvcc never fuses a*b+c into an
// FMA: the results are then bitwise those of the host loops in engine/ops.cpp and engine/optim.cpp.
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/cuda/common.hpp"

namespace dtsim::engine::cuda::kern {

namespace {

constexpr int kThreads = 256;
constexpr int kReduceBlocks = 256;

unsigned blocks_for(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b ? b : 1) : 65535 * 8);  // grid-stride beyond that
}

__device__ inline size_t gtid() { return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline size_t gstride() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

// ---------------------------------------------------------------- element-wise
__global__ void fill_kernel(float* y, size_t n, float v) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = v;
}
__global__ void scale_kernel(float* y, size_t n, float a) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = __fmul_rn(y[i], a);
}
__global__ void axpy_kernel(float* y, size_t n, float a, const float* x) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
}
__global__ void axpby_kernel(float* y, size_t n, float a, const float* x, float b) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = __fadd_rn(__fmul_rn(a, x[i]), __fmul_rn(b, y[i]));
}
__global__ void sub_kernel(float* out, size_t n, const float* a, const float* b) {
  for (size_t i = gtid(); i < n; i += gstride()) out[i] = __fsub_rn(a[i], b[i]);
}
__global__ void add_kernel(float* y, size_t n, const float* x) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = __fadd_rn(y[i], x[i]);
}
__global__ void add3_kernel(float* out, size_t n, const float* a, const float* b) {
  for (size_t i = gtid(); i < n; i += gstride()) out[i] = __fadd_rn(a[i], b[i]);
}

// engine::Sgd::step, term by term in the same order and rounding.
__global__ void sgd_kernel(float* w, const float* g, float* v, size_t n, float lr, float wd, float mu, bool nesterov,
                           bool first) {
  for (size_t i = gtid(); i < n; i += gstride()) {
    const float gw = __fadd_rn(g[i], __fmul_rn(wd, w[i]));  // g' = g + wd*w
    if (mu == 0.0f) {
      // Host: w -= lr*(g + wd*w) when wd != 0, else w -= lr*g (the same value unless w is inf/NaN).
      w[i] = __fsub_rn(w[i], __fmul_rn(lr, wd != 0.0f ? gw : g[i]));
      continue;
    }
    const float vi = first ? gw : __fadd_rn(__fmul_rn(mu, v[i]), gw);
    v[i] = vi;
    w[i] = __fsub_rn(w[i], __fmul_rn(lr, nesterov ? __fadd_rn(gw, __fmul_rn(mu, vi)) : vi));
  }
}

__global__ void relu_forward_kernel(const float* x, float* y, size_t n) {
  for (size_t i = gtid(); i < n; i += gstride()) {
    const float v = x[i];
    y[i] = v < 0.0f ? 0.0f : v;  // std::max(v, 0.0f): NaN and -0 pass through, as on the host
  }
}
__global__ void relu_backward_kernel(const float* y, const float* dy, float* dx, size_t n) {
  for (size_t i = gtid(); i < n; i += gstride()) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void broadcast_rows_kernel(float* y, const float* bias, size_t rows, size_t cols) {
  const size_t total = rows * cols;
  for (size_t i = gtid(); i < total; i += gstride()) y[i] = bias[i % cols];
}

// One thread per column, rows in ascending order: the reference loop's float sum exactly.
__global__ void column_sums_kernel(const float* x, float* out, size_t rows, size_t cols) {
  for (size_t j = gtid(); j < cols; j += gstride()) {
    float s = 0.0f;
    for (size_t i = 0; i < rows; ++i) s = __fadd_rn(s, x[i * cols + j]);
    out[j] = s;
  }
}

__global__ void add_channel_bias_kernel(float* y, const float* bias, size_t n, size_t c, size_t hw) {
  const size_t total = n * c * hw;
  for (size_t i = gtid(); i < total; i += gstride()) y[i] = __fadd_rn(y[i], bias[(i / hw) % c]);
}

// Option-A shortcut: y[s][c + before][oy][ox] = x[s][c][oy*sh][ox*sw], other channels 0.
__global__ void subsample_pad_forward_kernel(const float* x, float* y, size_t n, int c, int h, int w, int oc, int oh,
                                             int ow, int sh, int sw, int before) {
  const size_t ohw = static_cast<size_t>(oh) * ow, total = n * oc * ohw;
  for (size_t i = gtid(); i < total; i += gstride()) {
    const size_t pos = i % ohw, s = i / ohw / oc;
    const int o = static_cast<int>((i / ohw) % oc), ci = o - before;
    const int oy = static_cast<int>(pos / ow), ox = static_cast<int>(pos % ow);
    y[i] = ci >= 0 && ci < c ? x[((s * c + ci) * h + static_cast<size_t>(oy) * sh) * w + static_cast<size_t>(ox) * sw]
                             : 0.0f;
  }
}
// dx[s][c][iy][ix] = dy[s][c + before][iy/sh][ix/sw] on the sampled grid, else 0.
__global__ void subsample_pad_backward_kernel(const float* dy, float* dx, size_t n, int c, int h, int w, int oc, int oh,
                                              int ow, int sh, int sw, int before) {
  const size_t hw = static_cast<size_t>(h) * w, total = n * c * hw;
  for (size_t i = gtid(); i < total; i += gstride()) {
    const size_t pos = i % hw, s = i / hw / c;
    const int ci = static_cast<int>((i / hw) % c);
    const int iy = static_cast<int>(pos / w), ix = static_cast<int>(pos % w);
    const int oy = iy / sh, ox = ix / sw;
    const bool on = iy % sh == 0 && ix % sw == 0 && oy < oh && ox < ow;
    dx[i] = on ? dy[((s * oc + ci + before) * oh + oy) * static_cast<size_t>(ow) + ox] : 0.0f;
  }
}

// ---------------------------------------------------------------- reductions
template <class T>
__device__ T block_tree_sum(T v, T* sh) {
  const unsigned t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (unsigned s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  return sh[0];
}

struct DotTerm {
  const float* a;
  const float* b;
  __device__ double operator()(size_t i) const { return static_cast<double>(a[i]) * static_cast<double>(b[i]); }
};
struct SquareTerm {
  const float* a;
  __device__ double operator()(size_t i) const {
    const double v = a[i];
    return v * v;
  }
};
struct NonFiniteTerm {
  const float* a;
  __device__ double operator()(size_t i) const {
    return (__float_as_uint(a[i]) & 0x7F800000u) == 0x7F800000u ? 1.0 : 0.0;
  }
};

template <class Term>
__global__ void reduce_pass1(Term term, size_t n, double* partial) {
  __shared__ double sh[kThreads];
  double acc = 0.0;
  for (size_t i = gtid(); i < n; i += gstride()) acc += term(i);
  const double s = block_tree_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void reduce_pass2(const double* partial, double* out) {
  __shared__ double sh[kThreads];
  double acc = 0.0;
  for (unsigned i = threadIdx.x; i < kReduceBlocks; i += kThreads) acc += partial[i];
  const double s = block_tree_sum(acc, sh);
  if (threadIdx.x == 0) *out = s;
}

template <class Term>
double reduce(Term term, size_t n) {
  if (n == 0) return 0.0;
  auto* partial = static_cast<double*>(Context::get().scratch((kReduceBlocks + 1) * sizeof(double)));
  reduce_pass1<<<kReduceBlocks, kThreads>>>(term, n, partial);
  DTSIM_CUDA_LAUNCHED();
  reduce_pass2<<<1, kThreads>>>(partial, partial + kReduceBlocks);
  DTSIM_CUDA_LAUNCHED();
  double out = 0;
  DTSIM_CUDA_CHECK(cudaMemcpy(&out, partial + kReduceBlocks, sizeof out, cudaMemcpyDeviceToHost));
  return out;
}

// One block per channel: a strided double sum per thread, then the block tree.
__global__ void channel_sums_kernel(const float* x, float* out, size_t n, size_t c, size_t hw) {
  __shared__ double sh[kThreads];
  const size_t ch = blockIdx.x;
  const size_t per = n * hw;
  double acc = 0.0;
  for (size_t t = threadIdx.x; t < per; t += kThreads) {
    const size_t img = t / hw, pos = t % hw;
    acc += x[(img * c + ch) * hw + pos];
  }
  const double s = block_tree_sum(acc, sh);
  if (threadIdx.x == 0) out[ch] = static_cast<float>(s);
}

// BatchNorm backward with fixed statistics (engine::ref::bn_backward_eval): one block per channel
// for dgamma = sum dy * (x - mean) * inv and dbeta = sum dy, then dx = gamma * inv * dy.
__global__ void bn_backward_eval_sums_kernel(const float* x, const float* dy, size_t n, size_t c, size_t hw,
                                             const float* mean, const float* var, float eps, float* dgamma,
                                             float* dbeta) {
  __shared__ double sh[kThreads];
  const size_t ch = blockIdx.x;
  const size_t per = n * hw;
  const float inv = 1.0f / sqrtf(var[ch] + eps);
  const float mu = mean[ch];
  double sdy = 0.0, sdyx = 0.0;
  for (size_t t = threadIdx.x; t < per; t += kThreads) {
    const size_t i = ((t / hw) * c + ch) * hw + t % hw;
    sdy += dy[i];
    sdyx += static_cast<double>(dy[i]) * static_cast<double>((x[i] - mu) * inv);
  }
  const double a = block_tree_sum(sdy, sh);
  __syncthreads();  // sh is reused
  const double b = block_tree_sum(sdyx, sh);
  if (threadIdx.x == 0) {
    dbeta[ch] = static_cast<float>(a);
    dgamma[ch] = static_cast<float>(b);
  }
}
__global__ void bn_backward_eval_dx_kernel(const float* dy, size_t n, size_t c, size_t hw, const float* gamma,
                                           const float* var, float eps, float* dx) {
  const size_t total = n * c * hw;
  for (size_t i = gtid(); i < total; i += gstride()) {
    const size_t ch = (i / hw) % c;
    dx[i] = gamma[ch] * (1.0f / sqrtf(var[ch] + eps)) * dy[i];
  }
}

// ---------------------------------------------------------------- softmax cross-entropy
// One warp per sample.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* labels, size_t n, size_t classes,
                                    double inv_n, float* dlogits, double* loss, int32_t* hit) {
  const size_t sample = gtid() / 32;
  const unsigned lane = threadIdx.x % 32;
  if (sample >= n) return;  // uniform across the warp
  const float* z = logits + sample * classes;
  // First maximum: per lane strict '>' over ascending j, then (larger value, else smaller index).
  float best = z[lane < classes ? lane : 0];
  size_t arg = lane < classes ? lane : 0;
  for (size_t j = lane + 32; j < classes; j += 32)
    if (z[j] > best) {
      best = z[j];
      arg = j;
    }
  for (int off = 16; off > 0; off >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, off);
    const size_t oa = __shfl_xor_sync(0xffffffffu, arg, off);
    if (ob > best || (ob == best && oa < arg)) {
      best = ob;
      arg = oa;
    }
  }
  const double m = best;
  double s = 0.0;
  for (size_t j = lane; j < classes; j += 32) s += exp(static_cast<double>(z[j]) - m);
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  const int32_t label = labels[sample];
  if (lane == 0) {
    loss[sample] = log(s) - (static_cast<double>(z[label]) - m);
    hit[sample] = static_cast<size_t>(label) == arg ? 1 : 0;
  }
  if (dlogits) {
    float* d = dlogits + sample * classes;
    for (size_t j = lane; j < classes; j += 32) {
      const double pj = exp(static_cast<double>(z[j]) - m) / s;
      d[j] = static_cast<float>((pj - (j == static_cast<size_t>(label) ? 1.0 : 0.0)) * inv_n);
    }
  }
}

}  // namespace

#define DTSIM_LAUNCH(kernel, n, ...)                         \
  do {                                                       \
    if ((n) == 0) return;                                    \
    kernel<<<blocks_for(n), kThreads>>>(__VA_ARGS__);        \
    DTSIM_CUDA_LAUNCHED();                                   \
  } while (0)

void fill(float* y, size_t n, float v) { DTSIM_LAUNCH(fill_kernel, n, y, n, v); }
void scale(float* y, size_t n, float a) { DTSIM_LAUNCH(scale_kernel, n, y, n, a); }
void axpy(float* y, size_t n, float a, const float* x) { DTSIM_LAUNCH(axpy_kernel, n, y, n, a, x); }
void axpby(float* y, size_t n, float a, const float* x, float b) { DTSIM_LAUNCH(axpby_kernel, n, y, n, a, x, b); }
void sub(float* out, size_t n, const float* a, const float* b) { DTSIM_LAUNCH(sub_kernel, n, out, n, a, b); }
void add(float* y, size_t n, const float* x) { DTSIM_LAUNCH(add_kernel, n, y, n, x); }
void add3(float* out, size_t n, const float* a, const float* b) { DTSIM_LAUNCH(add3_kernel, n, out, n, a, b); }

void sgd(float* w, const float* g, float* v, size_t n, float lr, float wd, float mu, bool nesterov, bool first) {
  DTSIM_LAUNCH(sgd_kernel, n, w, g, v, n, lr, wd, mu, nesterov, first);
}

void relu_forward(const float* x, float* y, size_t n) { DTSIM_LAUNCH(relu_forward_kernel, n, x, y, n); }
void relu_backward(const float* y, const float* dy, float* dx, size_t n) {
  DTSIM_LAUNCH(relu_backward_kernel, n, y, dy, dx, n);
}

void broadcast_rows(float* y, const float* bias, size_t rows, size_t cols) {
  DTSIM_LAUNCH(broadcast_rows_kernel, rows * cols, y, bias, rows, cols);
}
void column_sums(const float* x, float* out, size_t rows, size_t cols) {
  DTSIM_LAUNCH(column_sums_kernel, cols, x, out, rows, cols);
}
void add_channel_bias(float* y, const float* bias, size_t n, size_t c, size_t hw) {
  DTSIM_LAUNCH(add_channel_bias_kernel, n * c * hw, y, bias, n, c, hw);
}

void subsample_pad_forward(const float* x, float* y, size_t n, int c, int h, int w, int oc, int oh, int ow, int sh,
                           int sw, int before) {
  DTSIM_LAUNCH(subsample_pad_forward_kernel, n * oc * oh * ow, x, y, n, c, h, w, oc, oh, ow, sh, sw, before);
}
void subsample_pad_backward(const float* dy, float* dx, size_t n, int c, int h, int w, int oc, int oh, int ow, int sh,
                            int sw, int before) {
  DTSIM_LAUNCH(subsample_pad_backward_kernel, n * c * h * w, dy, dx, n, c, h, w, oc, oh, ow, sh, sw, before);
}

void bn_backward_eval(const float* x, const float* dy, size_t n, size_t c, size_t hw, const float* gamma,
                      const float* mean, const float* var, float eps, float* dx, float* dgamma, float* dbeta) {
  if (c == 0) return;
  bn_backward_eval_sums_kernel<<<static_cast<unsigned>(c), kThreads>>>(x, dy, n, c, hw, mean, var, eps, dgamma, dbeta);
  DTSIM_CUDA_LAUNCHED();
  if (dx) DTSIM_LAUNCH(bn_backward_eval_dx_kernel, n * c * hw, dy, n, c, hw, gamma, var, eps, dx);
}

void channel_sums(const float* x, float* out, size_t n, size_t c, size_t hw) {
  if (c == 0) return;
  channel_sums_kernel<<<static_cast<unsigned>(c), kThreads>>>(x, out, n, c, hw);
  DTSIM_CUDA_LAUNCHED();
}

double dot(const float* a, const float* b, size_t n) { return reduce(DotTerm{a, b}, n); }
double sum_squares(const float* a, size_t n) { return reduce(SquareTerm{a}, n); }
bool all_finite(const float* a, size_t n) { return reduce(NonFiniteTerm{a}, n) == 0.0; }

void softmax_xent(const float* logits, const int32_t* labels, size_t n, size_t classes, double inv_n, float* dlogits,
                  double* loss, int32_t* hit) {
  if (n == 0) return;
  const size_t threads = n * 32;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  softmax_xent_kernel<<<blocks, kThreads>>>(logits, labels, n, classes, inv_n, dlogits, loss, hit);
  DTSIM_CUDA_LAUNCHED();
}

}  // namespace dtsim::engine::cuda::kern
