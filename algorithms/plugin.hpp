// Algorithm plugins (docs/plugins.md): a shared object, built out of tree against the installed
// SDK (find_package(dtsim)), that registers one or more algorithms:
//
//   #include <algorithms/plugin.hpp>
//   DTSIM_PLUGIN(registry) {
//     registry.add(my_sgd_info());   // an AlgorithmInfo: name, summary, parameters, factory
//   }
//
// and runs with `dtsim run exp.json --plugin libmy.so` or `"algorithm": {"plugin": "libmy.so",
// "name": "my-sgd"}`. A plugin algorithm is an Algorithm like the built-ins (algorithms/api.hpp,
// algorithms/common.hpp): same contexts, checkpoint hooks, failure handling and timing.
//
// The entry point DTSIM_PLUGIN defines is one exported C function,
//   int dtsim_plugin_register(int dtsim_abi, void* registry),
// which registers only when dtsim's ABI version equals the one the plugin was compiled with
// (kPluginAbiVersion, algorithms/api.hpp) and returns the plugin's version either way, so dtsim
// can refuse a mismatch without calling anything else in it.
#pragma once
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/api.hpp"
#include "algorithms/common.hpp"

namespace dtsim::algo {

class PluginRegistry {
 public:
  void add(AlgorithmInfo info) { added_.push_back(std::move(info)); }
  std::vector<AlgorithmInfo>& added() { return added_; }
  std::string error;  // what the plugin's registration threw, if anything

 private:
  std::vector<AlgorithmInfo> added_;
};

}  // namespace dtsim::algo

#define DTSIM_PLUGIN_SYMBOL "dtsim_plugin_register"

#define DTSIM_PLUGIN(reg)                                                                                     \
  static void dtsim_plugin_body(::dtsim::algo::PluginRegistry& reg);                                          \
  extern "C" __attribute__((visibility("default"))) int dtsim_plugin_register(int dtsim_abi, void* registry) { \
    if (dtsim_abi != ::dtsim::algo::kPluginAbiVersion || registry == nullptr) return ::dtsim::algo::kPluginAbiVersion; \
    auto& r = *static_cast<::dtsim::algo::PluginRegistry*>(registry);                                         \
    try {                                                                                                     \
      dtsim_plugin_body(r);                                                                                   \
    } catch (const std::exception& e) {                                                                       \
      r.error = e.what();                                                                                     \
    } catch (...) {                                                                                           \
      r.error = "an exception that is not a std::exception";                                                  \
    }                                                                                                         \
    return ::dtsim::algo::kPluginAbiVersion;                                                                  \
  }                                                                                                           \
  static void dtsim_plugin_body(::dtsim::algo::PluginRegistry& reg)
