// The algorithm registry: `algorithm.name` -> factory. One line per algorithm file.
#include <algorithm>
#include <sstream>

#include "algorithms/clip.hpp"
#include "algorithms/common.hpp"

namespace dtsim::algo {

AlgorithmInfo ssgd_info();
AlgorithmInfo asgd_info();
AlgorithmInfo pipe_sgd_info();
AlgorithmInfo ssp_info();
AlgorithmInfo dc_asgd_info();
AlgorithmInfo easgd_info();
AlgorithmInfo od_sgd_info();
AlgorithmInfo ssd_sgd_info();
AlgorithmInfo local_sgd_info();
AlgorithmInfo cocod_sgd_info();
AlgorithmInfo dasgd_info();
AlgorithmInfo hpsgd_info();
AlgorithmInfo diloco_info();
AlgorithmInfo streaming_diloco_info();

// The registry itself: the built-ins, then what plugins add (algorithms/plugin_loader.cpp).
std::vector<AlgorithmInfo>& registry_storage() {
  static std::vector<AlgorithmInfo> all = [] {
    std::vector<AlgorithmInfo> v = {ssgd_info(),  asgd_info(),  pipe_sgd_info(), ssp_info(),
                                    dc_asgd_info(), easgd_info(), od_sgd_info(),   ssd_sgd_info(),
                                    local_sgd_info(), cocod_sgd_info(), dasgd_info(), hpsgd_info(),
                                    diloco_info(),  streaming_diloco_info()};
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    // Keys every algorithm takes, read by the loader and applied by the runtime.
    for (auto& a : v) {
      a.params.push_back(clip_grad_norm_doc());
      a.params.push_back(overlap_doc());
    }
    return v;
  }();
  return all;
}

const std::vector<AlgorithmInfo>& registry() { return registry_storage(); }

const AlgorithmInfo* find_algorithm(const std::string& name) {
  for (const auto& a : registry())
    if (a.name == name) return &a;
  return nullptr;
}

void refuse_fixed_on_failure(ObjectReader& r, const AlgorithmInfo& info, const Algorithm& a) {
  if (!r.has("on_failure")) return;
  for (const auto& p : info.params)
    if (p.key == "on_failure") return;  // the algorithm reads it
  static const char* const kNames[] = {"drop", "restart", "wait", "elastic"};
  r.fail("on_failure", "algorithm '" + info.name + "' has a fixed failure policy (" + kNames[static_cast<int>(a.on_failure())] +
                           ") and takes no on_failure; \"elastic\" applies to ssgd and local-sgd with comm \"allreduce\", cocod-sgd, dasgd, "
                           "diloco and streaming-diloco (docs/platforms.md, Failures)");
}

engine::SgdConfig read_sgd(ObjectReader& r, const engine::SgdConfig& d) {
  engine::SgdConfig c;
  c.lr = r.number("lr", d.lr);
  r.require_positive("lr", c.lr);
  c.momentum = r.number("momentum", d.momentum);
  r.require_range("momentum", c.momentum, 0.0, 0.999999);
  c.weight_decay = r.number("weight_decay", d.weight_decay);
  r.require_non_negative("weight_decay", c.weight_decay);
  c.nesterov = r.boolean("nesterov", d.nesterov);
  if (c.nesterov && c.momentum == 0) r.fail("nesterov", "Nesterov momentum needs momentum > 0");
  c.schedule = read_schedule(r);
  return c;
}

std::vector<ParamDoc> sgd_param_docs(const engine::SgdConfig& d) { return sgd_param_docs(d, "the global optimizer"); }

std::vector<ParamDoc> sgd_param_docs(const engine::SgdConfig& d, const std::string& role) {
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  return {{"lr", num(d.lr), "learning rate of " + role + " (SGD, PyTorch form)"},
          {"momentum", num(d.momentum), "momentum of " + role},
          {"weight_decay", num(d.weight_decay), "L2 weight decay of " + role + ", added to the gradient"},
          {"nesterov", d.nesterov ? "true" : "false", "Nesterov momentum for " + role},
          schedule_doc(role)};
}

}  // namespace dtsim::algo
