// ONNX models: `"model": {"kind": "onnx", "path": "net.onnx", "init": "seed" | "onnx"}`.
//
// A file written by torch.onnx.export (Debian's libonnx parses it and runs ONNX's own checker)
// becomes an engine Graph of dtsim's layers, so it trains, times and communicates like any named
// model (docs/engine.md, "ONNX models"). What translates:
//   Conv (groups 1, dilation 1, square kernel, equal strides and padding) -> Conv2d
//   Gemm (alpha = beta = 1, with a bias), MatMul + Add of a bias           -> Linear
//   BatchNormalization -> BatchNorm2d (always training mode: batch statistics, per-worker running
//                         statistics as dtsim's own BatchNorm; eval uses the running ones)
//   Relu, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Add of two activations (residual)
//   Flatten, Reshape / Squeeze to [batch, features] -> Flatten (or nothing when already flat)
//   Dropout, Identity -> nothing (Dropout is the identity: dtsim does not drop)
//   Pad (zeros, spatial) before a Conv or an AveragePool -> that layer's padding
//   Shape, Constant, Gather, Unsqueeze, Squeeze, Concat, Cast on shape values: evaluated at import
//   (torch's x.view(x.size(0), -1)), the batch size kept symbolic.
// Parameters are the ONNX initializers in graph (node) order, in dtsim's layouts (a MatMul weight
// [in][out] becomes a Linear weight [out][in]); BatchNorm running mean and variance are state.
// Anything else is an InputError naming the node, its op type and what is supported.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_reader.hpp"
#include "engine/graph.hpp"
#include "engine/models.hpp"

namespace dtsim::engine::onnx {

struct Imported {
  std::unique_ptr<Graph> graph;
  // The file's own values, in the graph's flat buffer orders (what `init: "onnx"` starts from).
  std::vector<float> params, state;
};

// Translates a serialized ONNX ModelProto for samples of shape `input` and `classes` logits. Every
// problem (malformed or truncated bytes, the ONNX checker's refusal, an unsupported operator or
// attribute, a shape it cannot resolve, an input that does not match `input`) throws
// InputError("", "", reason) with a one-line reason.
Imported import_model(std::string_view bytes, const SampleShape& input, int classes);

// "Add, AveragePool, ..." (for messages and docs).
std::string supported_ops();

// The "onnx" model kind (engine/models.cpp): reads `path` (relative paths resolve against the
// directory of the spec's file; the resolved config records the absolute path) and `init`
// ("seed": dtsim's initialisation from the run's seed; "onnx": the file's weights and running
// statistics), imports the file and fills b.graph. Problems are InputErrors at "<origin>.path".
void build_onnx(ObjectReader& spec, BuiltModel& b, const SampleShape& input, int classes);

}  // namespace dtsim::engine::onnx
