// Host compute backends and the one GEMM entry point every layer uses.
//
// Backend::Reference — plain loops, no dependencies, always built: the oracle for tests and the
//                      cpu backend of builds without oneDNN.
// Backend::OneDnn    — oneDNN's dnnl_sgemm (only when DTSIM_HAVE_ONEDNN is defined). Its OpenMP
//                      pool is the only thread pool dtsim runs.
// Backend::Cuda      — cuBLAS + cuDNN + own kernels on the GPU (engine/cuda; only when
//                      DTSIM_HAVE_CUDA is defined). Layer pointers are then device pointers.
#pragma once
#include <cstddef>

#include "engine/vec.hpp"

namespace dtsim::engine {

enum class Backend { Reference, OneDnn, Cuda };
const char* backend_name(Backend b);
// True when this build links oneDNN.
bool onednn_available();
// The backend a host device computes with: Reference -> Reference; Cpu -> OneDnn when built,
// else Reference. Throws InputError("", "compute.device", ...) for Cuda.
Backend host_backend(Device d);
// The backend a model on device d computes with: host_backend(d) for host devices, Cuda for Cuda.
// Throws InputError("", "compute.device", ...) for Cuda when this build lacks it or no device is
// usable.
Backend compute_backend(Device d);

// Row-major SGEMM, BLAS semantics: C = alpha * op(A) * op(B) + beta * C, op(A) M x K,
// op(B) K x N, C M x N; lda/ldb/ldc are row strides. beta == 0 means C is not read.
// The reference path sums over k in ascending order for every element (fixed order).
void gemm(Backend b, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
          size_t lda, const float* bm, size_t ldb, float beta, float* c, size_t ldc);
void gemm_reference(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
                    size_t lda, const float* bm, size_t ldb, float beta, float* c, size_t ldc);

// Sets the calling thread's oneDNN (OpenMP) thread count; no-op without oneDNN. Cheap: models
// call it at every entry point, since OpenMP's thread count is a per-thread setting.
void set_compute_threads(int threads);

}  // namespace dtsim::engine
