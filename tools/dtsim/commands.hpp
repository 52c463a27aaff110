// The dtsim commands that live outside main.cpp: each adds itself (its options, --help text) to the
// top-level CLI11 app and returns what runs it once the command line is parsed.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dtsim::cli {

struct Command {
  CLI::App* app = nullptr;      // the command's CLI11 sub-app
  std::function<int()> run;     // runs it (after parsing); the exit code
};

Command add_sweep_command(CLI::App& top);    // tools/dtsim/sweep.cpp
Command add_profile_command(CLI::App& top);  // tools/dtsim/profile.cpp

// `dtsim validate STUDY.json` (tools/dtsim/sweep_study.cpp): a study is recognised by its "base"
// and checked like `dtsim sweep --dry-run`.
bool is_study_file(const std::string& file);
int validate_study(const std::string& file, const std::vector<std::string>& sets);

}  // namespace dtsim::cli
