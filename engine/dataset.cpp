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
  gzbuffer(f.get(), 32u << 10);  // 4x zlib's default; larger buffers gain nothing measurable

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
  // Grow with the data actually read (doubling from 64 KiB, at most 64 MiB at a time), never to what
  // the header alone claims: a corrupt header must give "truncated", not a terabyte allocation (found
  // by fuzz/fuzz_idx), and a short file costs in proportion to its own size.
  size_t got = 0;
  while (got < total) {
    const size_t want = std::min(total - got, std::clamp(got, size_t{64} << 10, size_t{64} << 20));
    out.data.resize(got + want);
    const size_t n = gz_read_all(f.get(), file, out.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  out.data.resize(got);
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

// ------------------------------------------------------------------------------- CIFAR-10

namespace {

const char* const kCifarTrain[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                   "data_batch_5.bin"};
const char* const kCifarTest = "test_batch.bin";
constexpr float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
constexpr float kCifarStd[3] = {0.2470f, 0.2435f, 0.2616f};

std::string join(const std::string& dir, const std::string& base) {
  return (dir.empty() || dir.back() == '/' ? dir : dir + "/") + base;
}

// Records in a CIFAR file, from its size (must be a positive whole number of records).
size_t cifar_records(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail(file, std::string("cannot open CIFAR-10 file: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(file, "not a regular file");
  const auto bytes = static_cast<size_t>(st.st_size);
  if (bytes == 0) fail(file, "empty CIFAR-10 file");
  if (bytes % kCifarRecord != 0)
    fail(file, "truncated or not a CIFAR-10 binary file: " + std::to_string(bytes) + " bytes is not a whole number of " +
                   std::to_string(kCifarRecord) + "-byte records");
  return bytes / kCifarRecord;
}

void read_cifar_file(const std::string& file, bool normalize, Split& out) {
  const size_t n = cifar_records(file);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) fail(file, std::string("cannot open CIFAR-10 file: ") + std::strerror(errno));
  std::vector<uint8_t> raw(n * kCifarRecord);
  if (std::fread(raw.data(), 1, raw.size(), f.get()) != raw.size()) fail(file, "read error (file changed while read?)");
  std::array<std::array<float, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(v) / 255.0f;
      lut[c][v] = normalize ? (x - kCifarMean[c]) / kCifarStd[c] : x;
    }
  const size_t first = out.y.size();
  out.y.resize(first + n);
  out.x.resize((first + n) * 3072);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* rec = raw.data() + i * kCifarRecord;
    if (rec[0] > 9)
      fail(file, "record " + std::to_string(i) + " has label " + std::to_string(rec[0]) +
                     " (CIFAR-10 labels are 0..9; a CIFAR-100 file has 3074-byte records)");
    out.y[first + i] = rec[0];
    float* x = out.x.data() + (first + i) * 3072;
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) x[c * 1024 + p] = lut[c][rec[1 + c * 1024 + p]];
  }
}

}  // namespace

std::string cifar10_dir(const std::string& dir) {
  auto complete = [](const std::string& d) {
    for (const char* b : kCifarTrain)
      if (!is_regular_file(join(d, b))) return false;
    return is_regular_file(join(d, kCifarTest));
  };
  if (complete(dir)) return dir;
  const std::string sub = join(dir, "cifar-10-batches-bin");
  if (complete(sub)) return sub;
  for (const char* b : kCifarTrain)
    if (!is_regular_file(join(dir, b)))
      fail(join(dir, b), std::string("missing CIFAR-10 file '") + b + "' in '" + dir +
                             "' (expected data_batch_1..5.bin and test_batch.bin, the binary version)");
  fail(join(dir, kCifarTest), "missing CIFAR-10 file 'test_batch.bin' in '" + dir + "'");
}

size_t cifar10_train_size(const std::string& dir) {
  const std::string d = cifar10_dir(dir);
  size_t n = 0;
  for (const char* b : kCifarTrain) n += cifar_records(join(d, b));
  return n;
}

Dataset load_cifar10_dir(const std::string& dir, bool normalize) {
  const std::string d = cifar10_dir(dir);
  Dataset ds;
  ds.name = "cifar10";
  ds.shape = SampleShape{3, 32, 32};
  ds.classes = 10;
  for (const char* b : kCifarTrain) read_cifar_file(join(d, b), normalize, ds.train);
  read_cifar_file(join(d, kCifarTest), normalize, ds.test);
  for (int c = 0; c < 3; ++c) ds.black.push_back(normalize ? -kCifarMean[c] / kCifarStd[c] : 0.0f);
  return ds;
}

// --------------------------------------------------------------------------------- digits

