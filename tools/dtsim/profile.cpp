// dtsim profile — measures one model's forward, backward and update times, and each layer's
// forward and backward, on this machine and writes a compute profile (engine/profile.hpp) that
// `compute.time.kind: "profile"` uses (docs/profiles.md, "Compute profiles").
//
//   dtsim profile MODEL --input C,H,W --batch B [--classes N] [--device cpu|reference|cuda]
//                 [--threads T] [--steps S] [--warmup W] [--clock wall|thread-cpu] [--out FILE]
//
// MODEL is a model kind ("resnet20") or a model JSON object ('{"kind":"mlp","hidden":[256,256]}').
// Times are medians over S (default 20, at least 20) measured steps after W (default 5) warm-up
// steps, on random data; then S more steps timed layer by layer, whose per-layer medians are scaled
// to add up to the forward and backward medians (the factors: layer_scale). The profile goes to
// FILE, default traces/profiles/<kind>-<device>-b<B>.json (relative to the current directory).
// --clock thread-cpu times the thread's CPU time instead of the wall clock (1 thread, host
// devices): the figure an idle machine would give, measured on a busy shared one. Exit codes: 0, 1 runtime failure, 2 bad usage or input.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/io.hpp"
#include "common/json_reader.hpp"
#include "engine/cuda/cuda.hpp"
#include "engine/profile.hpp"
#include "tools/dtsim/cli.hpp"
#include "tools/dtsim/commands.hpp"

using namespace dtsim;

namespace {

using cli::UsageError;

constexpr const char* kProfileDescription =
    "Measures forward, backward and optimizer-update times of MODEL on this machine (medians over\n"
    "S >= 20 steps after W warm-up steps, random data), then each layer's forward and backward\n"
    "(medians over S more steps timed layer by layer, scaled so that the layers add up exactly to\n"
    "the forward and backward medians; the factors are recorded as layer_scale), and writes a\n"
    "compute profile for compute.time.kind \"profile\" (default:\n"
    "traces/profiles/<model>-<device>-b<B>.json). Layer-wise timing (algorithm.overlap) then gives\n"
    "each layer its measured times. See docs/profiles.md.\n";

struct Options {
  std::string model_arg, input_arg, out, device = "cpu", clock = "wall";
  std::string batch, classes = "10", threads = "1", steps = "20", warmup = "5";
};

int to_int(const std::string& opt, const std::string& v, int lo, int hi) {
  return static_cast<int>(cli::to_int(opt, v, lo, hi));
}

int run_profile(const Options& o) {
  if (o.model_arg.empty()) throw UsageError("missing MODEL");
  if (o.input_arg.empty()) throw UsageError("missing --input C,H,W");
  if (o.batch.empty()) throw UsageError("missing --batch B");
  const int batch = to_int("--batch", o.batch, 1, 1 << 20);
  const int classes = to_int("--classes", o.classes, 2, 1 << 20);
  const int threads = to_int("--threads", o.threads, 1, 1024);
  const int steps = to_int("--steps", o.steps, 20, 100000);
  const int warmup = to_int("--warmup", o.warmup, 0, 100000);
  const std::string& model_arg = o.model_arg;
  const std::string& input_arg = o.input_arg;
  const std::string& device = o.device;
  const std::string& clock = o.clock;
  std::string out = o.out;
  if (clock != "wall" && clock != "thread-cpu") throw UsageError("--clock expects wall or thread-cpu, got '" + clock + "'");
  if (clock == "thread-cpu" && (o.device == "cuda" || threads != 1))
    throw UsageError("--clock thread-cpu measures one host thread: use it with --device cpu or reference and --threads 1");

  std::vector<int> dims;
  {
    size_t start = 0;
    while (start <= input_arg.size()) {
      const size_t comma = input_arg.find(',', start);
      const std::string part = input_arg.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      dims.push_back(to_int("--input", part, 1, 4096));  // as a config's dataset.shape (docs/config.md)
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (dims.size() != 3) throw UsageError("--input expects C,H,W (three integers), got '" + input_arg + "'");
    if (const long n = long{dims[0]} * dims[1] * dims[2]; n > 1000000)
      throw UsageError("--input " + input_arg + " is " + std::to_string(n) + " values per sample: at most 1000000 (as a config's dataset.shape)");
  }
  // --out is checked before minutes of measuring: a special file (/dev/null as root) or a directory
  // would be replaced or fail only at the end.
  auto check_out = [](const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
      throw InputError("--out", "", "'" + path + "' is not a regular file (the profile is written to a new file there)");
    const fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) return;
    if (fs::exists(parent, ec) && !fs::is_directory(parent, ec)) throw InputError("--out", "", "'" + parent.string() + "' is not a directory");
    fs::create_directories(parent, ec);
    if (ec) throw InputError("--out", "", "cannot create the directory '" + parent.string() + "': " + ec.message());
  };
  if (!out.empty()) check_out(out);

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
    std::string msg = "--device: unknown device '" + device + "'";
    if (auto near = nearest_key(device, {"cpu", "reference", "cuda"})) msg += " (did you mean '" + *near + "'?)";
    throw UsageError(msg);
  }

