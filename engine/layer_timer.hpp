// Per-layer timing of a model's training step (`dtsim profile`, docs/profiles.md).
//
// A LayerTimer set on a model (Model::set_layer_timer) hears, during forward_backward only, when
// each pass starts and each time a layer's work ends; the time since the previous call belongs to
// that layer, so the laps of a pass add up to the whole pass (nothing falls between layers).
// Layers are numbered as Graph::layer_costs() lists them (= engine::ModelInfo::layers, the list
// layer-wise timing uses). In a GraphModel (engine/model.cpp) every layer laps at least once per
// pass: forward in increasing, backward in decreasing layer order, and
//   - a layout conversion the model inserted (a oneDNN Reorder) belongs to the layer it was
//     inserted for (its consumer; the final one of the logits: the last layer);
//   - copying the input to the device belongs to the first layer's forward;
//   - the loss (softmax cross-entropy and its gradient) belongs to the last layer's backward, the
//     first to run: the gradient of the output arrives with it;
//   - adding tied weights' gradients into their owners' is one more lap of the first layer's
//     backward, the last to run;
//   - a layer without work (Flatten's view; a backward with no parameters and no gradient to pass
//     on) laps all the same, with (nearly) nothing.
// On the cuda device the model synchronizes the device before every call while a timer is set
// (kernels are asynchronous); with no timer set the model makes no call and no synchronization.
#pragma once
#include <cstddef>
#include <vector>

namespace dtsim::engine {

enum class Pass { Forward, Backward };

class LayerTimer {
 public:
  virtual ~LayerTimer() = default;
  // A pass begins (before its first layer's work).
  virtual void begin(Pass pass) = 0;
  // The work since the previous call of this pass (or since begin) belongs to layer `layer`.
  virtual void lap(Pass pass, size_t layer) = 0;
};

// The timer `dtsim profile` uses: the wall clock (steady_clock) or the calling thread's CPU time,
// summed per layer over one step. clear() before a step; forward()[l] / backward()[l] after it.
class LayerClock final : public LayerTimer {
 public:
  LayerClock(size_t layers, bool thread_cpu);
  void begin(Pass pass) override;
  void lap(Pass pass, size_t layer) override;  // a layer past `layers` throws RuntimeError
  void clear();
  const std::vector<double>& forward() const { return fwd_; }
  const std::vector<double>& backward() const { return bwd_; }

 private:
  double now() const;
  bool thread_cpu_;
  double last_ = 0;
  std::vector<double> fwd_, bwd_;
};

}  // namespace dtsim::engine
