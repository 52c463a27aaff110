// run(): one experiment in one SimGrid simulation. A short orchestrator over the pieces of a run:
// the run state every actor shares (sim/run_state.hpp), the worker and server contexts the
// algorithm's functions run in (sim/worker_context.hpp, sim/server_context.hpp), the platform
// (sim/platform.hpp), failures (sim/failures.hpp) and checkpoint cuts (sim/checkpoint.hpp).
#include "sim/runtime.hpp"

#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <exception>
#include <ranges>

#include "algorithms/api.hpp"
#include "engine/model.hpp"
#include "engine/ops.hpp"
#include "engine/parallel.hpp"
#include "sim/checkpoint.hpp"
#include "sim/failures.hpp"
#include "sim/grouping.hpp"
#include "sim/platform.hpp"
#include "sim/preflight.hpp"
#include "sim/run_state.hpp"
#include "sim/server_context.hpp"
#include "sim/worker_context.hpp"

#if defined(__SANITIZE_ADDRESS__)  // gcc
#define DTSIM_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define DTSIM_ASAN 1
#endif
#endif

namespace dtsim::sim {

using namespace detail;

namespace {

// Everything one run owns, in construction order: destroyed in reverse, so the contexts and the
// Engine go before the algorithm, the model and the data they point to, and the run state last
// (it frees the messages the Engine never delivered).
struct Run {
  // SimGrid's synchronisation objects go before the Engine does.
  ~Run() {
    if (s.pool) s.pool->shutdown();  // its threads read the data, the model and the run state
    s.hvd.reset();
    s.sync.reset();
  }
  RunState s;
  engine::Dataset data;
  std::unique_ptr<engine::Model> model;  // real compute only
  std::unique_ptr<algo::Algorithm> algorithm;
  std::unique_ptr<sg4::Engine> engine;
  std::vector<std::unique_ptr<WorkerCtx>> workers;
  std::vector<std::unique_ptr<ServerCtx>> servers;
  std::unique_ptr<FailureController> failures;
  Run(const Experiment& x, const RunHooks& hooks) : s(x, hooks) {}
};

// Layer-wise timing (algorithm.overlap, docs/timing.md): the plan every step follows, from the
// model's layers; and per worker, whether it computes on a CPU (its collectives then load the
// same cores) and its memory bandwidth and overlap slowdown.
void plan_layers(Run& run, const engine::SampleShape& shape, int classes) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  if (!x.overlap.layerwise() || run.algorithm->layer_comm() == algo::Algorithm::LayerComm::None) return;
  json spec = x.model;
  ObjectReader mr(spec, {x.file, "model"});
  engine::ModelInfo mi = engine::model_info(mr, shape, classes);
  ShareBasis basis = x.compute.time == ComputeSpec::Time::Fixed ? ShareBasis::Fixed : ShareBasis::Flops;
  const auto& measured = x.compute.profile_layers;  // a `dtsim profile` file's per-layer times (checked at load)
  if (x.compute.time == ComputeSpec::Time::Profile && !measured.empty()) {
    if (measured.size() != mi.layers.size())  // load_experiment_json refuses these; an Experiment built otherwise
      throw InputError(x.file, "compute.time.file", "the profile's " + std::to_string(measured.size()) +
                                                        " layers are not the model's " + std::to_string(mi.layers.size()));
    for (size_t l = 0; l < mi.layers.size(); ++l) {
      mi.layers[l].forward_s = measured[l].forward_s;
      mi.layers[l].backward_s = measured[l].backward_s;
    }
    basis = ShareBasis::Measured;
  }
  s.plan = make_layer_plan(mi, x.overlap, run.algorithm->layer_comm(), s.K, s.shard_off, s.shard_len, basis);
  for (const auto& g : x.platform.worker_groups)
    for (int i = 0; i < g.count; ++i) {
      s.plan.cpu.push_back(g.device.empty());
      s.plan.memory_bandwidth.push_back(g.memory_bandwidth);
      s.plan.overlap_slowdown.push_back(g.overlap_slowdown);
    }
  const HostGroupSpec& last = x.platform.worker_groups.back();
  while (s.plan.cpu.size() < static_cast<size_t>(s.N)) {
    s.plan.cpu.push_back(last.device.empty());
    s.plan.memory_bandwidth.push_back(last.memory_bandwidth);
    s.plan.overlap_slowdown.push_back(last.overlap_slowdown);
  }
}

// Sizes, the model (built on the run's device in real mode; its counts only in timing-only mode,
// where descriptors such as resnet50 have no compute path) and the algorithm instance.
void set_up(Run& run) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  s.real = x.compute.real;
  s.N = x.platform.workers.count;
  s.b = x.training.batch_size;
  s.budget = x.training.samples;
  const uint64_t step_samples = static_cast<uint64_t>(s.N) * static_cast<uint64_t>(s.group) * static_cast<uint64_t>(s.b);
  s.sync_steps = static_cast<int64_t>((s.budget + step_samples - 1) / step_samples);

