// A plugin whose registration throws (tests/cli/test_plugins.cpp: refused with its message).
#include <stdexcept>

#include "algorithms/plugin.hpp"

DTSIM_PLUGIN(registry) {
  (void)registry;
  throw std::runtime_error("no licence for this algorithm");
}
