#include "engine/vec.hpp"

#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"

namespace dtsim::engine {

namespace {

constexpr size_t kAlign = 64;

float* host_alloc(size_t n) {
  if (n == 0) return nullptr;
  if (n > (SIZE_MAX - kAlign) / sizeof(float)) throw std::bad_alloc();
  // Round the byte count up to whole cache lines so vector loops may read a full line.
  const size_t bytes = (n * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  void* p = ::operator new(bytes, std::align_val_t(kAlign));
  std::memset(p, 0, bytes);
  return static_cast<float*>(p);
}

void host_free(float* p) {
  if (p) ::operator delete(p, std::align_val_t(kAlign));
}

// Device memory: engine/cuda (cudaMalloc, zero-filled; throws where the backend is not built).
void free_on(float* p, Device d) {
  if (d == Device::Cuda) cuda::release(p);
  else host_free(p);
}

}  // namespace

const char* device_name(Device d) {
  switch (d) {
    case Device::Reference: return "reference";
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "unknown";
}

bool is_host(Device d) { return d == Device::Reference || d == Device::Cpu; }

Vec::Vec(size_t n, Device d) : device_(d) {
  ptr_ = d == Device::Cuda ? cuda::alloc(n) : host_alloc(n);
  size_ = n;
}

Vec::~Vec() { free_on(ptr_, device_); }

Vec::Vec(Vec&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)), device_(o.device_) {}

Vec& Vec::operator=(Vec&& o) noexcept {
  if (this != &o) {
    free_on(ptr_, device_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    size_ = std::exchange(o.size_, 0);
    device_ = o.device_;
  }
  return *this;
}

Vec Vec::clone() const {
  Vec out(size_, device_);
  if (size_ && device_ == Device::Cuda) cuda::copy(out.ptr_, device_, ptr_, device_, size_);
  else if (size_) std::memcpy(out.ptr_, ptr_, size_ * sizeof(float));
  return out;
}

}  // namespace dtsim::engine
