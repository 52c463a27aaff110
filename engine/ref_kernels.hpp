// The reference backend's kernels: plain loops templated on the scalar type, so the very code the
// reference backend runs in float is also run in double by the finite-difference gradient checks
// (tests/engine/test_layers.cpp). Every loop has a fixed summation order: results never depend on
// threads or scheduling. Tensors are batch-major NCHW ([n][c][h][w], row-major).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace dtsim::engine::ref {

// Convolution / pooling geometry (PyTorch semantics: zero padding, floor output size).
struct Geom {
  int c = 1, h = 1, w = 1;     // input channels and spatial size
  int oc = 1, oh = 1, ow = 1;  // output
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  size_t in_size() const { return static_cast<size_t>(c) * h * w; }
  size_t out_size() const { return static_cast<size_t>(oc) * oh * ow; }
};

// Reductions (weight gradients, batch statistics) accumulate in double whatever T is: the reference
// backend is the oracle, so it trades speed for accuracy there.

// Output positions o in [lo, hi) whose input index o*s - p + k falls inside [0, extent).
inline void valid_range(int out_extent, int in_extent, int s, int p, int k, int& lo, int& hi) {
  // o*s >= p - k  and  o*s <= in_extent - 1 + p - k
  const int a = p - k;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  const int b = in_extent - 1 + p - k;
  hi = b < 0 ? 0 : std::min(out_extent, b / s + 1);
  if (hi < lo) hi = lo;
}

// y = conv(x, W) + b. W [oc][c][kh][kw], b [oc] or null.
template <class T>
void conv_forward(const Geom& g, const T* w, const T* b, const T* x, T* y, size_t n) {
  const size_t ohw = static_cast<size_t>(g.oh) * g.ow, hw = static_cast<size_t>(g.h) * g.w;
  for (size_t s = 0; s < n; ++s) {
    const T* xs = x + s * g.in_size();
    T* ys = y + s * g.out_size();
    for (int o = 0; o < g.oc; ++o) {
      T* yo = ys + o * ohw;
      std::fill(yo, yo + ohw, b ? b[o] : T(0));
      for (int c = 0; c < g.c; ++c) {
        const T* xc = xs + c * hw;
        for (int ky = 0; ky < g.kh; ++ky) {
          int oy0, oy1;
          valid_range(g.oh, g.h, g.sh, g.ph, ky, oy0, oy1);
          for (int kx = 0; kx < g.kw; ++kx) {
            int ox0, ox1;
            valid_range(g.ow, g.w, g.sw, g.pw, kx, ox0, ox1);
            const T wv = w[((static_cast<size_t>(o) * g.c + c) * g.kh + ky) * g.kw + kx];
            for (int oy = oy0; oy < oy1; ++oy) {
              const T* xr = xc + static_cast<size_t>(oy * g.sh - g.ph + ky) * g.w - g.pw + kx;
              T* yr = yo + static_cast<size_t>(oy) * g.ow;
              for (int ox = ox0; ox < ox1; ++ox) yr[ox] += wv * xr[static_cast<ptrdiff_t>(ox) * g.sw];
            }
          }
        }
      }
    }
  }
}

// dx = conv^T(dy, W) (overwritten).
template <class T>
void conv_backward_data(const Geom& g, const T* w, const T* dy, T* dx, size_t n) {
  const size_t ohw = static_cast<size_t>(g.oh) * g.ow, hw = static_cast<size_t>(g.h) * g.w;
  std::fill(dx, dx + n * g.in_size(), T(0));
  for (size_t s = 0; s < n; ++s) {
    T* xs = dx + s * g.in_size();
    const T* ys = dy + s * g.out_size();
    for (int c = 0; c < g.c; ++c) {
      T* xc = xs + c * hw;
      for (int o = 0; o < g.oc; ++o) {
        const T* yo = ys + o * ohw;
        for (int ky = 0; ky < g.kh; ++ky) {
          int oy0, oy1;
          valid_range(g.oh, g.h, g.sh, g.ph, ky, oy0, oy1);
          for (int kx = 0; kx < g.kw; ++kx) {
            int ox0, ox1;
            valid_range(g.ow, g.w, g.sw, g.pw, kx, ox0, ox1);
            const T wv = w[((static_cast<size_t>(o) * g.c + c) * g.kh + ky) * g.kw + kx];
            for (int oy = oy0; oy < oy1; ++oy) {
              T* xr = xc + static_cast<size_t>(oy * g.sh - g.ph + ky) * g.w - g.pw + kx;
              const T* yr = yo + static_cast<size_t>(oy) * g.ow;
              for (int ox = ox0; ox < ox1; ++ox) xr[static_cast<ptrdiff_t>(ox) * g.sw] += wv * yr[ox];
            }
          }
        }
      }
    }
  }
}

