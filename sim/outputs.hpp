// The run directory: summary.json, metrics.csv, links.csv, trace.json, final_params.npy, config.resolved.json.
// Every file is written atomically; summary.json is written last, so its presence means the run
// directory is complete.
#pragma once
#include <string>

#include "common/json_reader.hpp"
#include "sim/config.hpp"
#include "sim/runtime.hpp"

namespace dtsim::sim {

json summary_json(const Experiment& x, const RunResult& r);
std::string metrics_csv(const RunResult& r);
// Writes every output file into `dir`; returns the list of files written.
std::vector<std::string> write_outputs(const Experiment& x, const RunResult& r, const std::string& dir);

}  // namespace dtsim::sim
