// A model as a directed acyclic graph of layers (residual connections: Add with two inputs),
// built in topological order. make_graph_model turns it into a Model: per-backend tensor layouts,
// in-place and aliasing decisions, gradient accumulation where a tensor feeds several layers, and
// one workspace that only grows (steady-state steps allocate nothing).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/layers.hpp"
#include "engine/model.hpp"

namespace dtsim::engine {

class Graph {
 public:
  struct Node {
    std::unique_ptr<Layer> layer;
    int in = -1, in2 = -1;  // input tensors (in2: second input of a two-input layer)
  };

  explicit Graph(SampleShape input);
  // Tensor 0 is the model input.
  static constexpr int input() { return 0; }
  // Adds a layer reading tensor `in` (and `in2` for two-input layers); returns its output tensor.
  // Throws RuntimeError when the layer's input shape does not match the tensor's.
  int add(std::unique_ptr<Layer> layer, int in, int in2 = -1);
  const SampleShape& shape(int tensor) const;
  int last() const { return static_cast<int>(shapes_.size()) - 1; }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }

  size_t num_params() const;
  size_t num_state() const;
  double forward_flops() const;
  // Forward + input-gradient + weight-gradient FLOPs per sample over all layers (Model::flops_per_sample).
  double training_flops() const;
  // Predictions per sample. 1 (default): the last tensor holds the class logits (classes x 1 x 1).
  // T > 1: a sequence model (a language model); the last tensor holds T x classes x 1, one row of
  // logits per position, each with its own label (Split::targets = T), and the loss is the mean
  // over all positions of the batch.
  void set_positions(int positions);
  int positions() const { return positions_; }
  std::vector<ParamTensor> param_tensors() const;
  // Per-layer FLOPs and parameter tensors, in node order (engine/model.hpp, LayerCost).
  std::vector<LayerCost> layer_costs() const;
  // A model file's own initial values (ONNX `init: "onnx"`, engine/onnx.hpp), in the flat
  // parameter and state buffer orders; empty (the default): the model initialises from the seed
  // (Layer::init_params) and its running statistics to 0 / 1.
  void set_initial_values(std::vector<float> params, std::vector<float> state);
  const std::vector<float>& initial_params() const { return init_params_; }
  const std::vector<float>& initial_state() const { return init_state_; }

 private:
  std::vector<SampleShape> shapes_;
  std::vector<Node> nodes_;
  std::vector<float> init_params_, init_state_;
  int positions_ = 1;
};

// The model for a graph whose last tensor holds the logits (`classes` x 1 x 1, or T x `classes` x 1
// with Graph::positions() = T).
std::unique_ptr<Model> make_graph_model(std::string kind, Graph graph, int classes, const ComputeOptions& opts);

}  // namespace dtsim::engine