  const engine::ComputeProfile p = engine::measure_compute_profile(
      spec, JsonOrigin{"MODEL", ""}, engine::SampleShape{dims[0], dims[1], dims[2]}, classes, batch, opts, steps, warmup,
      clock == "thread-cpu");
  if (o.out.empty()) {
    out = "traces/profiles/" + engine::default_profile_name(p);
    check_out(out);
  }
  io::atomic_write(out, to_json(p).dump(2) + "\n");

  std::printf("model %s, input %dx%dx%d, batch %d, %s (%s), %d thread(s), %s clock\n", p.model_kind.c_str(), dims[0],
              dims[1], dims[2], batch, p.device.c_str(), p.device_name.c_str(), p.threads, p.clock.c_str());
  std::printf("forward  %10.3f ms\nbackward %10.3f ms\nupdate   %10.3f ms\nstep     %10.3f ms  (%.1f samples/s)\n",
              p.forward_s * 1e3, p.backward_s * 1e3, p.update_s * 1e3, p.step_s * 1e3,
              p.step_s > 0 ? batch / p.step_s : 0.0);
  std::printf("layers   %10zu     (per-layer medians x %.3f forward, x %.3f backward add up to the above)\n",
              p.layers.size(), p.layer_scale_forward, p.layer_scale_backward);
  std::printf("profile written to %s\n", out.c_str());
  return 0;
}

}  // namespace

cli::Command dtsim::cli::add_profile_command(CLI::App& top) {
  auto o = std::make_shared<Options>();
  CLI::App* c = top.add_subcommand("profile", kProfileDescription);
  set_usage(*c,
            "dtsim profile MODEL --input C,H,W --batch B [--classes N] [--device cpu|reference|cuda]\n"
            "              [--threads T] [--steps S] [--warmup W] [--clock wall|thread-cpu] [--out FILE]",
            "measure a model's step and per-layer times into a compute profile");
  c->add_option("MODEL", o->model_arg, "a kind (e.g. resnet20, lenet5, mlp) or a model JSON object,\n"
                                       "e.g. '{\"kind\":\"mlp\",\"hidden\":[256]}'")
      ->type_name("");
  c->add_option("--input", o->input_arg, "the input shape (channels, height, width); a gpt's is\nT,1,1: T tokens per sequence, --classes its vocabulary")->type_name("C,H,W");
  c->add_option("--batch", o->batch, "minibatch size")->type_name("B");
  c->add_option("--classes", o->classes, "output classes (default 10)")->type_name("N");
  c->add_option("--device", o->device, "cpu (oneDNN, default), reference or cuda")->type_name("D");
  c->add_option("--threads", o->threads, "compute threads (default 1)")->type_name("T");
  c->add_option("--steps", o->steps, "measured steps, at least 20 (default 20), run 3 times: pass by pass,\n"
                                     "whole steps, layer by layer")
      ->type_name("S");
  c->add_option("--warmup", o->warmup, "warm-up steps, not measured (default 5)")->type_name("W");
  c->add_option("--clock", o->clock,
                "wall (default), or thread-cpu: the thread's CPU time instead of wall\n"
                "time (1 thread, cpu/reference), for a busy shared machine")
      ->type_name("C");
  c->add_option("--out", o->out, "the profile file (default traces/profiles/<model>-<device>-b<B>.json)")->type_name("FILE");
  return {c, [o] { return run_profile(*o); }};
}
