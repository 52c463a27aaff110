// The `gpt` model kind: nanoGPT's GPT-2 architecture (pre-LayerNorm blocks of causal
// self-attention and a GELU MLP, learned position embeddings, a final LayerNorm, the output head
// tied to the token embedding, biases everywhere) over a token sequence from the `text` dataset.
// Spec: {"kind": "gpt", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "dropout": 0}.
// The vocabulary is the dataset's class count; block_size defaults to the dataset's sequence
// length (which must not exceed it). docs/engine.md, "Language models".
#pragma once
#include <cstddef>

#include "common/json_reader.hpp"
#include "engine/graph.hpp"

namespace dtsim::engine {

// Reads the gpt options from `spec` (validated, resolved values recorded) and builds the graph for
// an input of T x 1 x 1 token ids and `vocab` classes.
void build_gpt(ObjectReader& spec, Graph& g, const SampleShape& in, int vocab);

// nanoGPT's parameter count for these settings (tied head counted once, biases on):
// vocab*E + block*E + n_layer*(12 E^2 + 13 E) + 2 E. nanoGPT's get_num_params() prints this minus
// the position embedding (block*E).
size_t gpt_num_params(size_t n_layer, size_t n_embd, size_t vocab, size_t block_size);

}  // namespace dtsim::engine
