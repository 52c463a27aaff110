// engine/cuda/cuda.hpp for builds without the CUDA backend (DTSIM_CUDA=OFF, or AUTO without
// nvcc): compiled into dtsim_engine instead of the engine/cuda sources (CMakeLists.txt).
// Nothing can hold a CUDA buffer here (Vec(n, Device::Cuda) throws), so only the probes answer.
#include <string>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"

namespace dtsim::engine::cuda {

namespace {
[[noreturn]] void not_built() {
  throw RuntimeError("this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
}
}  // namespace

bool built() { return false; }
bool available() { return false; }
std::string unavailable_reason() { return "this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)"; }
std::string device_description() { not_built(); }
void synchronize() {}

float* alloc(size_t) { not_built(); }
void release(float*) noexcept {}
void copy(float*, Device, const float*, Device, size_t) { not_built(); }

void fill(VecView, float) { not_built(); }
void scale(VecView, float) { not_built(); }
void axpy(VecView, float, ConstVecView) { not_built(); }
void axpby(VecView, float, ConstVecView, float) { not_built(); }
void sub(VecView, ConstVecView, ConstVecView) { not_built(); }
void add(VecView, ConstVecView) { not_built(); }
double dot(ConstVecView, ConstVecView) { not_built(); }
double sum_squares(ConstVecView) { not_built(); }
bool all_finite(ConstVecView) { not_built(); }
void sgd_step(VecView, ConstVecView, float*, float, float, float, bool, bool) { not_built(); }
void adamw_step(VecView, ConstVecView, float*, float*, float, float, float, float, float, float, float, float) {
  not_built();
}

void gemm(bool, bool, size_t, size_t, size_t, float, const float*, size_t, const float*, size_t, float, float*,
          size_t) {
  not_built();
}

double softmax_cross_entropy(const float*, const int32_t*, size_t, size_t, float*, size_t*) { not_built(); }

void forward(const Layer&, const FwdArgs&) { not_built(); }
void backward(const Layer&, const BwdArgs&) { not_built(); }

Staging::~Staging() = default;
const float* Staging::upload(const float*, size_t) { not_built(); }

}  // namespace dtsim::engine::cuda
