# `cmake --install <build> --prefix P` (README "Install"):
#   P/bin/dtsim
#   P/share/dtsim/{plot.py + plot_common.py + plot_timeline.py, platforms/, examples/, traces/}   found by dtsim relative to itself (sim/shipped.hpp)
#   P/include/dtsim/    the plugin SDK: algorithms/plugin.hpp and every header it includes, transitively
#   P/lib/cmake/dtsim/  find_package(dtsim): the dtsim::sdk target, dtsim_add_plugin(), DTSIM_EXECUTABLE
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS dtsim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/tools/plot.py ${CMAKE_SOURCE_DIR}/tools/plot_common.py
              ${CMAKE_SOURCE_DIR}/tools/plot_timeline.py DESTINATION ${CMAKE_INSTALL_DATADIR}/dtsim)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/platforms ${CMAKE_SOURCE_DIR}/examples ${CMAKE_SOURCE_DIR}/traces
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dtsim PATTERN "build" EXCLUDE)

# The SDK headers: the include closure of algorithms/plugin.hpp (api.hpp, common.hpp and what they
# include), scanned at configure time, so a header they start to include is installed without
# editing this file (each scanned header re-runs the scan when it changes).
function(dtsim_header_closure out)
  set(todo ${ARGN})
  set(done "")
  while(todo)
    list(POP_FRONT todo h)
    if(h IN_LIST done OR NOT EXISTS ${CMAKE_SOURCE_DIR}/${h})
      continue()
    endif()
    list(APPEND done ${h})
    set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/${h})
    file(STRINGS ${CMAKE_SOURCE_DIR}/${h} incs REGEX "^[ \t]*#[ \t]*include[ \t]+\"[^\"]+\"")
    foreach(line IN LISTS incs)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" inc "${line}")
      list(APPEND todo ${inc})
    endforeach()
  endwhile()
  set(${out} ${done} PARENT_SCOPE)
endfunction()
dtsim_header_closure(DTSIM_SDK_HEADERS algorithms/plugin.hpp algorithms/api.hpp algorithms/common.hpp)
foreach(h IN LISTS DTSIM_SDK_HEADERS)
  get_filename_component(dir ${h} DIRECTORY)
  install(FILES ${CMAKE_SOURCE_DIR}/${h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dtsim/${dir})
endforeach()

# dtsim::sdk: what a plugin compiles against (headers, C++20, nlohmann_json); it links nothing, the
# SDK's functions resolve against the dtsim executable when it loads the plugin.
add_library(dtsim_sdk INTERFACE)
set_target_properties(dtsim_sdk PROPERTIES EXPORT_NAME sdk)
target_compile_features(dtsim_sdk INTERFACE cxx_std_20)
target_include_directories(dtsim_sdk INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/dtsim>)
target_link_libraries(dtsim_sdk INTERFACE nlohmann_json::nlohmann_json)
install(TARGETS dtsim_sdk EXPORT dtsimTargets)
install(EXPORT dtsimTargets NAMESPACE dtsim:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dtsim)
file(STRINGS ${CMAKE_SOURCE_DIR}/algorithms/api.hpp _abi REGEX "kPluginAbiVersion = [0-9]+")
string(REGEX REPLACE ".*kPluginAbiVersion = ([0-9]+).*" "\\1" DTSIM_PLUGIN_ABI_VERSION "${_abi}")
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/dtsimConfig.cmake.in ${CMAKE_BINARY_DIR}/dtsimConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dtsim PATH_VARS CMAKE_INSTALL_BINDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/dtsimConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/dtsimConfig.cmake ${CMAKE_BINARY_DIR}/dtsimConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dtsim)

# sim/shipped.cpp falls back to the source tree (a dtsim run from a build directory).
set_source_files_properties(${CMAKE_SOURCE_DIR}/sim/shipped.cpp PROPERTIES
                            COMPILE_DEFINITIONS "DTSIM_SOURCE_DIR=\"${CMAKE_SOURCE_DIR}\"")
