// compute.device "cuda" / "auto" in the config (sim/config.cpp read_compute): refused with the
// reason where this binary or machine cannot compute on a GPU, chosen where it can.
#include <doctest/doctest.h>

#include <string>

#include "common/error.hpp"
#include "engine/cuda/cuda.hpp"
#include "helpers.hpp"

namespace test_cuda_device_cpp {  // one namespace per test file: the test targets are unity builds

using namespace dtsim;

TEST_CASE("compute.device: cuda is refused with the reason where it cannot run, auto falls back to cpu") {
  {
    json cfg = test::small_config(2);
    cfg["compute"]["device"] = "cuda";
    if (engine::cuda::available()) {
      CHECK(test::load(cfg).compute.device == engine::Device::Cuda);
    } else {
      try {
        test::load(cfg);
        FAIL("no error");
      } catch (const InputError& e) {
        CHECK(e.file() == "test.json");
        CHECK(e.path() == "compute.device");
        if (engine::cuda::built())
          CHECK(e.reason().rfind("no usable CUDA device (", 0) == 0);
        else
          CHECK(e.reason() == "this dtsim was built without CUDA (configure with -DDTSIM_CUDA=ON)");
      }
    }
  }
  {
    json cfg = test::small_config(2);
    cfg["compute"]["device"] = "auto";
    CHECK(test::load(cfg).compute.device == (engine::cuda::available() ? engine::Device::Cuda : engine::Device::Cpu));
  }
  {
    json cfg = test::small_config(2);
    cfg["compute"]["device"] = "gpu";  // not a device name: the usual "did you mean" error
    CHECK_THROWS_AS(test::load(cfg), InputError);
  }
}

}  // namespace test_cuda_device_cpp
