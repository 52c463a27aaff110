// The "profile" model kind: a timing-only model whose parameter tensors, layers and measured
// per-layer times come from a model profile written by tools/torch_profile.py (format
// "dtsim-model-profile/1", docs/profiles.md), e.g. a user's PyTorch model:
//   "model": {"kind": "profile", "path": "mymodel.profile.json"}
// It has no compute path (compute.mode "timing-only"). With compute.time.kind "profile" and no
// profile file, its own measured step time is used (sim/config.cpp).
#pragma once
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/model.hpp"

namespace dtsim::engine {

struct ProfiledTensor {
  std::string name;
  std::vector<int64_t> shape;
  size_t elements = 0;
};

struct ProfiledLayer {
  std::string name, type;
  std::vector<size_t> tensors;  // indices into ModelProfile::tensors
  double forward_flops = 0, backward_input_flops = 0, backward_weight_flops = 0;  // per sample
  std::vector<double> forward_s, backward_s;  // seconds per minibatch, one per ModelProfile::batches
};

struct ModelProfile {
  std::string file;  // where it was read from (messages)
  std::string name, source, framework, device, device_name;
  int threads = 0;
  std::vector<int64_t> input;
  std::vector<ProfiledTensor> tensors;  // registration (buffer) order
  size_t num_params = 0;
  std::vector<int> batches;             // measured batch sizes, increasing
  std::vector<ProfiledLayer> layers;    // execution (forward) order
  // Hook-free whole-step medians per batch (optional in the file; empty when absent).
  std::vector<double> step_forward_s, step_backward_s, step_update_s;

  // Forward + backward seconds of one minibatch of b samples, interpolated (docs/profiles.md):
  // one measured batch: scaled linearly (t * b / B); several: piecewise linear between them,
  // proportional below the smallest, extended along the last segment above the largest.
  double step_seconds(int b) const;
  // The same for one layer's forward or backward.
  double layer_forward_s(size_t layer, int b) const;
  double layer_backward_s(size_t layer, int b) const;
  double flops_per_sample() const;
};

// Reads and checks a model profile: InputError(file, json.path, reason) for malformed JSON,
// missing keys, wrong types, negative times, tensor sizes that do not add up, layer tensor indices
// out of range or owned twice.
ModelProfile read_model_profile(const std::string& file);

// Whether a model spec is {"kind": "profile", ...}.
inline bool is_profile_spec(const json& spec) {
  const auto it = spec.is_object() ? spec.find("kind") : spec.end();
  return spec.is_object() && it != spec.end() && it->is_string() && it->get<std::string>() == "profile";
}

// The ModelInfo of {"kind": "profile", "path": FILE[, "batch": B]}: layers carry their measured
// times interpolated at batch B (default: the profile's first measured batch), measured_batch = B.
// `path` is taken as given (sim/config.cpp resolves it against the config file's directory).
ModelInfo profile_model_info(ObjectReader& spec);

// Interpolation helper (exposed for tests): value at b from (batches[i], values[i]).
double interpolate_batch(const std::vector<int>& batches, const std::vector<double>& values, int b);

}  // namespace dtsim::engine