// dW (and db when non-null) = d(loss)/dW from x and dy (overwritten). Sums over samples in order.
template <class T>
void conv_backward_weights(const Geom& g, const T* x, const T* dy, T* dw, T* db, size_t n) {
  const size_t ohw = static_cast<size_t>(g.oh) * g.ow, hw = static_cast<size_t>(g.h) * g.w;
  std::fill(dw, dw + static_cast<size_t>(g.oc) * g.c * g.kh * g.kw, T(0));
  if (db) std::fill(db, db + g.oc, T(0));
  for (size_t s = 0; s < n; ++s) {
    const T* xs = x + s * g.in_size();
    const T* ys = dy + s * g.out_size();
    for (int o = 0; o < g.oc; ++o) {
      const T* yo = ys + o * ohw;
      if (db) {
        double acc = 0;
        for (size_t i = 0; i < ohw; ++i) acc += yo[i];
        db[o] += static_cast<T>(acc);
      }
      for (int c = 0; c < g.c; ++c) {
        const T* xc = xs + c * hw;
        for (int ky = 0; ky < g.kh; ++ky) {
          int oy0, oy1;
          valid_range(g.oh, g.h, g.sh, g.ph, ky, oy0, oy1);
          for (int kx = 0; kx < g.kw; ++kx) {
            int ox0, ox1;
            valid_range(g.ow, g.w, g.sw, g.pw, kx, ox0, ox1);
            double acc = 0;
            for (int oy = oy0; oy < oy1; ++oy) {
              const T* xr = xc + static_cast<size_t>(oy * g.sh - g.ph + ky) * g.w - g.pw + kx;
              const T* yr = yo + static_cast<size_t>(oy) * g.ow;
              for (int ox = ox0; ox < ox1; ++ox)
                acc += static_cast<double>(yr[ox]) * static_cast<double>(xr[static_cast<ptrdiff_t>(ox) * g.sw]);
            }
            dw[((static_cast<size_t>(o) * g.c + c) * g.kh + ky) * g.kw + kx] += static_cast<T>(acc);
          }
        }
      }
    }
  }
}

// Max pooling (padding counts as -inf; the first maximum in row-major window order wins, as in
// PyTorch). g.oc == g.c.
template <class T>
void maxpool_forward(const Geom& g, const T* x, T* y, size_t n) {
  const size_t hw = static_cast<size_t>(g.h) * g.w;
  for (size_t p = 0; p < n * g.c; ++p) {
    const T* xp = x + p * hw;
    T* yp = y + p * static_cast<size_t>(g.oh) * g.ow;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        T m = -std::numeric_limits<T>::infinity();
        const int y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        for (int ky = std::max(0, -y0); ky < g.kh && y0 + ky < g.h; ++ky)
          for (int kx = std::max(0, -x0); kx < g.kw && x0 + kx < g.w; ++kx) {
            const T v = xp[static_cast<size_t>(y0 + ky) * g.w + (x0 + kx)];
            if (v > m || (std::isnan(v) && !std::isnan(m))) m = v;
          }
        yp[oy * g.ow + ox] = m;
      }
  }
}

