#include "engine/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"

namespace dtsim::engine {

namespace {
constexpr double kPi = 3.14159265358979323846;
// PyTorch's _annealing_cos: from `start` (pct 0) to `end` (pct 1) along half a cosine.
double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0); }
}  // namespace

const std::vector<std::string>& LrSchedule::kinds() {
  static const std::vector<std::string> k{"constant", "step", "poly", "cosine", "one-cycle"};
  return k;
}

LrSchedule LrSchedule::read(ObjectReader& r) {
  LrSchedule s;
  const std::string kind = r.choice("kind", kinds());
  if (kind == "step") {
    s.kind_ = Kind::Step;
    s.milestones_ = r.number_list("milestones_epochs");
    for (size_t i = 0; i < s.milestones_.size(); ++i) {
      if (!(s.milestones_[i] > 0)) r.origin().child("milestones_epochs").index(i).fail("a milestone must be positive");
      if (i > 0 && !(s.milestones_[i] > s.milestones_[i - 1]))
        r.origin().child("milestones_epochs").index(i).fail("milestones must be strictly increasing");
    }
    s.gamma_ = r.number("gamma", 0.1);
    r.require_positive("gamma", s.gamma_);
  } else if (kind == "poly") {
    s.kind_ = Kind::Poly;
    s.power_ = r.number("power", 1.0);
    r.require_positive("power", s.power_);
    s.end_lr_ = r.number("end_lr", 0.0);
    r.require_non_negative("end_lr", s.end_lr_);
  } else if (kind == "cosine") {
    s.kind_ = Kind::Cosine;
    s.min_lr_ = r.number("min_lr", 0.0);
    r.require_non_negative("min_lr", s.min_lr_);
  } else if (kind == "one-cycle") {
    s.kind_ = Kind::OneCycle;
    s.pct_start_ = r.number("pct_start", 0.3);
    if (!(s.pct_start_ > 0 && s.pct_start_ < 1)) r.fail("pct_start", "must be in (0, 1)");
    s.div_factor_ = r.number("div_factor", 25.0);
    r.require_positive("div_factor", s.div_factor_);
    s.final_div_factor_ = r.number("final_div_factor", 1e4);
    r.require_positive("final_div_factor", s.final_div_factor_);
  }
  if (s.kind_ != Kind::OneCycle) {  // one-cycle has its own warm-up phase
    s.warmup_epochs_ = r.number("warmup_epochs", 0.0);
    r.require_non_negative("warmup_epochs", s.warmup_epochs_);
    s.warmup_start_factor_ = r.number("warmup_start_factor", 0.0);
    r.require_range("warmup_start_factor", s.warmup_start_factor_, 0.0, 1.0);
  }
  if (s.kind_ == Kind::Poly || s.kind_ == Kind::Cosine || s.kind_ == Kind::OneCycle) {
    if (auto t = r.opt_number("total_epochs")) {
      if (!(*t > s.warmup_epochs_)) r.fail("total_epochs", "must be larger than warmup_epochs (and positive)");
      s.total_epochs_ = *t;
    }
  }
  return s;
}

double LrSchedule::decayed(double b, double e, double total) const {
  const double w = warmup_epochs_;
  const double p = total > w ? std::clamp((e - w) / (total - w), 0.0, 1.0) : 1.0;
  switch (kind_) {
    case Kind::Constant: return b;
    case Kind::Step: {
      const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), e) - milestones_.begin();
      return b * std::pow(gamma_, static_cast<double>(passed));
    }
    case Kind::Poly: return end_lr_ + (b - end_lr_) * std::pow(1.0 - p, power_);
    case Kind::Cosine: return min_lr_ + (b - min_lr_) * (1.0 + std::cos(kPi * p)) / 2.0;
    case Kind::OneCycle: {
      const double initial = b / div_factor_, final_lr = initial / final_div_factor_;
      const double q = total > 0 ? std::clamp(e / total, 0.0, 1.0) : 1.0;
      if (q <= pct_start_) return anneal_cos(initial, b, q / pct_start_);
      return anneal_cos(b, final_lr, (q - pct_start_) / (1.0 - pct_start_));
    }
  }
  return b;
}

double LrSchedule::lr(double base_lr, double epoch, double total_epochs) const {
  const double total = total_epochs_ > 0 ? total_epochs_ : total_epochs;
  const double e = std::max(0.0, epoch);
  double v = decayed(base_lr, e, total);
  if (warmup_epochs_ > 0 && e < warmup_epochs_)
    v *= warmup_start_factor_ + (1.0 - warmup_start_factor_) * e / warmup_epochs_;
  return v;
}

}  // namespace dtsim::engine
