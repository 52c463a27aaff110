#include "sim/preflight.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "algorithms/api.hpp"
#include "engine/model.hpp"
#include "sim/grouping.hpp"
#include "sim/platform.hpp"
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

}  // namespace

std::unique_ptr<algo::Algorithm> make_algorithm(const Experiment& x) {
  const auto* info = algo::find_algorithm(x.algorithm);
  if (!info) throw InputError(x.file, "algorithm.name", "unknown algorithm '" + x.algorithm + "'");
  json spec = x.algorithm_spec;
  ObjectReader r(spec, {x.file, "algorithm"});
  r.accept("name");
  r.accept("clip_grad_norm");
  return info->make(r);
}

namespace {

// The model's parameter tensors and counts, as the runtime reads them (no buffers allocated).
engine::ModelInfo model_info_of(const Experiment& x) {
  const auto [shape, classes] = dataset_shape(x.dataset);
  json model_spec = x.model;
  ObjectReader mr(model_spec, {x.file, "model"});
  return engine::model_info(mr, shape, classes);
}

int shards_of(const Experiment& x, const algo::Algorithm& a) { return a.needs_servers() ? x.platform.servers.count : 0; }

// The memory estimate, as sim::run makes it before allocating anything.
MemoryEstimate memory_of(const Experiment& x, const algo::Algorithm& a, size_t params) {
  const int shards = shards_of(x, a);
  return estimate_memory(x, params, a.buffers_per_worker(), shards, trace_enabled(x, shards));
}

}  // namespace

// A minibatch must take a finite simulated time. Finite but extreme settings (a fixed time of
// 1e299 s on a 10 Gflop/s host, a speed of 1e-310 flop/s, a slowdown of 1e308) overflowed to inf
// inside SimGrid, and the run ended as a "deadlock at simulated time inf" (exit 1).
void check_step_times(const Experiment& x) {
  const ComputeSpec& c = x.compute;
  const PlatformSpec& p = x.platform;
  const double b = std::max(1, x.training.batch_size);
  const double g0 = p.worker_groups.front().speed;
  const double fps = c.time == ComputeSpec::Time::Flops ? model_info_of(x).flops_per_sample : 0;
  auto text = [](double s) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3g s of", s);
    return std::isfinite(s) ? std::string(buf) : std::string("an infinite");
  };
  {  // the time given for group 0 (a fixed time, a profile's) or its flop rate
    const double s0 = c.time == ComputeSpec::Time::Fixed     ? c.fixed_seconds
                      : c.time == ComputeSpec::Time::Profile ? c.profile_compute_s
                                                             : fps * b / g0;
    if (!(std::isfinite(s0 * g0) && s0 <= 1e15))
      throw InputError(x.file,
                       c.time == ComputeSpec::Time::Fixed     ? "compute.time.seconds"
                       : c.time == ComputeSpec::Time::Profile ? "compute.time.file"
                                                              : "platform.workers.speed",
                       "a minibatch would take " + text(s0) + " simulated time (at most 1e15 s)");
  }
  double worst = 0;  // the slowest group's minibatch, in seconds
  for (const HostGroupSpec& g : p.worker_groups) {
    const double s = c.time == ComputeSpec::Time::Fixed     ? c.fixed_seconds * g0 / g.speed
                     : c.time == ComputeSpec::Time::Profile ? c.profile_compute_s * g0 / g.speed
                                                            : fps * b / g.speed;
    if (!(std::isfinite(s * g.speed) && s <= 1e15))  // the time, and the flops the host executes: a slow group
      throw InputError(x.file, p.worker_groups.size() > 1 ? "platform.workers.groups" : "platform.workers.speed",
                       "a minibatch would take " + text(s) + " simulated time (at most 1e15 s)");
    worst = std::max(worst, s);
  }
  double slow = 1, transient = 1;  // the slowdowns that may apply at once (they multiply)
  for (const StragglerSpec& st : p.stragglers)
    if (st.kind == StragglerSpec::Kind::Persistent || st.kind == StragglerSpec::Kind::Window)
      slow *= std::max(1.0, st.slowdown);
    else if (st.kind == StragglerSpec::Kind::Transient)
      transient *= st.dist == StragglerSpec::Dist::None ? std::max(1.0, st.slowdown) : StragglerSpec::kMaxTransientSlowdown;
  slow *= std::min(transient, StragglerSpec::kMaxTransientSlowdown);
  if (!(worst * slow <= 1e15))
    throw InputError(x.file, "platform.stragglers",
                     "a slowed minibatch would take " + text(worst * slow) + " simulated time (at most 1e15 s)");
}