  const auto [shape, classes] = dataset_shape(x.dataset);
  json model_spec = x.model;
  ObjectReader mr(model_spec, {x.file, "model"});
  if (s.real) {
    run.model = engine::make_model(mr, shape, classes, engine::ComputeOptions{x.compute.device, x.compute.threads});
    s.model = run.model.get();
    s.P = run.model->num_params();
    s.flops_per_sample = run.model->flops_per_sample();
    const engine::SampleShape in = shape;  // (clang 14 cannot capture structured bindings)
    const int out = classes;
    s.last_math.resize(static_cast<size_t>(s.N));
    s.unsettled.resize(static_cast<size_t>(s.N));
    s.pool = std::make_unique<engine::ComputePool>(resolve_pool(x), *run.model, [&x, in, out] {
      json spec = x.model;
      ObjectReader r(spec, {x.file, "model"});
      return engine::make_model(r, in, out, engine::ComputeOptions{x.compute.device, x.compute.threads});
    });
  } else {
    const engine::ModelInfo mi = engine::model_info(mr, shape, classes);
    s.P = mi.num_params;
    s.flops_per_sample = mi.flops_per_sample;
  }

  json algo_spec = x.algorithm_spec;
  ObjectReader ar(algo_spec, {x.file, "algorithm"});
  ar.accept("name");
  ar.accept("clip_grad_norm");  // applied by the runtime to every minibatch gradient (start_compute)
  ar.accept("overlap");         // read by the config (Experiment::overlap): the runtime's layer-wise timing
  run.algorithm = s.hooks.make_algorithm ? s.hooks.make_algorithm() : algo::find_algorithm(x.algorithm)->make(ar);
  s.algorithm = run.algorithm.get();
  s.K = run.algorithm->needs_servers() ? x.platform.servers.count : 0;
  const Checkpoint* ck = s.hooks.resume;
  if ((x.training.checkpoint_every_samples > 0 || ck) && !run.algorithm->checkpointable())
    throw InputError(ck ? s.hooks.resume_file : x.file, ck ? "" : "training.checkpoint_every_samples",
                     not_checkpointable_reason(x.algorithm, *run.algorithm));
  s.ckpt_every = x.training.checkpoint_every_samples;
  s.server_cuts = run.algorithm->checkpoint_at_servers() && s.K > 0;
  s.next_ckpt = s.ckpt_every;
  for (int k = 0; k < s.K; ++k) {  // K contiguous ranges, sizes differing by at most one
    const size_t lo = s.P * static_cast<size_t>(k) / static_cast<size_t>(s.K);
    const size_t hi = s.P * static_cast<size_t>(k + 1) / static_cast<size_t>(s.K);
    s.shard_off.push_back(lo);
    s.shard_len.push_back(hi - lo);
  }

  plan_layers(run, shape, classes);

  RunResult& r = s.result;
  r.model_parameters = s.P;
  r.flops_per_sample = s.flops_per_sample;
  r.device = engine::device_name(run.model ? run.model->device() : x.compute.device);
  r.time_to_accuracy.assign(x.training.target_accuracy.size(), std::nullopt);
  // The trace: off beyond trace_max_events (estimated); layer-wise chains add a span per layer
  // phase, or, when those would not fit, one per forward and one per backward.
  const double per_step = s.sync_steps * static_cast<double>(s.N) * s.group;  // as if every worker ran
  const double est_events = per_step * (3.0 + 4.0 * std::max(1, s.K));
  size_t phases = 0;
  for (size_t l = 0; l < s.plan.shares.forward.size(); ++l) phases += (s.plan.shares.forward[l] > 0) + (s.plan.shares.backward[l] > 0);
  const double max_events = static_cast<double>(x.output.trace_max_events);
  const bool auto_on = x.output.trace == OutputSpec::Trace::Auto && est_events + (s.plan.active() ? 2.0 * per_step : 0.0) <= max_events;
  r.trace.enabled = x.output.trace == OutputSpec::Trace::On || auto_on;
  s.plan.trace_layers = est_events + per_step * static_cast<double>(phases) <= max_events;
  for (const auto& l : s.plan.shape.layers) r.trace.layers.push_back(l.name);
  s.next_eval = x.training.eval_every_samples;
}

