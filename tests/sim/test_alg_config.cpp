// Algorithm configuration: every registered algorithm validates with its defaults; bad values and
// unknown keys are InputErrors naming algorithm.<key> (no simulation runs here).
#include <filesystem>
#include <fstream>
#include <regex>

#include "algorithms/api.hpp"
#include "tests/sim/test_alg_helpers.hpp"

namespace test_alg_config_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;
using namespace dtsim::test;

namespace {

// The InputError's dotted path and reason, or "" when the config is valid.
std::pair<std::string, std::string> error_of(const json& algorithm) {
  try {
    load(alg_config(algorithm));
  } catch (const InputError& e) {
    return {e.path(), e.reason()};
  }
  return {"", ""};
}

}  // namespace

TEST_CASE("algorithms: every registry entry loads with its defaults and documents every key it reads") {
  const std::vector<std::string> expected = {"asgd",    "cocod-sgd", "dasgd",  "dc-asgd",   "diloco",   "easgd",   "hpsgd",
                                             "local-sgd", "od-sgd",  "pipe-sgd", "ssd-sgd", "ssgd",   "ssp", "streaming-diloco"};
  std::vector<std::string> names;
  for (const auto& a : algo::registry()) names.push_back(a.name);
  CHECK(names == expected);
  for (const auto& a : algo::registry()) {
    CAPTURE(a.name);
    const auto x = load(alg_config({{"name", a.name}}));
    // The resolved section holds exactly the documented keys (+ name) that the loader recorded.
    for (const auto& [key, value] : x.algorithm_spec.items()) {
      if (key == "name") continue;
      bool documented = false;
      for (const auto& p : a.params) documented = documented || p.key == key;
      CHECK_MESSAGE(documented, key);
    }
    CHECK(!a.summary.empty());
  }
}

TEST_CASE("algorithms: bad hyper-parameters are InputErrors at algorithm.<key>") {
  const std::vector<std::tuple<json, std::string, std::string>> cases = {
      {{{"name", "dasgd"}, {"period", 4}, {"delay", 4}}, "algorithm.delay", "smaller than period"},
      {{{"name", "dasgd"}, {"merge", "mean"}}, "algorithm.merge", "convex"},
      {{{"name", "dasgd"}, {"merge", "replace"}, {"mix", 0.5}}, "algorithm.mix", "convex"},
      {{{"name", "ssd-sgd"}, {"pull_every", 0}}, "algorithm.pull_every", ">= 1"},
      {{{"name", "od-sgd"}, {"local_optimizer", "adam"}}, "algorithm.local_optimizer", "sgd"},
      {{{"name", "od-sgd"}, {"local_optimizer", "sgd"}, {"lambda", 1}}, "algorithm.lambda", "dc-asgd-adaptive"},
      {{{"name", "od-sgd"}, {"local_rescale", "N"}}, "algorithm.local_rescale", "1/N"},
      {{{"name", "easgd"}, {"alpha", 1.5}}, "algorithm.alpha", "(0, 1)"},
      {{{"name", "dc-asgd"}, {"mean_square", 0.9}}, "algorithm.mean_square", "adaptive"},
      {{{"name", "ssp"}, {"staleness", -1}}, "algorithm.staleness", ">= 0"},
      {{{"name", "streaming-diloco"}, {"period", 8}, {"delay", 8}}, "algorithm.delay", "smaller than period"},
      {{{"name", "streaming-diloco"}, {"period", 4}, {"fragments", 5}}, "algorithm.fragments", "at most period"},
      // an empty fragment crashed the run (SIGSEGV in its outer step)
      {{{"name", "streaming-diloco"}, {"period", 100000}, {"fragments", 100000}}, "algorithm.fragments",
       "more fragments than model parameters"},
      {{{"name", "diloco"}, {"local_optimizer", "adamw"}, {"local_momentum", 0.9}}, "algorithm.local_momentum", "sgd"},
      {{{"name", "cocod-sgd"}, {"comm", "ps"}}, "algorithm.comm", "allreduce"},
      {{{"name", "local-sgd"}, {"perid", 4}}, "algorithm", "did you mean 'period'"},
      {{{"name", "hpsgd"}, {"momentum", 0.9}}, "algorithm", "unknown key"},
      // optional keys the reader only tests for presence are suggested too (and listed as known)
      {{{"name", "ssgd"}, {"schedul", {{"kind", "cosine"}}}}, "algorithm", "did you mean 'schedule'"},
      {{{"name", "asgd"}, {"zzz", 1}}, "algorithm", "'schedule'"},
  };
  for (const auto& [a, path, reason] : cases) {
    CAPTURE(a.dump());
    const auto [p, r] = error_of(a);
    CHECK(p.rfind(path, 0) == 0);
    CHECK_MESSAGE(r.find(reason) != std::string::npos, r);
  }
  // An algorithm that needs a parameter server refuses a platform without one.
  json cfg = alg_config({{"name", "od-sgd"}}, 4, 0);
  CHECK_THROWS_AS(load(cfg), InputError);
  cfg["algorithm"] = {{"name", "cocod-sgd"}};
  CHECK_NOTHROW(load(cfg));
}

TEST_CASE("algorithms allocate on the compute device: no algorithm file names a device or sizes a Vec itself") {
  // compute.device "cuda" keeps every buffer on the GPU only if algorithms allocate through
  // Node::new_buffer(), new_vec(node, count) or copy_of (algorithms/common.hpp) and build optimizer
  // state with Node::device(). A plain Vec(n) or Device::Cpu would put a buffer on the host.
  const std::regex sized_vec(R"(\bVec\(\s*[^)\s])"), device(R"(Device::(Cpu|Reference|Cuda))");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(DTSIM_SOURCE_DIR "/algorithms")) {
    const auto ext = e.path().extension();
    if (ext != ".cpp" && ext != ".hpp") continue;
    ++files;
    std::ifstream in(e.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      CAPTURE(e.path().filename().string() + ":" + std::to_string(n) + ": " + line);
      if (line.find("inline Vec new_vec(") != std::string::npos) continue;  // the one allocator
      CHECK_FALSE(std::regex_search(line, sized_vec));
      CHECK_FALSE(std::regex_search(line, device));
    }
  }
  CHECK(files >= 15);
}

}  // namespace test_alg_config_cpp
