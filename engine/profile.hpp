// Compute profiles: measured forward / backward / update times of one model at one batch size on
// one device (`dtsim profile`), stored as JSON (traces/profiles/<model>-<device>-b<B>.json), and
// used by the timing model (`compute.time.kind: "profile"`). See docs/engine.md and
// docs/profiles.md ("Compute profiles": the per-layer times).
#pragma once
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/dataset.hpp"
#include "engine/model.hpp"

namespace dtsim::engine {

// One layer's share of a measured step (ComputeProfile::layers): the layers of ModelInfo::layers
// (= Graph::layer_costs()), in that order. Seconds per minibatch of ComputeProfile::batch samples.
struct LayerTime {
  std::string name;
  std::string type;
  double forward_s = 0;
  double backward_s = 0;
};

struct ComputeProfile {
  std::string model_kind;   // e.g. "resnet20"
  json model;               // the resolved model spec
  SampleShape input;
  int classes = 0;
  int batch = 0;
  std::string device;       // "cpu" | "reference" | "cuda"
  std::string device_name;  // e.g. "AMD EPYC 9B14 (oneDNN avx512_core_bf16)" or the GPU's name
  int threads = 1;
  std::string isa;
  // Medians over `steps` measured steps after `warmup` unmeasured ones (seconds).
  double forward_s = 0;   // forward pass (training mode)
  double backward_s = 0;  // the loss and the backward pass (all parameter gradients)
  double update_s = 0;    // optimizer step (SGD, momentum 0.9, weight decay 5e-4) over all parameters
  double step_s = 0;      // a whole training step, measured as such
  int steps = 0, warmup = 0;
  std::string clock = "wall";  // "wall" | "thread-cpu" (the calling thread's CPU time: 1 host thread)
  // Per layer (empty in profiles written before they were measured): medians over `steps` more
  // steps timed layer by layer (engine/layer_timer.hpp), each pass's scaled by one factor so that
  // they add up exactly to forward_s and backward_s; the factors (the totals over the sums of the
  // unscaled medians) are layer_scale_forward / _backward (0: not recorded, a hand-written file).
  // A file's layers must add up to forward_s and backward_s within 1 %.
  std::vector<LayerTime> layers;
  double layer_scale_forward = 0, layer_scale_backward = 0;
  // The simulated compute time of one minibatch of `b` samples: forward + backward, scaled
  // linearly by b / batch when b differs from the measured batch.
  double compute_seconds(int b) const;
};

json to_json(const ComputeProfile& p);
// Reads and validates a profile file; InputError(file, key, reason) on any problem.
// Per-layer times are optional (older profiles have none).
ComputeProfile read_compute_profile(const std::string& file);
// Builds the model from `spec` and measures it on random data (fixed seed): `steps` steps timed
// pass by pass (forward_s, backward_s, update_s), `steps` whole steps (step_s), then `steps` steps
// timed layer by layer (layers).
// Model spec errors are InputErrors at `origin` (e.g. {"MODEL", ""} for the command line).
// With thread_cpu, times are the calling thread's CPU time instead of wall-clock time: robust on a
// shared, busy machine, valid for a host device with one thread only (InputError otherwise).
ComputeProfile measure_compute_profile(const json& spec, const JsonOrigin& origin, const SampleShape& input,
                                       int classes, int batch, const ComputeOptions& opts, int steps = 20,
                                       int warmup = 5, bool thread_cpu = false);
// Checks a profile's layers (ComputeProfile::layers) against the layer list of the model `kind`
// (ModelInfo::layers): the same count and names in the same order; none: nothing to check.
// InputError(file, "layers" or "layers[i].name", reason).
void check_profile_layers(const std::vector<LayerTime>& layers, const std::vector<LayerCost>& model_layers,
                          const std::string& kind, const std::string& file);
// "<kind>-<device>-b<batch>.json".
std::string default_profile_name(const ComputeProfile& p);

}  // namespace dtsim::engine
