// The cpu backend's oneDNN calls, kept in this one translation unit (oneDNN 2.x C API).
#include <dlfcn.h>

#include <string>

#include "common/error.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda.hpp"

#ifdef DTSIM_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace dtsim::engine {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Reference: return "reference";
    case Backend::OneDnn: return "onednn";
    case Backend::Cuda: return "cuda";
  }
  return "unknown";
}

bool onednn_available() {
#ifdef DTSIM_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

Backend host_backend(Device d) {
  switch (d) {
    case Device::Reference: return Backend::Reference;
    case Device::Cpu: return onednn_available() ? Backend::OneDnn : Backend::Reference;
    case Device::Cuda: break;
  }
  throw InputError("", "compute.device", "cuda backend not built");
}

Backend compute_backend(Device d) {
  if (d != Device::Cuda) return host_backend(d);
  if (!cuda::built())
    throw InputError("", "compute.device", "this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
  if (!cuda::available()) throw InputError("", "compute.device", "no usable CUDA device: " + cuda::unavailable_reason());
  return Backend::Cuda;
}

void gemm(Backend be, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
          size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  if (be == Backend::Cuda) return cuda::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#ifdef DTSIM_HAVE_ONEDNN
  if (be == Backend::OneDnn) {
    if (m == 0 || n == 0) return;
    const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', static_cast<dnnl_dim_t>(m),
                                        static_cast<dnnl_dim_t>(n), static_cast<dnnl_dim_t>(k), alpha, a,
                                        static_cast<dnnl_dim_t>(lda), b, static_cast<dnnl_dim_t>(ldb), beta, c,
                                        static_cast<dnnl_dim_t>(ldc));
    if (st != dnnl_success)
      throw RuntimeError("dnnl_sgemm failed (status " + std::to_string(static_cast<int>(st)) + ") for " +
                         std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k));
    return;
  }
#else
  (void)be;
#endif
  gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_compute_threads(int threads) {
#if defined(DTSIM_HAVE_ONEDNN) && defined(_OPENMP)
  // oneDNN 2.6 (Debian) runs on libgomp, which the engine links (CMake: OpenMP::OpenMP_CXX).
  if (threads >= 1 && omp_get_max_threads() != threads) omp_set_num_threads(threads);
#elif defined(DTSIM_HAVE_ONEDNN)
  // Built without OpenMP flags: look the entry point up in the process (libdnnl pulled libgomp in).
  using SetFn = void (*)(int);
  static const SetFn set_num_threads = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set_num_threads && threads >= 1) set_num_threads(threads);
#else
  (void)threads;
#endif
}

}  // namespace dtsim::engine
