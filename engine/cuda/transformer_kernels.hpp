// Internal to engine/cuda: launchers of the transformer layers' own kernels
// (transformer_kernels.cu). All pointers are device pointers; every launch runs on the context's
// stream. Determinism: no atomics; every sum has a fixed order (warp butterflies or a fixed loop).
#pragma once
#include <cstddef>

namespace dtsim::engine::cuda::tf {

// y[r] = wte[tok[r]] + wpe[r % len], rows r < n*len (tokens are float ids, checked by the caller).
void embedding_forward(const float* tok, const float* wte, const float* wpe, float* y, size_t n, size_t len, size_t e);
// dwte[v][j] = sum over rows with token v of dy[r][j] (ascending r); dwpe[t][j] = sum over samples
// (rows t >= len get 0). Both overwritten.
void embedding_backward(const float* tok, const float* dy, float* dwte, float* dwpe, size_t n, size_t len, size_t e,
                        size_t vocab, size_t wpe_rows);
// LayerNorm over rows of e: y = (x - mean) * rstd * w + b (one warp per row).
void layernorm_forward(const float* x, const float* w, const float* b, float* y, size_t rows, size_t e, float eps);
// dx (when non-null) and xhat_dy[r][j] = dy * xhat (for the weight gradient's column sums).
void layernorm_backward(const float* x, const float* w, const float* dy, float* dx, float* xhat_dy, size_t rows,
                        size_t e, float eps);
void gelu_forward(const float* x, float* y, size_t n);
void gelu_backward(const float* x, const float* dy, float* dx, size_t n);
// Row-wise causal softmax in place over `mats` matrices of len x len: row t over u <= t, 0 after.
void causal_softmax(float* s, size_t mats, size_t len);
// ds = p * (dp - <p, dp>_row) * scale, in place over dp (rows as above; p = 0 above the diagonal).
void softmax_backward(const float* p, float* dp, size_t mats, size_t len, float scale);
// y[i] = a[i] * b[i].
void mul(float* y, const float* a, const float* b, size_t n);
// AdamW in float, every operation rounded as the host loop (engine/adamw.cpp) does.
void adamw(float* w, const float* g, float* m, float* v, size_t n, float decay, float b1, float one_minus_b1, float b2,
           float one_minus_b2, float step_size, float bc2_sqrt, float eps);

}  // namespace dtsim::engine::cuda::tf
