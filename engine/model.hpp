// Models: a stateless function of (parameters, batch) plus a reusable workspace.
//
// Parameters and gradients live in caller-owned flat buffers (engine/vec.hpp), in model order,
// so one Model instance serves every simulated worker: all workers share the one real device and
// compute in turn. Layers follow Caffe's contract: shape inference at construction, then
// forward/backward per backend; the reference backend (plain loops) is always built and is the
// oracle for tests, the cpu backend uses oneDNN, the cuda backend cuBLAS + cuDNN.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/dataset.hpp"
#include "engine/vec.hpp"

namespace dtsim::engine {

class LayerTimer;  // engine/layer_timer.hpp

// One parameter tensor inside the flat buffer (for layer-wise communication and docs).
struct ParamTensor {
  std::string name;  // e.g. "fc1.weight"
  size_t offset = 0;
  size_t size = 0;
};

// One layer of a training step, in execution (forward) order: what layer-wise timing needs
// (docs/timing.md). FLOPs are per sample (multiply-add = 2); a layer's backward is its
// input-gradient part plus its weight-gradient part. The three sum, over all layers, to
// Model::flops_per_sample(). `tensors` are the indices of the layer's own parameter tensors in
// param_tensors() (empty for a layer without parameters). Measured times (a profiled model,
// `"model": {"kind": "profile"}`) are seconds per minibatch of ModelInfo::measured_batch samples;
// negative when not measured.
struct LayerCost {
  std::string name;  // e.g. "layer1.0.conv1"
  std::string type;  // the layer kind, e.g. "conv2d", "linear", "batchnorm2d", "relu"
  double forward_flops = 0;
  double backward_input_flops = 0;
  double backward_weight_flops = 0;
  std::vector<size_t> tensors;
  double forward_s = -1;
  double backward_s = -1;
};

struct EvalResult {
  double loss_sum = 0;  // summed cross-entropy (per sample: the mean over its predictions)
  size_t correct = 0;   // argmax hits, over all predictions
  size_t count = 0;     // samples
  size_t per_sample = 1;  // predictions per sample (a language model: one per position)
  double loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double accuracy() const {
    return count ? static_cast<double>(correct) / static_cast<double>(count * per_sample) : 0.0;
  }
};

struct ComputeOptions {
  Device device = Device::Cpu;
  int threads = 1;
};

// Split of the last training step (for `dtsim profile`); zero unless enabled. Wall clock, and
// the calling thread's CPU time (meaningful for one thread on a shared machine).
struct StepTimes {
  double forward_s = 0;
  double backward_s = 0;
  double forward_cpu_s = 0;
  double backward_cpu_s = 0;
};
// The calling thread's CPU time in seconds.
double thread_cpu_seconds();

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string kind() const = 0;
  virtual size_t num_params() const = 0;
  // Forward + backward FLOPs for one training sample (multiply-add = 2 FLOPs).
  virtual double flops_per_sample() const = 0;
  virtual std::vector<ParamTensor> param_tensors() const = 0;
  virtual Device device() const = 0;
  // Labels per sample (Batch::targets): 1 for a classifier, one per token for a sequence model
  // (gpt: the input's C positions, each predicting the next token; its input values are token ids).
  virtual size_t positions() const { return 1; }

  // Deterministic initialisation from `seed` (PyTorch's defaults for each layer kind).
  virtual void init_params(VecView params, uint64_t seed) const = 0;
  // Mean softmax cross-entropy over the batch; writes d(loss)/d(params) into `grads` (overwritten).
  // Models with state (BatchNorm) use, and update, their own state buffer (default_state()).
  virtual float forward_backward(ConstVecView params, const Batch& batch, VecView grads) = 0;
  // Loss and accuracy over n samples of a split, in chunks; no gradients. Models with state
  // normalise with their own state buffer.
  virtual EvalResult evaluate(ConstVecView params, const Split& split, size_t begin, size_t n) = 0;

  // ---- non-trainable state: BatchNorm running statistics (docs/engine.md, "Model state")
  // num_state() floats in model order (per BatchNorm layer: running_mean [C], running_var [C]).
  // It is not a parameter: not in the gradient, not touched by optimizers; whoever owns a model
  // copy owns a state buffer next to it (e.g. one per worker) and passes it explicitly.
  virtual size_t num_state() const { return 0; }
  virtual std::vector<ParamTensor> state_tensors() const { return {}; }
  // Initial state (running mean 0, running variance 1).
  virtual void init_state(VecView state) const;
  // Training step with an explicit state buffer, updated in place (running statistics).
  virtual float forward_backward(ConstVecView params, VecView state, const Batch& batch, VecView grads);
  // Evaluation (eval mode: BatchNorm normalises with `state`).
  virtual EvalResult evaluate(ConstVecView params, ConstVecView state, const Split& split, size_t begin, size_t n);
  // The model's own state buffer, used by the overloads without a state argument (empty when
  // num_state() == 0). Every such call updates it, whichever worker makes it.
  virtual VecView default_state() { return {}; }

  // Wall-clock timing of forward and backward (dtsim profile); off by default.
  virtual void enable_step_timing(bool /*on*/) {}
  virtual StepTimes last_step_times() const { return {}; }
  // Per-layer laps of every later training step (forward_backward; not evaluate) go to `timer`
  // (not owned; nullptr: none, the default). engine/layer_timer.hpp says what each lap holds.
  // Models without per-layer timing throw RuntimeError.
  virtual void set_layer_timer(LayerTimer* timer);
};

// Builds a model from its JSON spec, e.g. {"kind":"mlp","hidden":[256,128]}. Unknown kinds or
// options throw InputError at the spec's origin; the reader records the resolved spec. Timing-only
// descriptors (resnet50, resnet101, vgg16-imagenet, alexnet) throw InputError at "<origin>.kind":
// they have no compute path (use model_info).
std::unique_ptr<Model> make_model(ObjectReader& spec, const SampleShape& input, int classes, const ComputeOptions& opts);
// Parameter count and FLOPs without building buffers (timing-only runs).
struct ModelInfo {
  std::string kind;
  size_t num_params = 0;
  size_t num_state = 0;
  double flops_per_sample = 0;
  std::vector<ParamTensor> param_tensors;  // per-layer parameter tensors, in buffer order
  bool timing_only = false;                // a descriptor make_model refuses to build
  std::vector<LayerCost> layers;           // execution order (layer-wise timing, docs/timing.md)
  int measured_batch = 0;                  // batch of the layers' measured times (0: none measured)
};
// Reads the spec exactly as make_model does (same validation and resolved values) and reports
// the parameter count and training FLOPs per sample, allocating no buffers. Works for every kind,
// timing-only descriptors included.
ModelInfo model_info(ObjectReader& spec, const SampleShape& input, int classes);
// Every model kind, and whether it is a timing-only descriptor.
std::vector<std::pair<std::string, bool>> model_kinds_info();

}  // namespace dtsim::engine
