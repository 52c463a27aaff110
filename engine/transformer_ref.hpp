// The reference kernels of the transformer layers (engine/transformer.hpp): plain loops templated
// on the scalar type, like engine/ref_kernels.hpp, so the code the reference backend runs in float
// is also run in double by the finite-difference checks (tests/engine/test_gpt_layers.cpp). Every
// sum has a fixed order and accumulates in double. They keep no state: a backward recomputes
// what it needs from its inputs (the cpu path in engine/transformer.cpp saves it instead).
//
// Sequence tensors are position-major: a sample of T positions x E features is T rows of E
// (SampleShape{T, E, 1}), so n samples are n*T rows.
#pragma once
#include <cmath>
#include <cstddef>
#include <vector>

namespace dtsim::engine::ref {

// The GELU of GPT-2 (tanh form): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
constexpr double kGeluC = 0.7978845608028654;  // sqrt(2/pi)
constexpr double kGeluA = 0.044715;

// ---- dense rows: y[r] = x[r] W^T (+ b), W [out][in]

template <class T>
void rows_linear_forward(const T* x, const T* w, const T* b, T* y, size_t rows, size_t in, size_t out) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t o = 0; o < out; ++o) {
      double s = b ? static_cast<double>(b[o]) : 0.0;
      for (size_t i = 0; i < in; ++i) s += static_cast<double>(x[r * in + i]) * static_cast<double>(w[o * in + i]);
      y[r * out + o] = static_cast<T>(s);
    }
}

// dW = dy^T x (overwritten), db = column sums of dy (when non-null), dx = dy W (when non-null).
template <class T>
void rows_linear_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, size_t rows, size_t in,
                          size_t out) {
  for (size_t o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) {
      double s = 0;
      for (size_t r = 0; r < rows; ++r) s += static_cast<double>(dy[r * out + o]) * static_cast<double>(x[r * in + i]);
      dw[o * in + i] = static_cast<T>(s);
    }
    if (db) {
      double s = 0;
      for (size_t r = 0; r < rows; ++r) s += static_cast<double>(dy[r * out + o]);
      db[o] = static_cast<T>(s);
    }
  }
  if (dx)
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < in; ++i) {
        double s = 0;
        for (size_t o = 0; o < out; ++o) s += static_cast<double>(dy[r * out + o]) * static_cast<double>(w[o * in + i]);
        dx[r * in + i] = static_cast<T>(s);
      }
}

// ---- token + position embedding: y[s][t] = wte[tok[s][t]] + wpe[t]. Token ids arrive as floats
// (the dataset's features); the caller has checked them.

template <class T>
void embedding_forward(const float* tok, const T* wte, const T* wpe, T* y, size_t n, size_t len, size_t e) {
  for (size_t s = 0; s < n; ++s)
    for (size_t t = 0; t < len; ++t) {
      const size_t id = static_cast<size_t>(tok[s * len + t]);
      T* row = y + (s * len + t) * e;
      for (size_t j = 0; j < e; ++j) row[j] = wte[id * e + j] + wpe[t * e + j];
    }
}

// dwte [vocab][e] and dwpe [rows >= len][e], overwritten (rows of wpe past len get 0).
template <class T>
void embedding_backward(const float* tok, const T* dy, T* dwte, T* dwpe, size_t n, size_t len, size_t e,
                        size_t vocab, size_t wpe_rows) {
  std::vector<double> acc(vocab * e, 0.0);
  for (size_t s = 0; s < n; ++s)
    for (size_t t = 0; t < len; ++t) {
      const size_t id = static_cast<size_t>(tok[s * len + t]);
      for (size_t j = 0; j < e; ++j) acc[id * e + j] += static_cast<double>(dy[(s * len + t) * e + j]);
    }
  for (size_t i = 0; i < vocab * e; ++i) dwte[i] = static_cast<T>(acc[i]);
  for (size_t t = 0; t < wpe_rows; ++t)
    for (size_t j = 0; j < e; ++j) {
      double s = 0;
      if (t < len)
        for (size_t smp = 0; smp < n; ++smp) s += static_cast<double>(dy[(smp * len + t) * e + j]);
      dwpe[t * e + j] = static_cast<T>(s);
    }
}

