// The transformer layers' own kernels (transformer_kernels.hpp) and AdamW. One warp per row for
// the row-wise ones (LayerNorm, softmax), with xor-butterfly sums: every lane ends with the same,
// order-fixed value. Column reductions loop in a fixed order. No atomics.
#include <cstddef>

#include "engine/cuda/common.hpp"
#include "engine/cuda/transformer_kernels.hpp"

namespace dtsim::engine::cuda::tf {

namespace {

constexpr int kThreads = 256;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluA = 0.044715f;

unsigned blocks_for(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? (b ? b : 1) : 65535 * 8);
}
__device__ inline size_t gtid() { return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline size_t gstride() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

__device__ inline float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

__global__ void embedding_forward_kernel(const float* tok, const float* wte, const float* wpe, float* y, size_t rows,
                                         size_t len, size_t e) {
  for (size_t i = gtid(); i < rows * e; i += gstride()) {
    const size_t r = i / e, j = i % e;
    y[i] = wte[static_cast<size_t>(tok[r]) * e + j] + wpe[(r % len) * e + j];
  }
}

__global__ void embedding_dwte_kernel(const float* tok, const float* dy, float* dwte, size_t rows, size_t e,
                                      size_t vocab) {
  for (size_t i = gtid(); i < vocab * e; i += gstride()) {
    const size_t v = i / e, j = i % e;
    float acc = 0.0f;
    for (size_t r = 0; r < rows; ++r)
      if (static_cast<size_t>(tok[r]) == v) acc += dy[r * e + j];
    dwte[i] = acc;
  }
}

__global__ void embedding_dwpe_kernel(const float* dy, float* dwpe, size_t n, size_t len, size_t e, size_t wpe_rows) {
  for (size_t i = gtid(); i < wpe_rows * e; i += gstride()) {
    const size_t t = i / e, j = i % e;
    float acc = 0.0f;
    if (t < len)
      for (size_t s = 0; s < n; ++s) acc += dy[(s * len + t) * e + j];
    dwpe[i] = acc;
  }
}

// Row statistics by one warp.
__device__ void row_stats(const float* x, size_t e, float eps, unsigned lane, float& mean, float& rstd) {
  float s = 0.0f;
  for (size_t j = lane; j < e; j += 32) s += x[j];
  mean = warp_sum(s) / static_cast<float>(e);
  float q = 0.0f;
  for (size_t j = lane; j < e; j += 32) q += (x[j] - mean) * (x[j] - mean);
  rstd = rsqrtf(warp_sum(q) / static_cast<float>(e) + eps);
}

__global__ void layernorm_forward_kernel(const float* x, const float* w, const float* b, float* y, size_t rows,
                                         size_t e, float eps) {
  const size_t row = gtid() / 32;
  const unsigned lane = threadIdx.x % 32;
  if (row >= rows) return;  // uniform across the warp
  const float* xr = x + row * e;
  float mean, rstd;
  row_stats(xr, e, eps, lane, mean, rstd);
  for (size_t j = lane; j < e; j += 32) y[row * e + j] = (xr[j] - mean) * rstd * w[j] + b[j];
}

__global__ void layernorm_backward_kernel(const float* x, const float* w, const float* dy, float* dx, float* xhat_dy,
                                          size_t rows, size_t e, float eps) {
  const size_t row = gtid() / 32;
  const unsigned lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* xr = x + row * e;
  const float* g = dy + row * e;
  float mean, rstd;
  row_stats(xr, e, eps, lane, mean, rstd);
  float m1 = 0.0f, m2 = 0.0f;
  for (size_t j = lane; j < e; j += 32) {
    const float xh = (xr[j] - mean) * rstd;
    const float d = g[j] * w[j];
    m1 += d;
    m2 += d * xh;
    xhat_dy[row * e + j] = g[j] * xh;
  }
  m1 = warp_sum(m1) / static_cast<float>(e);
  m2 = warp_sum(m2) / static_cast<float>(e);
  if (dx)
    for (size_t j = lane; j < e; j += 32) {
      const float xh = (xr[j] - mean) * rstd;
      dx[row * e + j] = rstd * (g[j] * w[j] - m1 - xh * m2);
    }
}

__global__ void gelu_forward_kernel(const float* x, float* y, size_t n) {
  for (size_t i = gtid(); i < n; i += gstride()) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(kGeluC * (v + kGeluA * v * v * v)));
  }
}

__global__ void gelu_backward_kernel(const float* x, const float* dy, float* dx, size_t n) {
  for (size_t i = gtid(); i < n; i += gstride()) {
    const float v = x[i];
    const float th = tanhf(kGeluC * (v + kGeluA * v * v * v));
    dx[i] = dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * kGeluC * (1.0f + 3.0f * kGeluA * v * v));
  }
}

__global__ void causal_softmax_kernel(float* s, size_t rows, size_t len) {
  const size_t row = gtid() / 32;
  const unsigned lane = threadIdx.x % 32;
  if (row >= rows) return;
  const size_t t = row % len;
  float* r = s + row * len;
  float mx = -INFINITY;
  for (size_t u = lane; u <= t; u += 32) mx = fmaxf(mx, r[u]);
  mx = warp_max(mx);
  float z = 0.0f;
  for (size_t u = lane; u <= t; u += 32) z += expf(r[u] - mx);
  const float inv = 1.0f / warp_sum(z);
  for (size_t u = lane; u < len; u += 32) r[u] = u <= t ? expf(r[u] - mx) * inv : 0.0f;
}

