// Micro benchmark of the engine: milliseconds per training step (forward_backward + Sgd step)
// per backend, median over repetitions after a warm-up, plus the time to evaluate 10k samples.
//   usage: bench_engine [threads=1] [repetitions=25]
// Compare with compute.md §0 (PyTorch 1.13 CPU: MLP 784-256-256-10, batch 64: 1.18 ms/step, 1 thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/model.hpp"
#include "engine/optim.hpp"

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  std::vector<int> hidden;
  size_t batch;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Batch random_batch(size_t n, size_t features, int classes) {
  Rng rng(1, Stream::Algorithm, {n});
  Batch b;
  b.shape = SampleShape{1, 28, 28};
  b.x.resize(n * features);
  for (float& x : b.x) x = static_cast<float>(rng.uniform());
  b.y.resize(n);
  for (auto& y : b.y) y = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  const int reps = argc > 2 ? std::max(5, std::atoi(argv[2])) : 25;
  const SampleShape input{1, 28, 28};
  const std::vector<Case> cases{{"MLP 784-256-256-10, batch 64", {256, 256}, 64},
                                {"MLP 784-256-128-10, batch 32", {256, 128}, 32}};
  std::vector<Device> devices{Device::Reference, Device::Cpu};
  std::printf("bench_engine: %d thread(s), cpu backend = %s, median of %d repetitions\n", threads,
              backend_name(host_backend(Device::Cpu)), reps);
  std::printf("%-30s %-10s %12s %12s %14s\n", "model", "device", "ms/step", "min ms/step", "eval 10k (ms)");

  Batch eval_batch = random_batch(10000, input.size(), 10);
  Split eval_split;
  eval_split.x = eval_batch.x;
  eval_split.y = eval_batch.y;

  for (const Case& c : cases) {
    const Batch batch = random_batch(c.batch, input.size(), 10);
    for (Device d : devices) {
      const json spec = {{"kind", "mlp"}, {"hidden", c.hidden}};
      ObjectReader r(spec, JsonOrigin{"bench", "model"});
      auto model = make_model(r, input, 10, ComputeOptions{d, threads});
      r.finish();
      Vec w(model->num_params()), g(model->num_params());
      model->init_params(w.view(), 1);
      Sgd opt(SgdConfig{0.01, 0.0, 0.0, false}, w.size(), d);
      auto step = [&] {
        model->forward_backward(w.view(), batch, g.view());
        opt.step(w.view(), g.view());
      };
      // Size each repetition to ~50 ms of work (at least 5 steps).
      for (int i = 0; i < 10; ++i) step();
      auto t0 = Clock::now();
      for (int i = 0; i < 10; ++i) step();
      const double probe = std::chrono::duration<double>(Clock::now() - t0).count() / 10;
      const int inner = std::max(5, static_cast<int>(0.05 / std::max(probe, 1e-6)));
      std::vector<double> ms;
      for (int rep = 0; rep < reps; ++rep) {
        t0 = Clock::now();
        for (int i = 0; i < inner; ++i) step();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / inner);
      }
      std::vector<double> ev;
      for (int rep = 0; rep < 5; ++rep) {
        t0 = Clock::now();
        const EvalResult e = model->evaluate(w.view(), eval_split, 0, eval_split.size());
        ev.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (e.count != eval_split.size()) return 1;
      }
      std::printf("%-30s %-10s %12.3f %12.3f %14.1f\n", c.name, device_name(d), median(ms),
                  *std::min_element(ms.begin(), ms.end()), median(ev));
    }
  }
  return 0;
}