// Real compute: the dataset, the initial parameters (the seed's) and every worker's BatchNorm
// statistics — after the memory estimate has passed, so nothing big is allocated before it.
void load_data_and_parameters(Run& run) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  check_step_times(x);  // sim/preflight.hpp: no minibatch of infinite simulated time
  check_memory(x, estimate_memory(x, s.P, run.algorithm->buffers_per_worker(), s.K, s.result.trace.enabled),
               available_memory_bytes());
  if (!s.real) return;
  run.data = load_dataset(x.dataset, x.seed);
  s.data = &run.data;
  s.order = std::make_unique<engine::SampleOrder>(run.data.train.size(), x.seed);
  s.global = Vec(s.P, run.model->device());
  run.model->init_params(s.global.view(), x.seed);
  s.init = std::make_shared<Vec>(s.global.clone());
  for (int i = 0; run.model->num_state() && i < s.N; ++i) {
    s.model_state.emplace_back(run.model->num_state(), run.model->device());
    run.model->init_state(s.model_state.back().view());
  }
}

// --resume (docs/robustness.md): the checkpoint must belong to this run; then the global model and
// the run-wide counters of the cut replace the fresh ones.
void restore_run(RunState& s, const Checkpoint& ck) {
  const Experiment& x = s.x;
  RunResult& r = s.result;
  auto refuse = [&](const std::string& why) { throw InputError(s.hooks.resume_file, "", "cannot resume: " + why); };
  if (ck.algorithm != x.algorithm) refuse("written by algorithm '" + ck.algorithm + "', the config runs '" + x.algorithm + "'");
  if (ck.workers.size() != static_cast<size_t>(s.N) || ck.servers.size() != static_cast<size_t>(s.K))
    refuse("it holds " + std::to_string(ck.workers.size()) + " workers and " + std::to_string(ck.servers.size()) +
           " server shards, the config has " + std::to_string(s.N) + " and " + std::to_string(s.K));
  if (ck.global.size() != (s.real ? s.P : 0))
    refuse("its global model holds " + std::to_string(ck.global.size()) + " parameters, the model has " +
           std::to_string(s.real ? s.P : 0));
  for (size_t i = 0; i < s.model_state.size(); ++i) {
    const auto& blobs = ck.workers[i].blobs;
    const auto it = blobs.find(kModelStateKey);
    if (it == blobs.end() || it->second.size() != s.model_state[i].size())
      refuse("worker " + std::to_string(i) + " has no BatchNorm running statistics of " +
             std::to_string(s.model_state[i].size()) + " values in it (written by an older dtsim?)");
  }
  if (!s.server_cuts && (ck.step < 1 || ck.step >= s.sync_steps)) refuse("its step " + std::to_string(ck.step) + " is outside the run");
  if (s.real) {
    engine::ops::copy(s.global.view(), engine::ConstVecView(ck.global.data(), s.P, engine::Device::Cpu));
    s.init = std::make_shared<Vec>(s.global.clone());
  }
  s.resume_step = ck.step;
  s.samples_done = ck.samples_done;
  s.claimed = ck.claimed;
  r.gradients = ck.gradients;
  r.updates = ck.updates;
  r.messages = ck.messages;
  r.bytes_on_wire = ck.bytes_on_wire;
  s.shard_commits = ck.shard_commits;
  s.next_eval = ck.next_eval;
  if (ck.next_checkpoint > 0) s.next_ckpt = ck.next_checkpoint;
  s.last_eval_version = ck.last_eval_version;
  for (const auto& m : ck.metrics)
    r.metrics.push_back({m.sim_time_s, m.wall_time_s, m.samples, m.epoch, m.train_loss, m.test_loss, m.test_accuracy,
                         m.exposed_comm_s_per_step});
  if (ck.time_to_accuracy.size() == r.time_to_accuracy.size()) r.time_to_accuracy = ck.time_to_accuracy;
  r.resumed_from_step = ck.step;
}

