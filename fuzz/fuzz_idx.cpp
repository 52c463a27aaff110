// libFuzzer target: the IDX dataset reader (engine::load_idx_dataset), raw and gzipped.
// Contract: a malformed dataset only ever throws InputError; never a crash, a sanitizer report, a
// hang, or an allocation driven by a header that the data does not back.
//
// Input layout: byte 0 = flags (bit i: gzip file i before writing it), bytes 1..6 = three
// big-endian u16 lengths of files 0..2, the rest is file 3. Files: train images, train labels,
// test images, test labels (the fixed order of engine::load_idx_dataset).
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "engine/dataset.hpp"

using namespace dtsim;

namespace {

std::string gzip(std::string_view raw) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // 15 + 16: gzip wrapper
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const std::string& scratch_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/dev/shm/dtsim-fuzz-idx-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) {
      char t2[] = "/tmp/dtsim-fuzz-idx-XXXXXX";
      d = ::mkdtemp(t2);
    }
    if (!d) std::abort();
    static std::string keep = d;
    std::atexit([] { std::system(("rm -rf " + keep).c_str()); });
    return keep;
  }();
  return dir;
}

void write(const std::string& path, std::string_view content) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!content.empty()) std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7) return 0;
  const uint8_t flags = data[0];
  size_t len[4];
  for (int i = 0; i < 3; ++i) len[i] = (size_t{data[1 + 2 * i]} << 8) | data[2 + 2 * i];
  size_t off = 7;
  std::string_view part[4];
  for (int i = 0; i < 4; ++i) {
    const size_t n = i < 3 ? std::min(len[i], size - off) : size - off;
    part[i] = std::string_view(reinterpret_cast<const char*>(data) + off, n);
    off += n;
  }
  static const char* names[4] = {"train-images", "train-labels", "test-images", "test-labels"};
  std::string paths[4];
  for (int i = 0; i < 4; ++i) {
    const bool gz = flags & (1u << i);
    paths[i] = scratch_dir() + "/" + names[i] + (gz ? ".gz" : "");
    write(paths[i], gz ? std::string_view(gzip(part[i])) : part[i]);
  }
  try {
    engine::Dataset d = engine::load_idx_dataset("fuzz", paths[0], paths[1], paths[2], paths[3]);
    // Invariants a caller relies on when the load succeeds.
    if (d.train.x.size() != d.train.size() * d.shape.size() || d.test.x.size() != d.test.size() * d.shape.size())
      std::abort();
    if (d.classes < 2) std::abort();
    for (int32_t y : d.train.y)
      if (y < 0 || y >= d.classes) std::abort();
    for (int32_t y : d.test.y)
      if (y < 0 || y >= d.classes) std::abort();
  } catch (const InputError&) {
  }
  for (int i = 0; i < 4; ++i) ::unlink(paths[i].c_str());
  return 0;
}
