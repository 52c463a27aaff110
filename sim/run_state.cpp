#include "sim/run_state.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "common/io.hpp"
#include "engine/ops.hpp"

namespace dtsim::sim::detail {

// Asynchronous PS cut: worker i resumes at minibatch a_i = min over shards of its acked count
// (its later minibatches, in flight or being computed, are computed and sent again).
void RunState::workers_from_servers(Checkpoint& c) {
  for (int i = 0; i < N; ++i) {
    const std::string key = "acked." + std::to_string(i);
    int64_t a = std::numeric_limits<int64_t>::max();
    for (const auto& sv : c.servers) {
      auto it = sv.ints.find(key);
      if (it == sv.ints.end()) throw RuntimeError("checkpoint: a server shard saved no '" + key + "' (Algorithm::checkpoint_at_servers)");
      a = std::min(a, it->second);
    }
    NodeCheckpoint& w = c.workers[static_cast<size_t>(i)];
    worker_counters(i, w);
    w.k = a;
    w.pos = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
    w.batch = b;
    w.gradients = static_cast<uint64_t>(a);
    w.samples = w.pos;
  }
}

// Every node has saved: the run-wide state is that of the last node's cut.
void RunState::finish_cut(Checkpoint& c) {
  c.config_hash = hooks.config_hash;
  c.algorithm = x.algorithm;
  c.warnings = x.warnings;
  c.samples_done = c.gradients = c.messages = 0;
  c.bytes_on_wire = 0;
  for (const auto& w : c.workers) {
    c.samples_done += w.samples;
    c.gradients += w.gradients;
  }
  for (const auto* ns : {&c.workers, &c.servers})
    for (const auto& n : *ns) {
      c.bytes_on_wire += n.sent_bytes;
      c.messages += n.sent_messages;
    }
  c.claimed = c.samples_done;
  c.updates = result.updates;
  c.shard_commits = shard_commits;
  c.next_eval = next_eval;
  c.next_checkpoint = next_ckpt;
  c.last_eval_version = last_eval_version;
  finish_evaluations();
  c.metrics.clear();
  for (const auto& r : result.metrics)
    c.metrics.push_back({r.sim_time_s, r.wall_time_s, r.samples, r.epoch, r.train_loss, r.test_loss, r.test_accuracy,
                         r.exposed_comm_s_per_step});
  c.time_to_accuracy = result.time_to_accuracy;
  if (!server_cuts) {
    c.global.resize(real ? P : 0);
    if (real) engine::ops::to_host(global.view(), c.global.data());
  }
  if (!hooks.checkpoint_path.empty()) io::atomic_write(hooks.checkpoint_path, checkpoint_bytes(c));
  ++result.checkpoints_written;
  result.checkpoint_step = c.step;
  if (hooks.on_checkpoint) hooks.on_checkpoint(c);
}

// The real reduction, once per collective, in rank order.
void RunState::reduce(Collective& c) {
  if (!real || c.count == 0) return;
  for (int i : c.members)  // a gradient whose math was left to its first reader (StepChain::math)
    settle_gradient(i, c.parts[static_cast<size_t>(i)].buf.get());
  // Written whole below: a recycled buffer when it has the model's size (the usual case).
  auto out = c.count == P ? recycled(reduce_pool) : std::make_shared<Vec>(c.count, model->device());
  double wsum = 0;
  for (int i : c.members) wsum += c.weights[static_cast<size_t>(i)];
  std::vector<engine::ConstVecView> xs;
  std::vector<float> ws;
  for (int i : c.members) {  // all N, or the members of an elastic collective (sim/elastic.hpp)
    xs.push_back(c.parts[static_cast<size_t>(i)].view());
    ws.push_back(c.op == algo::Reduce::Sum ? 1.0f : static_cast<float>(c.weights[static_cast<size_t>(i)] / wsum));
  }
  engine::ops::weighted_sum(out->view(), xs, ws);  // cut across the compute pool (engine/parallel.hpp)
  c.result = out;
}

void RunState::release_contribution(const Vec* buf, bool more_to_come, std::shared_ptr<const Vec>& frozen) {
  if (!real || !buf) return;
  auto freeze = [&] {
    if (!frozen) frozen = std::make_shared<const Vec>(buf->clone());
    return frozen;
  };
  for (auto& [seq, c] : collectives) {
    const auto part = std::find_if(c.parts.begin(), c.parts.end(), [buf](const Payload& p) { return p.buf.get() == buf; });
    if (part == c.parts.end()) continue;
    if (c.reduce_pending) result_of(c);
    else part->buf = freeze();
  }
  if (more_to_come) freeze();
}

// Called whenever an actor starts an event (compute, send, receive, local work, commit): a signal
// or the wall-clock limit stops the run there. A few loads and one clock read: cheap.
void RunState::check_stop() {
  if (stop) throw StopRun{};
  if (hooks.interrupt && hooks.interrupt->load(std::memory_order_relaxed)) {
    const int sig = hooks.interrupt->load();
    stop_now("interrupted", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig));
  }
  if (hooks.max_wall_s > 0 && wall() > hooks.max_wall_s) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "wall-clock limit of %g s reached", hooks.max_wall_s);
    stop_now("wall_limit", buf);
  }
}

// A buffer of the pool that only the pool holds (a message, a pending math task or a pull still
// holding it keeps it out): a new one per step would be zero-filled and, at 1 MB and more, fresh
// pages from mmap with their faults.
std::shared_ptr<Vec> RunState::recycled(std::vector<std::shared_ptr<Vec>>& pool) {
  for (auto& g : pool)
    if (g.use_count() == 1) return g;
  pool.push_back(std::make_shared<Vec>(P, model->device()));
  return pool.back();
}

