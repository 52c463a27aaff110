// A relative tolerance for doctest checks. doctest's Approx(x).epsilon(e) accepts
// |a - x| < e * (1 + max(|a|, |x|)): for values below 1 (simulated seconds per step, byte shares,
// small activations) that is an absolute e, so `.epsilon(1e-6)` on values near 1e-5 accepted a
// 10 % error and hid a defect (tests/cli/test_checkpoint.cpp, exposed_comm_s_per_step). Rel(x) is
// relative: |a - x| <= e * max(|a|, |x|) (equal values pass, 0 included). Same spelling:
// CHECK(a == Rel(x).epsilon(1e-9)); the default e is doctest's (100 float epsilons).
#pragma once
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <ostream>

namespace dtsim_test {

struct Rel {
  explicit Rel(double v) : value(v) {}
  Rel& epsilon(double e) {
    eps = e;
    return *this;
  }
  double value;
  double eps = 100.0 * FLT_EPSILON;
};

inline bool operator==(double a, const Rel& r) {
  return a == r.value || std::fabs(a - r.value) <= r.eps * std::max(std::fabs(a), std::fabs(r.value));
}
inline bool operator==(const Rel& r, double a) { return a == r; }
inline bool operator!=(double a, const Rel& r) { return !(a == r); }
inline bool operator!=(const Rel& r, double a) { return !(a == r); }
inline std::ostream& operator<<(std::ostream& os, const Rel& r) {
  return os << "Rel(" << r.value << ", relative " << r.eps << ")";
}

}  // namespace dtsim_test