// The SimGrid engine, the platform, one inbox per node and the trace's host list.
void start_engine(Run& run) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  xbt_log_control_set("root.thres:critical");
  // A deadlock is reported by dtsim's own one-line error (its on_deadlock handler names every
  // blocked actor), not also by SimGrid's "Oops! Deadlock detected" line before it.
  // (SimGrid 3.32 has no "off" threshold: the category's own appender drops it.)
  xbt_log_control_set("ker_engine.app:file:/dev/null ker_engine.additivity:0");
  // SimGrid installs its own SIGINT handler (print the actors' status, exit(1)): keep the caller's,
  // so that Ctrl-C ends the run cleanly (RunHooks::interrupt, docs/robustness.md).
  struct sigaction caller_sigint {};
  sigaction(SIGINT, nullptr, &caller_sigint);
#ifdef DTSIM_ASAN
  // ASan builds (make test-sanitize): Debian's SimGrid switches between actor stacks without
  // telling ASan (no __sanitizer_start_switch_fiber), so an exception unwinding on an actor stack
  // leaves stale poison and ASan reports false errors. Thread contexts give every actor a real
  // thread stack that ASan knows. Same simulation, slower context switches (docs/robustness.md).
  int sg_argc = 2;
  char sg_arg0[] = "dtsim", sg_arg1[] = "--cfg=contexts/factory:thread";
  char* sg_argv[] = {sg_arg0, sg_arg1, nullptr};
  run.engine = std::make_unique<sg4::Engine>(&sg_argc, sg_argv);
#else
  run.engine = std::make_unique<sg4::Engine>("dtsim");
#endif
  sigaction(SIGINT, &caller_sigint, nullptr);
  configure_network(x.platform);
  s.hosts = build_platform(x.platform, x.seed);
  s.links = std::make_unique<LinkModel>(x.platform, x.seed);
  RunResult& r = s.result;
  for (int i = 0; i < s.N; ++i) {
    s.worker_inbox.push_back(sg4::Mailbox::by_name("worker-" + std::to_string(i)));
    s.worker_host_index.push_back(static_cast<int>(r.trace.hosts.size()));
    r.trace.hosts.push_back(s.hosts.workers[static_cast<size_t>(i)]->get_name());
  }
  for (int k = 0; k < x.platform.servers.count; ++k) {
    s.server_inbox.push_back(sg4::Mailbox::by_name("server-" + std::to_string(k)));
    s.server_host_index.push_back(static_cast<int>(r.trace.hosts.size()));
    const std::string host = s.hosts.servers[static_cast<size_t>(k)]->get_name();  // co-located: "server-0@worker-0"
    r.trace.hosts.push_back(host.rfind("server-", 0) == 0 ? host : "server-" + std::to_string(k) + "@" + host);
  }
}

// Worker i's actor: the algorithm's worker function in its context, on its host.
void start_worker(Run& run, int i) {
  RunState& s = run.s;
  WorkerCtx* w = run.workers[static_cast<size_t>(i)].get();
  const std::string name = "worker-" + std::to_string(i) + (w->incarnation() ? "#" + std::to_string(w->incarnation()) : "");
  sg4::Actor::create(name, s.hosts.workers[static_cast<size_t>(i)], [&s, w, i] {
    s.worker_inbox[static_cast<size_t>(i)]->set_receiver(sg4::Actor::self());  // eager: no rendezvous
    guarded(s, [&] {
      w->wait_resume();
      s.algorithm->worker(*w);
      w->drain();
    });
    w->mark_returned();
    s.worker_returned[static_cast<size_t>(i)] = 1;
    ++s.workers_finished;
    s.last_worker_return_s = std::max(s.last_worker_return_s, sg4::Engine::get_clock());
  });
}

