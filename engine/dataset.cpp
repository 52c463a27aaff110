#include "engine/dataset.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/rng.hpp"

namespace dtsim::engine {

namespace {

// ------------------------------------------------------------------------------------- IDX

struct IdxFile {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

[[noreturn]] void fail(const std::string& file, const std::string& reason) { throw InputError(file, "", reason); }

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzPtr = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `n` bytes; returns how many were read (short only at end of data).
size_t gz_read_all(gzFile f, const std::string& file, uint8_t* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    const size_t want = std::min<size_t>(n - done, size_t{1} << 30);
    const int got = gzread(f, dst + done, static_cast<unsigned>(want));
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      fail(file, std::string("read error: ") + (err == Z_ERRNO ? std::strerror(errno) : msg));
    }
    if (got == 0) {
      // gzread returns 0 at a clean end of data, but also for a gzip stream that ends early:
      // in that case gzerror reports Z_BUF_ERROR ("unexpected end of file").
      int err = 0;
      const char* msg = gzerror(f, &err);
      if (err != Z_OK && err != Z_STREAM_END) fail(file, std::string("truncated or corrupt gzip data: ") + msg);
      break;
    }
    done += static_cast<size_t>(got);
  }
  return done;
}

// Reads an unsigned-byte IDX file (raw or gzipped) with `ndims` dimensions.
IdxFile read_idx(const std::string& file, int ndims, const char* what) {
  if (!is_regular_file(file)) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) fail(file, "not a regular file");
    fail(file, std::string("cannot open ") + what + " file: " + std::strerror(errno));
  }
  GzPtr f(gzopen(file.c_str(), "rb"));
  if (!f) fail(file, std::string("cannot open ") + what + " file: " + std::strerror(errno));
  gzbuffer(f.get(), 1u << 20);

  std::array<uint8_t, 4> magic{};
  if (gz_read_all(f.get(), file, magic.data(), 4) != 4) fail(file, "truncated: file shorter than the 4-byte IDX magic");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "bad IDX magic %02x %02x %02x %02x (expected 00 00 08 %02x: unsigned-byte %s)",
                  magic[0], magic[1], magic[2], magic[3], ndims, what);
    fail(file, buf);
  }
  if (magic[3] != ndims)
    fail(file, std::string("expected a ") + std::to_string(ndims) + "-dimensional IDX " + what + " file, found " +
                   std::to_string(magic[3]) + " dimensions");

  IdxFile out;
  std::vector<uint8_t> hdr(static_cast<size_t>(ndims) * 4);
  if (gz_read_all(f.get(), file, hdr.data(), hdr.size()) != hdr.size()) fail(file, "truncated: incomplete IDX header");
  size_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* b = hdr.data() + 4 * d;
    const uint32_t v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    if (v == 0) fail(file, "IDX dimension " + std::to_string(d) + " is 0");
    // Guard the product (and the float copy made later) against overflow and absurd headers.
    if (total > (size_t{1} << 40) / v) fail(file, "IDX header declares an implausibly large array");
    total *= v;
    out.dims.push_back(v);
  }
  out.data.resize(total);
  const size_t got = gz_read_all(f.get(), file, out.data.data(), total);
  if (got != total)
    fail(file, "truncated: header declares " + std::to_string(total) + " data bytes, file has " + std::to_string(got));
  uint8_t extra = 0;
  if (gz_read_all(f.get(), file, &extra, 1) != 0)
    fail(file, "trailing data after the " + std::to_string(total) + " bytes the IDX header declares");
  return out;
}

struct Images {
  size_t n = 0;
  SampleShape shape;
  std::vector<float> x;
};

Images read_images(const std::string& file) {
  IdxFile idx = read_idx(file, 3, "images");
  if (idx.dims[1] > 65535 || idx.dims[2] > 65535) fail(file, "image dimensions too large");
  Images im;
  im.n = idx.dims[0];
  im.shape = SampleShape{1, static_cast<int>(idx.dims[1]), static_cast<int>(idx.dims[2])};
  std::array<float, 256> lut{};
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>(v) / 255.0f;
  im.x.resize(idx.data.size());
  const uint8_t* src = idx.data.data();
  float* dst = im.x.data();
  for (size_t i = 0; i < idx.data.size(); ++i) dst[i] = lut[src[i]];
  return im;
}

