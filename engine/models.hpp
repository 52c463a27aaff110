// The named architectures (make_model's "kind"): their spec options, graphs and reference counts.
// See docs/engine.md for the list, the published parameter counts they are pinned to and the
// exact variants (PyTorch's default initialisation everywhere).
#pragma once
#include <memory>
#include <string>

#include "common/json_reader.hpp"
#include "engine/graph.hpp"

namespace dtsim::engine {

struct BuiltModel {
  std::string kind;
  std::unique_ptr<Graph> graph;
  int classes = 0;
  bool timing_only = false;
};

// Reads the spec (kind + options, validated, resolved values recorded) and builds the graph
// (layers only: no buffers). Timing-only descriptors build too (input 3x224x224 and 1000 classes
// unless their options say otherwise); make_model refuses them.
BuiltModel build_model(ObjectReader& spec, const SampleShape& input, int classes);

}  // namespace dtsim::engine