void RunState::evaluate(double now) {
  if (result.updates == last_eval_version) return;
  last_eval_version = result.updates;
  MetricRow row;
  row.sim_time_s = now;
  row.wall_time_s = wall();
  row.samples = samples_done;
  row.epoch = static_cast<double>(samples_done) / static_cast<double>(x.training.train_size);
  row.exposed_comm_s_per_step = exposed_per_step ? exposed_per_step() : 0.0;
  if (real) {
    // The model as it is now: worker 0's BatchNorm state as of every minibatch it started (its
    // last gradient awaited), copied with the global model, so the evaluation can run later.
    if (!last_math.empty()) pool->await(last_math[0]);
    auto params = std::make_shared<const Vec>(global.clone());
    auto state = model_state.empty() ? nullptr : std::make_shared<const Vec>(model_state[0].clone());
    auto e = std::make_shared<PendingEval>();
    e->row = result.metrics.size();
    e->train_subset = std::min(x.training.eval_train_subset, data->train.size());
    auto task = [this, params, state, e](const engine::Split& split, size_t n, engine::EvalResult* out) {
      return [this, params, state, &split, n, out, e](engine::Model& m) {
        *out = m.evaluate(params->view(), state ? state->view() : engine::ConstVecView{}, split, 0, n);
      };
    };
    e->test_ticket = pool->submit(task(data->test, data->test.size(), &e->test));
    if (e->train_subset) e->train_ticket = pool->submit(task(data->train, e->train_subset, &e->train));
    pending_evals.push_back(e);
  } else {
    row.train_loss = row.test_loss = row.test_accuracy = std::nan("");
  }
  result.metrics.push_back(row);
  finish_evaluations(false);
}

void RunState::finish_evaluations(bool wait) {
  size_t done = 0;
  for (const auto& e : pending_evals) {  // in order: time_to_accuracy is the first row that reaches it
    if (!wait && !(pool->done(e->test_ticket) && pool->done(e->train_ticket))) break;
    pool->await(e->test_ticket);
    pool->await(e->train_ticket);
    MetricRow& row = result.metrics[e->row];
    row.test_loss = e->test.loss();
    row.test_accuracy = e->test.accuracy();
    row.train_loss = e->train_subset ? e->train.loss() : std::nan("");
    for (size_t i = 0; i < x.training.target_accuracy.size(); ++i)
      if (!result.time_to_accuracy[i] && row.test_accuracy >= x.training.target_accuracy[i])
        result.time_to_accuracy[i] = row.sim_time_s;
    if (!std::isfinite(row.test_loss)) row.test_loss = std::nan("");
    ++done;
  }
  pending_evals.erase(pending_evals.begin(), pending_evals.begin() + static_cast<std::ptrdiff_t>(done));
}

// One shard committed. A global update is complete once all K shards have committed (shards of
// synchronous algorithms commit step t before any commits t+1), and only then is it evaluated.
namespace {
// Resident memory of this process (bytes), from /proc/self/statm; 0 when unknown.
double resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) : 0.0;
}
}  // namespace

// Freed heap memory stays resident, and some runs' resident size grows although their live memory
// does not (Horovod's quickstart: ~0.3 MB per step, once from SimGrid's actor stacks landing at
// new places of the heap, before sim/actor_pool.hpp). Every 16 updates, when the resident size has
// grown by 64 MiB since the baseline (the first check) or the last release, the free pages go back
// to the system (bench/README.md, "Layer-wise timing: what it costs dtsim"). Outputs never depend on it.
void RunState::release_free_memory() {
  if (result.updates % 16 != 0) return;
  const double rss = resident_bytes();
  if (trimmed_rss == 0) {  // the first check (update 16): the baseline, start-up included
    trimmed_rss = rss;
    return;
  }
  if (rss <= trimmed_rss + 64.0 * 1048576.0) return;
  ::malloc_trim(0);
  trimmed_rss = resident_bytes();
}

void RunState::committed(double now) {
  check_stop();
  if (++shard_commits % static_cast<uint64_t>(std::max(1, K)) != 0) return;
  ++result.updates;
  release_free_memory();
  if (server_cuts && ckpt_every > 0 && samples_done >= next_ckpt && claimed < budget) {
    server_cut_pending = true;
    while (next_ckpt <= samples_done) next_ckpt += ckpt_every;
  }
  if (x.training.eval_every_samples > 0 && samples_done >= next_eval) {
    if (real && !engine::ops::all_finite(global.view()))  // parameters checked at evaluation points
      diverge("the global model has non-finite parameters after update " + std::to_string(result.updates), -1, -1);
    evaluate(now);
    while (next_eval <= samples_done) next_eval += x.training.eval_every_samples;
  }
  if (hooks.progress) {
    Progress p{samples_done, budget, now, -1};
    const size_t measured = pending_evals.empty() ? result.metrics.size() : pending_evals.front()->row;
    if (measured > 0 && real) p.accuracy = result.metrics[measured - 1].test_accuracy;  // the last one done
    hooks.progress(p);
  }
}

// Ends the run early: the calling actor unwinds (StopRun), guarded() kills every other actor.
void RunState::stop_now(const std::string& reason, const std::string& detail, int worker, int64_t step) {
  if (!stop) stop = StopInfo{reason, detail, sg4::Engine::get_clock(), step, worker, result.updates};
  throw StopRun{};
}

}  // namespace dtsim::sim::detail