Dataset load_digits_csv(const std::string& file, double test_fraction) {
  if (!(test_fraction > 0 && test_fraction < 1)) throw InputError(file, "", "test_fraction must be in (0, 1)");
  if (!is_regular_file(file)) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) fail(file, "not a regular file");
    fail(file, std::string("cannot open the digits file: ") + std::strerror(errno) +
                   " (it ships with the Debian package python3-sklearn)");
  }
  GzPtr f(gzopen(file.c_str(), "rb"));
  if (!f) fail(file, std::string("cannot open the digits file: ") + std::strerror(errno));
  std::string text;
  {
    std::vector<uint8_t> buf(1 << 16);
    for (;;) {
      const size_t got = gz_read_all(f.get(), file, buf.data(), buf.size());
      text.append(reinterpret_cast<const char*>(buf.data()), got);
      if (got < buf.size()) break;
      if (text.size() > (size_t{1} << 30)) fail(file, "implausibly large digits file");
    }
  }
  std::vector<float> x;
  std::vector<int32_t> y;
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string row = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    if (row.empty()) continue;
    int values[65];
    int count = 0;
    const char* p = row.c_str();
    while (*p) {
      char* q = nullptr;
      const double v = std::strtod(p, &q);
      if (q == p || count == 65 || v != std::floor(v))
        fail(file, "line " + std::to_string(line) + ": expected 65 comma-separated integers (64 pixels, then the label)");
      values[count++] = static_cast<int>(v);
      p = q;
      if (*p == ',') ++p;
      else if (*p) fail(file, "line " + std::to_string(line) + ": unexpected character '" + std::string(1, *p) + "'");
    }
    if (count != 65)
      fail(file, "line " + std::to_string(line) + ": " + std::to_string(count) +
                     " values, expected 65 (64 pixels, then the label)");
    for (int i = 0; i < 64; ++i) {
      if (values[i] < 0 || values[i] > 16)
        fail(file, "line " + std::to_string(line) + ": pixel " + std::to_string(i) + " is " +
                       std::to_string(values[i]) + ", outside 0..16");
      x.push_back(static_cast<float>(values[i]) / 16.0f);
    }
    if (values[64] < 0 || values[64] > 9)
      fail(file, "line " + std::to_string(line) + ": label " + std::to_string(values[64]) + " outside 0..9");
    y.push_back(values[64]);
  }
  const size_t n = y.size();
  const auto n_train = static_cast<size_t>(std::llround((1.0 - test_fraction) * static_cast<double>(n)));
  if (n_train < 1 || n_train >= n)
    fail(file, std::to_string(n) + " rows: too few for a train/test split with test_fraction " +
                   std::to_string(test_fraction));
  Dataset ds;
  ds.name = "digits";
  ds.shape = SampleShape{1, 8, 8};
  ds.classes = 10;
  ds.train.x.assign(x.begin(), x.begin() + static_cast<ptrdiff_t>(n_train * 64));
  ds.train.y.assign(y.begin(), y.begin() + static_cast<ptrdiff_t>(n_train));
  ds.test.x.assign(x.begin() + static_cast<ptrdiff_t>(n_train * 64), x.end());
  ds.test.y.assign(y.begin() + static_cast<ptrdiff_t>(n_train), y.end());
  return ds;
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
  const size_t t = split.targets;
  out.shape = shape;
  out.targets = t;
  out.x.resize(indices.size() * sz);
  out.y.resize(indices.size() * t);
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t idx = indices[i];
    if (idx >= n)
      throw RuntimeError("gather: sample index " + std::to_string(idx) + " out of range (" + std::to_string(n) + ")");
    std::memcpy(out.x.data() + i * sz, split.x.data() + idx * sz, sz * sizeof(float));
    if (t == 1) out.y[i] = split.y[idx];
    else std::memcpy(out.y.data() + i * t, split.y.data() + idx * t, t * sizeof(int32_t));
  }
}

// --------------------------------------------------------------------------- augmentation

void augment_crop_flip(Batch& batch, const std::vector<float>& black, uint64_t seed, uint64_t worker, uint64_t step,
                       int pad) {
  const SampleShape s = batch.shape;
  const size_t sz = s.size();
  if (pad < 0) throw RuntimeError("augment_crop_flip: negative padding");
  if (!black.empty() && black.size() != static_cast<size_t>(s.c))
    throw RuntimeError("augment_crop_flip: " + std::to_string(black.size()) + " fill values for " +
                       std::to_string(s.c) + " channels");
  if (batch.x.size() != batch.size() * sz) throw RuntimeError("augment_crop_flip: batch features do not match its shape");
  thread_local std::vector<float> tmp;
  tmp.resize(sz);
  for (size_t i = 0; i < batch.size(); ++i) {
    Rng rng(seed, Stream::Augment, {worker, step, static_cast<uint64_t>(i)});
    // Crop offset in the padded image, in [0, 2*pad] per axis, then the flip.
    const int oy = static_cast<int>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad;
    const int ox = static_cast<int>(rng.below(static_cast<uint64_t>(2 * pad + 1))) - pad;
    const bool flip = rng.below(2) == 1;
    float* x = batch.x.data() + i * sz;
    std::copy(x, x + sz, tmp.data());
    for (int c = 0; c < s.c; ++c) {
      const float fill = black.empty() ? 0.0f : black[static_cast<size_t>(c)];
      const float* src = tmp.data() + static_cast<size_t>(c) * s.h * s.w;
      float* dst = x + static_cast<size_t>(c) * s.h * s.w;
      for (int yy = 0; yy < s.h; ++yy) {
        const int sy = yy + oy;
        for (int xx = 0; xx < s.w; ++xx) {
          const int sx = (flip ? s.w - 1 - xx : xx) + ox;
          dst[yy * s.w + xx] = sy >= 0 && sy < s.h && sx >= 0 && sx < s.w ? src[sy * s.w + sx] : fill;
        }
      }
    }
  }
}

}  // namespace dtsim::engine
