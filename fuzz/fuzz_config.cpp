// libFuzzer target: the experiment config + platform loader (sim::load_experiment_json) and the
// `--set` override parser, from arbitrary bytes. Contract: bad input only ever throws InputError.
// Anything else — another exception type, a crash, a sanitizer report, a hang, an out-of-memory —
// is a bug and stops the fuzzer (an escaping exception reaches std::terminate → abort).
//
// Input layout: the JSON document, then optionally NUL-separated `--set KEY=VALUE` assignments:
//   {"name": ...}\0training.samples=64\0algorithm.lr=0.1
// Relative paths (a platform file, a dataset directory) resolve against examples/, like a real
// config sitting there, so the seed corpus from examples/ loads its platforms/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "sim/config.hpp"

using namespace dtsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t nul = in.find('\0', start);
    parts.push_back(in.substr(start, nul == std::string::npos ? std::string::npos : nul - start));
    if (nul == std::string::npos) break;
    start = nul + 1;
  }
  json doc;
  try {
    doc = json::parse(parts[0]);  // the CLI turns a parse error into InputError(file, "", position)
  } catch (const json::exception&) {  // parse_error, or out_of_range for 1e999 (the CLI: InputError, exit 2)
    return 0;
  }
  const std::vector<std::string> sets(parts.begin() + 1, parts.end());
  try {
    sim::Experiment x = sim::load_experiment_json(std::move(doc), DTSIM_SOURCE_DIR "/examples/fuzz.json",
                                                  DTSIM_SOURCE_DIR "/examples", sets);
    // What the CLI does next with a valid experiment, short of running it.
    (void)x.resolved.dump(2);
    (void)sim::dataset_shape(x.dataset);
  } catch (const InputError&) {
    // the only acceptable failure
  }
  return 0;
}
