// dtsim profile — measures one model's forward, backward and update times on this machine and
// writes a compute profile (engine/profile.hpp) that `compute.time.kind: "profile"` uses.
//
//   dtsim profile MODEL --input C,H,W --batch B [--classes N] [--device cpu|reference|cuda]
//                 [--threads T] [--steps S] [--warmup W] [--clock wall|thread-cpu] [--out FILE]
//
// MODEL is a model kind ("resnet20") or a model JSON object ('{"kind":"mlp","hidden":[256,256]}').
// Times are medians over S (default 20, at least 20) measured steps after W (default 5) warm-up
// steps, on random data. The profile goes to FILE, default traces/profiles/<kind>-<device>-b<B>.json
// (relative to the current directory). --clock thread-cpu times the thread's CPU time instead of
// the wall clock (1 thread, host devices): the figure an idle machine would give, measured on a
// busy shared one. Exit codes: 0, 1 runtime failure, 2 bad usage or input.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/profile.hpp"

using namespace dtsim;

namespace {

constexpr const char* kProfileUsage =
    "Usage: dtsim profile MODEL --input C,H,W --batch B [--classes N] [--device cpu|reference|cuda]\n"
    "                     [--threads T] [--steps S] [--warmup W] [--clock wall|thread-cpu] [--out FILE]\n"
    "\n"
    "Measures forward, backward and optimizer-update times of MODEL on this machine (medians over\n"
    "S >= 20 steps after W warm-up steps, random data) and writes a compute profile for\n"
    "compute.time.kind \"profile\" (default: traces/profiles/<model>-<device>-b<B>.json).\n"
    "MODEL: a kind (e.g. resnet20, lenet5, mlp) or a model JSON object, e.g. '{\"kind\":\"mlp\",\"hidden\":[256]}'.\n"
    "--clock thread-cpu: the thread's CPU time instead of wall time (1 thread, cpu/reference), for a\n"
    "busy shared machine. Defaults: --classes 10 --device cpu --threads 1 --steps 20 --warmup 5 --clock wall.\n";

[[noreturn]] void profile_usage_error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n%s", msg.c_str(), kProfileUsage);
  std::exit(2);
}

int to_int(const std::string& opt, const std::string& v, int lo, int hi) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || x < lo || x > hi)
    profile_usage_error(opt + " expects an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                        v + "'");
  return static_cast<int>(x);
}

}  // namespace

int cmd_profile(int argc, char** argv) {
  std::string model_arg, input_arg, out, device = "cpu", clock = "wall";
  int batch = 0, classes = 10, threads = 1, steps = 20, warmup = 5;
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) profile_usage_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "-h" || s == "--help") {
      std::fputs(kProfileUsage, stdout);
      return 0;
    } else if (s == "--input") input_arg = value();
    else if (s == "--batch") batch = to_int(s, value(), 1, 1 << 20);
    else if (s == "--classes") classes = to_int(s, value(), 2, 1 << 20);
    else if (s == "--device") device = value();
    else if (s == "--threads") threads = to_int(s, value(), 1, 1024);
    else if (s == "--steps") steps = to_int(s, value(), 20, 100000);
    else if (s == "--warmup") warmup = to_int(s, value(), 0, 100000);
    else if (s == "--out") out = value();
    else if (s == "--clock") {
      clock = value();
      if (clock != "wall" && clock != "thread-cpu") profile_usage_error("--clock expects wall or thread-cpu, got '" + clock + "'");
    }
    else if (!s.empty() && s[0] == '-') {
      std::string msg = "unknown option '" + s + "'";
      if (auto near = nearest_key(s, {"--input", "--batch", "--classes", "--device", "--threads", "--steps", "--warmup",
                                      "--clock", "--out", "--help"}))
        msg += " (did you mean '" + *near + "'?)";
      profile_usage_error(msg);
    } else if (model_arg.empty()) model_arg = s;
    else profile_usage_error("unexpected argument '" + s + "'");
  }
  if (model_arg.empty()) profile_usage_error("missing MODEL");
  if (input_arg.empty()) profile_usage_error("missing --input C,H,W");
  if (batch == 0) profile_usage_error("missing --batch B");

  std::vector<int> dims;
  {
    size_t start = 0;
    while (start <= input_arg.size()) {
      const size_t comma = input_arg.find(',', start);
      const std::string part = input_arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      dims.push_back(to_int("--input", part, 1, 1 << 16));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (dims.size() != 3) profile_usage_error("--input expects C,H,W (three integers), got '" + input_arg + "'");
  }

  json spec;
  if (!model_arg.empty() && model_arg[0] == '{') {
    try {
      spec = json::parse(model_arg);
    } catch (const json::exception& e) {
      throw InputError("MODEL", "", "invalid JSON: " + json_error_detail(e));
    }
  } else {
    spec = json{{"kind", model_arg}};
  }

  engine::ComputeOptions opts;
  opts.threads = threads;
  if (device == "cpu") opts.device = engine::Device::Cpu;
  else if (device == "reference") opts.device = engine::Device::Reference;
  else if (device == "cuda") {
    if (!engine::cuda::built()) throw InputError("--device", "", "this dtsim was built without CUDA");
    if (!engine::cuda::available())
      throw InputError("--device", "", "no usable CUDA device (" + engine::cuda::unavailable_reason() + ")");
    opts.device = engine::Device::Cuda;
  } else {
    std::string msg = "unknown device '" + device + "'";
    if (auto near = nearest_key(device, {"cpu", "reference", "cuda"})) msg += " (did you mean '" + *near + "'?)";
    profile_usage_error(msg);
  }

  const engine::ComputeProfile p = engine::measure_compute_profile(
      spec, JsonOrigin{"MODEL", ""}, engine::SampleShape{dims[0], dims[1], dims[2]}, classes, batch, opts, steps, warmup,
      clock == "thread-cpu");
  if (out.empty()) out = "traces/profiles/" + engine::default_profile_name(p);
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  io::atomic_write(out, to_json(p).dump(2) + "\n");

  std::printf("model %s, input %dx%dx%d, batch %d, %s (%s), %d thread(s), %s clock\n", p.model_kind.c_str(), dims[0],
              dims[1], dims[2], batch, p.device.c_str(), p.device_name.c_str(), p.threads, p.clock.c_str());
  std::printf("forward  %10.3f ms\nbackward %10.3f ms\nupdate   %10.3f ms\nstep     %10.3f ms  (%.1f samples/s)\n",
              p.forward_s * 1e3, p.backward_s * 1e3, p.update_s * 1e3, p.step_s * 1e3,
              p.step_s > 0 ? batch / p.step_s : 0.0);
  std::printf("profile written to %s\n", out.c_str());
  return 0;
}
