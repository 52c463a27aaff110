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
#include <vector>

#include "common/json_reader.hpp"
#include "engine/dataset.hpp"
#include "engine/vec.hpp"

namespace dtsim::engine {

// One parameter tensor inside the flat buffer (for layer-wise communication and docs).
struct ParamTensor {
  std::string name;  // e.g. "fc1.weight"
  size_t offset = 0;
  size_t size = 0;
};

struct EvalResult {
  double loss_sum = 0;  // summed cross-entropy
  size_t correct = 0;
  size_t count = 0;
  double loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0; }
};

struct ComputeOptions {
  Device device = Device::Cpu;
  int threads = 1;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string kind() const = 0;
  virtual size_t num_params() const = 0;
  // Forward + backward FLOPs for one training sample (multiply-add = 2 FLOPs).
  virtual double flops_per_sample() const = 0;
  virtual std::vector<ParamTensor> param_tensors() const = 0;
  virtual Device device() const = 0;

  // Deterministic initialisation from `seed` (PyTorch's defaults for each layer kind).
  virtual void init_params(VecView params, uint64_t seed) const = 0;
  // Mean softmax cross-entropy over the batch; writes d(loss)/d(params) into `grads` (overwritten).
  virtual float forward_backward(ConstVecView params, const Batch& batch, VecView grads) = 0;
  // Loss and accuracy over n samples of a split, in chunks; no gradients.
  virtual EvalResult evaluate(ConstVecView params, const Split& split, size_t begin, size_t n) = 0;
};

// Builds a model from its JSON spec, e.g. {"kind":"mlp","hidden":[256,128]}. Unknown kinds or
// options throw InputError at the spec's origin; the reader records the resolved spec.
std::unique_ptr<Model> make_model(ObjectReader& spec, const SampleShape& input, int classes, const ComputeOptions& opts);
// Parameter count and FLOPs without building buffers (timing-only runs).
struct ModelInfo {
  size_t num_params = 0;
  double flops_per_sample = 0;
};
// Reads the spec exactly as make_model does (same validation and resolved values) and reports
// the parameter count and training FLOPs per sample, allocating nothing.
ModelInfo model_info(ObjectReader& spec, const SampleShape& input, int classes);

}  // namespace dtsim::engine
