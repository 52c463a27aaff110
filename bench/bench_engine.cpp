// Micro benchmark of the engine: milliseconds per training step (forward_backward + SGD step, the
// PyTorch anchor's step: SGD lr 0.01, no momentum), median over repetitions after a warm-up.
//   usage: bench_engine [threads=1] [repetitions=15] [--reference] [--only NAME]
// The cases are the anchors (bench/pytorch_anchor.py runs the same three in PyTorch):
// MLP 784-256-256-10 batch 64, LeNet-5 1x28x28 batch 64, ResNet-8 3x32x32 batch 32. With
// --reference the reference backend is timed too (slow). Prints one line per case plus a
// machine-readable "RESULT name|device|wall ms|thread cpu ms|min wall ms|min cpu ms" line (medians,
// then minima over the repetitions; bench/pytorch_anchor.py reads it).
// Wall time is what the goal is about; the thread's CPU time (1 thread only) is the robust figure
// on a shared machine where other processes take the core away.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/json_reader.hpp"
#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/model.hpp"
#include "engine/optim.hpp"
#include "engine/runtime_info.hpp"

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  const char* name;
  json spec;
  SampleShape input;
  size_t batch;
};

// The calling thread's CPU time (meaningful for 1 thread on a shared, loaded machine).
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

Batch random_batch(size_t n, SampleShape shape, int classes) {
  Rng rng(1, Stream::Algorithm, {n});
  Batch b;
  b.shape = shape;
  b.x.resize(n * shape.size());
  for (float& x : b.x) x = static_cast<float>(rng.normal());
  b.y.resize(n);
  for (auto& y : b.y) y = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 15;
  bool reference = false;
  std::string only;
  int positional = 0;
  auto usage = [](const char* why) {
    std::fprintf(stderr,
                 "error: bench_engine: %s\nusage: bench_engine [threads=1] [repetitions=15, at least 5] "
                 "[--reference] [--only NAME]\n",
                 why);
    return 2;
  };
  auto count = [](const char* s, int& out) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 1 || v > 100000) return false;
    out = static_cast<int>(v);
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reference")) reference = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (argv[i][0] == '-') return usage((std::string("unknown option ") + argv[i]).c_str());
    else if (positional > 1 || !count(argv[i], positional == 0 ? threads : reps))
      return usage((std::string("unexpected argument ") + argv[i]).c_str());
    else ++positional;
  }
  if (reps < 5) {
    std::fprintf(stderr, "warning: bench_engine: %d repetitions raised to 5\n", reps);
    reps = 5;
  }
  const std::vector<Case> cases{
      {"mlp 784-256-256-10, b64", {{"kind", "mlp"}, {"hidden", {256, 256}}}, SampleShape{1, 28, 28}, 64},
      {"lenet5 1x28x28, b64", {{"kind", "lenet5"}}, SampleShape{1, 28, 28}, 64},
      {"resnet8 3x32x32, b32", {{"kind", "resnet8"}}, SampleShape{3, 32, 32}, 32},
  };
  if (!only.empty() && std::none_of(cases.begin(), cases.end(), [&](const Case& c) {
        return std::string(c.name).find(only) != std::string::npos;
      }))
    return usage(("--only " + only + " matches no model (mlp, lenet5, resnet8)").c_str());
  std::vector<Device> devices{Device::Cpu};
  if (reference) devices.push_back(Device::Reference);
  const RuntimeInfo ri = runtime_info(Device::Cpu, threads);
  std::printf("bench_engine: %d thread(s), cpu backend = %s, isa = %s, median of %d repetitions\n", threads,
              ri.backend.c_str(), ri.isa.c_str(), reps);
  std::printf("%-28s %-10s %10s %10s %10s %10s %10s\n", "model", "device", "ms/step", "min", "cpu ms", "fwd ms",
              "bwd ms");

  for (const Case& c : cases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    const Batch batch = random_batch(c.batch, c.input, 10);
    for (Device d : devices) {
      ObjectReader r(c.spec, JsonOrigin{"bench", "model"});
      auto model = make_model(r, c.input, 10, ComputeOptions{d, threads});
      r.finish();
      Vec w(model->num_params()), g(model->num_params());
      model->init_params(w.view(), 1);
      Sgd opt(SgdConfig{0.01, 0.0, 0.0, false}, w.size(), d);
      auto step = [&] {
        model->forward_backward(w.view(), batch, g.view());
        opt.step(w.view(), g.view());
      };
      for (int i = 0; i < 10; ++i) step();
      auto t0 = Clock::now();
      for (int i = 0; i < 5; ++i) step();
      const double probe = std::chrono::duration<double>(Clock::now() - t0).count() / 5;
      const int inner = std::max(3, static_cast<int>(0.1 / std::max(probe, 1e-6)));
      std::vector<double> ms, cpu;
      for (int rep = 0; rep < reps; ++rep) {
        t0 = Clock::now();
        const double c0 = thread_cpu_s();
        for (int i = 0; i < inner; ++i) step();
        cpu.push_back((thread_cpu_s() - c0) * 1e3 / inner);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / inner);
      }
      // Forward/backward split (a separate pass: timing adds clock reads).
      model->enable_step_timing(true);
      std::vector<double> f, b;
      for (int i = 0; i < 20; ++i) {
        model->forward_backward(w.view(), batch, g.view());
        f.push_back(model->last_step_times().forward_s * 1e3);
        b.push_back(model->last_step_times().backward_s * 1e3);
      }
      model->enable_step_timing(false);
      // With several threads the pool's other threads are not in this thread's CPU time.
      const double cpu_ms = threads == 1 ? median(cpu) : std::nan("");
      std::printf("%-28s %-10s %10.3f %10.3f %10.3f %10.3f %10.3f\n", c.name, device_name(d), median(ms),
                  *std::min_element(ms.begin(), ms.end()), cpu_ms, median(f), median(b));
      const double cpu_min = threads == 1 ? *std::min_element(cpu.begin(), cpu.end()) : std::nan("");
      std::printf("RESULT %s|%s|%.4f|%.4f|%.4f|%.4f\n", c.name, device_name(d), median(ms), cpu_ms,
                  *std::min_element(ms.begin(), ms.end()), cpu_min);
    }
  }
  return 0;
}