// ---- LayerNorm over the last dimension (biased variance, eps inside the square root).

template <class T>
void layernorm_forward(const T* x, const T* w, const T* b, T* y, size_t rows, size_t e, double eps) {
  for (size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * e;
    double mean = 0, var = 0;
    for (size_t j = 0; j < e; ++j) mean += static_cast<double>(xr[j]);
    mean /= static_cast<double>(e);
    for (size_t j = 0; j < e; ++j) var += (static_cast<double>(xr[j]) - mean) * (static_cast<double>(xr[j]) - mean);
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(e) + eps);
    for (size_t j = 0; j < e; ++j)
      y[r * e + j] = static_cast<T>((static_cast<double>(xr[j]) - mean) * rstd * static_cast<double>(w[j]) +
                                    static_cast<double>(b[j]));
  }
}

// dw, db overwritten; dx when non-null.
template <class T>
void layernorm_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, size_t rows, size_t e,
                        double eps) {
  std::vector<double> gw(e, 0.0), gb(e, 0.0), xhat(e);
  for (size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * e;
    const T* g = dy + r * e;
    double mean = 0, var = 0;
    for (size_t j = 0; j < e; ++j) mean += static_cast<double>(xr[j]);
    mean /= static_cast<double>(e);
    for (size_t j = 0; j < e; ++j) var += (static_cast<double>(xr[j]) - mean) * (static_cast<double>(xr[j]) - mean);
    const double rstd = 1.0 / std::sqrt(var / static_cast<double>(e) + eps);
    double m1 = 0, m2 = 0;  // means of dxhat and dxhat * xhat
    for (size_t j = 0; j < e; ++j) {
      xhat[j] = (static_cast<double>(xr[j]) - mean) * rstd;
      const double d = static_cast<double>(g[j]) * static_cast<double>(w[j]);
      m1 += d;
      m2 += d * xhat[j];
      gw[j] += static_cast<double>(g[j]) * xhat[j];
      gb[j] += static_cast<double>(g[j]);
    }
    m1 /= static_cast<double>(e);
    m2 /= static_cast<double>(e);
    if (dx)
      for (size_t j = 0; j < e; ++j)
        dx[r * e + j] = static_cast<T>(rstd * (static_cast<double>(g[j]) * static_cast<double>(w[j]) - m1 - xhat[j] * m2));
  }
  for (size_t j = 0; j < e; ++j) {
    dw[j] = static_cast<T>(gw[j]);
    db[j] = static_cast<T>(gb[j]);
  }
}

// ---- GELU (tanh form), element-wise.

template <class T>
void gelu_forward(const T* x, T* y, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(x[i]);
    y[i] = static_cast<T>(0.5 * v * (1.0 + std::tanh(kGeluC * (v + kGeluA * v * v * v))));
  }
}

template <class T>
void gelu_backward(const T* x, const T* dy, T* dx, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(x[i]);
    const double th = std::tanh(kGeluC * (v + kGeluA * v * v * v));
    const double d = 0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * kGeluC * (1.0 + 3.0 * kGeluA * v * v);
    dx[i] = static_cast<T>(static_cast<double>(dy[i]) * d);
  }
}

// ---- causal multi-head self-attention core, one sample: q, k, v rows of `ld` floats (head h in
// columns h*d .. h*d+d-1), y [len][heads*d]. P[t][u] = softmax_u<=t(q_t . k_u * scale).
// `keep` (may be null) is attention dropout: P[t][u] * keep[h][t][u] (keep = mask / (1 - p)).