int64_t sync_steps(const Experiment& x) {
  const uint64_t per_step = static_cast<uint64_t>(std::max(1, x.platform.workers.count)) *
                            static_cast<uint64_t>(std::max(1, x.training.batch_size));
  return static_cast<int64_t>((x.training.samples + per_step - 1) / per_step);
}

bool trace_enabled(const Experiment& x, int shards) {
  // as the run decides it (sim/runtime.cpp): layer-wise timing adds a forward and a backward span per step
  const double per_step = static_cast<double>(sync_steps(x)) * x.platform.workers.count;
  const double events = per_step * (3.0 + 4.0 * std::max(1, shards)) + (x.overlap.layerwise() ? 2.0 * per_step : 0.0);
  return x.output.trace == OutputSpec::Trace::On ||
         (x.output.trace == OutputSpec::Trace::Auto && events <= static_cast<double>(x.output.trace_max_events));
}

namespace {
// The experiment SimGrid runs under platform.workers.grouping "identical" (sim/grouping.hpp), its
// budget cut to the one worker's share so that it runs the same steps; nullopt when not grouped.
std::optional<Experiment> grouped_form(const Experiment& x, const algo::Algorithm& a) {
  if (!grouping_applies(x, a)) return std::nullopt;
  Experiment g = grouped_experiment(x);
  const uint64_t N = static_cast<uint64_t>(x.platform.workers.count);
  g.training.samples = (x.training.samples + N - 1) / N;
  return g;
}

// Why this run computes one gradient at a time whatever compute.pool says (nullptr: it need not).
const char* pool_unsupported(const Experiment& x) {
  const auto d = x.model.find("dropout");
  if (x.compute.device == engine::Device::Cuda) return "the cuda device computes one gradient at a time";
  if (d != x.model.end() && d->is_number() && d->get<double>() > 0)
    return "models with dropout compute one gradient at a time (their masks depend on the order of all workers' forwards)";
  return nullptr;
}

// Why this run's rings stay step by step even with platform.collective.transfers "aggregated"
// (sim/collectives.hpp, aggregated_ring; the runtime's own check: WorkerCtx::aggregated_ring_applies).
std::string aggregated_ring_unused(const Experiment& x) {
  if (!x.platform.failures.empty()) return "a failure may cut any transfer";
  for (const auto& s : x.platform.stragglers)
    if (s.kind == StragglerSpec::Kind::LatencyJitter) return "latency jitter delays each message on its own";
  bool cpu = false;
  for (const auto& g : x.platform.worker_groups) cpu |= g.device.empty();
  if (cpu && (x.overlap.kind == OverlapSpec::Kind::Ddp || x.overlap.kind == OverlapSpec::Kind::Horovod))
    return "the layer-wise all-reduces of CPU workers load their CPU between steps";
  if (x.overlap.kind == OverlapSpec::Kind::Horovod)
    return "Horovod's negotiation starts the ranks' fused all-reduces at different times";
  return "";
}
}  // namespace

