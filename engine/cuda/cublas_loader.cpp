// cuBLAS loaded on first use (engine/cuda/common.hpp, "Cublas"): dlopen by its soname through the
// binary's run path, then by the path CMake found at build time; each entry point by its exported
// name (cublas_v2.h maps cublasCreate to cublasCreate_v2 and so on).
#include <dlfcn.h>

#include <string>

#include "common/error.hpp"
#include "engine/cuda/common.hpp"

#ifndef DTSIM_CUBLAS_SONAME
#error "DTSIM_CUBLAS_SONAME (e.g. libcublas.so.13) comes from CMakeLists.txt"
#endif

namespace dtsim::engine::cuda {

namespace {
void* open_cublas() {
  std::string errors;
  for (const char* name : {DTSIM_CUBLAS_SONAME, DTSIM_CUBLAS_PATH}) {
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    errors += std::string(errors.empty() ? "" : "; ") + (e ? e : name);
  }
  throw RuntimeError(std::string("CUDA backend: cannot load cuBLAS (") + errors + ")");
}

template <class F>
void bind_symbol(void* lib, F& fn, const char* symbol) {
  fn = reinterpret_cast<F>(dlsym(lib, symbol));
  if (!fn) throw RuntimeError(std::string("CUDA backend: cuBLAS has no ") + symbol + " (" + DTSIM_CUBLAS_SONAME + ")");
}
}  // namespace

const Cublas& cublas() {
  static const Cublas c = [] {
    void* lib = open_cublas();  // never closed: the handles live until the process ends
    Cublas r{};
    bind_symbol(lib, r.create, "cublasCreate_v2");
    bind_symbol(lib, r.set_stream, "cublasSetStream_v2");
    bind_symbol(lib, r.set_math_mode, "cublasSetMathMode");
    bind_symbol(lib, r.set_atomics_mode, "cublasSetAtomicsMode");
    bind_symbol(lib, r.set_pointer_mode, "cublasSetPointerMode_v2");
    bind_symbol(lib, r.sgemm, "cublasSgemm_v2");
    bind_symbol(lib, r.status_name, "cublasGetStatusName");
    bind_symbol(lib, r.status_string, "cublasGetStatusString");
    return r;
  }();
  return c;
}

}  // namespace dtsim::engine::cuda
