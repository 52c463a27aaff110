#include "algorithms/plugin_loader.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "algorithms/clip.hpp"
#include "algorithms/plugin.hpp"
#include "common/error.hpp"

namespace dtsim::algo {

std::vector<AlgorithmInfo>& registry_storage();  // algorithms/registry.cpp

namespace {

struct Loaded {
  std::string path;
  std::vector<std::string> names;
};
std::vector<Loaded>& loaded() {
  static std::vector<Loaded> l;
  return l;
}

bool is_elf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

}  // namespace

std::vector<std::string> load_plugin(const std::string& path, const std::string& file, const std::string& json_path) {
  auto fail = [&](const std::string& reason) -> void {
    throw InputError(file, json_path, "plugin '" + path + "' " + reason);
  };
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path canon = fs::canonical(path, ec);
  if (ec) fail("does not exist");
  if (!fs::is_regular_file(canon, ec)) fail("is not a file");
  for (const Loaded& l : loaded())
    if (l.path == canon.string()) return l.names;
  if (!is_elf(canon.string()))
    fail("is not a shared object (no ELF header): build it with add_library(NAME MODULE ...) against "
         "find_package(dtsim) (docs/plugins.md)");
  // RTLD_NOW: an undefined symbol is reported now, not as a crash mid-run; NODELETE: the factories
  // registered below point into it for the rest of the process.
  void* handle = ::dlopen(canon.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* why = ::dlerror();
    fail(std::string("does not load: ") + (why ? why : "unknown dlopen error"));
  }
  auto* entry = reinterpret_cast<int (*)(int, void*)>(::dlsym(handle, DTSIM_PLUGIN_SYMBOL));
  if (!entry)
    fail("has no " DTSIM_PLUGIN_SYMBOL " function: define the plugin with DTSIM_PLUGIN (algorithms/plugin.hpp)");
  return register_plugin(entry, canon.string(), file, json_path);
}

std::vector<std::string> register_plugin(int (*entry)(int, void*), const std::string& label, const std::string& file,
                                         const std::string& json_path) {
  auto fail = [&](const std::string& reason) -> void {
    throw InputError(file, json_path, "plugin '" + label + "' " + reason);
  };
  for (const Loaded& l : loaded())
    if (l.path == label) return l.names;
  PluginRegistry reg;
  int abi = -1;
  try {
    abi = entry(kPluginAbiVersion, &reg);
  } catch (const std::exception& e) {
    fail(std::string("failed while registering: ") + e.what());
  }
  if (abi != kPluginAbiVersion)
    fail("was built for plugin ABI version " + std::to_string(abi) + "; this dtsim has version " +
         std::to_string(kPluginAbiVersion) + ": rebuild it against this dtsim's SDK (find_package(dtsim))");
  if (!reg.error.empty()) fail("failed while registering: " + reg.error);
  if (reg.added().empty()) fail("registers no algorithm");
  std::vector<std::string> names;
  for (const AlgorithmInfo& a : reg.added()) {
    if (a.name.empty()) fail("registers an algorithm without a name");
    if (!a.make) fail("registers algorithm '" + a.name + "' without a factory (AlgorithmInfo::make)");
    if (const AlgorithmInfo* prev = find_algorithm(a.name)) {
      const std::string owner = plugin_of(prev->name);
      fail("registers algorithm '" + a.name + "', which clashes with " +
           (owner.empty() ? std::string("the built-in algorithm of that name") : "the one of plugin '" + owner + "'") +
           ": rename it");
    }
    if (std::count(names.begin(), names.end(), a.name)) fail("registers algorithm '" + a.name + "' twice");
    names.push_back(a.name);
  }
  for (AlgorithmInfo& a : reg.added()) {
    a.params.push_back(clip_grad_norm_doc());  // applied by the runtime to every algorithm
    a.params.push_back(overlap_doc());
    registry_storage().push_back(std::move(a));
  }
  loaded().push_back({label, names});
  return names;
}

std::string plugin_of(const std::string& name) {
  for (const Loaded& l : loaded())
    if (std::count(l.names.begin(), l.names.end(), name)) return l.path;
  return {};
}

}  // namespace dtsim::algo
