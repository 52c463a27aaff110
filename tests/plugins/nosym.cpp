// A shared object without the plugin entry point (tests/cli/test_plugins.cpp: refused).
extern "C" __attribute__((visibility("default"))) int not_a_dtsim_plugin() { return 1; }