int usable_cores() {
  cpu_set_t set;
  return ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

int resolve_pool(const Experiment& x) {
  if (!x.compute.real || pool_unsupported(x)) return 1;
  int p = x.compute.pool;
  if (p == 0) {
    long cores = 0;
    if (const char* e = std::getenv("DTSIM_CORES")) cores = std::strtol(e, nullptr, 10);
    if (cores <= 0) cores = usable_cores();
    p = static_cast<int>(std::max(1L, cores / std::max(1, x.compute.threads)));
  }
  return std::clamp(p, 1, std::max(1, x.platform.workers.count));
}

std::vector<std::string> config_warnings(const Experiment& x) {
  std::vector<std::string> w = x.platform.warnings;  // plain numbers, straggler indices
  // A platform key: in the platform's own file when it has one, else in the experiment's.
  const bool own_file = !x.platform.file.empty() && x.platform.file != x.file;
  auto platform_at = [&](const std::string& key, const std::string& why) {
    return own_file ? at(x.platform.file, key, why) : at(x.file, "platform." + key, why);
  };
  if (const std::string why = aggregated_ring_unused(x); x.platform.collective.aggregated && !why.empty())
    w.push_back(platform_at("collective.transfers", "\"aggregated\" is not used: " + why + "; those rings run step by step"));
  if (x.platform.group_identical) {
    std::string why;
    try {
      why = grouping_unused(x, *make_algorithm(x));
    } catch (const InputError&) {  // the algorithm's own error comes when the run makes it
    }
    if (!why.empty()) w.push_back(platform_at("workers.grouping", "\"identical\" is not used: " + why + "; every worker is simulated"));
  }
  if (const char* why = pool_unsupported(x); x.compute.real && x.compute.pool > 1 && why)
    w.push_back(at(x.file, "compute.pool", std::to_string(x.compute.pool) + " has no effect: " + why));
  // A profile measured for other options of the same model kind, or on another input: its times
  // are used as they are (a profile of mlp [2048] made an mlp [16] run ~7x slower).
  if (x.compute.time == ComputeSpec::Time::Profile && !x.compute.profile_file.empty() && !x.compute.profile_model.is_null()) {
    const auto [shape, classes] = dataset_shape(x.dataset);
    const engine::SampleShape& pi = x.compute.profile_input;
    auto shape_text = [](const engine::SampleShape& s) {
      return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
    };
    std::string what;
    if (x.compute.profile_model != x.model)
      what = "model " + x.compute.profile_model.dump() + " (the config's: " + x.model.dump() + ")";
    else if (pi.size() != shape.size() || (shape.h > 1 && (pi.c != shape.c || pi.h != shape.h || pi.w != shape.w)))
      what = "input " + shape_text(pi) + " (the config's: " + shape_text(shape) + ")";
    else if (x.compute.profile_classes != classes)
      what = std::to_string(x.compute.profile_classes) + " classes (the config's: " + std::to_string(classes) + ")";
    if (!what.empty())
      w.push_back(at(x.file, "compute.time.file", "the profile was measured for " + what + "; its times are used as they are"));
  }
  const TrainingSpec& t = x.training;
  const int64_t T = sync_steps(x);
  const uint64_t per_step = static_cast<uint64_t>(x.platform.workers.count) * static_cast<uint64_t>(t.batch_size);

  // ---- the budget
  if (t.samples < per_step)
    w.push_back(at(x.file, "training.samples",
                   "the budget (" + num(t.samples) + " samples) is less than one step of every worker (" +
                       std::to_string(x.platform.workers.count) + " workers x batch " + std::to_string(t.batch_size) + " = " +
                       num(per_step) + "): the run computes one step, " + num(per_step) + " samples"));
  // The targets (accuracy; loss, for language models) are checked at the evaluations.
  const bool acc = !t.target_accuracy.empty(), loss = !t.target_loss.empty();
  if ((acc || loss) && !x.compute.real) {
    if (acc)
      w.push_back(at(x.file, "training.target_accuracy",
                     "compute.mode \"timing-only\" measures no accuracy: time_to_accuracy_s stays null"));
    if (loss)
      w.push_back(at(x.file, "training.target_loss", "compute.mode \"timing-only\" measures no loss: time_to_loss_s stays null"));
  } else if ((acc || loss) && (t.eval_every_samples == 0 || t.eval_every_samples >= t.samples)) {
    // A suggestion of about a tenth of the budget in whole steps; none when the budget is one step.
    const uint64_t every = std::max<uint64_t>(per_step, t.samples / 10 / per_step * per_step);
    const std::string what = acc && loss ? "the target accuracy and loss are" : acc ? "the target accuracy is" : "the target loss is";
    const std::string fields =
        acc && loss ? "time_to_accuracy_s and time_to_loss_s are" : acc ? "time_to_accuracy_s is" : "time_to_loss_s is";
    w.push_back(at(x.file, "training.eval_every_samples",
                   (t.eval_every_samples == 0 ? std::string("0 (evaluate only at the end)")
                                              : num(t.eval_every_samples) + " is at least the budget (" + num(t.samples) + " samples)") +
                       ": " + what + " only checked on the final model, so " + fields + " the run's end or null" +
                       (every < t.samples ? "; evaluate more often (e.g. " + num(every) + ")" : std::string())));
  }
  // Dropout masks follow a count of the model's training forwards (engine/transformer.hpp), which
  // a checkpoint does not keep: a resumed run trains on, with other masks (docs/robustness.md).
  if (const auto d = x.model.find("dropout");
      t.checkpoint_every_samples > 0 && x.compute.real && d != x.model.end() && d->is_number() && d->get<double>() > 0)
    w.push_back(at(x.file, "model.dropout",
                   "with checkpoints: a run resumed from one draws other dropout masks than the uninterrupted run would, "
                   "so its results are not bitwise the same (they are without dropout)"));
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

std::vector<std::string> result_warnings(const Experiment& x, const RunResult& r) {
  std::vector<std::string> w;
  if (r.status != "completed") return w;  // stopped early: nothing is missing yet
  if (r.updates == 0 && r.gradients > 0)
    w.push_back(at(x.file, "algorithm.name",
                   "'" + x.algorithm + "' committed no global update in the whole run (no Worker::publish_global or Server::committed): " +
                       "the final model, final_params.npy and the final metrics are the initial model's"));
  const uint64_t every = x.training.checkpoint_every_samples;
  if (every > 0 && every <= x.training.samples && r.checkpoints_written == 0 && r.resumed_from_step < 0)
    w.push_back(at(x.file, "training.checkpoint_every_samples",
                   "no checkpoint was written: '" + x.algorithm + "' never reached a point where it could cut one" +
                       " (a plugin cuts them with Worker::checkpoint; docs/plugins.md)"));
  return w;
}

std::string warnings_count(const Experiment& x) {
  if (x.warnings.empty()) return "";
  return " (" + std::to_string(x.warnings.size()) + (x.warnings.size() == 1 ? " warning)" : " warnings)");
}

RunCost estimate_cost(const Experiment& x) {
  const auto algorithm = make_algorithm(x);
  if (const auto g = grouped_form(x, *algorithm)) return estimate_cost(*g);  // one worker simulated
  const engine::ModelInfo info = model_info_of(x);
  const int K = shards_of(x, *algorithm);
  const double N = std::max(1, x.platform.workers.count);
  const double steps = static_cast<double>(sync_steps(x));  // per worker (asynchronous ones: on average)
  const double period = static_cast<double>(std::max<int64_t>(1, algorithm_int(x, "period").value_or(1)));
  const double rounds = std::ceil(steps / period);
  const double tensors = std::max<double>(1, static_cast<double>(info.param_tensors.size()));
  const double bytes = 4.0 * static_cast<double>(info.num_params);
  RunCost c;
  c.real = x.compute.real;
  double per_transfer_us;  // measured: bench/README.md, "Speed at scale"
  if (K > 0) {
    // A push and a pull per shard piece; per-tensor overlap splits them at the tensors' boundaries.
    const double pieces = x.overlap.kind == OverlapSpec::Kind::PerTensor ? std::max<double>(tensors, K) : K;
    c.transfers = N * rounds * 2 * pieces;
    if (algorithm->layer_comm() == algo::Algorithm::LayerComm::AsyncServer)
      // An asynchronous server's transfers neither start nor end together: each event re-solves
      // the sharing of the ~N flows in flight (network/optim:Full, sim/platform.cpp). Fitted on
      // asgd, dc-asgd and ssp on the scaling study's PS, 25 to 800 workers, within 1.3x
      // (bench/README.md, "Asynchronous servers at scale").
      per_transfer_us = 7.5 + 0.046 * N + 3.1e-4 * N * N;
    else
      per_transfer_us = 8 + 0.012 * (N + K);
    if (N >= 64 && !x.platform.group_identical && grouping_unused(x, *algorithm).empty())
      c.hint = "platform.workers.grouping \"identical\" simulates the " + std::to_string(static_cast<long>(N)) +
               " identical workers as one, exactly (docs/platforms.md, \"Identical workers simulated once\")";
  } else {
    // Transfers of one collective, all ranks together.
    const double p2 = std::exp2(std::floor(std::log2(N)));  // the largest power of two <= N
    double per_collective = N * 2 * (N - 1);  // ring
    switch (x.platform.collective.algorithm) {
      case CollectiveSpec::Algorithm::Tree: per_collective = 2 * (N - 1); break;  // binomial reduce + broadcast
      case CollectiveSpec::Algorithm::Hierarchical: {  // per group of m: 2 rings and a gather + scatter; the leaders' ring
        std::map<int, double> size;
        for (int g : locality_groups(x.platform)) size[g] += 1;
        const double R = static_cast<double>(size.size());
        per_collective = 2 * R * (R - 1);
        for (const auto& [g, m] : size) per_collective += 2 * m * (m - 1) + 2 * (m - 1);
        break;
      }
      case CollectiveSpec::Algorithm::RecursiveDoubling:  // the extra ranks fold in first and out last
        per_collective = p2 * std::log2(p2) + 2 * (N - p2);
        break;
      default: break;
    }
    double collectives = 1;  // per round
    if (x.overlap.kind == OverlapSpec::Kind::Ddp)
      collectives = std::min(tensors, 1 + std::ceil(std::max(0.0, bytes - x.overlap.first_bucket_mb * 1048576.0) /
                                                    (x.overlap.bucket_cap_mb * 1048576.0)));
    else if (x.overlap.kind == OverlapSpec::Kind::Horovod)
      collectives = std::min(tensors, 1 + std::ceil(bytes / (x.overlap.fusion_mb * 1048576.0)));
    const bool ring = x.platform.collective.algorithm == CollectiveSpec::Algorithm::Ring;
    const bool can_aggregate = ring && aggregated_ring_unused(x).empty();
    if (can_aggregate && x.platform.collective.aggregated) {
      c.transfers = rounds * collectives * N;  // the first step's, once per all-reduce
      per_transfer_us = 51 + 0.0078 * N;       // with its rank's job and barrier: 1,000 and 10,000 workers (bench/README.md, "Large rings")
    } else {
      c.transfers = rounds * collectives * per_collective;
      per_transfer_us = 4.8 + 0.0138 * N;  // step-by-step rings of 100 and 1,000 workers (bench/README.md, "Large rings")
      if (can_aggregate && N >= 64)
        c.hint = "platform.collective {\"transfers\": \"aggregated\"} simulates " + std::to_string(static_cast<long>(N)) +
                 " of them per all-reduce instead of " + std::to_string(static_cast<long>(per_collective)) +
                 " (docs/platforms.md, Collectives)";
    }
  }
  // Layer-wise timing adds a job per step's chain and per-tensor pushes (sim/worker_layerwise.cpp,
  // on reused actors: sim/actor_pool.hpp): 1.12x the cost per transfer at 500 workers on the PS
  // study, 1.24x a 200-worker ring's with DDP buckets (bench/README.md, "Large rings"; 2.3x when
  // every job was a new actor).
  if (x.overlap.layerwise()) per_transfer_us *= 1.2;
  c.wall_s = c.transfers * per_transfer_us * 1e-6;
  c.memory_bytes = memory_of(x, *algorithm, info.num_params).total();
  return c;
}

std::string cost_text(const RunCost& c) {
  auto count = [](double v) {
    char b[32];
    if (v >= 1e9) std::snprintf(b, sizeof b, "%.3g G", v / 1e9);
    else if (v >= 1e6) std::snprintf(b, sizeof b, "%.3g M", v / 1e6);
    else if (v >= 1e3) std::snprintf(b, sizeof b, "%.3g k", v / 1e3);
    else std::snprintf(b, sizeof b, "%.0f", v);
    return std::string(b);
  };
  auto duration = [](double s) {
    char b[32];
    if (s < 1) return std::string("under 1 s");
    if (s < 120) std::snprintf(b, sizeof b, "%.0f s", s);
    else if (s < 7200) std::snprintf(b, sizeof b, "%.0f min", s / 60);
    else if (s < 3 * 86400) std::snprintf(b, sizeof b, "%.1f h", s / 3600);
    else if (s < 2 * 31557600) std::snprintf(b, sizeof b, "%.0f days", s / 86400);
    else std::snprintf(b, sizeof b, "%.3g years", s / 31557600);
    return std::string(b);
  };
  char mem[32];
  if (c.memory_bytes >= 1073741824.0) std::snprintf(mem, sizeof mem, "%.1f GiB", c.memory_bytes / 1073741824.0);
  else std::snprintf(mem, sizeof mem, "%.0f MiB", c.memory_bytes / 1048576.0);
  return "~" + count(c.transfers) + " transfers, " + (c.wall_s < 1 ? "" : "~") + duration(c.wall_s) + " of simulation" +
         (c.real ? " plus the real compute" : "") + ", ~" + mem + (c.hint.empty() || c.wall_s < 10 ? "" : "; " + c.hint);
}

void preflight(const Experiment& x, const PreflightOptions& options) {
  check_step_times(x);
  const auto algorithm = make_algorithm(x);
  if (x.training.checkpoint_every_samples > 0 && !algorithm->checkpointable())
    throw InputError(x.file, "training.checkpoint_every_samples", not_checkpointable_reason(x.algorithm, *algorithm));
  const auto g = grouped_form(x, *algorithm);  // grouped: the memory of what SimGrid runs
  const Experiment& y = g ? *g : x;
  check_memory(y, memory_of(y, *algorithm, model_info_of(y).num_params), available_memory_bytes());
  if (options.load_dataset && x.compute.real) (void)load_dataset(x.dataset, x.seed);
}

}  // namespace dtsim::sim
