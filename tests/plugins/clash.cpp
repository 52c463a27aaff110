// A plugin whose algorithm is named like a built-in one (tests/cli/test_plugins.cpp: refused).
#include "algorithms/plugin.hpp"

DTSIM_PLUGIN(registry) {
  registry.add({"ssgd", "a second ssgd", {}, [](dtsim::ObjectReader&) -> std::unique_ptr<dtsim::algo::Algorithm> {
                  return nullptr;
                }});
}
