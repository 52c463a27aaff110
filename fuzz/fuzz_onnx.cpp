// libFuzzer target: the ONNX model importer (engine::onnx::import_model: protobuf parse, ONNX's
// checker, the translation to an engine Graph) from arbitrary bytes; and, for every model it
// accepts, the Model built from it on the reference backend with one training step on a small
// batch. Contract: a bad model only ever throws InputError; an accepted one builds and trains
// without any other exception. Anything else — a crash, a sanitizer report, a hang, an
// out-of-memory — is a bug and stops the fuzzer.
//
// Input layout: byte 0 picks the dataset the model must fit (sample shape and classes), the rest
// is the .onnx file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.hpp"
#include "engine/graph.hpp"
#include "engine/onnx.hpp"

using namespace dtsim;
using namespace dtsim::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  struct Fit {
    SampleShape shape;
    int classes;
  };
  static const Fit fits[] = {{{1, 12, 12}, 10}, {{3, 16, 16}, 10}, {{3, 8, 8}, 10}, {{1, 4, 4}, 3}};
  const Fit& fit = fits[data[0] % 4];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  onnx::Imported m;
  try {
    m = onnx::import_model(bytes, fit.shape, fit.classes);
  } catch (const InputError&) {
    return 0;  // the only acceptable failure
  }
  // Accepted: it must build and train (small models only, to keep executions fast).
  if (m.graph->num_params() > (size_t{1} << 20) || m.graph->forward_flops() > 2e7) return 0;
  m.graph->set_initial_values(std::move(m.params), std::move(m.state));
  auto model = make_graph_model("onnx", std::move(*m.graph), fit.classes, ComputeOptions{Device::Reference, 1});
  Vec p(model->num_params()), g(model->num_params()), st(model->num_state());
  model->init_params(p.view(), 1);
  model->init_state(st.view());
  Batch b;
  b.shape = fit.shape;
  for (size_t i = 0; i < 2 * fit.shape.size(); ++i) b.x.push_back(0.1f * static_cast<float>(i % 7));
  b.y = {0, 1};
  (void)model->forward_backward(p.view(), st.view(), b, g.view());
  return 0;
}
