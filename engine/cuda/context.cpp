// The CUDA context (device 0, legacy default stream, cuBLAS + cuDNN handles, workspaces), device
// memory, copies, vector ops, the SGD update, GEMM through cuBLAS and the loss.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "engine/cuda/common.hpp"

namespace dtsim::engine::cuda {

// ------------------------------------------------------------------------- status checks

namespace {
[[noreturn]] void fail(const char* what, const char* file, int line, const std::string& status) {
  const char* base = std::strrchr(file, '/');
  throw RuntimeError(std::string("CUDA: ") + what + " failed (" + (base ? base + 1 : file) + ":" +
                     std::to_string(line) + "): " + status);
}
}  // namespace

void check(cudaError_t st, const char* what, const char* file, int line) {
  if (st == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  fail(what, file, line, std::string(cudaGetErrorName(st)) + ": " + cudaGetErrorString(st));
}

void check(cublasStatus_t st, const char* what, const char* file, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  fail(what, file, line, std::string(cublas().status_name(st)) + ": " + cublas().status_string(st));
}

void check(cudnnStatus_t st, const char* what, const char* file, int line) {
  if (st == CUDNN_STATUS_SUCCESS) return;
  fail(what, file, line, cudnnGetErrorString(st));
}

// ---------------------------------------------------------------------------- availability

namespace {
struct Probe {
  bool ok = false;
  std::string reason;
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int count = 0;
    const cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess) {
      cudaGetLastError();
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(st) + " (" + cudaGetErrorString(st) + ")";
    } else if (count == 0) {
      r.reason = "no CUDA device found";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return p;
}
}  // namespace

bool built() { return true; }
bool available() { return probe().ok; }
std::string unavailable_reason() { return probe().reason; }

// --------------------------------------------------------------------------------- context

Context& Context::get() {
  // Never destroyed: buffers freed during static destruction must not find it gone.
  static Context* c = [] {
    if (!available()) throw RuntimeError("CUDA backend: " + unavailable_reason());
    return new Context();
  }();
  return *c;
}

Context::Context() {
  DTSIM_CUDA_CHECK(cudaSetDevice(0));
  DTSIM_CUDA_CHECK(cudaGetDeviceProperties(&props_, 0));
  DTSIM_CUDA_CHECK(cublas().create(&blas_));
  DTSIM_CUDA_CHECK(cublas().set_stream(blas_, stream()));
  // Plain FP32 (no TF32, no reduced-precision shortcuts) and no atomics: bitwise reproducible.
  DTSIM_CUDA_CHECK(cublas().set_math_mode(blas_, CUBLAS_PEDANTIC_MATH));
  DTSIM_CUDA_CHECK(cublas().set_atomics_mode(blas_, CUBLAS_ATOMICS_NOT_ALLOWED));
  DTSIM_CUDA_CHECK(cublas().set_pointer_mode(blas_, CUBLAS_POINTER_MODE_HOST));
}

cudnnHandle_t Context::dnn() {
  if (!dnn_) {
    DTSIM_CUDA_CHECK(cudnnCreate(&dnn_));
    DTSIM_CUDA_CHECK(cudnnSetStream(dnn_, stream()));
  }
  return dnn_;
}

namespace {
void grow(void*& p, size_t& have, size_t want) {
  if (want <= have) return;
  const size_t bytes = std::max(want, have + have / 2);
  if (p) DTSIM_CUDA_CHECK(cudaFree(p));  // synchronises: queued users of the old buffer are done
  p = nullptr;
  have = 0;
  DTSIM_CUDA_CHECK(cudaMalloc(&p, bytes));
  have = bytes;
}
}  // namespace

void* Context::workspace(size_t bytes) {
  grow(ws_, ws_bytes_, std::max<size_t>(bytes, 1));
  return ws_;
}

void* Context::scratch(size_t bytes) {
  grow(scratch_, scratch_bytes_, std::max<size_t>(bytes, 4096));
  return scratch_;
}

std::string device_description() {
  Context& c = Context::get();
  const cudaDeviceProp& p = c.props();
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs, " + mem + "), CUDA runtime " + std::to_string(rt) +
         ", cuDNN " + std::to_string(cudnnGetVersion());
}

void synchronize() { DTSIM_CUDA_CHECK(cudaDeviceSynchronize()); }

// ---------------------------------------------------------------------------------- memory
//
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds; the simulator
// allocates and drops parameter-sized buffers all the time (snapshots, reductions), so freed
// blocks are kept per exact byte size and reused. Out of memory: the cache is emptied and the
// allocation retried once.

namespace {
class Allocator {
 public:
  float* alloc(size_t n) {
    const size_t bytes = n * sizeof(float);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
      }
    }
    if (!p) {
      Context::get();  // selects the device (throws when there is none)
      cudaError_t st = cudaMalloc(&p, bytes);
      if (st == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        trim();
        st = cudaMalloc(&p, bytes);
      }
      if (st != cudaSuccess)
        check(st, ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str(), __FILE__, __LINE__);
    }
    DTSIM_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, Context::get().stream()));
    std::lock_guard<std::mutex> lock(mu_);
    live_[p] = bytes;
    return static_cast<float*>(p);
  }

  void release(void* p) noexcept {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: ignore rather than corrupt the cache
    free_[it->second].push_back(p);
    cached_ += it->second;
    live_.erase(it);
  }

  void trim() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [bytes, list] : free_)
      for (void* p : list) cudaFree(p);
    free_.clear();
    cached_ = 0;
  }

 private:
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