template <class T>
void attention_probs(const T* q, const T* k, size_t ld, size_t len, size_t d, double scale, std::vector<double>& p) {
  p.assign(len * len, 0.0);
  for (size_t t = 0; t < len; ++t) {
    double mx = -INFINITY;
    for (size_t u = 0; u <= t; ++u) {
      double s = 0;
      for (size_t j = 0; j < d; ++j) s += static_cast<double>(q[t * ld + j]) * static_cast<double>(k[u * ld + j]);
      p[t * len + u] = s * scale;
      mx = std::max(mx, p[t * len + u]);
    }
    double z = 0;
    for (size_t u = 0; u <= t; ++u) z += (p[t * len + u] = std::exp(p[t * len + u] - mx));
    for (size_t u = 0; u <= t; ++u) p[t * len + u] /= z;
  }
}

template <class T>
void attention_core_forward(const T* qkv, T* y, size_t len, size_t heads, size_t d, const float* keep) {
  const size_t e = heads * d, ld = 3 * e;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> p;
  for (size_t h = 0; h < heads; ++h) {
    const T* q = qkv + h * d;
    const T* k = qkv + e + h * d;
    const T* v = qkv + 2 * e + h * d;
    attention_probs(q, k, ld, len, d, scale, p);
    if (keep)
      for (size_t i = 0; i < len * len; ++i) p[i] *= static_cast<double>(keep[h * len * len + i]);
    for (size_t t = 0; t < len; ++t)
      for (size_t j = 0; j < d; ++j) {
        double s = 0;
        for (size_t u = 0; u <= t; ++u) s += p[t * len + u] * static_cast<double>(v[u * ld + j]);
        y[t * e + h * d + j] = static_cast<T>(s);
      }
  }
}

// dqkv (overwritten) from dy.
template <class T>
void attention_core_backward(const T* qkv, const T* dy, T* dqkv, size_t len, size_t heads, size_t d,
                             const float* keep) {
  const size_t e = heads * d, ld = 3 * e;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> p, dp(len * len), ds(len * len);
  for (size_t h = 0; h < heads; ++h) {
    const T* q = qkv + h * d;
    const T* k = qkv + e + h * d;
    const T* v = qkv + 2 * e + h * d;
    attention_probs(q, k, ld, len, d, scale, p);
    for (size_t t = 0; t < len; ++t) {
      double dot = 0;
      for (size_t u = 0; u <= t; ++u) {
        double s = 0;
        for (size_t j = 0; j < d; ++j) s += static_cast<double>(dy[t * e + h * d + j]) * static_cast<double>(v[u * ld + j]);
        if (keep) s *= static_cast<double>(keep[(h * len + t) * len + u]);
        dp[t * len + u] = s;
        dot += p[t * len + u] * s;
      }
      for (size_t u = 0; u <= t; ++u) ds[t * len + u] = p[t * len + u] * (dp[t * len + u] - dot) * scale;
    }
    for (size_t u = 0; u < len; ++u)
      for (size_t j = 0; j < d; ++j) {
        double sv = 0, sk = 0;
        for (size_t t = u; t < len; ++t) {
          const double pt = keep ? p[t * len + u] * static_cast<double>(keep[(h * len + t) * len + u]) : p[t * len + u];
          sv += pt * static_cast<double>(dy[t * e + h * d + j]);
          sk += ds[t * len + u] * static_cast<double>(q[t * ld + j]);
        }
        dqkv[u * ld + 2 * e + h * d + j] = static_cast<T>(sv);
        dqkv[u * ld + e + h * d + j] = static_cast<T>(sk);
      }
    for (size_t t = 0; t < len; ++t)
      for (size_t j = 0; j < d; ++j) {
        double s = 0;
        for (size_t u = 0; u <= t; ++u) s += ds[t * len + u] * static_cast<double>(k[u * ld + j]);
        dqkv[t * ld + h * d + j] = static_cast<T>(s);
      }
  }
}

}  // namespace dtsim::engine::ref