// dx: dy routed to the first maximum of each window (recomputed from x), summed where windows
// overlap. Overwrites dx.
template <class T>
void maxpool_backward(const Geom& g, const T* x, const T* dy, T* dx, size_t n) {
  const size_t hw = static_cast<size_t>(g.h) * g.w;
  std::fill(dx, dx + n * g.c * hw, T(0));
  for (size_t p = 0; p < n * g.c; ++p) {
    const T* xp = x + p * hw;
    T* dxp = dx + p * hw;
    const T* dyp = dy + p * static_cast<size_t>(g.oh) * g.ow;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        T m = -std::numeric_limits<T>::infinity();
        size_t arg = static_cast<size_t>(-1);
        const int y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        for (int ky = std::max(0, -y0); ky < g.kh && y0 + ky < g.h; ++ky)
          for (int kx = std::max(0, -x0); kx < g.kw && x0 + kx < g.w; ++kx) {
            const size_t i = static_cast<size_t>(y0 + ky) * g.w + (x0 + kx);
            if (arg == static_cast<size_t>(-1) || xp[i] > m || (std::isnan(xp[i]) && !std::isnan(m))) {
              m = xp[i];
              arg = i;
            }
          }
        if (arg != static_cast<size_t>(-1)) dxp[arg] += dyp[oy * g.ow + ox];
      }
  }
}

// Average pooling, padding included in the divisor (PyTorch's count_include_pad=True).
template <class T>
void avgpool_forward(const Geom& g, const T* x, T* y, size_t n) {
  const size_t hw = static_cast<size_t>(g.h) * g.w;
  const T inv = T(1) / static_cast<T>(g.kh * g.kw);
  for (size_t p = 0; p < n * g.c; ++p) {
    const T* xp = x + p * hw;
    T* yp = y + p * static_cast<size_t>(g.oh) * g.ow;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        T s = 0;
        const int y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        for (int ky = std::max(0, -y0); ky < g.kh && y0 + ky < g.h; ++ky)
          for (int kx = std::max(0, -x0); kx < g.kw && x0 + kx < g.w; ++kx)
            s += xp[static_cast<size_t>(y0 + ky) * g.w + (x0 + kx)];
        yp[oy * g.ow + ox] = s * inv;
      }
  }
}

template <class T>
void avgpool_backward(const Geom& g, const T* dy, T* dx, size_t n) {
  const size_t hw = static_cast<size_t>(g.h) * g.w;
  const T inv = T(1) / static_cast<T>(g.kh * g.kw);
  std::fill(dx, dx + n * g.c * hw, T(0));
  for (size_t p = 0; p < n * g.c; ++p) {
    T* dxp = dx + p * hw;
    const T* dyp = dy + p * static_cast<size_t>(g.oh) * g.ow;
    for (int oy = 0; oy < g.oh; ++oy)
      for (int ox = 0; ox < g.ow; ++ox) {
        const T v = dyp[oy * g.ow + ox] * inv;
        const int y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        for (int ky = std::max(0, -y0); ky < g.kh && y0 + ky < g.h; ++ky)
          for (int kx = std::max(0, -x0); kx < g.kw && x0 + kx < g.w; ++kx)
            dxp[static_cast<size_t>(y0 + ky) * g.w + (x0 + kx)] += v;
      }
  }
}

// Per-channel batch statistics over (n, h, w): mean and biased variance (two passes).
template <class T>
void bn_stats(int c, size_t hw, const T* x, size_t n, T* mean, T* var) {
  const double m = static_cast<double>(n * hw);
  for (int ch = 0; ch < c; ++ch) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      for (size_t j = 0; j < hw; ++j) s += p[j];
    }
    const double mu = s / m;
    double q = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      for (size_t j = 0; j < hw; ++j) q += (p[j] - mu) * (p[j] - mu);
    }
    mean[ch] = static_cast<T>(mu);
    var[ch] = static_cast<T>(q / m);
  }
}

// y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel.
template <class T>
void bn_apply(int c, size_t hw, const T* x, size_t n, const T* gamma, const T* beta, const T* mean, const T* var,
              T eps, T* y) {
  for (int ch = 0; ch < c; ++ch) {
    const T inv = T(1) / std::sqrt(var[ch] + eps);
    const T a = gamma[ch] * inv, b = beta[ch] - mean[ch] * a;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      T* q = y + (i * c + ch) * hw;
      for (size_t j = 0; j < hw; ++j) q[j] = p[j] * a + b;
    }
  }
}

