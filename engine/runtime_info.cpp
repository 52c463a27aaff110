#include "engine/runtime_info.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/backend.hpp"
#include "engine/onednn_kernels.hpp"

namespace dtsim::engine {

RuntimeInfo runtime_info(Device device, int threads) {
  RuntimeInfo r;
  r.backend = device == Device::Cuda ? "cuda" : backend_name(host_backend(device));
  r.isa = onednn::effective_isa();
  r.threads = threads;
  return r;
}

RuntimeInfo runtime_info() {
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
  return runtime_info(Device::Cpu, threads);
}

}  // namespace dtsim::engine