std::vector<int32_t> read_labels(const std::string& file) {
  IdxFile idx = read_idx(file, 1, "labels");
  return std::vector<int32_t>(idx.data.begin(), idx.data.end());
}

}  // namespace

Dataset load_idx_dataset(const std::string& name, const std::string& train_images, const std::string& train_labels,
                         const std::string& test_images, const std::string& test_labels) {
  Dataset ds;
  ds.name = name;
  Images tr = read_images(train_images);
  std::vector<int32_t> trl = read_labels(train_labels);
  if (trl.size() != tr.n)
    fail(train_labels, std::to_string(trl.size()) + " labels but " + train_images + " has " + std::to_string(tr.n) +
                           " images");
  Images te = read_images(test_images);
  std::vector<int32_t> tel = read_labels(test_labels);
  if (tel.size() != te.n)
    fail(test_labels, std::to_string(tel.size()) + " labels but " + test_images + " has " + std::to_string(te.n) +
                          " images");
  if (te.shape.h != tr.shape.h || te.shape.w != tr.shape.w)
    fail(test_images, "image size " + std::to_string(te.shape.h) + "x" + std::to_string(te.shape.w) +
                          " differs from the training images' " + std::to_string(tr.shape.h) + "x" +
                          std::to_string(tr.shape.w));

  // Classes are 0..max(training label); every test label must fall in that range.
  const int32_t max_train = *std::max_element(trl.begin(), trl.end());
  if (max_train < 1) fail(train_labels, "all training labels are 0: need at least 2 classes");
  for (size_t i = 0; i < tel.size(); ++i)
    if (tel[i] > max_train)
      fail(test_labels, "label " + std::to_string(tel[i]) + " of sample " + std::to_string(i) +
                            " is outside the training labels' range 0.." + std::to_string(max_train));

  ds.shape = tr.shape;
  ds.classes = max_train + 1;
  ds.train.x = std::move(tr.x);
  ds.train.y = std::move(trl);
  ds.test.x = std::move(te.x);
  ds.test.y = std::move(tel);
  return ds;
}

Dataset load_mnist_dir(const std::string& name, const std::string& dir) {
  auto find = [&](const std::string& base) {
    const std::string p = (dir.empty() || dir.back() == '/' ? dir : dir + "/") + base;
    if (is_regular_file(p)) return p;
    if (is_regular_file(p + ".gz")) return p + ".gz";
    fail(p, "missing dataset file (neither '" + base + "' nor '" + base + ".gz' exists in '" + dir + "')");
  };
  const std::string tri = find("train-images-idx3-ubyte");
  const std::string trl = find("train-labels-idx1-ubyte");
  const std::string tei = find("t10k-images-idx3-ubyte");
  const std::string tel = find("t10k-labels-idx1-ubyte");
  return load_idx_dataset(name, tri, trl, tei, tel);
}

// ------------------------------------------------------------------------------- synthetic

Dataset make_synthetic(size_t train, size_t test, int features, int classes, uint64_t seed) {
  if (features < 1) throw InputError("", "", "synthetic dataset: features must be >= 1");
  if (classes < 2) throw InputError("", "", "synthetic dataset: classes must be >= 2");
  if (train == 0) throw InputError("", "", "synthetic dataset: train size must be >= 1");
  const size_t f = static_cast<size_t>(features);
  if (train > (size_t{1} << 40) / f || test > (size_t{1} << 40) / f)
    throw InputError("", "", "synthetic dataset: too large");

  // Class centres ~ N(0, s^2) per feature with s = kSeparation / sqrt(features), noise N(0, 1):
  // two centres are then about kSeparation*sqrt(2) noise standard deviations apart whatever the
  // dimension, so the Bayes error (and the difficulty) barely depends on `features`.
  constexpr double kSeparation = 3.0;
  const double s = kSeparation / std::sqrt(static_cast<double>(features));
  std::vector<double> centres(static_cast<size_t>(classes) * f);
  {
    Rng rng(seed, Stream::Synthetic, {0});
    for (double& c : centres) c = s * rng.normal();
  }

  Dataset ds;
  ds.name = "synthetic";
  ds.shape = SampleShape{features, 1, 1};
  ds.classes = classes;
  auto fill = [&](Split& sp, size_t n, uint64_t key) {
    Rng rng(seed, Stream::Synthetic, {key});
    sp.x.resize(n * f);
    sp.y.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
      sp.y[i] = c;
      const double* centre = centres.data() + static_cast<size_t>(c) * f;
      float* x = sp.x.data() + i * f;
      for (size_t j = 0; j < f; ++j) x[j] = static_cast<float>(centre[j] + rng.normal());
    }
  };
  fill(ds.train, train, 1);
  fill(ds.test, test, 2);
  return ds;
}

