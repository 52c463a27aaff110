// Test helper for tests/reality/test_param_lists.py: prints the parameter tensors of a dtsim model
// (name and shape, in buffer order) as JSON, so that the PyTorch definitions in
// bench/reality/models.py can be compared with dtsim's own (engine/models.cpp).
//   dtsim_param_list '{"kind": "resnet20"}' 3,32,32 10
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json_reader.hpp"
#include "engine/layers.hpp"
#include "engine/models.hpp"

using namespace dtsim;
using namespace dtsim::engine;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: dtsim_param_list SPEC_JSON C,H,W CLASSES\n";
    return 2;
  }
  try {
    json spec = json::parse(argv[1]);
    int c = 0, h = 0, w = 0;
    if (std::sscanf(argv[2], "%d,%d,%d", &c, &h, &w) != 3) throw InputError("", "input", "expected C,H,W");
    ObjectReader r(spec, {"", "model"});
    BuiltModel b = build_model(r, SampleShape{c, h, w}, std::stoi(argv[3]));
    json out = json::array();
    for (const auto& node : b.graph->nodes()) {
      const Layer& l = *node.layer;
      std::vector<ParamTensor> ts;
      l.param_tensors(0, ts);
      std::vector<std::vector<int64_t>> shapes;
      if (const auto* lin = dynamic_cast<const Linear*>(&l)) {
        shapes = {{static_cast<int64_t>(lin->out_size()), static_cast<int64_t>(lin->in_size())},
                  {static_cast<int64_t>(lin->out_size())}};
      } else if (const auto* conv = dynamic_cast<const Conv2d*>(&l)) {
        const auto& g = conv->geom();
        shapes = {{g.oc, g.c, g.kh, g.kw}};
        if (conv->has_bias()) shapes.push_back({g.oc});
      } else if (dynamic_cast<const BatchNorm2d*>(&l)) {
        shapes = {{l.in_shape().c}, {l.in_shape().c}};
      }
      if (shapes.size() != ts.size()) {
        std::cerr << "dtsim_param_list: no shape rule for layer '" << l.name() << "' (" << l.type() << ")\n";
        return 1;
      }
      for (size_t i = 0; i < ts.size(); ++i) {
        size_t n = 1;
        for (int64_t d : shapes[i]) n *= static_cast<size_t>(d);
        if (n != ts[i].size) {
          std::cerr << "dtsim_param_list: shape of '" << ts[i].name << "' does not match its size\n";
          return 1;
        }
        out.push_back({{"name", ts[i].name}, {"shape", shapes[i]}});
      }
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
