// A plugin calling a function dtsim does not have: dlopen (RTLD_NOW) refuses to load it
// (tests/cli/test_plugins.cpp).
extern "C" int dtsim_no_such_function(int);
extern "C" __attribute__((visibility("default"))) int dtsim_plugin_register(int abi, void*) {
  return dtsim_no_such_function(abi);
}
