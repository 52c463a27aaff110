#include "algorithms/plugin_loader.hpp"

#include <dlfcn.h>
#include <elf.h>

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

// A 64-bit ELF file's headers and loaded segments must lie within the file: dlopen maps the
// segments, and touching a page past the end of a truncated file (a half-written build output)
// kills the process with SIGBUS inside glibc instead of failing. Returns "" or the reason.
std::string elf_extent_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) || eh.e_ident[EI_CLASS] != ELFCLASS64)
    return "";  // not a 64-bit ELF file: dlopen says why
  auto beyond = [size](uint64_t off, uint64_t len) { return off > size || len > size - off; };
  if (beyond(eh.e_phoff, uint64_t{eh.e_phnum} * eh.e_phentsize) || (eh.e_shoff && beyond(eh.e_shoff, uint64_t{eh.e_shnum} * eh.e_shentsize)))
    return "its ELF headers lie beyond its " + std::to_string(size) + " bytes";
  for (unsigned i = 0; i < eh.e_phnum && eh.e_phentsize >= sizeof(Elf64_Phdr); ++i) {
    Elf64_Phdr ph{};
    in.seekg(static_cast<std::streamoff>(eh.e_phoff + uint64_t{i} * eh.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&ph), sizeof ph)) return "its program headers cannot be read";
    if (ph.p_type == PT_LOAD && beyond(ph.p_offset, ph.p_filesz))
      return "segment " + std::to_string(i) + " ends at byte " + std::to_string(ph.p_offset + ph.p_filesz) + " of a " +
             std::to_string(size) + "-byte file";
  }
  return "";
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
  if (const std::string why = elf_extent_problem(canon.string()); !why.empty())
    fail("is truncated or corrupt (" + why + "): rebuild it");
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
