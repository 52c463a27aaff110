// A plugin with two bugs dtsim cannot refuse up front (tests/cli/test_plugins.cpp): its workers
// train, but it never publishes the global model (Worker::publish_global) and, although it says it
// is checkpointable, never cuts a checkpoint. The run completes with a warning for each.
#include "algorithms/plugin.hpp"

namespace {

using namespace dtsim::algo;

class SilentSgd final : public Algorithm {
 public:
  bool needs_servers() const override { return false; }
  bool checkpointable() const override { return true; }
  void worker(Worker& w) override {
    Vec x = copy_of(w, view_of(w.initial_params()));
    dtsim::engine::Sgd opt(dtsim::engine::SgdConfig{}, x.size(), w.device());
    for (int64_t t = 0; t < w.sync_steps(); ++t) {
      Gradient g = w.compute(x.view());
      if (w.real()) opt.step(x.view(), view_of(g), 0.05);
      w.update_cost();
    }
  }
};

}  // namespace

DTSIM_PLUGIN(registry) {
  registry.add({"silent-sgd", "local SGD that never publishes its model nor cuts a checkpoint (a test's buggy plugin)", {},
                [](dtsim::ObjectReader&) -> std::unique_ptr<Algorithm> { return std::make_unique<SilentSgd>(); }});
}
