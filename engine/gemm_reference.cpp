// The reference GEMM: plain loops, fixed summation order (k ascending for every element of C).
// op(B) is first materialised as a contiguous K x N panel when B is transposed, so the inner loop
// is always a unit-stride "c_row += a * b_row" over N that compilers vectorise; four rows of C
// share each load of a B row.
#include <algorithm>
#include <vector>

#include "engine/backend.hpp"

namespace dtsim::engine {

namespace {

void axpy_row(size_t n, float a, const float* __restrict b, float* __restrict c) {
  for (size_t j = 0; j < n; ++j) c[j] += a * b[j];
}

void axpy_rows4(size_t n, float a0, float a1, float a2, float a3, const float* __restrict b, float* __restrict c0,
                float* __restrict c1, float* __restrict c2, float* __restrict c3) {
  for (size_t j = 0; j < n; ++j) {
    const float v = b[j];
    c0[j] += a0 * v;
    c1[j] += a1 * v;
    c2[j] += a2 * v;
    c3[j] += a3 * v;
  }
}

}  // namespace

void gemm_reference(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
                    size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  if (m == 0 || n == 0) return;
  for (size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f)
      std::fill(ci, ci + n, 0.0f);
    else if (beta != 1.0f)
      for (size_t j = 0; j < n; ++j) ci[j] *= beta;
  }
  if (k == 0 || alpha == 0.0f) return;

  // op(B) as a K x N row-major panel with row stride ldp.
  const float* panel = b;
  size_t ldp = ldb;
  thread_local std::vector<float> scratch;
  if (trans_b) {  // B is N x K: transpose it
    if (scratch.size() < k * n) scratch.resize(k * n);
    for (size_t j = 0; j < n; ++j) {
      const float* bj = b + j * ldb;
      for (size_t kk = 0; kk < k; ++kk) scratch[kk * n + j] = bj[kk];
    }
    panel = scratch.data();
    ldp = n;
  }
  auto op_a = [&](size_t i, size_t kk) { return trans_a ? a[kk * lda + i] : a[i * lda + kk]; };

  size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    float* c0 = c + i * ldc;
    float* c1 = c0 + ldc;
    float* c2 = c1 + ldc;
    float* c3 = c2 + ldc;
    for (size_t kk = 0; kk < k; ++kk)
      axpy_rows4(n, alpha * op_a(i, kk), alpha * op_a(i + 1, kk), alpha * op_a(i + 2, kk), alpha * op_a(i + 3, kk),
                 panel + kk * ldp, c0, c1, c2, c3);
  }
  for (; i < m; ++i) {
    float* ci = c + i * ldc;
    for (size_t kk = 0; kk < k; ++kk) axpy_row(n, alpha * op_a(i, kk), panel + kk * ldp, ci);
  }
}

}  // namespace dtsim::engine
