// A plugin built for another plugin ABI version: its entry point answers 999 and registers nothing
// (what DTSIM_PLUGIN compiled against other headers does; tests/cli/test_plugins.cpp).
extern "C" __attribute__((visibility("default"))) int dtsim_plugin_register(int, void*) { return 999; }
