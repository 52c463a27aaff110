// Loading algorithm plugins (algorithms/plugin.hpp, docs/plugins.md) into the registry: what
// `dtsim ... --plugin FILE` and `"algorithm": {"plugin": FILE}` do. Not part of the plugin SDK.
#pragma once
#include <string>
#include <vector>

namespace dtsim::algo {

// Loads the shared object at `path` and adds its algorithms to registry(); loading the same file
// again does nothing. Returns the names it registered. Every refusal is an InputError(file,
// json_path, reason): the file is missing, is not a shared object or does not load (dlopen's
// reason, e.g. an undefined symbol), has no dtsim_plugin_register function, was built for another
// plugin ABI version, fails while registering, registers nothing, or registers an algorithm
// without a name or factory, or whose name clashes with a built-in or another plugin's.
std::vector<std::string> load_plugin(const std::string& path, const std::string& file, const std::string& json_path);
// The same from an entry point already in this process (`label` names it in messages and in
// plugin_of): how tests register a plugin compiled into them.
std::vector<std::string> register_plugin(int (*entry)(int, void*), const std::string& label, const std::string& file,
                                         const std::string& json_path);
// The plugin file that registered algorithm `name` ("" for a built-in or an unknown name).
std::string plugin_of(const std::string& name);

}  // namespace dtsim::algo
