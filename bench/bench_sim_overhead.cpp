// Simulator overhead: the wall time of one real-mode run against the wall time of the same number
// of bare gradient computations (gather + forward_backward, same model, same minibatches) in a loop.
//   bench_sim_overhead [CONFIG.json] [--set KEY=VALUE]... [--fresh-actors]
// --fresh-actors: every short-lived job of a worker gets a new SimGrid actor (RunHooks::fresh_actors,
// the form before sim/actor_pool.hpp), to measure what the pool saves.
// Periodic evaluation is switched off (only the final one remains) so that both sides do the same
// compute; the ratio is then what SimGrid, messaging, server averaging and optimizer steps cost.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "sim/config.hpp"
#include "sim/runtime.hpp"

using namespace dtsim;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string cfg = DTSIM_SOURCE_DIR "/examples/quickstart.json";
  sim::RunHooks hooks;
  std::vector<std::string> sets = {"training.eval_every_samples=0", "training.eval_train_subset=0",
                                   "output.trace=false"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--set" && i + 1 < argc) sets.push_back(argv[++i]);
    else if (a == "--fresh-actors") hooks.fresh_actors = true;
    else cfg = a;
  }
  try {
    const sim::Experiment x = sim::load_experiment(cfg, sets);

    // 1. The bare loop: every worker's minibatches in the order the run computes them. Its data,
    // model and buffers are freed before the run, which starts from the heap `dtsim run` has.
    const int N = x.platform.workers.count, b = x.training.batch_size;
    const uint64_t steps = (x.training.samples + uint64_t(N) * b - 1) / (uint64_t(N) * b);
    double bare = 0, sink = 0;
    {
      const auto [shape, classes] = sim::dataset_shape(x.dataset);
      engine::Dataset data = sim::load_dataset(x.dataset, x.seed);
      json spec = x.model;
      ObjectReader mr(spec, {cfg, "model"});
      auto model = engine::make_model(mr, shape, classes, {x.compute.device, x.compute.threads});
      engine::Vec params(model->num_params()), grads(model->num_params());
      model->init_params(params.view(), x.seed);
      engine::SampleOrder order(data.train.size(), x.seed);
      std::vector<size_t> idx;
      engine::Batch batch;
      // Warm-up outside the timing (both sides start warm: the run's first steps include page faults).
      for (int i = 0; i < 20; ++i) {
        order.worker_batch(0, N, i, b, idx);
        engine::gather(data.train, data.shape, idx, batch);
        sink += model->forward_backward(params.view(), batch, grads.view());
      }
      const auto t0 = Clock::now();
      for (uint64_t k = 0; k < steps; ++k)
        for (int w = 0; w < N; ++w) {
          order.worker_batch(w, N, k, b, idx);
          engine::gather(data.train, data.shape, idx, batch);
          sink += model->forward_backward(params.view(), batch, grads.view());
        }
      bare = std::chrono::duration<double>(Clock::now() - t0).count();
    }

    // 2. The simulated run (dataset loading is inside sim::run: time it separately and subtract).
    double load = 0;
    {
      const auto t1 = Clock::now();
      engine::Dataset again = sim::load_dataset(x.dataset, x.seed);
      load = std::chrono::duration<double>(Clock::now() - t1).count();
    }
    const sim::RunResult r = sim::run(x, hooks);
    const double run = r.wall_time_s - load;

    std::printf("config %s (%s, %d workers, %llu gradients)\n", cfg.c_str(), x.algorithm.c_str(), N,
                static_cast<unsigned long long>(r.gradients));
    std::printf("bare gradient loop   %8.3f s  (%llu gradients, checksum %.3g)\n", bare,
                static_cast<unsigned long long>(steps * N), sink);
    std::printf("dtsim run (no load)  %8.3f s  (dataset load %.3f s excluded; final accuracy %.4f)\n", run, load,
                r.metrics.empty() ? 0.0 : r.metrics.back().test_accuracy);
    std::printf("ratio                %8.3f\n", run / bare);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