// Training-mode backward (batch statistics recomputed from x): dgamma, dbeta (overwritten) and,
// when dx is non-null, dx = gamma/sqrt(var+eps) * (dy - mean(dy) - xhat * mean(dy * xhat)).
template <class T>
void bn_backward_train(int c, size_t hw, const T* x, const T* dy, size_t n, const T* gamma, T eps, T* dx, T* dgamma,
                       T* dbeta, T* mean_buf, T* var_buf) {
  bn_stats(c, hw, x, n, mean_buf, var_buf);
  const T m = static_cast<T>(n * hw);
  for (int ch = 0; ch < c; ++ch) {
    const T mu = mean_buf[ch], inv = T(1) / std::sqrt(var_buf[ch] + eps);
    double sdy_d = 0, sdyx_d = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      const T* d = dy + (i * c + ch) * hw;
      for (size_t j = 0; j < hw; ++j) {
        sdy_d += d[j];
        sdyx_d += static_cast<double>(d[j]) * static_cast<double>(p[j] - mu);
      }
    }
    const T sdy = static_cast<T>(sdy_d), sdyx = static_cast<T>(sdyx_d * static_cast<double>(inv));  // sum(dy * xhat)
    dgamma[ch] = sdyx;
    dbeta[ch] = sdy;
    if (!dx) continue;
    const T k = gamma[ch] * inv, mdy = sdy / m, mdyx = sdyx / m;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      const T* d = dy + (i * c + ch) * hw;
      T* q = dx + (i * c + ch) * hw;
      for (size_t j = 0; j < hw; ++j) q[j] = k * (d[j] - mdy - (p[j] - mu) * inv * mdyx);
    }
  }
}

// Eval-mode backward (fixed statistics): dx = gamma/sqrt(var+eps) * dy.
template <class T>
void bn_backward_eval(int c, size_t hw, const T* x, const T* dy, size_t n, const T* gamma, const T* mean,
                      const T* var, T eps, T* dx, T* dgamma, T* dbeta) {
  for (int ch = 0; ch < c; ++ch) {
    const T inv = T(1) / std::sqrt(var[ch] + eps);
    double sdy = 0, sdyx = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * hw;
      const T* d = dy + (i * c + ch) * hw;
      T* q = dx ? dx + (i * c + ch) * hw : nullptr;
      for (size_t j = 0; j < hw; ++j) {
        sdy += d[j];
        sdyx += static_cast<double>(d[j]) * static_cast<double>((p[j] - mean[ch]) * inv);
        if (q) q[j] = gamma[ch] * inv * d[j];
      }
    }
    dgamma[ch] = static_cast<T>(sdyx);
    dbeta[ch] = static_cast<T>(sdy);
  }
}

// Option-A ResNet shortcut (He et al. 2016, CIFAR): x[:, :, ::s, ::s] with `before` zero channels
// in front and `after` behind (PyTorch: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))).
template <class T>
void subsample_pad_forward(const Geom& g, int before, const T* x, T* y, size_t n) {
  const size_t ohw = static_cast<size_t>(g.oh) * g.ow, hw = static_cast<size_t>(g.h) * g.w;
  std::fill(y, y + n * g.out_size(), T(0));
  for (size_t s = 0; s < n; ++s)
    for (int c = 0; c < g.c; ++c) {
      const T* xc = x + s * g.in_size() + c * hw;
      T* yc = y + s * g.out_size() + (c + before) * ohw;
      for (int oy = 0; oy < g.oh; ++oy)
        for (int ox = 0; ox < g.ow; ++ox) yc[oy * g.ow + ox] = xc[static_cast<size_t>(oy * g.sh) * g.w + ox * g.sw];
    }
}

template <class T>
void subsample_pad_backward(const Geom& g, int before, const T* dy, T* dx, size_t n) {
  const size_t ohw = static_cast<size_t>(g.oh) * g.ow, hw = static_cast<size_t>(g.h) * g.w;
  std::fill(dx, dx + n * g.in_size(), T(0));
  for (size_t s = 0; s < n; ++s)
    for (int c = 0; c < g.c; ++c) {
      T* xc = dx + s * g.in_size() + c * hw;
      const T* yc = dy + s * g.out_size() + (c + before) * ohw;
      for (int oy = 0; oy < g.oh; ++oy)
        for (int ox = 0; ox < g.ow; ++ox) xc[static_cast<size_t>(oy * g.sh) * g.w + ox * g.sw] = yc[oy * g.ow + ox];
    }
}

}  // namespace dtsim::engine::ref
