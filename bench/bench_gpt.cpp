// The tiny GPT's training step on the CPU: milliseconds per step (forward + backward +
// AdamW), median over repetitions after a warm-up — the step of bench/gpt_anchor.py, which runs
// the same model in PyTorch.
//   usage: bench_gpt [threads=1] [repetitions=15] [--batch B] [--steps S] [--reference] [--profile]
// Model: {"kind": "gpt", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128} over the
// built-in corpus's 73-character vocabulary, batch 16 (2048 tokens), random tokens; AdamW lr 1e-3,
// betas (0.9, 0.95), weight decay 0.1. Each repetition times S steps (default 10) after 3 warm-up
// steps. Prints one line plus a machine-readable
//   RESULT gpt|<device>|<wall ms median>|<thread cpu ms median>|<wall ms min>|<cpu ms min>
// Wall time is what the goal is about; the thread's CPU time (1 thread only) is the robust figure
// on a shared machine where other processes take the core away. --profile prints the forward /
// backward split of the last step.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "common/rng.hpp"
#include "engine/adamw.hpp"
#include "engine/backend.hpp"
#include "engine/model.hpp"

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 15, batch = 16, steps = 10;
  bool reference = false, profile = false;
  int pos = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reference") reference = true;
    else if (a == "--profile") profile = true;
    else if (a == "--batch" && i + 1 < argc) batch = std::atoi(argv[++i]);
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (pos == 0 && ++pos) threads = std::atoi(a.c_str());
    else if (pos == 1 && ++pos) reps = std::atoi(a.c_str());
    else {
      std::fprintf(stderr, "usage: bench_gpt [threads] [repetitions] [--batch B] [--steps S] [--reference] [--profile]\n");
      return 2;
    }
  }
  const int len = 128, vocab = 73;
  const json spec = {{"kind", "gpt"}, {"n_layer", 4}, {"n_head", 4}, {"n_embd", 128}, {"block_size", len}};
  ObjectReader r(spec, JsonOrigin{"bench", "model"});
  const Device dev = reference ? Device::Reference : Device::Cpu;
  auto model = make_model(r, SampleShape{len, 1, 1}, vocab, ComputeOptions{dev, threads});
  Vec p(model->num_params()), g(model->num_params());
  model->init_params(p.view(), 1);
  AdamW opt({.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1}, p.size(), Device::Cpu);
  Batch b;
  b.shape = SampleShape{len, 1, 1};
  b.targets = static_cast<size_t>(len);
  Rng rng(7, Stream::Algorithm, {});
  for (int i = 0; i < batch * len; ++i) {
    b.x.push_back(static_cast<float>(rng.below(vocab)));
    b.y.push_back(static_cast<int32_t>(rng.below(vocab)));
  }
  auto step = [&] {
    model->forward_backward(p.view(), b, g.view());
    opt.step(p.view(), g.view());
  };
  for (int i = 0; i < 3; ++i) step();
  std::vector<double> wall, cpu;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_s();
    for (int i = 0; i < steps; ++i) step();
    cpu.push_back((thread_cpu_s() - c0) / steps * 1e3);
    wall.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / steps * 1e3);
  }
  const double flops = model->flops_per_sample() * batch;
  const double w = median(wall), c = median(cpu);
  std::printf("gpt n_layer 4 n_embd 128 T %d batch %d (%zu params, %.2f GFLOP/step) on %s, %d thread(s): "
              "%.2f ms/step wall, %.2f ms thread cpu (min %.2f / %.2f), %.1f GFLOP/s\n",
              len, batch, model->num_params(), flops * 1e-9, device_name(dev), threads, w, c,
              *std::min_element(wall.begin(), wall.end()), *std::min_element(cpu.begin(), cpu.end()),
              flops / (w * 1e-3) * 1e-9);
  std::printf("RESULT gpt|%s|%.4f|%.4f|%.4f|%.4f\n", device_name(dev), w, c, *std::min_element(wall.begin(), wall.end()),
              *std::min_element(cpu.begin(), cpu.end()));
  if (profile) {
    model->enable_step_timing(true);
    model->forward_backward(p.view(), b, g.view());
    const StepTimes t = model->last_step_times();
    const auto t0 = Clock::now();
    opt.step(p.view(), g.view());
    std::printf("split: forward %.2f ms, backward %.2f ms, AdamW %.2f ms (wall)\n", t.forward_s * 1e3,
                t.backward_s * 1e3, std::chrono::duration<double>(Clock::now() - t0).count() * 1e3);
  }
  return 0;
}
