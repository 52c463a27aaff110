// libFuzzer target: the CIFAR-10 binary reader (engine::cifar10_train_size, engine::load_cifar10_dir).
// Contract: a malformed or incomplete directory only ever throws InputError; a successful load has
// consistent sizes and labels in 0..9.
//
// Input layout: byte 0 = flags (bit 0: normalize; bit 1: files under cifar-10-batches-bin/;
// bits 2..7: which of the six files exist, the sixth always does), bytes 1..10 = five big-endian u16
// lengths of data_batch_1..5.bin, the rest is test_batch.bin.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "engine/dataset.hpp"

using namespace dtsim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 11) return 0;
  static const std::string root = [] {
    // tmpfs when there is one: the per-input file writes dominate the cost of an execution.
    std::error_code shm_ec;
    char tmpl_shm[] = "/dev/shm/dtsim-fuzz-cifar-XXXXXX";
    char tmpl_tmp[] = "/tmp/dtsim-fuzz-cifar-XXXXXX";
    const char* d = std::filesystem::is_directory("/dev/shm", shm_ec) ? ::mkdtemp(tmpl_shm) : nullptr;
    if (!d) d = ::mkdtemp(tmpl_tmp);
    if (!d) std::abort();
    return std::string(d);
  }();
  const uint8_t flags = data[0];
  std::error_code ec;
  std::filesystem::remove_all(root + "/d", ec);
  const std::string dir = root + "/d" + ((flags & 2) ? "/cifar-10-batches-bin" : "");
  std::filesystem::create_directories(dir, ec);
  static const char* names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                 "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  size_t off = 11;
  for (int i = 0; i < 6; ++i) {
    size_t n = size - off;
    if (i < 5) n = std::min(n, (size_t{data[1 + 2 * i]} << 8) | data[2 + 2 * i]);
    const bool present = i == 5 || (flags & (4u << i));
    if (present) {
      FILE* f = std::fopen((dir + "/" + names[i]).c_str(), "wb");
      if (!f) std::abort();
      if (n) std::fwrite(data + off, 1, n, f);
      std::fclose(f);
    }
    off += n;
  }
  const std::string top = root + "/d";
  try {
    const size_t n = engine::cifar10_train_size(top);
    engine::Dataset d = engine::load_cifar10_dir(top, flags & 1);
    if (d.train.size() != n) std::abort();
    if (d.train.x.size() != d.train.size() * d.shape.size() || d.test.x.size() != d.test.size() * d.shape.size())
      std::abort();
    for (int32_t y : d.train.y)
      if (y < 0 || y > 9) std::abort();
    for (int32_t y : d.test.y)
      if (y < 0 || y > 9) std::abort();
  } catch (const InputError&) {
  }
  return 0;
}
