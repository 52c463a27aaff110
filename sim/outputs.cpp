#include "sim/outputs.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/io.hpp"
#include "engine/runtime_info.hpp"

namespace dtsim::sim {

namespace {
json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string target_key(double t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", t);
  return buf;
}
}  // namespace

json summary_json(const Experiment& x, const RunResult& r) {
  json s;
  s["name"] = x.name;
  s["status"] = r.status;
  if (r.stop) {  // interrupted | wall_limit | diverged: why, and where (docs/robustness.md)
    json st = {{"reason", r.stop->reason}, {"detail", r.stop->detail}, {"sim_time_s", r.stop->sim_time_s},
               {"updates", r.stop->updates}};
    if (r.stop->step >= 0) st["step"] = r.stop->step;
    if (r.stop->worker >= 0) st["worker"] = r.stop->worker;
    s["stopped"] = st;
  }
  // degenerate settings found when the config was loaded, then what the end of the run showed
  // (sim/preflight.hpp: config_warnings, result_warnings)
  s["warnings"] = x.warnings;
  s["dtsim_version"] = DTSIM_VERSION;
  s["seed"] = x.seed;
  s["algorithm"] = x.algorithm;
  s["workers"] = x.platform.workers.count;
  s["servers"] = x.platform.servers.count;
  s["network_model"] = x.platform.network == PlatformSpec::Network::Exact ? "exact" : "lv08";
  s["model"] = x.model.value("kind", "");
  s["model_parameters"] = r.model_parameters;
  s["model_bytes"] = 4 * r.model_parameters;
  s["flops_per_sample"] = r.flops_per_sample;
  s["dataset"] = x.dataset.kind;
  s["compute_mode"] = x.compute.real ? "real" : "timing-only";
  s["compute_device"] = r.device;
  s["compute_threads"] = x.compute.threads;
  s["compute_pool"] = r.compute_pool;  // like the wall time, the only field that depends on it
  // like compute_pool, nothing else depends on it: platform.workers.grouping simulates 1 (sim/grouping.hpp)
  s["workers_simulated"] = r.simulated_workers;
  const engine::RuntimeInfo ri = engine::runtime_info(x.compute.device, x.compute.threads);  // engine/runtime_info.hpp
  s["compute_backend"] = ri.backend, s["compute_isa"] = ri.isa;
  s["batch_size"] = x.training.batch_size;
  s["sample_budget"] = x.training.samples;
  s["samples"] = r.samples;
  s["epochs"] = static_cast<double>(r.samples) / static_cast<double>(x.training.train_size);
  s["gradients"] = r.gradients;
  s["updates"] = r.updates;
  s["simulated_time_s"] = r.simulated_time_s;
  s["wall_time_s"] = r.wall_time_s;
  if (r.checkpoints_written > 0) s["checkpoint"] = {{"written", r.checkpoints_written}, {"last_step", r.checkpoint_step}};
  if (r.resumed_from_step >= 0) s["resumed_from_step"] = r.resumed_from_step;  // docs/robustness.md
  s["samples_per_s_simulated"] = r.simulated_time_s > 0 ? json(static_cast<double>(r.samples) / r.simulated_time_s) : json(nullptr);
  const bool measured = x.compute.real && !r.metrics.empty();
  const MetricRow* last = measured ? &r.metrics.back() : nullptr;
  s["final_test_accuracy"] = last ? number_or_null(last->test_accuracy) : json(nullptr);
  s["final_test_loss"] = last ? number_or_null(last->test_loss) : json(nullptr);
  s["final_train_loss"] = last ? number_or_null(last->train_loss) : json(nullptr);
  json tta = json::object();
  for (size_t i = 0; i < x.training.target_accuracy.size(); ++i)
    tta[target_key(x.training.target_accuracy[i])] = r.time_to_accuracy[i] ? json(*r.time_to_accuracy[i]) : json(nullptr);
  s["time_to_accuracy_s"] = tta;
  // Language models (issue 18): training.target_loss -> the simulated time of the first evaluation
  // whose test (validation) loss is at or below each target, read from the evaluation rows (the
  // same points time_to_accuracy_s uses); the final perplexity exp(test loss) for text.
  if (!x.training.target_loss.empty()) {
    json ttl = json::object();
    for (double target : x.training.target_loss) {
      json at = nullptr;
      for (size_t i = 0; measured && i < r.metrics.size(); ++i)
        if (std::isfinite(r.metrics[i].test_loss) && r.metrics[i].test_loss <= target) {
          at = r.metrics[i].sim_time_s;
          break;
        }
      ttl[target_key(target)] = at;
    }
    s["time_to_loss_s"] = ttl;
  }
  if (x.dataset.kind == "text")
    s["final_test_perplexity"] = last && std::isfinite(last->test_loss) ? json(std::exp(last->test_loss)) : json(nullptr);
  s["bytes_on_wire"] = r.bytes_on_wire;
  s["messages"] = r.messages;
  if (const LinkRow* b = busiest_link(r.links))  // the bottleneck (links.csv has every link)
    s["busiest_link"] = {{"name", b->name}, {"utilisation", b->utilisation}, {"bytes", b->bytes}, {"busy_s", b->busy_s},
                         {"bandwidth_Bps", b->bandwidth}};
  else
    s["busiest_link"] = nullptr;
  json failures = json::array();  // platform.failures that happened (docs/platforms.md)
  for (const auto& f : r.failures)
    failures.push_back({{"host", f.host}, {"kind", f.kind}, {"at_s", f.at_s},
                        {"detected_s", f.detected_s ? json(*f.detected_s) : json(nullptr)},
                        {"recovered_s", f.recovered_s ? json(*f.recovered_s) : json(nullptr)}});
  s["failures"] = failures;
  s["samples_lost"] = r.samples_lost;
  if (r.elastic) {  // on_failure "elastic": each change of the all-reduce group (sim/elastic.hpp)
    json el = json::array();
    for (const auto& e : *r.elastic) el.push_back({{"at_s", e.at_s}, {"workers", e.workers}, {"reason", e.reason}});
    s["elastic"] = el;
  }
  s["trace"] = r.trace.enabled;
  json pw = json::array();
  for (const auto& w : r.per_worker)
    pw.push_back({{"host", w.host}, {"gradients", w.gradients}, {"samples", w.samples}, {"compute_s", w.compute_s},
                  {"comm_wait_s", w.comm_wait_s}, {"exposed_comm_s", w.exposed_comm_s}});
  s["per_worker"] = pw;
  double exposed = 0;  // the workers' mean (docs/timing.md)
  for (const auto& w : r.per_worker) exposed += w.exposed_comm_s / static_cast<double>(r.per_worker.size());
  s["exposed_comm_s"] = exposed;
  s["overlap"] = x.overlap.name();
  return s;
}

std::string metrics_csv(const RunResult& r) {
  std::string out = "sim_time_s,wall_time_s,samples,epoch,train_loss,test_loss,test_accuracy,exposed_comm_s_per_step\n";
  char buf[256];
  auto num = [](double v) -> std::string {
    if (!std::isfinite(v)) return "";
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
  };
  for (const auto& m : r.metrics) {
    std::snprintf(buf, sizeof buf, "%s,%s,%llu,%s,%s,%s,%s,%s\n", num(m.sim_time_s).c_str(), num(m.wall_time_s).c_str(),
                  static_cast<unsigned long long>(m.samples), num(m.epoch).c_str(), num(m.train_loss).c_str(),
                  num(m.test_loss).c_str(), num(m.test_accuracy).c_str(), num(m.exposed_comm_s_per_step).c_str());
    out += buf;
  }
  return out;
}

std::vector<std::string> write_outputs(const Experiment& x, const RunResult& r, const std::string& dir) {
  std::vector<std::string> files;
  auto put = [&](const std::string& name, std::string_view content) {
    io::atomic_write(dir + "/" + name, content);
    files.push_back(dir + "/" + name);
  };
  put("config.resolved.json", x.resolved.dump(2) + "\n");
  put("metrics.csv", metrics_csv(r));
  put("links.csv", links_csv(r.links));  // sim/links.cpp
  if (!r.final_params.empty()) put("final_params.npy", io::npy_float32(r.final_params.data(), r.final_params.size()));
  if (r.trace.enabled) put("trace.json", r.trace.chrome_json());
  put("summary.json", summary_json(x, r).dump(2) + "\n");
  return files;
}

}  // namespace dtsim::sim
