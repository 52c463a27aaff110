// dtsim's shipped files — plot.py, platforms/, examples/, traces/ — found relative to the running
// executable: an installed dtsim (`cmake --install`) has them in <prefix>/share/dtsim next to its
// bin/; a dtsim in any build directory uses the source tree it was built from.
#pragma once
#include <string>
#include <vector>

namespace dtsim::sim {

// The directories searched, in order: <directory of the executable>/../share/dtsim, then the source
// tree (DTSIM_SOURCE_DIR, compiled in; skipped when it no longer exists).
std::vector<std::string> shipped_dirs();
// A shipped file by its path under share/dtsim, e.g. "platforms/star-10g.json" or "plot.py" (in the
// source tree: tools/plot.py); "" when no directory has it.
std::string find_shipped(const std::string& rel);

}  // namespace dtsim::sim
