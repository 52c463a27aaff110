// GPU throughput of the cuda backend (built only with DTSIM_CUDA): training samples per second
// (forward + backward + SGD step with momentum and weight decay, fp32, deterministic algorithms)
// for CIFAR models at batch 128, the forward/backward/update split, and the "many workers" case:
// W simulated workers holding W different parameter versions (and BatchNorm states) on the one
// GPU, computing in turn as dtsim's simulated workers do.
//
//   usage: bench_gpu [--models resnet20,resnet18] [--batch 128] [--steps 20] [--reps 10]
//                    [--warmup 10] [--workers 64] [--json FILE]
//
// Each step takes its batch from host memory (4 fixed random batches in turn), as dtsim does, so
// the host-to-device copy of the input is part of the step. Compare with bench/pytorch_gpu.py on
// the same machine (docs/gpu.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json_reader.hpp"
#include "common/rng.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/model.hpp"
#include "engine/optim.hpp"

using namespace dtsim;
using namespace dtsim::engine;

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Batch random_batch(size_t n, SampleShape shape, int classes, uint64_t key) {
  Rng rng(1, Stream::Algorithm, {key});
  Batch b;
  b.shape = shape;
  b.x.resize(n * shape.size());
  for (float& x : b.x) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  b.y.resize(n);
  for (auto& y : b.y) y = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return b;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  std::vector<std::string> models{"resnet20", "resnet18"};
  size_t batch = 128;
  int steps = 20, reps = 10, warmup = 10, workers = 64;
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw InputError("", a, "needs a value");
      return argv[++i];
    };
    if (a == "--models") {
      o.models.clear();
      std::stringstream ss(value());
      for (std::string m; std::getline(ss, m, ',');)
        if (!m.empty()) o.models.push_back(m);
    } else if (a == "--batch") {
      o.batch = static_cast<size_t>(std::max(1, std::atoi(value().c_str())));
    } else if (a == "--steps") {
      o.steps = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--reps") {
      o.reps = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--warmup") {
      o.warmup = std::max(0, std::atoi(value().c_str()));
    } else if (a == "--workers") {
      o.workers = std::max(0, std::atoi(value().c_str()));
    } else if (a == "--json") {
      o.json = value();
    } else {
      throw InputError("", a, "unknown option (see the usage line in bench/bench_gpu.cpp)");
    }
  }
  return o;
}