__global__ void softmax_backward_kernel(const float* p, float* dp, size_t rows, size_t len, float scale) {
  const size_t row = gtid() / 32;
  const unsigned lane = threadIdx.x % 32;
  if (row >= rows) return;
  const size_t t = row % len;
  const float* pr = p + row * len;
  float* d = dp + row * len;
  float dot = 0.0f;
  for (size_t u = lane; u <= t; u += 32) dot += pr[u] * d[u];
  dot = warp_sum(dot);
  for (size_t u = lane; u < len; u += 32) d[u] = u <= t ? pr[u] * (d[u] - dot) * scale : 0.0f;
}

__global__ void mul_kernel(float* y, const float* a, const float* b, size_t n) {
  for (size_t i = gtid(); i < n; i += gstride()) y[i] = a[i] * b[i];
}

__global__ void adamw_kernel(float* w, const float* g, float* m, float* v, size_t n, float decay, float b1,
                             float one_minus_b1, float b2, float one_minus_b2, float step_size, float bc2_sqrt,
                             float eps) {
  for (size_t i = gtid(); i < n; i += gstride()) {
    const float gi = g[i];
    const float wi = __fmul_rn(w[i], decay);
    const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_minus_b1, gi));
    const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_minus_b2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
    w[i] = __fsub_rn(wi, __fdiv_rn(__fmul_rn(step_size, mi), denom));
    m[i] = mi;
    v[i] = vi;
  }
}

unsigned warps_blocks(size_t rows) { return static_cast<unsigned>((rows * 32 + kThreads - 1) / kThreads); }

}  // namespace

#define DTSIM_TF_LAUNCH(kernel, n, ...)               \
  do {                                                \
    if ((n) == 0) return;                             \
    kernel<<<blocks_for(n), kThreads>>>(__VA_ARGS__); \
    DTSIM_CUDA_LAUNCHED();                            \
  } while (0)
#define DTSIM_TF_WARPS(kernel, rows, ...)                    \
  do {                                                       \
    if ((rows) == 0) return;                                 \
    kernel<<<warps_blocks(rows), kThreads>>>(__VA_ARGS__);   \
    DTSIM_CUDA_LAUNCHED();                                   \
  } while (0)

void embedding_forward(const float* tok, const float* wte, const float* wpe, float* y, size_t n, size_t len, size_t e) {
  DTSIM_TF_LAUNCH(embedding_forward_kernel, n * len * e, tok, wte, wpe, y, n * len, len, e);
}

void embedding_backward(const float* tok, const float* dy, float* dwte, float* dwpe, size_t n, size_t len, size_t e,
                        size_t vocab, size_t wpe_rows) {
  if (vocab * e > 0) {
    embedding_dwte_kernel<<<blocks_for(vocab * e), kThreads>>>(tok, dy, dwte, n * len, e, vocab);
    DTSIM_CUDA_LAUNCHED();
  }
  DTSIM_TF_LAUNCH(embedding_dwpe_kernel, wpe_rows * e, dy, dwpe, n, len, e, wpe_rows);
}

void layernorm_forward(const float* x, const float* w, const float* b, float* y, size_t rows, size_t e, float eps) {
  DTSIM_TF_WARPS(layernorm_forward_kernel, rows, x, w, b, y, rows, e, eps);
}

void layernorm_backward(const float* x, const float* w, const float* dy, float* dx, float* xhat_dy, size_t rows,
                        size_t e, float eps) {
  DTSIM_TF_WARPS(layernorm_backward_kernel, rows, x, w, dy, dx, xhat_dy, rows, e, eps);
}

void gelu_forward(const float* x, float* y, size_t n) { DTSIM_TF_LAUNCH(gelu_forward_kernel, n, x, y, n); }
void gelu_backward(const float* x, const float* dy, float* dx, size_t n) {
  DTSIM_TF_LAUNCH(gelu_backward_kernel, n, x, dy, dx, n);
}

void causal_softmax(float* s, size_t mats, size_t len) {
  DTSIM_TF_WARPS(causal_softmax_kernel, mats * len, s, mats * len, len);
}
void softmax_backward(const float* p, float* dp, size_t mats, size_t len, float scale) {
  DTSIM_TF_WARPS(softmax_backward_kernel, mats * len, p, dp, mats * len, len, scale);
}

void mul(float* y, const float* a, const float* b, size_t n) { DTSIM_TF_LAUNCH(mul_kernel, n, y, a, b, n); }

void adamw(float* w, const float* g, float* m, float* v, size_t n, float decay, float b1, float one_minus_b1, float b2,
           float one_minus_b2, float step_size, float bc2_sqrt, float eps) {
  DTSIM_TF_LAUNCH(adamw_kernel, n, w, g, m, v, n, decay, b1, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps);
}

}  // namespace dtsim::engine::cuda::tf