Allocator& allocator() {
  static Allocator* a = new Allocator();  // never destroyed (see Context::get)
  return *a;
}

cudaMemcpyKind kind(Device dst, Device src) {
  const bool dh = is_host(dst), sh = is_host(src);
  if (dh && sh) return cudaMemcpyHostToHost;
  if (dh) return cudaMemcpyDeviceToHost;
  if (sh) return cudaMemcpyHostToDevice;
  return cudaMemcpyDeviceToDevice;
}
}  // namespace

float* alloc(size_t n) { return n ? allocator().alloc(n) : nullptr; }
void release(float* p) noexcept { allocator().release(p); }

void copy(float* dst, Device dst_device, const float* src, Device src_device, size_t n) {
  if (n == 0 || dst == src) return;
  if (is_host(dst_device) && is_host(src_device)) {
    std::memmove(dst, src, n * sizeof(float));
    return;
  }
  Context::get();
  // Synchronous with respect to the host for pageable host memory; ordered on the default stream.
  DTSIM_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(float), kind(dst_device, src_device)));
}

Staging::~Staging() { release(ptr_); }

const float* Staging::upload(const float* host, size_t n) {
  if (n > capacity_) {
    release(ptr_);
    ptr_ = nullptr;
    capacity_ = 0;
    ptr_ = alloc(n);
    capacity_ = n;
  }
  copy(ptr_, Device::Cuda, host, Device::Cpu, n);
  return ptr_;
}

// ------------------------------------------------------------------------------ vector ops

namespace {
void require_cuda(Device d, const char* op) {
  if (d != Device::Cuda)
    throw RuntimeError(std::string("ops::") + op + ": mixes a " + device_name(d) +
                       " buffer with CUDA buffers (copy it with ops::copy first)");
}
void require_same(size_t a, size_t b, const char* op) {
  if (a != b)
    throw RuntimeError(std::string("ops::") + op + ": size mismatch (" + std::to_string(a) + " vs " +
                       std::to_string(b) + ")");
}
}  // namespace

void fill(VecView dst, float value) {
  require_cuda(dst.device, "fill");
  kern::fill(dst.ptr, dst.size, value);
}

void scale(VecView y, float a) {
  require_cuda(y.device, "scale");
  kern::scale(y.ptr, y.size, a);
}

void axpy(VecView y, float a, ConstVecView x) {
  require_cuda(y.device, "axpy");
  require_cuda(x.device, "axpy");
  require_same(y.size, x.size, "axpy");
  kern::axpy(y.ptr, y.size, a, x.ptr);
}

void axpby(VecView y, float a, ConstVecView x, float b) {
  require_cuda(y.device, "axpby");
  require_cuda(x.device, "axpby");
  require_same(y.size, x.size, "axpby");
  kern::axpby(y.ptr, y.size, a, x.ptr, b);
}

void sub(VecView out, ConstVecView a, ConstVecView b) {
  require_cuda(out.device, "sub");
  require_cuda(a.device, "sub");
  require_cuda(b.device, "sub");
  require_same(out.size, a.size, "sub");
  require_same(out.size, b.size, "sub");
  kern::sub(out.ptr, out.size, a.ptr, b.ptr);
}

