// Model's default methods and the Graph (engine/graph.hpp): layers in topological order, their
// shapes, counts and per-layer costs. The Model a Graph becomes: engine/model.cpp.
#include "engine/graph.hpp"

#include <time.h>

#include <string>

#include "common/error.hpp"

namespace dtsim::engine {


// ------------------------------------------------------------------------ Model defaults

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void Model::init_state(VecView state) const {
  if (state.size != num_state())
    throw RuntimeError("init_state: buffer holds " + std::to_string(state.size) + " floats, model has " +
                       std::to_string(num_state()) + " state values");
}

float Model::forward_backward(ConstVecView params, VecView state, const Batch& batch, VecView grads) {
  if (state.size != num_state())
    throw RuntimeError("forward_backward: state holds " + std::to_string(state.size) + " floats, model has " +
                       std::to_string(num_state()));
  return forward_backward(params, batch, grads);
}

void Model::set_layer_timer(LayerTimer* timer) {
  if (timer) throw RuntimeError("model '" + kind() + "' has no per-layer timing");
}

EvalResult Model::evaluate(ConstVecView params, ConstVecView state, const Split& split, size_t begin, size_t n) {
  if (state.size != num_state())
    throw RuntimeError("evaluate: state holds " + std::to_string(state.size) + " floats, model has " +
                       std::to_string(num_state()));
  return evaluate(params, split, begin, n);
}

// ------------------------------------------------------------------------------- Graph

Graph::Graph(SampleShape input) {
  if (input.c < 1 || input.h < 1 || input.w < 1) throw RuntimeError("model: bad input shape");
  shapes_.push_back(input);
}

int Graph::add(std::unique_ptr<Layer> layer, int in, int in2) {
  auto check = [&](int t, const char* which) {
    if (t < 0 || t > last())
      throw RuntimeError("layer '" + layer->name() + "': " + which + " tensor " + std::to_string(t) + " does not exist");
    const SampleShape& s = shapes_[static_cast<size_t>(t)];
    const SampleShape& l = layer->in_shape();
    if (s.c != l.c || s.h != l.h || s.w != l.w)
      throw RuntimeError("layer '" + layer->name() + "': input shape " + std::to_string(l.c) + "x" +
                         std::to_string(l.h) + "x" + std::to_string(l.w) + " but the tensor is " + std::to_string(s.c) +
                         "x" + std::to_string(s.h) + "x" + std::to_string(s.w));
  };
  check(in, "input");
  if (layer->num_inputs() == 2) check(in2, "second input");
  else if (in2 >= 0) throw RuntimeError("layer '" + layer->name() + "' takes one input");
  shapes_.push_back(layer->out_shape());
  nodes_.push_back({std::move(layer), in, in2});
  return last();
}

const SampleShape& Graph::shape(int tensor) const { return shapes_.at(static_cast<size_t>(tensor)); }

void Graph::set_initial_values(std::vector<float> params, std::vector<float> state) {
  if (params.size() != num_params() || state.size() != num_state())
    throw RuntimeError("initial values: " + std::to_string(params.size()) + " parameters and " +
                       std::to_string(state.size()) + " state values for a graph of " + std::to_string(num_params()) +
                       " and " + std::to_string(num_state()));
  init_params_ = std::move(params);
  init_state_ = std::move(state);
}

size_t Graph::num_params() const {
  size_t n = 0;
  for (const auto& nd : nodes_) n += nd.layer->num_params();
  return n;
}
size_t Graph::num_state() const {
  size_t n = 0;
  for (const auto& nd : nodes_) n += nd.layer->num_state();
  return n;
}
double Graph::forward_flops() const {
  double f = 0;
  for (const auto& nd : nodes_) f += nd.layer->forward_flops();
  return f;
}
double Graph::training_flops() const {
  double f = 0;
  for (const auto& nd : nodes_)
    f += nd.layer->forward_flops() + nd.layer->backward_input_flops() + nd.layer->backward_weight_flops();
  return f;
}
void Graph::set_positions(int positions) {
  if (positions < 1) throw RuntimeError("model: positions must be at least 1");
  positions_ = positions;
}
std::vector<ParamTensor> Graph::param_tensors() const {
  std::vector<ParamTensor> out;
  size_t off = 0;
  for (const auto& nd : nodes_) {
    nd.layer->param_tensors(off, out);
    off += nd.layer->num_params();
  }
  return out;
}

std::vector<LayerCost> Graph::layer_costs() const {
  std::vector<LayerCost> out;
  std::vector<ParamTensor> scratch;
  size_t off = 0, tensor = 0;
  for (const auto& nd : nodes_) {
    const Layer& l = *nd.layer;
    LayerCost c;
    c.name = l.name();
    c.type = l.type();
    c.forward_flops = l.forward_flops();
    // Convolutions and linear layers: the input gradient and the weight gradient each cost one
    // forward (flops_per_sample = 3 x forward); attention and a tied head say otherwise.
    c.backward_input_flops = l.backward_input_flops();
    c.backward_weight_flops = l.backward_weight_flops();
    scratch.clear();
    l.param_tensors(off, scratch);
    for (size_t k = 0; k < scratch.size(); ++k) c.tensors.push_back(tensor++);
    off += l.num_params();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace dtsim::engine