// The contexts (restored on resume) and one actor per worker and server shard.
void start_actors(Run& run) {
  RunState& s = run.s;
  const Checkpoint* ck = s.hooks.resume;
  for (int i = 0; i < s.N; ++i) run.workers.push_back(std::make_unique<WorkerCtx>(s, i));
  for (int k = 0; k < s.K; ++k) run.servers.push_back(std::make_unique<ServerCtx>(s, k));
  // Made here, before any actor runs: creating their SimGrid condition variables is a simcall, and
  // an actor that made them at first use would yield half-way and let another make its own.
  if (s.plan.overlap.kind == OverlapSpec::Kind::Horovod) s.hvd = std::make_unique<HorovodState>();
  if (s.plan.overlap.kind == OverlapSpec::Kind::PerTensor) s.sync = std::make_unique<SyncSteps>();
  s.worker_counters = [&run](int i, NodeCheckpoint& n) { run.workers[static_cast<size_t>(i)]->save_counters(n); };
  s.exposed_per_step = [&run] {  // metrics.csv: communication not hidden behind compute, per minibatch
    double exposed = 0, steps = 0;
    for (const auto& w : run.workers) {
      exposed += w->exposed_s();
      steps += static_cast<double>(w->minibatches());
    }
    return steps > 0 ? exposed / steps : 0.0;
  };
  if (ck) {
    for (int i = 0; i < s.N; ++i) run.workers[static_cast<size_t>(i)]->restore_counters(ck->workers[static_cast<size_t>(i)], ck->step);
    for (int k = 0; k < s.K; ++k) run.servers[static_cast<size_t>(k)]->restore_counters(ck->servers[static_cast<size_t>(k)], ck->step);
  }

  if (s.real && !ck) s.evaluate(0.0);  // the starting point of every accuracy curve

  s.worker_down.assign(static_cast<size_t>(s.N), 0);
  s.worker_returned.assign(static_cast<size_t>(s.N), 0);
  if (!s.x.platform.failures.empty()) s.worker_lost.assign(static_cast<size_t>(s.N), 0);
  for (int i = 0; i < s.N; ++i) start_worker(run, i);
  for (int k = 0; k < s.K; ++k) {
    ServerCtx* sv = run.servers[static_cast<size_t>(k)].get();
    sg4::Actor::create("server-" + std::to_string(k), s.hosts.servers[static_cast<size_t>(k)], [&s, sv, k] {
      s.server_inbox[static_cast<size_t>(k)]->set_receiver(sg4::Actor::self());
      guarded(s, [&] {
        sv->wait_resume();
        s.algorithm->server(*sv);
        sv->drain();
      });
    })->daemonize();  // stopped when the last worker returns
  }
}

// platform.failures (sim/failures.cpp): a controller daemon on the control host, and what a crash,
// its detection and a recovery do to the run.
void start_failures(Run& run) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  if (x.platform.failures.empty()) return;
  for (int i = 0; i < s.N; ++i) s.inbox_worker[s.worker_inbox[static_cast<size_t>(i)]] = i;
  const auto policy = run.algorithm->on_failure();
  // Worker j's host is back: its function runs again as a new incarnation with a fresh inbox.
  auto restart_worker = [&s, &run](int j) {
    WorkerCtx& w = *run.workers[static_cast<size_t>(j)];
    auto* inbox = sg4::Mailbox::by_name("worker-" + std::to_string(j) + "#" + std::to_string(w.incarnation() + 1));
    s.inbox_worker.erase(s.worker_inbox[static_cast<size_t>(j)]);
    s.worker_inbox[static_cast<size_t>(j)] = inbox;
    s.inbox_worker[inbox] = j;
    s.worker_down[static_cast<size_t>(j)] = 0;
    --s.workers_finished;
    w.restart(inbox);
    start_worker(run, j);
  };
  if (policy == algo::Algorithm::OnFailure::Elastic) {  // the all-reduce group (sim/elastic.hpp)
    s.elastic = std::make_unique<Elastic>(s.N);
    for (auto& w : run.workers) s.elastic->workers.push_back(w.get());
    s.elastic->restart = restart_worker;  // at the round boundary where it rejoins
  }
  FailureHooks fh;
  fh.crashed = [&s, &run](int j) {  // the worker dies with its in-flight work
    if (s.worker_returned[static_cast<size_t>(j)]) return;
    if (s.elastic && s.worker_down[static_cast<size_t>(j)]) {  // not running (waiting to rejoin): nothing is lost
      elastic_crashed(s, j);
      return;
    }
    if (s.worker_down[static_cast<size_t>(j)]) return;  // already dead (drop), or not restarted yet: nothing more to lose
    s.samples_lost += static_cast<uint64_t>(run.workers[static_cast<size_t>(j)]->unsent_samples());
    s.worker_down[static_cast<size_t>(j)] = 1;
    s.any_down = true;
    ++s.workers_finished;  // until it restarts
    if (s.elastic) elastic_crashed(s, j);
  };
  fh.detected = [&s](int j) {  // tell every live node: one notification in its inbox
    s.worker_lost[static_cast<size_t>(j)] = 1;
    auto notify = [&s, j](sg4::Host* host, sg4::Mailbox* box) {
      sg4::Actor::create("failure-notice", host, [&s, j, box] {
        auto* msg = new Message{.src = j, .tag = algo::kWorkerLost, .step = 0, .data = {}};
        s.in_flight.insert(msg);  // freed with the run if never received
        box->put(msg, 0);
      });
    };
    for (int i = 0; i < s.N; ++i)
      if (!s.worker_down[static_cast<size_t>(i)] && !s.worker_returned[static_cast<size_t>(i)])
        notify(s.hosts.workers[static_cast<size_t>(i)], s.worker_inbox[static_cast<size_t>(i)]);
    for (int k = 0; k < s.K; ++k) notify(s.hosts.servers[static_cast<size_t>(k)], s.server_inbox[static_cast<size_t>(k)]);
    if (s.elastic) elastic_lost(s, j);  // the survivors re-form the group
  };
  fh.restart = [&s, restart_worker](int j) {
    if (!s.worker_down[static_cast<size_t>(j)]) return;
    if (s.elastic) s.elastic->recovered.insert(j);  // it rejoins at the next round boundary
    else restart_worker(j);
  };
  fh.fatal = [&s](const std::string& why) {
    if (!s.error) {
      s.error = std::make_exception_ptr(RuntimeError(why));
      s.error_where = "platform.failures";
    }
    sg4::Actor::kill_all();
  };
  fh.progress = [&s] { return s.result.gradients + s.result.messages + s.result.updates; };
  fh.worker_inbox = [&s](int i) { return s.worker_inbox[static_cast<size_t>(i)]; };
  fh.server_inbox = [&s](int k) { return s.server_inbox[static_cast<size_t>(k)]; };
  run.failures = std::make_unique<FailureController>(x.platform, x.seed, s.hosts, policy, fh);
  FailureController* fc = run.failures.get();
  sg4::Actor::create("failures", s.hosts.control, [fc] { fc->run(); })->daemonize();
}

