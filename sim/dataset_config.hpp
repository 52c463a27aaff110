// The dataset section's reader, shared by the experiment loader (sim/config.cpp) and defined in
// sim/dataset_config.cpp with dataset_shape and load_dataset (declared in sim/config.hpp).
#pragma once
#include <cstdint>
#include <string>

#include "common/json_reader.hpp"
#include "sim/config.hpp"

namespace dtsim::sim {

// Reads and checks `dataset` (files exist, IDX headers, a text corpus of at least one block).
// `model_block` is the model's block_size when its section gives one (a text dataset's default
// sequence length), else 0.
DatasetSpec read_dataset(ObjectReader r, const std::string& base_dir, int64_t model_block = 0);
// Training-set size (samples, or sequences of a text corpus), from headers only where it can.
uint64_t train_size(const DatasetSpec& d);

}  // namespace dtsim::sim
