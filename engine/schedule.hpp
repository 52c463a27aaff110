// Learning-rate schedules of the papers, as a function of training progress in epochs (fractional:
// samples processed / training-set size), so synchronous and asynchronous algorithms, whatever
// their batch sizes, follow the same curve. Read from a JSON object, e.g.
//   {"kind": "step", "milestones_epochs": [80, 120], "gamma": 0.1, "warmup_epochs": 5}
//
// With base learning rate b (the optimizer's lr), run length T epochs, warm-up W epochs, progress
// p = clamp((e - W) / (T - W), 0, 1) after the warm-up:
//   constant   b
//   step       b * gamma^(number of milestones <= e)                  (PyTorch MultiStepLR)
//   poly       end_lr + (b - end_lr) * (1 - p)^power                   (Goyal/LARS polynomial decay)
//   cosine     min_lr + (b - min_lr) * (1 + cos(pi p)) / 2              (SGDR without restarts)
//   one-cycle  PyTorch OneCycleLR (cosine, two phases) on progress e/T: from b/div_factor up to b
//              over the first pct_start of the run, then down to b/(div_factor*final_div_factor)
// and, for every kind but one-cycle, a linear warm-up over the first W epochs: the value above
// times f + (1 - f) e / W, with f = warmup_start_factor (default 0, i.e. from 0; Goyal et al. use
// 1/k to start from the single-worker rate).
#pragma once
#include <string>
#include <vector>

#include "common/json_reader.hpp"

namespace dtsim::engine {

class LrSchedule {
 public:
  enum class Kind { Constant, Step, Poly, Cosine, OneCycle };

  LrSchedule() = default;  // constant, no warm-up
  // Reads a schedule object (every key through the reader: finish() is the caller's).
  static LrSchedule read(ObjectReader& r);
  static const std::vector<std::string>& kinds();

  // The learning rate at `epoch` of a run of `total_epochs` (used by poly, cosine and one-cycle,
  // unless the schedule sets its own total_epochs), for base learning rate `base_lr`.
  double lr(double base_lr, double epoch, double total_epochs) const;

  Kind kind() const { return kind_; }
  bool is_constant() const { return kind_ == Kind::Constant && warmup_epochs_ == 0; }

 private:
  double decayed(double base_lr, double epoch, double total) const;
  Kind kind_ = Kind::Constant;
  std::vector<double> milestones_;
  double gamma_ = 0.1;
  double power_ = 1.0, end_lr_ = 0.0;
  double min_lr_ = 0.0;
  double pct_start_ = 0.3, div_factor_ = 25.0, final_div_factor_ = 1e4;
  double warmup_epochs_ = 0.0, warmup_start_factor_ = 0.0;
  double total_epochs_ = 0.0;  // 0: the run's
};

}  // namespace dtsim::engine