std::unique_ptr<Model> build(const std::string& kind, SampleShape in, int classes) {
  json spec = {{"kind", kind}};
  ObjectReader r(spec, JsonOrigin{"bench_gpu", "model"});
  auto m = make_model(r, in, classes, ComputeOptions{Device::Cuda, 1});
  r.finish();
  return m;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (!cuda::available()) {
    std::fprintf(stderr, "bench_gpu: no CUDA device: %s\n", cuda::unavailable_reason().c_str());
    return 2;
  }
  const SampleShape in{3, 32, 32};
  const int classes = 10;
  const std::string device = cuda::device_description();
  std::printf("bench_gpu: %s\n", device.c_str());
  std::printf("batch %zu, %d reps x %d steps after %d warm-up steps; fp32, deterministic cuDNN algorithms\n", o.batch,
              o.reps, o.steps, o.warmup);
  std::printf("%-10s %10s %12s %12s %10s %9s %9s %9s\n", "model", "params", "samples/s", "(min..max)", "ms/step",
              "fwd ms", "bwd ms", "sgd ms");
  json out = {{"device", device}, {"batch", o.batch}, {"models", json::array()}};
  std::vector<Batch> batches;
  for (uint64_t k = 0; k < 4; ++k) batches.push_back(random_batch(o.batch, in, classes, k));

  for (const std::string& kind : o.models) {
    auto m = build(kind, in, classes);
    const size_t P = m->num_params();
    Vec p(P, Device::Cuda), g(P, Device::Cuda), st(m->num_state(), Device::Cuda);
    m->init_params(p.view(), 1);
    m->init_state(st.view());
    Sgd opt(SgdConfig{0.1, 0.9, 5e-4, false}, P, Device::Cuda);
    size_t k = 0;
    auto step = [&] {
      m->forward_backward(p.view(), st.view(), batches[k++ % batches.size()], g.view());
      opt.step(p.view(), g.view());
    };
    for (int i = 0; i < o.warmup; ++i) step();
    cuda::synchronize();
    std::vector<double> rates;
    for (int r = 0; r < o.reps; ++r) {
      const auto t0 = Clock::now();
      for (int i = 0; i < o.steps; ++i) step();
      cuda::synchronize();
      rates.push_back(static_cast<double>(o.batch) * o.steps / seconds_since(t0));
    }
    // The split (synchronising between phases, so slightly slower than the steps above).
    m->enable_step_timing(true);
    std::vector<double> fwd, bwd, upd;
    for (int i = 0; i < o.steps; ++i) {
      m->forward_backward(p.view(), st.view(), batches[k++ % batches.size()], g.view());
      const StepTimes t = m->last_step_times();
      fwd.push_back(t.forward_s);
      bwd.push_back(t.backward_s);
      const auto t0 = Clock::now();
      opt.step(p.view(), g.view());
      cuda::synchronize();
      upd.push_back(seconds_since(t0));
    }
    m->enable_step_timing(false);
    const double med = median(rates);
    const auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
    char range[64];
    std::snprintf(range, sizeof range, "%.0f..%.0f", *lo, *hi);
    std::printf("%-10s %10zu %12.0f %12s %10.3f %9.3f %9.3f %9.3f\n", kind.c_str(), P, med, range,
                1e3 * static_cast<double>(o.batch) / med, 1e3 * median(fwd), 1e3 * median(bwd), 1e3 * median(upd));
    json row = {{"model", kind},
                {"params", P},
                {"samples_per_s", med},
                {"samples_per_s_min", *lo},
                {"samples_per_s_max", *hi},
                {"step_ms", 1e3 * static_cast<double>(o.batch) / med},
                {"forward_ms", 1e3 * median(fwd)},
                {"backward_ms", 1e3 * median(bwd)},
                {"update_ms", 1e3 * median(upd)}};

    // W workers with W parameter versions and BatchNorm states: forward_backward in turn (the
    // parameter-server update is the server's, not timed here).
    if (o.workers > 0 && kind == o.models.front()) {
      const size_t W = static_cast<size_t>(o.workers);
      std::vector<Vec> versions, states;
      for (size_t w = 0; w < W; ++w) {
        versions.push_back(p.clone());
        opt.step(versions.back().view(), g.view(), 0.01 * static_cast<double>(w));  // all different
        states.push_back(st.clone());
      }
      for (size_t w = 0; w < W; ++w)
        m->forward_backward(versions[w].view(), states[w].view(), batches[w % batches.size()], g.view());
      cuda::synchronize();
      std::vector<double> wrates;
      for (int r = 0; r < std::max(3, o.reps / 2); ++r) {
        const auto t0 = Clock::now();
        for (size_t w = 0; w < W; ++w)
          m->forward_backward(versions[w].view(), states[w].view(), batches[w % batches.size()], g.view());
        cuda::synchronize();
        wrates.push_back(static_cast<double>(W) / seconds_since(t0));
      }
      const double wm = median(wrates);
      std::printf("  %zu workers, %zu parameter versions: %.1f worker-steps/s (%.0f samples/s; %.3f ms each)\n", W, W,
                  wm, wm * static_cast<double>(o.batch), 1e3 / wm);
      row["workers"] = W;
      row["worker_steps_per_s"] = wm;
    }
    out["models"].push_back(row);
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << out.dump(2) << "\n";
    if (!f) throw RuntimeError("cannot write " + o.json);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gpu: %s\n", e.what());
  return 1;
}