// Runs the simulation to its end (or to training.max_time_s); true when that limit stopped it.
bool simulate(Run& run) {
  RunState& s = run.s;
  sg4::Engine& e = *run.engine;
  // Actors run on this thread (SimGrid's raw contexts): their element-wise passes (a server's mean,
  // an optimizer step, a model copy) are cut across the compute pool (engine/parallel.hpp).
  engine::ParallelScope scope(s.pool.get());
  if (!s.x.training.max_time_s) {
    e.run();
    return false;
  }
  e.run_until(*s.x.training.max_time_s);
  if (s.workers_finished >= s.N) return false;
  const bool stopped_by_time = !s.error && !s.stop;
  for (auto& a : e.get_all_actors()) a->kill();
  e.run();
  return stopped_by_time;
}

// An exception inside an actor (InputError kept as is: exit 2), or a deadlock: SimGrid ran out of
// events with workers still blocked (and has already killed them, so they are named from what they
// registered before blocking). Servers are daemons: listed, but they alone never make a deadlock.
void raise_errors(Run& run, bool stopped_by_time) {
  RunState& s = run.s;
  if (s.error) {
    try {
      std::rethrow_exception(s.error);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& ex) {
      throw RuntimeError(s.error_where + ": " + ex.what());
    } catch (...) {
      throw RuntimeError(s.error_where + ": unknown exception");
    }
  }
  if (!stopped_by_time && !s.stop && s.N > 0 && s.any_down) {  // every worker failed and none finished its work
    const auto lost = [&s](int j) { return s.worker_down[static_cast<size_t>(j)] && !s.worker_returned[static_cast<size_t>(j)]; };
    if (std::ranges::all_of(std::views::iota(0, s.N), lost))
      throw RuntimeError("platform.failures: every worker failed by simulated time " + std::to_string(sg4::Engine::get_clock()) +
                         " s and none recovered: no worker is left to continue the training (" +
                         std::to_string(s.samples_done) + " of " + std::to_string(s.x.training.samples) +
                         " samples done; docs/platforms.md, Failures)");
  }
  if (stopped_by_time || s.stop || s.workers_finished >= s.N) return;
  std::string who;
  for (const auto& [actor, what] : s.waiting)
    who += (who.empty() ? "" : "; ") + actor + (actor.rfind("server-", 0) == 0 ? " (daemon)" : "") + " waits for " + what;
  if (who.empty()) who = "no blocked receive, send or all-reduce was registered";
  std::string failed;  // platform.failures: survivors waiting for a crashed worker
  for (int j = 0; j < s.N; ++j)
    if (s.worker_down[static_cast<size_t>(j)]) failed += (failed.empty() ? "worker-" : ", worker-") + std::to_string(j);
  if (!failed.empty())
    who = "they wait for " + failed + ", which failed (platform.failures): this algorithm does not survive a failed "
          "worker (docs/platforms.md, Failures); " + who;
  const double t = sg4::Engine::get_clock();
  for (auto& a : run.engine->get_all_actors()) a->kill();
  run.engine->run();
  throw RuntimeError("deadlock at simulated time " + std::to_string(t) + " s: " + std::to_string(s.N - s.workers_finished) +
                     " of " + std::to_string(s.N) + " workers blocked forever: " + who);
}