void add(VecView y, ConstVecView x) {
  require_cuda(y.device, "add");
  require_cuda(x.device, "add");
  require_same(y.size, x.size, "add");
  kern::add(y.ptr, y.size, x.ptr);
}

double dot(ConstVecView a, ConstVecView b) {
  require_cuda(a.device, "dot");
  require_cuda(b.device, "dot");
  require_same(a.size, b.size, "dot");
  return kern::dot(a.ptr, b.ptr, a.size);
}

double sum_squares(ConstVecView a) {
  require_cuda(a.device, "sum_squares");
  return kern::sum_squares(a.ptr, a.size);
}

bool all_finite(ConstVecView a) {
  require_cuda(a.device, "all_finite");
  return kern::all_finite(a.ptr, a.size);
}

void sgd_step(VecView w, ConstVecView g, float* v, float lr, float wd, float mu, bool nesterov, bool first) {
  require_cuda(w.device, "sgd_step");
  require_cuda(g.device, "sgd_step");
  require_same(w.size, g.size, "sgd_step");
  if (mu != 0.0f && !v) throw RuntimeError("sgd_step: momentum without a state buffer");
  kern::sgd(w.ptr, g.ptr, v, w.size, lr, wd, mu, nesterov, first);
}

// ------------------------------------------------------------------------------------ GEMM

void gemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda,
          const float* b, size_t ldb, float beta, float* c, size_t ldc) {
  if (m == 0 || n == 0) return;
  for (size_t v : {m, n, k, lda, ldb, ldc})
    if (v > static_cast<size_t>(INT_MAX)) throw RuntimeError("cuda::gemm: dimension beyond INT_MAX");
  Context& ctx = Context::get();
  if (k == 0) {  // cuBLAS would leave C untouched for k == 0 only with beta == 1
    if (beta == 0.0f) {
      for (size_t i = 0; i < m; ++i) kern::fill(c + i * ldc, n, 0.0f);
    } else if (beta != 1.0f) {
      for (size_t i = 0; i < m; ++i) kern::scale(c + i * ldc, n, beta);
    }
    return;
  }
  // Row-major X (r x c, row stride ld) is column-major X^T with leading dimension ld, so the
  // row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T.
  const cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  DTSIM_CUDA_CHECK(cublas().sgemm(ctx.blas(), ob, oa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
                                  &alpha, b, static_cast<int>(ldb), a, static_cast<int>(lda), &beta, c,
                                  static_cast<int>(ldc)));
}

// ------------------------------------------------------------------------------------ loss

double softmax_cross_entropy(const float* logits, const int32_t* host_labels, size_t n, size_t classes,
                             float* dlogits, size_t* correct) {
  if (n == 0) return 0.0;
  for (size_t i = 0; i < n; ++i) {
    const int32_t label = host_labels[i];
    if (label < 0 || static_cast<size_t>(label) >= classes)
      throw RuntimeError("label " + std::to_string(label) + " of sample " + std::to_string(i) + " outside [0, " +
                         std::to_string(classes) + ")");
  }
  // Scratch layout: loss[n] doubles, then hit[n] int32, then labels[n] int32.
  const size_t loss_bytes = n * sizeof(double);
  auto* base = static_cast<char*>(Context::get().scratch(loss_bytes + 2 * n * sizeof(int32_t)));
  auto* loss = reinterpret_cast<double*>(base);
  auto* hit = reinterpret_cast<int32_t*>(base + loss_bytes);
  auto* labels = hit + n;
  DTSIM_CUDA_CHECK(cudaMemcpy(labels, host_labels, n * sizeof(int32_t), cudaMemcpyHostToDevice));
  kern::softmax_xent(logits, labels, n, classes, 1.0 / static_cast<double>(n), dlogits, loss, hit);
  thread_local std::vector<double> host_loss;
  thread_local std::vector<int32_t> host_hit;
  host_loss.resize(n);
  host_hit.resize(n);
  DTSIM_CUDA_CHECK(cudaMemcpy(host_loss.data(), loss, loss_bytes, cudaMemcpyDeviceToHost));
  DTSIM_CUDA_CHECK(cudaMemcpy(host_hit.data(), hit, n * sizeof(int32_t), cudaMemcpyDeviceToHost));
  double total = 0.0;  // in sample order, as the host loop sums
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    total += host_loss[i];
    hits += static_cast<size_t>(host_hit[i]);
  }
  if (correct) *correct += hits;
  return total;
}

}  // namespace dtsim::engine::cuda
