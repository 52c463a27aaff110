#include "sim/shipped.hpp"

#include <filesystem>

namespace dtsim::sim {

namespace fs = std::filesystem;

std::vector<std::string> shipped_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path share = (exe.parent_path() / ".." / "share" / "dtsim").lexically_normal();
    if (fs::is_directory(share, ec)) dirs.push_back(share.string());
  }
#ifdef DTSIM_SOURCE_DIR
  if (fs::is_directory(DTSIM_SOURCE_DIR "/platforms", ec)) dirs.emplace_back(DTSIM_SOURCE_DIR);
#endif
  return dirs;
}

std::string find_shipped(const std::string& rel) {
  if (rel.empty() || fs::path(rel).is_absolute()) return {};
  std::error_code ec;
  for (const std::string& d : shipped_dirs()) {
    // The source tree keeps the plot script in tools/.
    fs::path p = fs::path(d) / rel;
    if (rel == "plot.py" && !fs::is_regular_file(p, ec)) p = fs::path(d) / "tools" / rel;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  return {};
}

}  // namespace dtsim::sim
