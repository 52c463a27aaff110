// Flat float32 buffers: the unit of everything dtsim moves around (parameters, gradients,
// optimizer state, model averages). One allocation per model copy, per-tensor offsets on top
// (llm.c's ParameterTensors): a push, a pull, an all-reduce or a stale copy is one buffer.
//
// A Vec lives on a Device. Host devices (Reference, Cpu) share plain host memory; the CUDA
// backend (engine/cuda) allocates device memory and its ops run there. Code outside engine/
// never dereferences data() directly: it goes through engine/ops.hpp, which dispatches on the
// device, so algorithms work unchanged on every backend.
#pragma once
#include <cstddef>
#include <memory>
#include <span>

namespace dtsim::engine {

enum class Device { Reference, Cpu, Cuda };
const char* device_name(Device d);
bool is_host(Device d);  // Reference and Cpu share host memory

class Vec;

// Non-owning window [offset, offset+size) of a Vec (or of any buffer on a device).
struct VecView {
  float* ptr = nullptr;
  size_t size = 0;
  Device device = Device::Cpu;
  VecView sub(size_t offset, size_t n) const { return {ptr + offset, n, device}; }
  std::span<float> host() const { return {ptr, size}; }  // only valid for is_host(device)
};
struct ConstVecView {
  const float* ptr = nullptr;
  size_t size = 0;
  Device device = Device::Cpu;
  ConstVecView() = default;
  ConstVecView(const float* p, size_t n, Device d) : ptr(p), size(n), device(d) {}
  ConstVecView(VecView v) : ptr(v.ptr), size(v.size), device(v.device) {}  // NOLINT implicit
  ConstVecView sub(size_t offset, size_t n) const { return {ptr + offset, n, device}; }
  std::span<const float> host() const { return {ptr, size}; }
};

// Owning, zero-initialised, move-only buffer. 64-byte aligned on the host.
class Vec {
 public:
  Vec() = default;
  explicit Vec(size_t n, Device d = Device::Cpu);
  ~Vec();
  Vec(Vec&& o) noexcept;
  Vec& operator=(Vec&& o) noexcept;
  Vec(const Vec&) = delete;
  Vec& operator=(const Vec&) = delete;

  Vec clone() const;  // deep copy on the same device
  size_t size() const { return size_; }
  Device device() const { return device_; }
  bool empty() const { return size_ == 0; }
  float* data() { return ptr_; }
  const float* data() const { return ptr_; }
  VecView view() { return {ptr_, size_, device_}; }
  ConstVecView view() const { return {ptr_, size_, device_}; }
  VecView view(size_t offset, size_t n) { return view().sub(offset, n); }
  ConstVecView view(size_t offset, size_t n) const { return view().sub(offset, n); }

 private:
  float* ptr_ = nullptr;
  size_t size_ = 0;
  Device device_ = Device::Cpu;
};

// Immutable, shared parameter snapshot: what a server publishes and many workers read.
using Snapshot = std::shared_ptr<const Vec>;

}  // namespace dtsim::engine
