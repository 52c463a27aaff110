// The "onnx" model kind: reads the spec and imports the file (engine/onnx.hpp).
#include "engine/onnx.hpp"

#include "common/error.hpp"
#include "common/io.hpp"

namespace dtsim::engine::onnx {

void build_onnx(ObjectReader& spec, BuiltModel& b, const SampleShape& input, int classes) {
  const std::string given = spec.string("path");
  const std::string init = spec.choice("init", {"seed", "onnx"}, "seed");
  if (given.empty()) spec.fail("path", "must name an .onnx file");
  // Relative to the file the spec came from (the config), like every other path of a config.
  const std::string path = spec.origin().file.empty() ? given : io::resolve_relative(io::dirname(spec.origin().file), given);
  spec.set_resolved("path", path);
  std::string bytes;
  try {
    bytes = io::read_file(path);
  } catch (const InputError& e) {
    spec.fail("path", "cannot read ONNX model '" + path + "': " + e.reason());
  }
  Imported m;
  try {
    m = import_model(bytes, input, classes);
  } catch (const InputError& e) {
    spec.fail("path", path + ": " + e.reason());
  }
  if (init == "onnx") m.graph->set_initial_values(std::move(m.params), std::move(m.state));
  b.graph = std::move(m.graph);
}

}  // namespace dtsim::engine::onnx
