#include "sim/preflight.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include "algorithms/api.hpp"
#include "engine/model.hpp"
#include "sim/runtime.hpp"

namespace dtsim::sim {

namespace {

std::string at(const std::string& file, const std::string& path, const std::string& reason) {
  return InputError(file, path, reason).what();
}

std::string num(uint64_t v) { return std::to_string(v); }

// "the run's 50 steps (ceil(12800 samples / (8 workers x batch 32)))"
std::string steps_text(const Experiment& x) {
  return "the run's " + std::to_string(sync_steps(x)) + " steps (ceil(" + num(x.training.samples) + " samples / (" +
         std::to_string(x.platform.workers.count) + " workers x batch " + std::to_string(x.training.batch_size) + ")))";
}

// An integer parameter of the algorithm, defaults filled in by its factory (Experiment::algorithm_spec).
std::optional<int64_t> algorithm_int(const Experiment& x, const char* key) {
  const auto it = x.algorithm_spec.find(key);
  if (it == x.algorithm_spec.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::unique_ptr<algo::Algorithm> make_algorithm(const Experiment& x) {
  const auto* info = algo::find_algorithm(x.algorithm);
  if (!info) throw InputError(x.file, "algorithm.name", "unknown algorithm '" + x.algorithm + "'");
  json spec = x.algorithm_spec;
  ObjectReader r(spec, {x.file, "algorithm"});
  r.accept("name");
  r.accept("clip_grad_norm");
  return info->make(r);
}

}  // namespace

int64_t sync_steps(const Experiment& x) {
  const uint64_t per_step = static_cast<uint64_t>(std::max(1, x.platform.workers.count)) *
                            static_cast<uint64_t>(std::max(1, x.training.batch_size));
  return static_cast<int64_t>((x.training.samples + per_step - 1) / per_step);
}

bool trace_enabled(const Experiment& x, int shards) {
  const double events = static_cast<double>(sync_steps(x)) * x.platform.workers.count * (3.0 + 4.0 * std::max(1, shards));
  return x.output.trace == OutputSpec::Trace::On ||
         (x.output.trace == OutputSpec::Trace::Auto && events <= static_cast<double>(x.output.trace_max_events));
}

std::vector<std::string> config_warnings(const Experiment& x) {
  std::vector<std::string> w = x.platform.warnings;  // plain numbers, straggler indices
  const TrainingSpec& t = x.training;
  const int64_t T = sync_steps(x);
  const uint64_t per_step = static_cast<uint64_t>(x.platform.workers.count) * static_cast<uint64_t>(t.batch_size);

  // ---- the budget
  if (t.samples < per_step)
    w.push_back(at(x.file, "training.samples",
                   "the budget (" + num(t.samples) + " samples) is less than one step of every worker (" +
                       std::to_string(x.platform.workers.count) + " workers x batch " + std::to_string(t.batch_size) + " = " +
                       num(per_step) + "): the run computes one step, " + num(per_step) + " samples"));
  if (!t.target_accuracy.empty() && !x.compute.real)
    w.push_back(at(x.file, "training.target_accuracy",
                   "compute.mode \"timing-only\" measures no accuracy: time_to_accuracy_s stays null"));
  else if (!t.target_accuracy.empty() && (t.eval_every_samples == 0 || t.eval_every_samples >= t.samples))
    w.push_back(at(x.file, "training.eval_every_samples",
                   (t.eval_every_samples == 0 ? std::string("0 (evaluate only at the end)")
                                              : num(t.eval_every_samples) + " is at least the budget (" + num(t.samples) + " samples)") +
                       ": the target accuracy is only checked on the final model, so time_to_accuracy_s is the run's end "
                       "or null; evaluate more often (e.g. " + num(std::max<uint64_t>(1, t.samples / 10)) + ")"));
  if (t.checkpoint_every_samples > t.samples)
    w.push_back(at(x.file, "training.checkpoint_every_samples",
                   num(t.checkpoint_every_samples) + " exceeds the budget (" + num(t.samples) + " samples): no checkpoint is written"));

  // ---- the algorithm's parameters, by key (docs/config.md, "Warnings and refusals")
  if (const auto warmup = algorithm_int(x, "warmup_steps"); warmup && *warmup >= T)  // od-sgd, ssd-sgd
    w.push_back(at(x.file, "algorithm.warmup_steps",
                   std::to_string(*warmup) + " is at least " + steps_text(x) + ": the whole run is the plain-SSGD warm-up and no " +
                       x.algorithm + " step happens; lower warmup_steps or raise the budget"));
  if (const auto period = algorithm_int(x, "period"); period && *period >= T && x.algorithm != "easgd")
    // local-sgd, diloco, streaming-diloco, dasgd, cocod-sgd: each ends its run with one more average.
    w.push_back(at(x.file, "algorithm.period",
                   std::to_string(*period) + " is at least " + steps_text(x) + ": one round, so " + x.algorithm +
                       " averages the workers' models only once, at the end (one-shot averaging)"));
  if (const auto period = algorithm_int(x, "period"); period && *period >= T && x.algorithm == "easgd") {
    const bool sync = x.algorithm_spec.value("sync", false);
    const std::string why = std::to_string(*period) + " is at least " + steps_text(x) +
                            ": the only elastic exchange is at step 0, where every worker still holds the initial model, so "
                            "the centre (the global model, the run's result) never moves";
    if (sync) throw InputError(x.file, "algorithm.period", why + "; use a period below " + std::to_string(T));
    w.push_back(at(x.file, "algorithm.period", why + " unless a fast worker passes step " + std::to_string(*period)));
  }
  return w;
}

std::string warnings_text(const Experiment& x) {
  std::string s;
  for (const auto& w : x.warnings) s += "warning: " + w + "\n";
  return s;
}

std::string warnings_count(const Experiment& x) {
  if (x.warnings.empty()) return "";
  return " (" + std::to_string(x.warnings.size()) + (x.warnings.size() == 1 ? " warning)" : " warnings)");
}

void preflight(const Experiment& x, const PreflightOptions& options) {
  const auto algorithm = make_algorithm(x);
  if (x.training.checkpoint_every_samples > 0 && !algorithm->checkpointable())
    throw InputError(x.file, "training.checkpoint_every_samples", not_checkpointable_reason(x.algorithm, *algorithm));
  // The memory estimate, as sim::run makes it before allocating anything.
  const auto [shape, classes] = dataset_shape(x.dataset);
  json model_spec = x.model;
  ObjectReader mr(model_spec, {x.file, "model"});
  const size_t params = engine::model_info(mr, shape, classes).num_params;
  const int shards = algorithm->needs_servers() ? x.platform.servers.count : 0;
  check_memory(x, estimate_memory(x, params, algorithm->buffers_per_worker(), shards, trace_enabled(x, shards)),
               available_memory_bytes());
  if (options.load_dataset && x.compute.real) (void)load_dataset(x.dataset, x.seed);
}

}  // namespace dtsim::sim
