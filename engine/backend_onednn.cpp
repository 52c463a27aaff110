// The cpu backend's oneDNN calls, kept in this one translation unit (oneDNN 2.x C API).
#include <dlfcn.h>

#include <string>

#include "common/error.hpp"
#include "engine/backend.hpp"

#ifdef DTSIM_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace dtsim::engine {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Reference: return "reference";
    case Backend::OneDnn: return "onednn";
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

void gemm(Backend be, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
          size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc) {
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
#ifdef DTSIM_HAVE_ONEDNN
  // oneDNN 2.6 (Debian) runs on libgomp; dtsim is not compiled with -fopenmp, so the OpenMP
  // entry point is looked up in the process (libdnnl pulled libgomp in) instead of linked.
  using SetFn = void (*)(int);
  static const SetFn set_num_threads = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set_num_threads && threads >= 1) set_num_threads(threads);
#else
  (void)threads;
#endif
}

}  // namespace dtsim::engine