// ---------------------------------------------------------------------------- SampleOrder

namespace {
constexpr size_t kCachedEpochs = 4;
}

SampleOrder::SampleOrder(size_t train_size, uint64_t seed) : n_(train_size), seed_(seed) {
  if (n_ == 0) throw RuntimeError("SampleOrder: empty training set");
  if (n_ > std::numeric_limits<uint32_t>::max()) throw RuntimeError("SampleOrder: training set too large");
}

const std::vector<uint32_t>& SampleOrder::epoch(uint64_t e) {
  auto it = cache_.find(e);
  if (it != cache_.end()) return it->second;
  std::vector<uint32_t> perm(n_);
  for (size_t i = 0; i < n_; ++i) perm[i] = static_cast<uint32_t>(i);
  Rng rng(seed_, Stream::DataOrder, {e});
  rng.shuffle(perm);
  it = cache_.emplace(e, std::move(perm)).first;
  // Evict the oldest epochs other than the one just made (a straggler asking for an old epoch
  // just recomputes it: the permutation depends on (seed, epoch) only).
  while (cache_.size() > kCachedEpochs) {
    auto victim = cache_.begin();
    if (victim->first == e) ++victim;
    cache_.erase(victim);
  }
  return it->second;
}

size_t SampleOrder::at(uint64_t p) {
  const uint64_t n = n_;
  return epoch(p / n)[static_cast<size_t>(p % n)];
}

void SampleOrder::worker_batch(int rank, int workers, uint64_t k, int b, std::vector<size_t>& out) {
  if (workers < 1 || rank < 0 || rank >= workers || b < 0)
    throw RuntimeError("SampleOrder::worker_batch: bad rank/workers/batch (" + std::to_string(rank) + "/" +
                       std::to_string(workers) + ", b=" + std::to_string(b) + ")");
  out.resize(static_cast<size_t>(b));
  const uint64_t w = static_cast<uint64_t>(workers);
  const uint64_t first = k * static_cast<uint64_t>(b);
  for (size_t j = 0; j < out.size(); ++j) out[j] = at((first + j) * w + static_cast<uint64_t>(rank));
}

void SampleOrder::range(uint64_t begin, size_t count, std::vector<size_t>& out) {
  out.resize(count);
  for (size_t j = 0; j < count; ++j) out[j] = at(begin + j);
}

// --------------------------------------------------------------------------------- gather

void gather(const Split& split, const SampleShape& shape, const std::vector<size_t>& indices, Batch& out) {
  const size_t sz = shape.size();
  const size_t n = split.size();
  if (split.x.size() != n * sz)
    throw RuntimeError("gather: split holds " + std::to_string(split.x.size()) + " floats, expected " +
                       std::to_string(n) + " x " + std::to_string(sz));
  out.shape = shape;
  out.x.resize(indices.size() * sz);
  out.y.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t idx = indices[i];
    if (idx >= n)
      throw RuntimeError("gather: sample index " + std::to_string(idx) + " out of range (" + std::to_string(n) + ")");
    std::memcpy(out.x.data() + i * sz, split.x.data() + idx * sz, sz * sizeof(float));
    out.y[i] = split.y[idx];
  }
}

}  // namespace dtsim::engine