// How the run ended, its final evaluation, and the per-worker, per-link and failure records.
RunResult finish(Run& run, bool stopped_by_time) {
  RunState& s = run.s;
  const Experiment& x = s.x;
  RunResult& r = s.result;
  s.settle();  // minibatches started before the end whose span did not end (a stop, a time limit)
  r.samples = s.samples_done;
  if (s.stop) {  // interrupted | wall_limit | diverged: the metrics so far stay as they are
    r.status = s.stop->reason;
    r.stop = s.stop;
    r.simulated_time_s = s.stop->sim_time_s;
    if (s.stop->reason == "wall_limit") s.evaluate(r.simulated_time_s);
  } else if (s.real && !engine::ops::all_finite(s.global.view())) {  // diverged in the last steps
    r.status = "diverged";
    r.stop = StopInfo{"diverged", "the final global model has non-finite parameters", sg4::Engine::get_clock(), -1, -1,
                      r.updates};
    r.simulated_time_s = r.stop->sim_time_s;
  } else {
    r.status = stopped_by_time ? "time_limit" : "completed";
    // run_until() moves the clock to max_time_s even when the workers were done before (the
    // daemon servers keep the simulation alive): a completed run ends when its last worker returns.
    r.simulated_time_s = stopped_by_time ? *x.training.max_time_s
                         : x.training.max_time_s ? std::min(sg4::Engine::get_clock(), s.last_worker_return_s)
                                                 : sg4::Engine::get_clock();
    s.evaluate(r.simulated_time_s);  // the final model (no-op if it has not changed since the last row)
  }
  s.finish_evaluations();
  for (auto& w : run.workers) r.per_worker.push_back(w->summary());
  if (s.real) {
    r.final_params.resize(s.P);
    engine::ops::to_host(s.global.view(), r.final_params.data());
  }
  r.links = s.links->rows(r.simulated_time_s);
  if (run.failures)
    for (const auto& f : run.failures->records())
      if (f.happened) r.failures.push_back(f);
  r.samples_lost = s.samples_lost;
  if (s.elastic) r.elastic = s.elastic->records;
  r.wall_time_s = s.wall();
  r.compute_pool = s.pool ? s.pool->threads() : 1;
  r.simulated_workers = s.N;
  return std::move(r);
}

RunResult simulate_experiment(const Experiment& x, const RunHooks& hooks, int group) {
  Run run(x, hooks);
  run.s.group = group;
  set_up(run);
  load_data_and_parameters(run);
  if (hooks.resume) restore_run(run.s, *hooks.resume);
  start_engine(run);
  start_actors(run);
  start_failures(run);
  const bool stopped_by_time = simulate(run);
  raise_errors(run, stopped_by_time);
  return finish(run, stopped_by_time);
}

}  // namespace

RunResult run(const Experiment& x, const RunHooks& hooks) {
  if (x.platform.group_identical && !hooks.resume &&  // identical workers simulated once (sim/grouping.hpp)
      grouping_applies(x, *(hooks.make_algorithm ? hooks.make_algorithm() : make_algorithm(x)))) {
    RunResult r = simulate_experiment(grouped_experiment(x), hooks, x.platform.workers.count);
    expand_grouped(r, x);
    return r;
  }
  return simulate_experiment(x, hooks, 1);
}

}  // namespace dtsim::sim
